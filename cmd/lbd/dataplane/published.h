// SPDX-License-Identifier: Apache-2.0
// An immutable value published by one thread and picked up by workers between batches (RCU in
// spirit): workers compare a generation number per batch and copy the shared_ptr only when it
// changed, so the packet path takes no lock and touches no refcount in the common case.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace lb::lbd {

template <typename T>
class Published {
 public:
  // Any thread. The old value lives on until the last worker drops its copy.
  void publish(std::shared_ptr<const T> v) {
    std::lock_guard<std::mutex> lock(mu_);
    value_ = std::move(v);
    gen_.fetch_add(1, std::memory_order_release);
  }

  // Any thread.
  std::shared_ptr<const T> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }

  // Worker thread, between batches: refreshes `local` if a newer value was published.
  // Returns true when it changed. Locks only then.
  bool refresh(std::shared_ptr<const T>& local, uint64_t& local_gen) const {
    uint64_t g = gen_.load(std::memory_order_acquire);
    if (g == local_gen)
      return false;
    std::lock_guard<std::mutex> lock(mu_);
    local = value_;
    local_gen = gen_.load(std::memory_order_relaxed);
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
  std::atomic<uint64_t> gen_{1};
};

}  // namespace lb::lbd
