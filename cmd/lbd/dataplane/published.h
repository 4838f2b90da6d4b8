// SPDX-License-Identifier: Apache-2.0
// An immutable value published by one thread and picked up by workers between batches (RCU in
// spirit): workers compare a generation number per batch and copy the shared_ptr only when it
// changed, so the packet path takes no lock and touches no refcount in the common case.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace lb::lbd {

template <typename T>
class Published {
 public:
  // Any thread. The old value lives on until the last worker drops its copy; it is kept here
  // too, so that the worker dropping it last never runs its destructor (a 10,000-service
  // snapshot takes milliseconds to free): collect() frees it on a thread off the packet path.
  void publish(std::shared_ptr<const T> v) {
    std::lock_guard<std::mutex> lock(mu_);
    if (value_ != nullptr)
      retired_.push_back(std::move(value_));
    value_ = std::move(v);
    gen_.fetch_add(1, std::memory_order_release);
  }

  // Housekeeping thread: frees the retired values no worker holds any more.
  void collect() {
    std::vector<std::shared_ptr<const T>> dead;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = retired_.begin(); it != retired_.end();) {
        if (it->use_count() == 1) {
          dead.push_back(std::move(*it));
          it = retired_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // `dead` is destroyed here, outside the lock.
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
  std::vector<std::shared_ptr<const T>> retired_;
  std::atomic<uint64_t> gen_{1};
};

}  // namespace lb::lbd
