// SPDX-License-Identifier: Apache-2.0
#include "core/base/log.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "core/base/verdict.h"

namespace lb {
namespace {

std::vector<std::string>* g_lines = nullptr;

void captureSink(LogLevel level, absl::string_view module, absl::string_view msg) {
  g_lines->push_back(std::string(logLevelName(level)) + " " + std::string(module) + " " +
                     std::string(msg));
}

TEST(LogTest, FormatsThroughTheInstalledSinkAndFiltersByLevel) {
  std::vector<std::string> lines;
  g_lines = &lines;
  setLogSink(&captureSink);
  setMinLogLevel(LogLevel::kInfo);
  LB_LOG(kInfo, "added service %s weight=%d", "TCP 198.18.0.1:80", 3);
  LB_LOG(kDebug, "not shown");
  setLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "info lbd added service TCP 198.18.0.1:80 weight=3");
}

TEST(LogTest, EveryNSecondsLogsOncePerPeriod) {
  std::vector<std::string> lines;
  g_lines = &lines;
  setLogSink(&captureSink);
  for (int i = 0; i < 100; ++i) {
    LB_LOG_EVERY_N_SEC(kWarn, 3600, "throttled %d", i);
  }
  setLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "warn lbd throttled 0");
}

TEST(VerdictTest, EveryDropReasonHasADistinctName) {
  std::vector<std::string> names;
  for (int i = 0; i < kDropReasonCount; ++i) {
    std::string n(dropReasonName(static_cast<DropReason>(i)));
    EXPECT_NE(n, "unknown");
    for (const auto& prev : names)
      EXPECT_NE(prev, n);
    names.push_back(n);
  }
  EXPECT_EQ(dropReasonName(DropReason::kNoDest), "no_dest");
}

}  // namespace
}  // namespace lb
