// SPDX-License-Identifier: Apache-2.0
// Single-writer counters and the X-macro helpers that declare counter structs and name tables.
#pragma once

#include <atomic>
#include <cstdint>

namespace lb {

// A counter written by one thread (relaxed load + store, no RMW) and read by any.
class Counter {
 public:
  // Owner thread only. Hot path.
  void add(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // Any thread.
  uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

  void reset() noexcept { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace lb

#define LB_DECLARE_COUNTER(name) ::lb::Counter name;
#define LB_COUNTER_NAME(name) #name,
