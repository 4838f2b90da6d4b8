// SPDX-License-Identifier: Apache-2.0
// Monotonic time as core/ sees it: always passed in, never read (the kernel's jiffies).
#pragma once

#include <chrono>
#include <cstdint>

namespace lb {

using Duration = std::chrono::nanoseconds;

// A point on the monotonic clock, in nanoseconds since an arbitrary epoch. Value type.
struct MonoTime {
  int64_t ns = 0;

  static constexpr MonoTime fromSeconds(int64_t s) { return MonoTime{s * 1'000'000'000}; }

  friend constexpr MonoTime operator+(MonoTime t, Duration d) { return MonoTime{t.ns + d.count()}; }

  friend constexpr MonoTime operator-(MonoTime t, Duration d) { return MonoTime{t.ns - d.count()}; }

  friend constexpr Duration operator-(MonoTime a, MonoTime b) { return Duration(a.ns - b.ns); }

  friend constexpr auto operator<=>(MonoTime a, MonoTime b) = default;
};

constexpr Duration seconds(int64_t s) {
  return std::chrono::seconds(s);
}

constexpr Duration millis(int64_t ms) {
  return std::chrono::milliseconds(ms);
}

}  // namespace lb
