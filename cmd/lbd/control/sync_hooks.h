// SPDX-License-Identifier: Apache-2.0
// What the control plane needs from connection synchronisation (cmd/lbd/sync's SyncManager
// behind cmd/lbd/sync/sync_control.h): StartSyncDaemon / StopSyncDaemon / ListSyncDaemons and
// the daemons the state file keeps. lbd_control does not link the daemons themselves.
#pragma once

#include <vector>

#include "absl/status/status.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd {

class SyncHooks {
 public:
  virtual ~SyncHooks() = default;
  // ipvsadm --start-daemon: AlreadyExists "Daemon has already run", InvalidArgument.
  virtual absl::Status start(const ::lbd::v1::SyncDaemon& d) = 0;
  // ipvsadm --stop-daemon: NotFound "No daemon is running".
  virtual absl::Status stop(::lbd::v1::SyncDaemonRole role) = 0;
  // The running daemons with their effective options (ipvsadm -L --daemon), master first.
  virtual std::vector<::lbd::v1::SyncDaemon> running() const = 0;
  // As given to start(), master first: what the state file keeps.
  virtual std::vector<::lbd::v1::SyncDaemon> configured() const = 0;
};

}  // namespace lb::lbd
