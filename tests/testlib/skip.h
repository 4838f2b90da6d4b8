// SPDX-License-Identifier: Apache-2.0
// The one way a C++ test may skip: LB_SKIP_UNLESS_CI(reason) for a capability the machine lacks
// (root, BPF, a device). Outside CI it skips with `reason`; under CI=true, where every
// capability is a given and the run must end with 0 skipped, it fails with `reason`.
// tests/lint/gtest_skip_test.sh refuses GTEST_SKIP anywhere else. A property that does not apply
// to a parameter is not a skip: instantiate the suite only for the parameters it applies to.
#pragma once

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace lb::testing {

// True when the environment says CI=true (.ci/run, GitHub Actions).
inline bool underCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

}  // namespace lb::testing

// In a TEST body or a fixture's SetUp() (which should then return when IsSkipped() or
// HasFatalFailure()); returns from the calling function like GTEST_SKIP / FAIL.
#define LB_SKIP_UNLESS_CI(reason)                           \
  do {                                                      \
    if (::lb::testing::underCi()) {                         \
      GTEST_FAIL() << "CI=true, cannot skip: " << (reason); \
    } else {                                                \
      GTEST_SKIP() << (reason);                             \
    }                                                       \
  } while (0)
