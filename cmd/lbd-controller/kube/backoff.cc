// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/backoff.h"

#include <algorithm>

namespace lbd::controller::kube {

Backoff::Duration Backoff::next(TimePoint now, double u01) {
  if (failed_before_ && now - last_failure_ >= o_.reset_after)
    base_ = o_.initial;
  failed_before_ = true;
  last_failure_ = now;
  u01 = std::clamp(u01, 0.0, 1.0);
  auto delay = std::chrono::duration_cast<Duration>(base_ * (1.0 + o_.jitter * u01));
  delay = std::min(delay, o_.max);
  auto grown = std::chrono::duration_cast<Duration>(base_ * o_.factor);
  base_ = std::min(grown, o_.max);
  return delay;
}

}  // namespace lbd::controller::kube
