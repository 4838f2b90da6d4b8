// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_worker_hook.h"

#include <thread>

namespace lb::lbd::sync {

void SyncWorkerHook::onClientPacket(ConnTable& table, ConnGuard& cp, MonoTime now) noexcept {
  run(table, cp, 0, false, now);
}

void SyncWorkerHook::onFastPathReport(ConnTable& table,
                                      ConnGuard& cp,
                                      uint32_t pkts_before,
                                      MonoTime now) noexcept {
  run(table, cp, pkts_before, true, now);
}

void SyncWorkerHook::run(
    ConnTable& table, ConnGuard& cp, uint32_t pkts_before, bool report, MonoTime now) noexcept {
  // Dekker's pattern with detach(): the worker announces itself, then reads the ring; detach
  // clears the ring, then waits for the announcement to go (both sequentially consistent).
  busy_.store(true, std::memory_order_seq_cst);
  SyncWorkerQueue* q = queue_.load(std::memory_order_seq_cst);
  const SyncSysctls* s = sysctls_.load(std::memory_order_seq_cst);
  if (q == nullptr || s == nullptr) {
    busy_.store(false, std::memory_order_release);
    cp.release();
    return;
  }
  const uint32_t pkts = report ? syncPktsInRange(pkts_before, cp->in_pkts, *s) : cp->in_pkts;
  // Each entry to the master thread (port) select_master_thread_id picks for its conn.
  syncConnChain(table, cp, pkts, *s, now, q->threadsMask(),
                [q](const SyncConn& c, uint32_t thread_id) { q->push(c, thread_id); });
  busy_.store(false, std::memory_order_release);
}

void SyncWorkerHook::attach(SyncWorkerQueue* queue, const SyncSysctls* sysctls) {
  sysctls_.store(sysctls, std::memory_order_seq_cst);
  queue_.store(queue, std::memory_order_seq_cst);
}

void SyncWorkerHook::detach() {
  queue_.store(nullptr, std::memory_order_seq_cst);
  while (busy_.load(std::memory_order_seq_cst))
    std::this_thread::yield();
  sysctls_.store(nullptr, std::memory_order_seq_cst);
}

}  // namespace lb::lbd::sync
