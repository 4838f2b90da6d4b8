// SPDX-License-Identifier: Apache-2.0
// A clock for tests: time moves only when the test says so.
#pragma once

#include "core/base/time.h"

namespace lb::testing {

class FakeClock {
 public:
  explicit FakeClock(MonoTime start = MonoTime::fromSeconds(1000)) : now_(start) {}

  MonoTime now() const { return now_; }

  void advance(Duration d) { now_ = now_ + d; }

 private:
  MonoTime now_;
};

}  // namespace lb::testing
