// SPDX-License-Identifier: Apache-2.0
// A blocking HTTP/1.1 client for the Kubernetes API on Boost.Beast + OpenSSL: one connection
// per request, deadlines on every step, bearer-token or client-certificate authentication, and
// a streaming GET for watches. Each instance is used by one thread at a time; cancel() may be
// called from any thread and makes the current and every later call return Cancelled.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "cmd/lbd-controller/kube/kube_config.h"
#include "cmd/lbd-controller/kube/token_source.h"

namespace lbd::controller::kube {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, raw
  std::string content_type;
};

class HttpClient {
 public:
  using Duration = std::chrono::steady_clock::duration;
  // Called with each piece of a 200 streaming body; false stops the stream (returns OK).
  using OnData = std::function<bool(absl::string_view)>;

  static absl::StatusOr<std::unique_ptr<HttpClient>> create(const KubeConfig& config,
                                                            std::shared_ptr<TokenSource> tokens);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // method "GET"/"POST"/...; target is the path and query below the server's base path. A 401
  // makes the token source re-read its file and the request is sent once more. Transport
  // errors are Unavailable (DeadlineExceeded on a timeout); any HTTP status is a response.
  absl::StatusOr<HttpResponse> request(absl::string_view method,
                                       absl::string_view target,
                                       absl::string_view body = "",
                                       Duration timeout = std::chrono::seconds(30));
  // GET with a streamed body: a 200's body goes to on_data piece by piece (the returned body is
  // empty); other statuses have their body collected. idle_timeout bounds each read. OK when the
  // server ended the stream cleanly or on_data returned false.
  absl::StatusOr<HttpResponse> stream(absl::string_view target,
                                      Duration idle_timeout,
                                      const OnData& on_data);
  void cancel();

  bool cancelled() const { return cancelled_.load(); }

  const KubeConfig& config() const { return config_; }

  TokenSource& tokens() { return *tokens_; }

 private:
  HttpClient(KubeConfig config, std::shared_ptr<TokenSource> tokens);
  absl::Status init();
  absl::StatusOr<HttpResponse> once(absl::string_view method,
                                    absl::string_view target,
                                    absl::string_view body,
                                    Duration timeout,
                                    const OnData* on_data);

  KubeConfig config_;
  std::shared_ptr<TokenSource> tokens_;
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ssl_;
  std::atomic<bool> cancelled_{false};
};

// Retry-After as a delay: delta-seconds only (an HTTP date is ignored); nullopt when absent or
// unparsable. Capped at 10 minutes.
std::optional<std::chrono::seconds> parseRetryAfter(absl::string_view v);

}  // namespace lbd::controller::kube
