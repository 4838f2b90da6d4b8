// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::kube {
namespace {

std::atomic<bool> g_json{false};
std::atomic<int> g_min{static_cast<int>(LogLevel::kInfo)};
std::atomic<void (*)(const std::string&)> g_sink{nullptr};
std::mutex g_mu;

absl::string_view levelName(LogLevel l) {
  switch (l) {
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

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

std::string jsonString(absl::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Text values with spaces, quotes or '=' are quoted, so a line splits back into k=v pairs.
std::string textValue(absl::string_view v) {
  if (!v.empty() && v.find_first_of(" \"=\t\n") == absl::string_view::npos)
    return std::string(v);
  return jsonString(v);
}

}  // namespace

void setLogJson(bool json) {
  g_json.store(json);
}

void setLogLevel(LogLevel min) {
  g_min.store(static_cast<int>(min));
}

void setLogSinkForTest(void (*sink)(const std::string& line)) {
  g_sink.store(sink);
}

bool parseLogLevel(absl::string_view s, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (s == levelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

std::string formatLogLine(bool json,
                          LogLevel level,
                          absl::string_view component,
                          absl::string_view msg,
                          std::initializer_list<LogField> fields) {
  const std::string ts = timestamp();
  std::string line;
  if (json) {
    line = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", levelName(level),
                        "\",\"component\":", jsonString(component), ",\"msg\":", jsonString(msg));
    for (const auto& [k, v] : fields)
      absl::StrAppend(&line, ",", jsonString(k), ":", jsonString(v));
    line += "}";
  } else {
    line = absl::StrCat(ts, " ", levelName(level), " ", component, " ", msg);
    for (const auto& [k, v] : fields)
      absl::StrAppend(&line, " ", k, "=", textValue(v));
  }
  return line;
}

void logEvent(LogLevel level,
              absl::string_view component,
              absl::string_view msg,
              std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_min.load())
    return;
  std::string line = formatLogLine(g_json.load(), level, component, msg, fields);
  if (auto* sink = g_sink.load()) {
    sink(line);
    return;
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace lbd::controller::kube
