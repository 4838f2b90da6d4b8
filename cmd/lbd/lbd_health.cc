// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/lbd_health.h"

#include <string>
#include <utility>

#include "absl/flags/flag.h"

#include "cmd/lbd/control/control_ops.h"
#include "core/base/log.h"

ABSL_FLAG(std::string,
          keepalived_conf,
          "",
          "keepalived.conf whose LVS part (virtual servers, real servers, checkers) lbd loads "
          "and health-checks as keepalived does; SIGHUP re-reads it");

namespace lb::lbd {

absl::StatusOr<std::unique_ptr<HealthWiring>> HealthWiring::create(DataplaneHooks* dataplane) {
  std::unique_ptr<HealthWiring> w(new HealthWiring(dataplane));
  // Always: the checks of the committed configuration (lbctl --check, the API, --config, the
  // state file) run without a keepalived.conf too.
  const std::string path = absl::GetFlag(FLAGS_keepalived_conf);
  health::HealthOptions opts;
  opts.conf_path = path;
  auto svc = health::HealthService::create(std::move(opts));
  if (!svc.ok())
    return svc.status();
  w->service_ = std::move(*svc);
  return w;
}

absl::Status HealthWiring::start(ControlPlane& control) {
  if (service_ == nullptr)
    return absl::OkStatus();
  // The control plane is built after create(): its commit API is bound now.
  ControlOps& ops = control.ops();
  service_->setControl(
      {[&ops](const ::lbd::v1::ApplyBatchRequest& req, ::lbd::v1::ApplyBatchResponse* resp) {
         return ops.applyBatch(req, resp);
       },
       [&ops](::lbd::v1::GetConfigResponse* resp) { return ops.getConfig(resp); }});
  hooks_.set(service_.get());
  return service_->start();
}

void HealthWiring::reload() {
  if (service_ == nullptr || absl::GetFlag(FLAGS_keepalived_conf).empty()) {
    LB_LOG(kInfo, "SIGHUP: no --keepalived-conf to re-read");
    return;
  }
  if (absl::Status s = service_->reload(); !s.ok())
    LB_LOG(kError, "SIGHUP: keepalived.conf refused, the running configuration stays: %s",
           s.ToString());
}

absl::Status HealthWiring::list(const ::lbd::v1::ListHealthChecksRequest& req,
                                ::lbd::v1::ListHealthChecksResponse* resp) const {
  if (service_ == nullptr)
    return absl::OkStatus();
  return service_->list(req, resp);
}

void HealthWiring::stop() {
  if (service_ != nullptr)
    service_->stop();
}

}  // namespace lb::lbd
