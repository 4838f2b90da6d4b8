// SPDX-License-Identifier: Apache-2.0
// lbd's control plane: the lbd.v1.LoadBalancer gRPC service, the state file and the config
// file. Every mutation is validated whole by ServiceTable, then applied, then published.
#ifndef LBD_CMD_LBD_CONTROL_CONTROL_PLANE_H_
#define LBD_CMD_LBD_CONTROL_CONTROL_PLANE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "core/conn/conn_table.h"
#include "core/service/service_table.h"

namespace lb::lbd {

struct ControlOptions {
  std::string listen = "unix:///run/lbd/lbd.sock";  // unix:///path or tcp://host:port
  std::string state_file;                 // written atomically on every change, read at start
  std::string config_file;                // loaded at start; a bad file stops lbd naming the line
  std::string tls_cert, tls_key, tls_ca;  // TLS for TCP listeners when cert+key are given
  std::string metrics_listen;             // host:port for Prometheus /metrics; empty = off
};

// What the control plane needs from the packet side. Implemented by the dataplane; the
// control plane works without one (nullptr): configuration only, no traffic.
class DataplaneHooks {
 public:
  virtual ~DataplaneHooks() = default;
  // Control thread, after every committed mutation: publish table.snapshot() to the workers
  // and bring kernel state (routes, addresses, proxy ARP) in line with it.
  virtual absl::Status onCommit(const ServiceTable& table) = 0;
  // The live connection table for -Lnc, or nullptr.
  virtual const ConnTable* conns() const = 0;
  // Extra metrics for /metrics and GetStats: name -> value (e.g. lb_pipeline_drops_total).
  virtual std::vector<std::pair<std::string, uint64_t>> metrics() const = 0;
};

class ControlPlane {
 public:
  ControlPlane(ServiceTable& table, DataplaneHooks* hooks, ControlOptions options);
  ~ControlPlane();
  // Loads --config (refusing a bad file with the line at fault), else --state-file.
  absl::Status loadInitialConfig();
  // Starts the gRPC server (health and reflection on) and, if asked, /metrics.
  absl::Status start();
  // Stops serving; safe to call twice.
  void shutdown();
  // Blocks until shutdown() is called.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::lbd

#endif  // LBD_CMD_LBD_CONTROL_CONTROL_PLANE_H_
