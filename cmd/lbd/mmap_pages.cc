// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/mmap_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/base/log.h"

namespace lb::lbd {

MmapPageProvider::MmapPageProvider() : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))) {}

void* MmapPageProvider::reserve(size_t bytes) noexcept {
  void* p = mmap(nullptr, pageRound(*this, bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void MmapPageProvider::release(void* p, size_t bytes) noexcept {
  // Private anonymous memory: the pages are freed and read as zeros until written again.
  if (madvise(p, bytes, MADV_DONTNEED) != 0)
    LB_LOG_EVERY_N_SEC(kWarn, 60, "madvise(MADV_DONTNEED, %zu bytes) failed", bytes);
}

void MmapPageProvider::unreserve(void* p, size_t bytes) noexcept {
  munmap(p, pageRound(*this, bytes));
}

PageProvider& mmapPageProvider() {
  static MmapPageProvider provider;
  return provider;
}

size_t dropStartupPages() {
  struct Range {
    uintptr_t begin = 0, end = 0;
    bool candidate = false;  // file-backed, not writable
    size_t rss_kb = 0, anon_kb = 0;
  };

  std::vector<Range> ranges;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long b = 0, e = 0;
    char perms[5] = {};
    char path[512] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s %*s %*s %*s %511s", &b, &e, perms, path) >= 3 &&
        line.find('-') < line.find(' ')) {
      Range r;
      r.begin = b;
      r.end = e;
      r.candidate = path[0] == '/' && perms[1] != 'w';
      ranges.push_back(r);
      continue;
    }
    if (ranges.empty())
      continue;
    size_t kb = 0;
    if (std::sscanf(line.c_str(), "Rss: %zu kB", &kb) == 1)
      ranges.back().rss_kb = kb;
    else if (std::sscanf(line.c_str(), "Anonymous: %zu kB", &kb) == 1)
      ranges.back().anon_kb = kb;
  }
  size_t dropped = 0;
  for (const Range& r : ranges) {
    // A private page (relocated RELRO data) would be lost: such mappings are left alone.
    if (!r.candidate || r.anon_kb != 0 || r.rss_kb == 0)
      continue;
    if (madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin, MADV_DONTNEED) == 0)
      dropped += r.rss_kb;
  }
  return dropped;
}

}  // namespace lb::lbd
