// SPDX-License-Identifier: Apache-2.0
// lbd's control plane: the lbd.v1.LoadBalancer gRPC service, the state file and the config
// file. Every mutation is validated whole by ServiceTable, then applied, then published.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "core/base/time.h"
#include "core/conn/conn_table.h"
#include "core/service/service_table.h"

namespace lbd::v1 {
class SyncDaemon;
class ListHealthChecksRequest;
class ListHealthChecksResponse;
}  // namespace lbd::v1

namespace lb::lbd {

class SyncHooks;

struct ControlOptions {
  std::string listen = "unix:///run/lbd/lbd.sock";  // unix:///path or tcp://host:port (port 0:
                                                    // any free port, see boundPort())
  std::string state_file;   // written atomically on every change, read at start
  std::string config_file;  // loaded at start; a bad file stops lbd naming the line
  // TLS for TCP listeners when cert+key are given (PEM files); with tls_ca, clients must
  // present a certificate signed by it (mutual TLS). Only one of cert/key, or a CA without
  // them, is refused by start().
  std::string tls_cert, tls_key, tls_ca;
  std::string metrics_listen;  // host:port for Prometheus /metrics; empty = off
  // The dataplane's clock for -Lnc's expire column (Conn::expires is on it). Empty: the
  // CLOCK_MONOTONIC reading cmd/lbd/dataplane uses. Tests pass a fake.
  std::function<MonoTime()> clock;
  // Answers ListHealthChecks (the health subsystem); empty: an empty list.
  std::function<absl::Status(const ::lbd::v1::ListHealthChecksRequest&,
                             ::lbd::v1::ListHealthChecksResponse*)>
      list_health_checks;
  // Hot restart (lbd --takeover): the old lbd still serves the Unix socket. Listen on
  // PATH.new and rename() it over PATH, so that the path never stops answering.
  bool replace_socket = false;
  // Connection synchronisation (StartSyncDaemon, ...; the daemons in the state file); null:
  // those RPCs answer Unimplemented. Must outlive the ControlPlane.
  SyncHooks* sync = nullptr;
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

class ControlOps;

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
  // Frees removed dests' ids once their last conn is gone (ServiceTable::collectTrash); lbd's
  // main thread calls it every second. Any thread.
  size_t collectTrash();
  // Blocks until shutdown() is called.
  void wait();
  // The TCP port the gRPC server listens on after start() (tcp://...:0 picks one); 0 for unix.
  int boundPort() const;
  // The operations behind the RPCs, for subsystems that commit as an RPC does (health).
  ControlOps& ops();

  // Hot restart, the old side: refuses mutations from now on and returns the configuration
  // (a serialized lbd.v1.Config); thaw() undoes it when the handover fails. Any thread.
  std::string freezeForHandover();
  void thaw();
  // Hot restart, the old side, once the new lbd has its socket: shutdown() leaves the Unix
  // socket path alone (it is the new lbd's).
  void releaseSocket();
  // Hot restart, the new side: replaces `table`'s configuration with freezeForHandover()'s.
  // InvalidArgument when the bytes do not parse.
  // `sync_daemons` (if not null) gets the sync daemons the old lbd ran, for
  // startSyncDaemons() once the handover is complete.
  static absl::Status loadHandedOver(ServiceTable& table,
                                     const std::string& bytes,
                                     std::vector<::lbd::v1::SyncDaemon>* sync_daemons = nullptr);
  // Hot restart, the new side: starts the handed-over sync daemons (ControlOps).
  void startSyncDaemons(const std::vector<::lbd::v1::SyncDaemon>& daemons);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::lbd
