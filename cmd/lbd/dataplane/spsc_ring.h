// SPDX-License-Identifier: Apache-2.0
// A bounded single-producer (a worker), single-consumer (the housekeeping thread) ring. Push
// never blocks or allocates: a full ring refuses the item.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lb::lbd {

template <typename T, size_t N>
class SpscRing {
 public:
  static constexpr size_t kSize = N;

  // Producer thread. Hot path. Fills the next slot with `fill(T&)`; false when the ring is full.
  template <typename F>
  bool push(F&& fill) noexcept {
    const uint32_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) >= N)
      return false;
    fill(ring_[h % N]);
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

  // Producer thread: how many pushes would succeed now (at least; the consumer only frees).
  size_t room() const noexcept {
    return N - (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
  }

  // Consumer thread: calls f(const T&) on every item pushed so far, oldest first.
  template <typename F>
  void drain(F&& f) {
    const uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t t = tail_.load(std::memory_order_relaxed);
    for (; t != h; ++t)
      f(static_cast<const T&>(ring_[t % N]));
    tail_.store(t, std::memory_order_release);
  }

 private:
  T ring_[N];
  std::atomic<uint32_t> head_{0};
  std::atomic<uint32_t> tail_{0};
};

}  // namespace lb::lbd
