// SPDX-License-Identifier: Apache-2.0
// The sidecar injector's HTTPS endpoint (Boost.Beast + OpenSSL): POST /inject takes an
// AdmissionReview from the API server and answers with injector.h's review. One accept thread,
// one short-lived thread per connection (admission traffic is a few requests a second at most),
// every read bounded by a deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

#include "cmd/lbd-controller/webhook/injector.h"

namespace lbd::controller::webhook {

struct WebhookOptions {
  std::string listen = "0.0.0.0:8443";  // host:port; port 0 picks one (tests)
  std::string cert_file;                // PEM chain
  std::string key_file;                 // PEM key
  InjectTemplate tmpl;
};

class WebhookServer {
 public:
  // Binds and starts serving. INVALID_ARGUMENT for a bad address or unreadable certificate or
  // key (naming the file); UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<WebhookServer>> start(WebhookOptions options);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  uint16_t port() const;

  uint64_t reviews() const { return reviews_.load(); }

  uint64_t injected() const { return injected_.load(); }

  uint64_t refused() const { return refused_.load(); }

  void stop();

 private:
  struct Impl;
  explicit WebhookServer(std::unique_ptr<Impl> impl);
  void serve();
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<uint64_t> reviews_{0};
  std::atomic<uint64_t> injected_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace lbd::controller::webhook
