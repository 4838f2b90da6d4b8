// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/mmap_pages.h"

#include <sys/mman.h>
#include <unistd.h>

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

}  // namespace lb::lbd
