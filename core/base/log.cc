// SPDX-License-Identifier: Apache-2.0
#include "core/base/log.h"

#include <chrono>
#include <cstdio>

namespace lb {
namespace {

void stderrSink(LogLevel level, absl::string_view module, absl::string_view msg) {
  std::fprintf(stderr, "%s %.*s %.*s\n", std::string(logLevelName(level)).c_str(),
               static_cast<int>(module.size()), module.data(), static_cast<int>(msg.size()),
               msg.data());
}

std::atomic<LogSink> g_sink{&stderrSink};
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

}  // namespace

void setLogSink(LogSink sink) {
  g_sink.store(sink ? sink : &stderrSink);
}

void setMinLogLevel(LogLevel level) {
  g_min_level.store(static_cast<int>(level));
}

bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void logLine(LogLevel level, absl::string_view module, absl::string_view msg) {
  g_sink.load()(level, module, msg);
}

absl::string_view logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

bool logRateAllows(std::atomic<int64_t>& last_ns, int64_t period_ns) {
  // The one clock read in core/: log throttling only, never a packet decision.
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_ns.load(std::memory_order_relaxed);
  if (last != INT64_MIN && now - last < period_ns)
    return false;
  return last_ns.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

}  // namespace lb
