// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/webhook_flags.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd-controller/app/status_server.h"
#include "cmd/lbd-controller/kube/log.h"

ABSL_FLAG(std::string,
          webhook,
          "",
          "HOST:PORT to serve the sidecar injector (a mutating admission webhook, POST /inject) "
          "on, with TLS; empty: off");
ABSL_FLAG(std::string, webhook_tls_cert, "", "the injector's serving certificate (PEM chain)");
ABSL_FLAG(std::string, webhook_tls_key, "", "the injector's private key (PEM)");
ABSL_FLAG(std::string,
          inject_template,
          "",
          "JSON file of what is injected: {\"containers\": [...], \"volumes\": [...]} (the Helm "
          "chart renders it)");

namespace lbd::controller::app {

absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> startWebhookFromFlags() {
  const std::string listen = absl::GetFlag(FLAGS_webhook);
  if (listen.empty())
    return std::unique_ptr<webhook::WebhookServer>();
  const std::string path = absl::GetFlag(FLAGS_inject_template);
  if (path.empty())
    return absl::InvalidArgumentError("--webhook needs --inject-template");
  std::ifstream in(path);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("--inject-template=", path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<webhook::InjectTemplate> tmpl = webhook::parseInjectTemplate(text.str());
  if (!tmpl.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--inject-template=", path, ": ", tmpl.status().message()));
  }
  webhook::WebhookOptions o;
  o.listen = listen;
  o.cert_file = absl::GetFlag(FLAGS_webhook_tls_cert);
  o.key_file = absl::GetFlag(FLAGS_webhook_tls_key);
  if (o.cert_file.empty() || o.key_file.empty())
    return absl::InvalidArgumentError("--webhook needs --webhook-tls-cert and --webhook-tls-key");
  o.tmpl = *std::move(tmpl);
  return webhook::WebhookServer::start(std::move(o));
}

int runWebhookOnly(const void* stop_signals, const std::string& metrics_listen) {
  absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> hook = startWebhookFromFlags();
  if (!hook.ok() || *hook == nullptr) {
    std::fprintf(stderr, "lbd-controller: %s\n",
                 hook.ok() ? "--lbd=none serves only the injector: --webhook is needed"
                           : std::string(hook.status().message()).c_str());
    return 1;
  }
  webhook::WebhookServer* h = hook->get();
  std::unique_ptr<StatusServer> status;
  if (!metrics_listen.empty()) {
    std::map<std::string, StatusServer::Handler> routes;
    routes["/metrics"] = [h] {
      return StatusServer::Page{
          200, "text/plain; version=0.0.4; charset=utf-8",
          absl::StrCat("# TYPE lbd_controller_webhook_reviews_total counter\n",
                       "lbd_controller_webhook_reviews_total ", h->reviews(), "\n",
                       "# TYPE lbd_controller_webhook_injected_total counter\n",
                       "lbd_controller_webhook_injected_total ", h->injected(), "\n",
                       "# TYPE lbd_controller_webhook_refused_total counter\n",
                       "lbd_controller_webhook_refused_total ", h->refused(), "\n")};
    };
    routes["/healthz"] = [] { return StatusServer::Page{200, "text/plain", "ok\n"}; };
    routes["/readyz"] = [] { return StatusServer::Page{200, "text/plain", "ok\n"}; };
    absl::StatusOr<std::unique_ptr<StatusServer>> s =
        StatusServer::start(metrics_listen, std::move(routes));
    if (!s.ok()) {
      std::fprintf(stderr, "lbd-controller: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    status = std::move(*s);
  }
  kube::logEvent(kube::LogLevel::kInfo, "main", "injector only (--lbd=none)",
                 {{"webhook_port", absl::StrCat(h->port())}});
  int sig = 0;
  sigwait(static_cast<const sigset_t*>(stop_signals), &sig);
  kube::logEvent(kube::LogLevel::kInfo, "main", "stopping", {{"signal", absl::StrCat(sig)}});
  h->stop();
  if (status)
    status->stop();
  return 0;
}

}  // namespace lbd::controller::app
