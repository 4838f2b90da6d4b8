// SPDX-License-Identifier: Apache-2.0
// lbd-controller's sidecar-injector flags (--webhook, --webhook-tls-cert, --webhook-tls-key,
// --inject-template) and the webhook-only mode the Helm chart's injector Deployment runs
// (--lbd=none: no lbd, no watches; the injector and its /metrics, /healthz, /readyz).
#pragma once

#include <memory>

#include "absl/status/statusor.h"

#include "cmd/lbd-controller/webhook/webhook_server.h"

namespace lbd::controller::app {

// The injector the flags ask for, started; nullptr when --webhook is empty. INVALID_ARGUMENT
// naming the flag when a file is missing or bad.
absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> startWebhookFromFlags();

// Runs the injector alone until SIGTERM/SIGINT (which the caller has blocked in every thread;
// `stop_signals` is that set). Returns the exit status.
int runWebhookOnly(const void* stop_signals, const std::string& metrics_listen);

}  // namespace lbd::controller::app
