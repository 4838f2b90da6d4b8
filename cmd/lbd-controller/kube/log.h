// SPDX-License-Identifier: Apache-2.0
// lbd-controller's structured logs: one line per event on stderr, text
// (`2026-12-06T07:00:00.123Z info reflector msg k=v ...`) or JSON lines. Any thread.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace lbd::controller::kube {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<absl::string_view, std::string>;

void setLogJson(bool json);
void setLogLevel(LogLevel min);
bool parseLogLevel(absl::string_view s, LogLevel* out);
// A sink for tests; nullptr restores stderr.
void setLogSinkForTest(void (*sink)(const std::string& line));

void logEvent(LogLevel level,
              absl::string_view component,
              absl::string_view msg,
              std::initializer_list<LogField> fields = {});

// The line logEvent writes (without the newline); exposed for tests.
std::string formatLogLine(bool json,
                          LogLevel level,
                          absl::string_view component,
                          absl::string_view msg,
                          std::initializer_list<LogField> fields);

}  // namespace lbd::controller::kube
