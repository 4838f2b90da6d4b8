// SPDX-License-Identifier: Apache-2.0
// Memory that costs what is used: address space reserved up front, zero-filled, whose pages
// become resident when first written and can be given back. core only calls the interface; the
// binary supplies the mapping (lbd: mmap NORESERVE + madvise, cmd/lbd/memory/).
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace lb {

class PageProvider {
 public:
  virtual ~PageProvider() = default;
  // Control thread. `bytes` of zero-filled memory, aligned to pageSize(), whose pages cost
  // nothing until first written. nullptr when it cannot be had.
  virtual void* reserve(size_t bytes) noexcept = 0;
  // Any thread, never the packet path (it may be a syscall). Gives back the pages of
  // [p, p + bytes), page-aligned inside one reservation: they read as zeros afterwards and
  // cost nothing until written again.
  virtual void release(void* p, size_t bytes) noexcept = 0;
  // Control thread. Ends a reservation (reserve()'s pointer and size).
  virtual void unreserve(void* p, size_t bytes) noexcept = 0;
  virtual size_t pageSize() const noexcept = 0;
};

// Any thread. The provider a table uses when it is given none: heapPageProvider() until the
// binary installs its own at start, before any table is built (lbd does in main).
PageProvider& defaultPageProvider();
// Control thread, at start. nullptr restores the heap provider. The provider must outlive
// every table built from it.
void setDefaultPageProvider(PageProvider* provider);
// Pure: the heap, zeroed with memset (every page resident from reserve on); release() zeroes.
// What unit tests and tools get.
PageProvider& heapPageProvider();

// A fixed-size array in memory from a PageProvider: pages become resident as elements are
// written, so an array sized for every possible id costs what the used ids touch. T must be
// a type whose value-initialised state is all zero bytes (integers, atomics of them, pointers,
// Counter) and trivially destructible; the elements are never constructed: zero-filled pages
// are taken as value-initialised objects.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_destructible_v<T>);
  static_assert(alignof(T) <= 64);

 public:
  ZeroedArray() = default;

  // Control thread. May allocate; LB_CHECK-fails when the provider has no memory (OOM is
  // fatal, STYLE.md §4).
  explicit ZeroedArray(size_t n, PageProvider* provider = nullptr);

  ZeroedArray(ZeroedArray&& o) noexcept { swap(o); }

  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    swap(o);
    return *this;
  }

  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;

  ~ZeroedArray() {
    if (data_ != nullptr)
      provider_->unreserve(data_, bytes_);
  }

  T& operator[](size_t i) noexcept { return data_[i]; }

  const T& operator[](size_t i) const noexcept { return data_[i]; }

  T* get() noexcept { return data_; }

  const T* get() const noexcept { return data_; }

  size_t size() const noexcept { return size_; }

 private:
  void swap(ZeroedArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(bytes_, o.bytes_);
    std::swap(provider_, o.provider_);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;
  PageProvider* provider_ = nullptr;
};

// Rounds `bytes` up to a multiple of the provider's page size (at least one page).
size_t pageRound(const PageProvider& provider, size_t bytes);
// LB_CHECK-fails unless the provider reserved the memory.
void* reserveOrDie(PageProvider& provider, size_t bytes);

template <typename T>
ZeroedArray<T>::ZeroedArray(size_t n, PageProvider* provider)
    : size_(n), provider_(provider != nullptr ? provider : &defaultPageProvider()) {
  bytes_ = pageRound(*provider_, n * sizeof(T));
  data_ = static_cast<T*>(reserveOrDie(*provider_, bytes_));
}

}  // namespace lb
