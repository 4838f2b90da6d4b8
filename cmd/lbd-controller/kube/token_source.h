// SPDX-License-Identifier: Apache-2.0
// The bearer token: a static one, or a file (a projected service-account token) re-read at
// least every minute and after any 401, as client-go's cachingTokenSource does.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace lbd::controller::kube {

class TokenSource {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::chrono::seconds kRefresh{60};

  // token_file wins over token when both are given. Any thread.
  TokenSource(
      std::string token, std::string token_file, Clock clock = [] {
        return std::chrono::steady_clock::now();
      });

  // "" when no token is configured. A file that cannot be read while an older token is cached
  // keeps the cached one (logged by the caller through the returned status only when no token
  // was ever read).
  absl::StatusOr<std::string> token();
  // After a 401: the next token() re-reads the file.
  void invalidate();

  bool fromFile() const { return !file_.empty(); }

 private:
  std::string file_;
  Clock clock_;
  std::mutex mu_;
  std::string cached_;
  bool have_ = false;
  bool stale_ = false;  // invalidate() was called
  std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace lbd::controller::kube
