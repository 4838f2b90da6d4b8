// SPDX-License-Identifier: Apache-2.0
// lbd's PageProvider (core/base/page_provider.h): anonymous mmap with MAP_NORESERVE, so that a
// reservation costs address space only and a page becomes resident when first written;
// release() is madvise(MADV_DONTNEED). docs/memory.md.
#pragma once

#include "core/base/page_provider.h"

namespace lb::lbd {

class MmapPageProvider final : public PageProvider {
 public:
  MmapPageProvider();
  // Any thread. nullptr when mmap fails.
  void* reserve(size_t bytes) noexcept override;
  // Any thread, off the packet path (one madvise).
  void release(void* p, size_t bytes) noexcept override;
  void unreserve(void* p, size_t bytes) noexcept override;

  size_t pageSize() const noexcept override { return page_; }

 private:
  size_t page_;
};

// The process's provider, installed as the default (setDefaultPageProvider) by lbd's main
// before any table is built. Lives for the whole process.
PageProvider& mmapPageProvider();

// Once, after start: drops this process's mappings of clean read-only file pages (shared
// library and lbd text, symbol tables, relocations read while loading, libbpf's and the
// flags' start-up code). The pages stay in the page cache; whatever lbd runs again faults
// back in from it. Only mappings with no private (written) page are touched, so nothing is
// lost. Returns the kB dropped. docs/memory.md.
size_t dropStartupPages();

}  // namespace lb::lbd
