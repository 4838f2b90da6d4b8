// SPDX-License-Identifier: Apache-2.0
// One worker's connection sync hook (core/pipeline's ConnSyncHook): while a master daemon runs,
// core/sync's syncConnChain decides after each client packet and the entries go onto the
// worker's ring of that daemon (SyncWorkerQueue::push: no allocation, lock or syscall). The
// SyncManager attaches the hooks when the master starts and detaches them before it stops
// it: detach() waits until the worker is out of the hook, so the ring is never used after.
// One more hook (and ring) carries the flow offload's reports for the conns its fast path
// forwards (DataplaneOptions::offload_sync_hook).
#pragma once

#include <atomic>

#include "cmd/lbd/sync/sync_master_daemon.h"
#include "core/pipeline/pipeline.h"
#include "core/sync/sync_master.h"

namespace lb::lbd::sync {

class SyncWorkerHook final : public ConnSyncHook {
 public:
  // Worker thread, hot path. Releases cp.
  void onClientPacket(ConnTable& table, ConnGuard& cp, MonoTime now) noexcept override;
  // The housekeeping thread (FlowOffload::tick, the ring's one producer): the conn as the fast
  // path last reported it, with the packet count at which the
  // pipeline would have synced it (syncPktsInRange). Releases cp.
  void onFastPathReport(ConnTable& table,
                        ConnGuard& cp,
                        uint32_t pkts_before,
                        MonoTime now) noexcept override;

  // Control thread. `queue` and `sysctls` stay valid until detach() returns.
  void attach(SyncWorkerQueue* queue, const SyncSysctls* sysctls);
  // Control thread: no worker uses the ring once this returns.
  void detach();

 private:
  std::atomic<SyncWorkerQueue*> queue_{nullptr};
  std::atomic<const SyncSysctls*> sysctls_{nullptr};
  std::atomic<bool> busy_{false};  // the worker is inside onClientPacket with a ring

  void run(
      ConnTable& table, ConnGuard& cp, uint32_t pkts_before, bool report, MonoTime now) noexcept;
};

}  // namespace lb::lbd::sync
