// SPDX-License-Identifier: Apache-2.0
// The control plane's operations, one per RPC, on lbd.v1 messages: convert (api_convert),
// apply to the ServiceTable under one mutex, then publish (DataplaneHooks::onCommit, state
// file). The analogue of ip_vs_ctl.c's do_ip_vs_set_ctl / do_ip_vs_get_ctl. No gRPC here.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/control/sync_hooks.h"
#include "core/service/service_table.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd {

// Any thread: every method takes the mutex, so mutations apply one at a time.
// NOT_FOUND for a missing service always reads "no such service: <key>" (lbctl relies on it
// to tell "Service not defined" from "No such destination").
class ControlOps {
 public:
  // clock: as ControlOptions::clock (empty = CLOCK_MONOTONIC).
  ControlOps(ServiceTable& table,
             DataplaneHooks* hooks,
             std::string state_file,
             std::function<MonoTime()> clock = {});

  absl::Status createService(const ::lbd::v1::CreateServiceRequest& req);
  absl::Status updateService(const ::lbd::v1::UpdateServiceRequest& req);
  absl::Status deleteService(const ::lbd::v1::DeleteServiceRequest& req);
  absl::Status flushServices();
  absl::Status createDest(const ::lbd::v1::CreateDestRequest& req);
  absl::Status updateDest(const ::lbd::v1::UpdateDestRequest& req);
  absl::Status deleteDest(const ::lbd::v1::DeleteDestRequest& req);
  absl::Status createLocalAddress(const ::lbd::v1::CreateLocalAddressRequest& req);
  absl::Status deleteLocalAddress(const ::lbd::v1::DeleteLocalAddressRequest& req);
  absl::Status setTimeouts(const ::lbd::v1::SetTimeoutsRequest& req);
  absl::Status setSysctls(const ::lbd::v1::SetSysctlsRequest& req);
  absl::Status setFwmarkRules(const ::lbd::v1::SetFwmarkRulesRequest& req);
  absl::Status replaceConfig(const ::lbd::v1::ReplaceConfigRequest& req);
  absl::Status zeroStats(const ::lbd::v1::ZeroStatsRequest& req);
  // ipvsadm -R (control_batch.cc): the operations in order, each checked by the same code as
  // its own RPC, committed and published once. A refused operation changes nothing, is
  // reported in resp->failures with its own RPC's error, and the ones after it still run; the
  // Status is not OK only when publishing failed.
  absl::Status applyBatch(const ::lbd::v1::ApplyBatchRequest& req,
                          ::lbd::v1::ApplyBatchResponse* resp);

  absl::Status listServices(const ::lbd::v1::ListServicesRequest& req,
                            ::lbd::v1::ListServicesResponse* resp);
  absl::Status listLocalAddresses(const ::lbd::v1::ListLocalAddressesRequest& req,
                                  ::lbd::v1::ListLocalAddressesResponse* resp);
  absl::Status listConnections(::lbd::v1::ListConnectionsResponse* resp);
  absl::Status getStats(::lbd::v1::GetStatsResponse* resp);
  absl::Status getTimeouts(::lbd::v1::GetTimeoutsResponse* resp);
  absl::Status getSysctls(::lbd::v1::GetSysctlsResponse* resp);
  absl::Status getConfig(::lbd::v1::GetConfigResponse* resp);

  // Connection synchronisation (ipvsadm --start-daemon / --stop-daemon / -L --daemon) through
  // `sync` (null: Unimplemented). Started daemons are kept in the state file: a start or stop
  // the file cannot record is undone and refused. Set before loadInitial().
  void setSyncHooks(SyncHooks* sync) { sync_ = sync; }

  absl::Status startSyncDaemon(const ::lbd::v1::StartSyncDaemonRequest& req);
  absl::Status stopSyncDaemon(const ::lbd::v1::StopSyncDaemonRequest& req);
  absl::Status listSyncDaemons(::lbd::v1::ListSyncDaemonsResponse* resp);

  // Frees tombstoned dest ids with no conns left (the kernel's dest trash, ip_vs_ctl.c
  // ip_vs_dest_trash_expire); returns how many.
  size_t collectTrash();

  // Start-up: --config (the line at fault on error) or else the state file.
  absl::Status loadInitial(const std::string& config_file);
  // Hot restart (lbd --takeover), the old side: every mutation is refused (Unavailable) from
  // now on; returns the configuration as a serialized lbd.v1.Config. thaw() ends the refusal
  // (the handover failed). Reads go on.
  std::string freeze();
  void thaw();
  // Hot restart, the new side, after the handover: starts the sync daemons the old lbd ran
  // (the handed-over Config's sync_daemons); one that cannot start is logged and left out.
  void startSyncDaemons(const std::vector<::lbd::v1::SyncDaemon>& daemons);
  // Prometheus text for /metrics.
  std::string renderMetrics();

 private:
  class Batch;

  // Runs fn under the mutex; on success publishes the new table. Logs accepted mutations at
  // info and rejected ones at warn (the audit trail).
  absl::Status mutate(absl::string_view what, const std::function<absl::Status()>& fn);
  // mutate() with applyOp(table_, req).
  template <typename Req>
  absl::Status mutateOp(absl::string_view rpc, const Req& req);
  // Writes the state file, then hands the table to the dataplane (hooks_). When the state
  // file cannot be written, the table goes back to the configuration the file still holds and
  // the write error is returned (the change is refused).
  absl::Status publishLocked();
  absl::Status publishDataplaneLocked();
  absl::Status rollbackLocked(const absl::Status& write_error);

  // An operation of a batch that was refused, and why (what its own RPC returns).
  struct BatchRefusal {
    size_t index;
    absl::Status status;
  };

  absl::Status applyBatchLocked(const ::lbd::v1::ApplyBatchRequest& req,
                                ::lbd::v1::ApplyBatchResponse* resp);
  size_t runBatchLocked(const ::lbd::v1::ApplyBatchRequest& req,
                        size_t from,
                        std::vector<BatchRefusal>* refusals,
                        absl::Status* publish);
  size_t commitBatchLocked(Batch& batch,
                           const ::lbd::v1::ApplyBatchRequest& req,
                           size_t begin,
                           size_t end,
                           absl::Status* refused,
                           absl::Status* publish);
  absl::Status requireServiceLocked(const ServiceKey& key) const;
  static absl::Status requireService(const ServiceTable& table, const ServiceKey& key);

  // One mutation RPC's work on `t` (the live table, or a batch's scratch table): convert,
  // check, apply one ServiceTable mutation. Errors as the RPC returns them.
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::CreateServiceRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::UpdateServiceRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::DeleteServiceRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::FlushServicesRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::CreateDestRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::UpdateDestRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::DeleteDestRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::CreateLocalAddressRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::DeleteLocalAddressRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::SetTimeoutsRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::SetSysctlsRequest& req);
  static absl::Status applyOp(ServiceTable& t, const ::lbd::v1::SetFwmarkRulesRequest& req);
  // The shape of the dest and local-address RPCs: parse req.key() and one more value with
  // `parse`, check the service exists, then apply one ServiceTable mutation.
  template <typename Req, typename Parse, typename Apply>
  static absl::Status applyKeyed(ServiceTable& t, const Req& req, Parse parse, Apply apply);
  // The optional service filter of the list RPCs: none, or a service that exists.
  template <typename Req>
  absl::StatusOr<std::optional<ServiceKey>> filterKeyLocked(const Req& req) const;
  ::lbd::v1::ServiceStatus serviceStatusLocked(const ServiceWithDests& sd);

  static absl::Status frozenError();
  std::vector<::lbd::v1::SyncDaemon> syncDaemonsLocked() const;
  absl::Status syncUnavailable() const;

  std::mutex mu_;
  bool frozen_ = false;  // mu_; see freeze()
  ServiceTable& table_;
  DataplaneHooks* hooks_;
  std::string state_file_;
  std::function<MonoTime()> clock_;
  uint64_t accepted_ = 0;
  uint64_t rejected_ = 0;
  uint64_t commits_ = 0;       // publishLocked() calls: snapshots and kernel reconciles
  uint64_t state_writes_ = 0;  // state-file writes (attempted)
  uint64_t state_write_failures_ = 0;
  bool state_written_ = false;  // a state-file write succeeded since start
  SyncHooks* sync_ = nullptr;
};

}  // namespace lb::lbd
