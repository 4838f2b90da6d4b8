// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/token_source.h"

#include <utility>

#include "absl/strings/ascii.h"

#include "cmd/lbd-controller/kube/kube_config.h"

namespace lbd::controller::kube {

TokenSource::TokenSource(std::string token, std::string token_file, Clock clock)
    : file_(std::move(token_file)), clock_(std::move(clock)) {
  if (file_.empty()) {
    cached_ = std::move(token);
    have_ = true;
  }
}

absl::StatusOr<std::string> TokenSource::token() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_.empty())
    return cached_;
  auto now = clock_();
  if (have_ && !stale_ && now - read_at_ < kRefresh)
    return cached_;
  absl::StatusOr<std::string> t = readFile(file_, 1u << 20);
  if (!t.ok()) {
    if (have_)
      return cached_;  // keep serving the last token; the server will say 401 if it is stale
    return t.status();
  }
  cached_ = std::string(absl::StripAsciiWhitespace(*t));
  have_ = true;
  stale_ = false;
  read_at_ = now;
  return cached_;
}

void TokenSource::invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  stale_ = true;
}

}  // namespace lbd::controller::kube
