// SPDX-License-Identifier: Apache-2.0
// Link this file into a test binary to count allocations (it replaces global operator new).
#include "tests/testlib/alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local uint64_t t_allocs = 0;
}  // namespace

namespace lb::testing {
uint64_t threadAllocations() {
  return t_allocs;
}
}  // namespace lb::testing

void* operator new(std::size_t n) {
  ++t_allocs;
  if (void* p = std::malloc(n == 0 ? 1 : n))
    return p;
  throw std::bad_alloc();
}

void* operator new[](std::size_t n) {
  return operator new(n);
}

void* operator new(std::size_t n, std::align_val_t al) {
  ++t_allocs;
  std::size_t a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a))
    return p;
  throw std::bad_alloc();
}

void* operator new[](std::size_t n, std::align_val_t al) {
  return operator new(n, al);
}

void operator delete(void* p) noexcept {
  std::free(p);
}

void operator delete[](void* p) noexcept {
  std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}

void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
