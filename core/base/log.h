// SPDX-License-Identifier: Apache-2.0
// Logging facade (abseil 20220623 has no absl/log). cmd/lbd installs the sink; core only formats.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace lb {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

// Receives one finished log line. Must be thread-safe. Installed once by the binary's main().
using LogSink = void (*)(LogLevel level, absl::string_view module, absl::string_view msg);

// Any thread. Passing nullptr restores the default sink (stderr).
void setLogSink(LogSink sink);
void setMinLogLevel(LogLevel level);
bool logEnabled(LogLevel level);
// Any thread. May allocate: never call it on the packet path except through LB_LOG_EVERY_N_SEC.
void logLine(LogLevel level, absl::string_view module, absl::string_view msg);
absl::string_view logLevelName(LogLevel level);

// Rate limiter for LB_LOG_EVERY_N_SEC: true at most once per `period_ns` of the steady clock.
// Any thread; lock-free.
bool logRateAllows(std::atomic<int64_t>& last_ns, int64_t period_ns);

}  // namespace lb

#ifndef LB_LOG_MODULE
#define LB_LOG_MODULE "lbd"
#endif

#define LB_LOG(level, ...)                                                               \
  do {                                                                                   \
    if (::lb::logEnabled(::lb::LogLevel::level)) {                                       \
      ::lb::logLine(::lb::LogLevel::level, LB_LOG_MODULE, absl::StrFormat(__VA_ARGS__)); \
    }                                                                                    \
  } while (0)

#define LB_LOG_EVERY_N_SEC(level, n, ...)                                                \
  do {                                                                                   \
    static std::atomic<int64_t> lb_log_last_ns_{INT64_MIN};                              \
    if (::lb::logEnabled(::lb::LogLevel::level) &&                                       \
        ::lb::logRateAllows(lb_log_last_ns_, int64_t{n} * 1'000'000'000)) {              \
      ::lb::logLine(::lb::LogLevel::level, LB_LOG_MODULE, absl::StrFormat(__VA_ARGS__)); \
    }                                                                                    \
  } while (0)

#ifdef LB_PKT_TRACE
#define LB_PKT_TRACE_LOG(...) LB_LOG(kDebug, __VA_ARGS__)
#else
#define LB_PKT_TRACE_LOG(...) \
  do {                        \
  } while (0)
#endif
