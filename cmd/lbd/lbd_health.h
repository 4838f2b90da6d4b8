// SPDX-License-Identifier: Apache-2.0
// lbd's wiring of the health subsystem (cmd/lbd/health): --keepalived-conf, the hooks that
// let it see every commit, its start after the control plane, SIGHUP reloads and its stop.
#pragma once

#include <memory>

#include "absl/status/status.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/health/health_hooks.h"
#include "cmd/lbd/health/health_service.h"

namespace lb::lbd {

class HealthWiring {
 public:
  // Parses --keepalived-conf (when given); a bad file is refused here, before anything runs.
  static absl::StatusOr<std::unique_ptr<HealthWiring>> create(DataplaneHooks* dataplane);

  // The hooks to give the control plane (they pass everything on to the dataplane's).
  DataplaneHooks* hooks() { return &hooks_; }

  // Commits the keepalived.conf virtual servers (if any) and starts the checks, those of the
  // committed configuration's health fields included.
  absl::Status start(ControlPlane& control);
  // SIGHUP: re-reads the file; a bad one is refused whole and logged, the running one stays.
  void reload();
  void stop();
  // ListHealthChecks.
  absl::Status list(const ::lbd::v1::ListHealthChecksRequest& req,
                    ::lbd::v1::ListHealthChecksResponse* resp) const;

 private:
  explicit HealthWiring(DataplaneHooks* dataplane) : hooks_(dataplane) {}

  health::HealthHooks hooks_;
  std::unique_ptr<health::HealthService> service_;
};

}  // namespace lb::lbd
