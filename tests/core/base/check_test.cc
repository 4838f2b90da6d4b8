// SPDX-License-Identifier: Apache-2.0
// LB_CHECK / LB_BUG / bugSeen, the default stderr log sink and the fallback names.
#include "core/base/check.h"

#include <string>

#include "gtest/gtest.h"

#include "core/base/log.h"
#include "core/base/verdict.h"

namespace lb {
namespace {

TEST(CheckDeathTest, CheckAbortsWithTheCondition) {
  EXPECT_DEATH(LB_CHECK(1 + 1 == 3), "check failed: 1 \\+ 1 == 3");
}

#ifndef NDEBUG
TEST(CheckDeathTest, BugAbortsInDebugBuilds) {
  EXPECT_DEATH(LB_BUG(true, "conn counter underflow"), "conn counter underflow");
  LB_BUG(false, "never");  // a false condition is nothing
}
#endif

void quietSink(LogLevel, absl::string_view, absl::string_view) {}

TEST(CheckTest, BugSeenCountsEveryCall) {
  setLogSink(&quietSink);
  uint64_t before = bugsTotal();
  bugSeen("x.cc", 1, "first");
  bugSeen("x.cc", 2, "second");  // logged or not (rate limit), always counted
  setLogSink(nullptr);
  EXPECT_EQ(bugsTotal(), before + 2);
}

TEST(LogTest, DefaultSinkWritesOneLineToStderr) {
  setLogSink(nullptr);
  setMinLogLevel(LogLevel::kDebug);
  EXPECT_TRUE(logEnabled(LogLevel::kDebug));
  ::testing::internal::CaptureStderr();
  logLine(LogLevel::kError, "conn", "table full");
  logLine(LogLevel::kDebug, "sched", "picked 198.18.1.10");
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "error conn table full\ndebug sched picked 198.18.1.10\n");
  setMinLogLevel(LogLevel::kInfo);
  EXPECT_FALSE(logEnabled(LogLevel::kDebug));
  EXPECT_TRUE(logEnabled(LogLevel::kWarn));
}

TEST(LogTest, UnknownLevelAndDropReasonHaveFallbackNames) {
  EXPECT_EQ(logLevelName(static_cast<LogLevel>(99)), "?");
  EXPECT_EQ(dropReasonName(DropReason::kCount), "unknown");
  EXPECT_EQ(dropReasonName(static_cast<DropReason>(250)), "unknown");
}

}  // namespace
}  // namespace lb
