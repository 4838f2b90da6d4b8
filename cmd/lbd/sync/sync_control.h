// SPDX-License-Identifier: Apache-2.0
// The control plane's view of the sync daemons (cmd/lbd/control/sync_hooks.h) on a
// SyncManager: lbd.v1.SyncDaemon <-> SyncDaemonConfig.
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/control/sync_hooks.h"
#include "cmd/lbd/sync/sync_daemon_config.h"
#include "cmd/lbd/sync/sync_manager.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd::sync {

// The sync sysctls of lbd's configuration (Sysctls' sync_* fields, lbctl --sysctl) as core/sync's
// send and receive rules take them.
SyncSysctls syncSysctlsFrom(const Sysctls& s);

// InvalidArgument for an unspecified role or a group that is not an address.
absl::StatusOr<SyncDaemonConfig> syncDaemonFromProto(const ::lbd::v1::SyncDaemon& d);
::lbd::v1::SyncDaemon syncDaemonToProto(const SyncDaemonConfig& c);

class SyncControl : public SyncHooks {
 public:
  // `table` (may be null): its sysctls are given to the manager before a daemon starts (the
  // control plane holds its lock around start(), so the table is not changing then).
  explicit SyncControl(SyncManager& manager, const ServiceTable* table = nullptr)
      : manager_(manager), table_(table) {}

  absl::Status start(const ::lbd::v1::SyncDaemon& d) override;
  absl::Status stop(::lbd::v1::SyncDaemonRole role) override;
  std::vector<::lbd::v1::SyncDaemon> running() const override;
  std::vector<::lbd::v1::SyncDaemon> configured() const override;

 private:
  SyncManager& manager_;
  const ServiceTable* table_;
};

// Between the control plane and the dataplane's hooks: keeps the last committed snapshot for
// the backup's receive thread (ServiceTable::snapshot() is the control thread's) and adds the
// lb_sync_* metrics. `manager` may be set after construction (it needs snapshot()).
class SyncCommitHooks : public DataplaneHooks {
 public:
  SyncCommitHooks(DataplaneHooks* inner, const ServiceTable& table)
      : inner_(inner), snap_(table.snapshot()) {}

  // Gives `m` the table's sync sysctls now and on every commit.
  void setManager(SyncManager* m, const ServiceTable& table) {
    manager_ = m;
    if (m != nullptr)
      m->setSysctls(syncSysctlsFrom(table.config().sysctls));
  }

  // Any thread.
  SnapshotPtr snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snap_;
  }

  absl::Status onCommit(const ServiceTable& table) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      snap_ = table.snapshot();
    }
    if (manager_ != nullptr)
      manager_->setSysctls(syncSysctlsFrom(table.config().sysctls));
    return inner_ == nullptr ? absl::OkStatus() : inner_->onCommit(table);
  }

  const ConnTable* conns() const override { return inner_ == nullptr ? nullptr : inner_->conns(); }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override {
    std::vector<std::pair<std::string, uint64_t>> m;
    if (inner_ != nullptr)
      m = inner_->metrics();
    if (manager_ != nullptr) {
      for (auto& kv : manager_->metrics())
        m.push_back(std::move(kv));
    }
    return m;
  }

 private:
  DataplaneHooks* inner_;
  SyncManager* manager_ = nullptr;
  mutable std::mutex mu_;
  SnapshotPtr snap_;  // mu_
};

}  // namespace lb::lbd::sync
