// SPDX-License-Identifier: Apache-2.0
// The master's rules for which connections are synced when: the analogue of
// ip_vs_sync_conn_needed, ip_vs_sync_conn's control-chain walk and the conn-to-message copy
// (net/netfilter/ipvs/ip_vs_sync.c), with the sync sysctls (ip_vs_ctl.c, ipvs-sysctl.rst).
// Pure: the clock is passed in; the caller owns sockets, queues and threads.
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/conn/conn_table.h"
#include "core/sync/sync_codec.h"

namespace lb {

// The sync sysctls (/proc/sys/net/ipv4/vs/sync_*), kernel defaults.
struct SyncSysctls {
  uint32_t sync_threshold = 3;         // sync_threshold's first value
  uint32_t sync_period = 50;           // sync_threshold's second value; 0: sync once
  uint32_t sync_refresh_period_s = 0;  // 0: off
  uint32_t sync_retries = 0;           // 0..3
  bool sync_persist_mode = false;      // conns under a persistence template are not synced
  uint32_t sync_version = 1;           // 0 or 1: the format the master sends
  uint32_t sync_qlen_max = 0;          // queued messages; 0: the daemon picks (the kernel's
                                       // nr_free_buffer_pages() / 32)
  uint32_t sync_sock_size = 0;         // SO_SNDBUF (master) / SO_RCVBUF (backup); 0: default
  uint32_t sync_ports = 1;             // power of two, 1..64 (ports 8848..8848 + n - 1)
  friend bool operator==(const SyncSysctls&, const SyncSysctls&) = default;
};

// The kernel's sysctl handlers' checks (proc_do_sync_threshold: threshold < period unless
// period is 0; sync_retries 0..3; sync_version 0..1; proc_do_sync_ports: a power of two, clamped
// to 64 at daemon start). InvalidArgument naming the value. Pure.
absl::Status validateSyncSysctls(const SyncSysctls& s);

// ip_vs_sync_conn_needed plus the checks in front of it in ip_vs_sync_conn / _v0: whether the
// master sends `conn` now, given `pkts` (the conn's in_pkts after this packet, or
// sync_threshold for a ONE_PACKET conn; a template's see syncConnChain). ONE_PACKET conns are
// never sent; with sync_version 0 neither are IPv6 ones. TCP is sent only in ESTABLISHED,
// FIN_WAIT, CLOSE, CLOSE_WAIT and TIME_WAIT, SCTP only in ESTABLISHED, SHUTDOWN_*, CLOSED; a
// change into one of those states other than ESTABLISHED is sent at once; otherwise
// sync_refresh_period / sync_retries and pkts % sync_period == sync_threshold decide (templates
// skip the packet-count test). When it says yes it records the state (old_state) and the
// sync time (sync_endtime) in `conn`, as the kernel does. Worker thread, with the conn's guard.
// Hot path.
bool syncConnNeeded(Conn& conn, uint32_t pkts, const SyncSysctls& s, MonoTime now) noexcept;

// The message entry for `conn` (ip_vs_sync_conn's copy): flags without HASHED and lbd's bits,
// timeout in seconds, and the lbd option for full-NAT, SYN-proxy and assured conns.
// `seq_delta`: ConnGuard::seqDelta(). Pure. Hot path.
SyncConn syncConnFrom(const Conn& conn, uint32_t seq_delta) noexcept;

// For a conn whose client packets went through the flow offload's fast path, not one by one
// through the pipeline: its in_pkts went from `before` to `after` at once. The count the
// packet rule (pkts % sync_period == sync_threshold, or == sync_threshold with period 0) would
// have fired at on one of those packets, the latest such; `after` when none would. Pure.
uint32_t syncPktsInRange(uint32_t before, uint32_t after, const SyncSysctls& s) noexcept;

// ip_vs_sync_conn's walk for one client packet of `cp`: decide for the conn (syncConnNeeded
// with `pkts`), then for its controlling template with pkts = ++template.in_pkts, calling
// `emit` for each entry to send, conn first, template after (so the backup learns the
// template no later than in the same message, as from the kernel). `cp`'s guard is released
// on return (the template is locked afterwards: never two guards at once). Worker thread.
// Hot path if `emit` is.
void syncConnChain(ConnTable& table,
                   ConnGuard& cp,
                   uint32_t pkts,
                   const SyncSysctls& s,
                   MonoTime now,
                   absl::FunctionRef<void(const SyncConn&)> emit) noexcept;

// IPVS_SYNC_PORTS_MAX: the most sync threads (ports) a daemon runs.
inline constexpr uint32_t kSyncPortsMax = 64;

// start_sync_thread's count: sync_ports clamped to 1..64, read when a daemon starts while no
// other runs (a daemon started beside a running one takes that one's count). Pure.
uint32_t syncThreadCount(uint32_t sync_ports) noexcept;

// select_master_thread_id: which of the master's threads (ports mcast_port + id) carries the
// entry for the conn at `cp`: the conn's address shifted right by 1 + ilog2(sizeof(Conn)),
// masked with threads_mask (count - 1). lbd's conns live in the table's slab at stable
// addresses, as the kernel's in their cache. Pure. Hot path.
uint32_t syncMasterThreadId(const Conn* cp, uint32_t threads_mask) noexcept;

// syncConnChain with each entry's thread: syncMasterThreadId of the conn (or template) it was
// made from, so a conn and its template may go on different ports, as in the kernel.
void syncConnChain(ConnTable& table,
                   ConnGuard& cp,
                   uint32_t pkts,
                   const SyncSysctls& s,
                   MonoTime now,
                   uint32_t threads_mask,
                   absl::FunctionRef<void(const SyncConn&, uint32_t thread_id)> emit) noexcept;

}  // namespace lb
