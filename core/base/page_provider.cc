// SPDX-License-Identifier: Apache-2.0
#include "core/base/page_provider.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/base/check.h"

namespace lb {

namespace {

constexpr size_t kHeapPage = 4096;

class HeapPageProvider final : public PageProvider {
 public:
  void* reserve(size_t bytes) noexcept override {
    const size_t rounded = pageRound(*this, bytes);
    void* p = std::aligned_alloc(kHeapPage, rounded);
    if (p != nullptr)
      std::memset(p, 0, rounded);
    return p;
  }

  void release(void* p, size_t bytes) noexcept override { std::memset(p, 0, bytes); }

  void unreserve(void* p, size_t /*bytes*/) noexcept override { std::free(p); }

  size_t pageSize() const noexcept override { return kHeapPage; }
};

std::atomic<PageProvider*> g_default{nullptr};

}  // namespace

PageProvider& heapPageProvider() {
  static HeapPageProvider heap;
  return heap;
}

PageProvider& defaultPageProvider() {
  PageProvider* p = g_default.load(std::memory_order_acquire);
  return p != nullptr ? *p : heapPageProvider();
}

void setDefaultPageProvider(PageProvider* provider) {
  g_default.store(provider, std::memory_order_release);
}

size_t pageRound(const PageProvider& provider, size_t bytes) {
  const size_t page = provider.pageSize();
  if (bytes == 0)
    return page;
  return (bytes + page - 1) / page * page;
}

void* reserveOrDie(PageProvider& provider, size_t bytes) {
  void* p = provider.reserve(bytes);
  LB_CHECK(p != nullptr);
  return p;
}

}  // namespace lb
