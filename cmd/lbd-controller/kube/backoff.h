// SPDX-License-Identifier: Apache-2.0
// Capped exponential backoff with jitter, reset after a quiet period: client-go's reflector
// values (0.8 s, x2, 30 s cap, reset after 2 min without a failure). Pure: the caller passes
// `now` and a uniform random number.
#pragma once

#include <chrono>

namespace lbd::controller::kube {

class Backoff {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Options {
    Duration initial = std::chrono::milliseconds(800);
    double factor = 2.0;
    Duration max = std::chrono::seconds(30);
    double jitter = 0.5;  // delay = base * (1 + jitter * u), u in [0, 1), then capped at max
    Duration reset_after = std::chrono::minutes(2);
  };

  Backoff() : Backoff(Options{}) {}

  explicit Backoff(Options o) : o_(o), base_(o.initial) {}

  // The delay before the next attempt after a failure at `now`. u01 in [0, 1).
  Duration next(TimePoint now, double u01);

  // A success: the base returns to `initial` (also happens by itself after reset_after).
  void reset() { base_ = o_.initial; }

  Duration base() const { return base_; }

 private:
  Options o_;
  Duration base_;
  TimePoint last_failure_{};
  bool failed_before_ = false;
};

}  // namespace lbd::controller::kube
