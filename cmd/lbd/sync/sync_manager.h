// SPDX-License-Identifier: Apache-2.0
// lbd's side of connection synchronisation: the daemons ipvsadm --start-daemon / --stop-daemon
// ask for (one master, one backup, both at once if asked), with the kernel's defaults filled
// from the interface (sync_maxlen from its MTU, core/sync's syncMaxLen), bound to lbd's conn
// table: the master's per-worker rings for the workers' syncConnChain, the backup's entries
// into the table through core/sync's applySyncConn on the current snapshot. What the control
// plane calls for StartSyncDaemon / StopSyncDaemon / the daemon listing and the state file.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "cmd/lbd/sync/sync_backup_daemon.h"
#include "cmd/lbd/sync/sync_daemon_config.h"
#include "cmd/lbd/sync/sync_master_daemon.h"
#include "cmd/lbd/sync/sync_worker_hook.h"
#include "core/conn/conn_table.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"
#include "core/sync/sync_backup.h"
#include "core/sync/sync_master.h"

namespace lb::lbd::sync {

class SyncManager {
 public:
  struct Env {
    ConnTable* conns = nullptr;             // the backup's table; null: entries counted only
    std::function<SnapshotPtr()> snapshot;  // the current configuration
    ServiceRuntime* runtime = nullptr;      // dest counters (may be null)
    size_t workers = 1;                     // the master's rings
    std::function<MonoTime()> now;          // the monotonic clock
    // The workers' hooks (the dataplane's pipelines call them): attached to the master's
    // rings while a master runs, detached before it stops. Must outlive the manager.
    std::vector<SyncWorkerHook*> hooks;
  };

  explicit SyncManager(Env env);
  ~SyncManager();  // stops both daemons

  // ipvsadm --start-daemon: checks (validateSyncDaemonConfig, AlreadyExists "Daemon has
  // already run", InvalidArgument for an unknown interface), then opens the socket and starts
  // the thread. `given` is kept as given (the state file); list() shows the effective values.
  absl::Status start(const SyncDaemonConfig& given);
  // ipvsadm --stop-daemon: NotFound "No daemon is running".
  absl::Status stop(SyncDaemonRole role);
  // Stops both (lbd's shutdown).
  void stopAll();

  // ipvsadm -L --daemon: the effective configs, master first.
  std::vector<SyncDaemonConfig> list() const;
  // As given to start(), master first: what the state file keeps and a restart starts again.
  std::vector<SyncDaemonConfig> configured() const;

  // The sync sysctls (SetSysctls). A running master's workers take the send rules'
  // (sync_threshold, sync_period, sync_refresh_period, sync_retries, sync_persist_mode) from
  // their next packet on and its rings the new sync_qlen_max; the backup the new in_pkts.
  // sync_version and sync_sock_size apply from a daemon's next start (the socket is sized at
  // start, as the kernel's). sync_ports (the threads, ports mcast_port + id) is read as the
  // kernel's start_sync_thread does: when a daemon starts while none runs; a daemon started
  // beside a running one takes that one's count.
  void setSysctls(const SyncSysctls& s);
  SyncSysctls sysctls() const;

  // The master daemon while one runs (the workers push into its rings), else null. The
  // pointer stays valid until stop(kMaster) / stopAll(); the caller makes sure no worker
  // still uses it then (the dataplane unhooks the workers first).
  SyncMasterDaemon* master() const;

  // The running daemons' sync threads (ports), the kernel's threads_mask + 1; 0 when none runs.
  uint32_t threads() const;

  // lb_sync_* metrics.
  std::vector<std::pair<std::string, uint64_t>> metrics() const;

 private:
  void apply(const SyncConn& c);
  // mu_ held, a master running: hands `s` to the workers and the rings.
  void publishMasterSysctlsLocked(const SyncSysctls& s);

  Env env_;
  mutable std::mutex mu_;
  SyncDaemonSet given_;                       // mu_
  std::unique_ptr<SyncMasterDaemon> master_;  // mu_
  std::unique_ptr<SyncBackupDaemon> backup_;  // mu_
  uint32_t threads_ = 1;                      // mu_: the kernel's threads_mask + 1
  SyncSysctls sysctls_;                       // apply_mu_ (and mu_ to write)
  // The running master's send rules, one per change: the workers read the newest through
  // their hooks and may still hold an older one, so all live until the master stops. mu_.
  std::vector<std::unique_ptr<SyncSysctls>> master_sysctls_;
  mutable std::mutex apply_mu_;
  SyncBackupCounters backup_counters_;  // apply_mu_
};

}  // namespace lb::lbd::sync
