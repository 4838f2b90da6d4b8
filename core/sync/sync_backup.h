// SPDX-License-Identifier: Apache-2.0
// The backup's side: a received sync entry into the connection table, the analogue of
// ip_vs_proc_conn (net/netfilter/ipvs/ip_vs_sync.c) with ip_vs_find_dest (ip_vs_ctl.c) and
// ip_vs_bind_dest / ip_vs_try_bind_dest (ip_vs_conn.c). Pure: table, snapshot and clock are
// passed in.
#pragma once

#include <cstdint>

#include "core/base/time.h"
#include "core/conn/conn_table.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"
#include "core/sync/sync_codec.h"
#include "core/sync/sync_master.h"

namespace lb {

// What applySyncConn did, one counter each (lb_sync_backup_<name>_total).
#define LB_SYNC_BACKUP_COUNTERS(X)                                                         \
  X(created)           /* a new conn or template entered the table */                      \
  X(updated)           /* an existing one took the message's state, timeout and flags */   \
  X(unbound)           /* created without a real server (none matched): bound later */     \
  X(bound_later)       /* an unbound conn found its real server on a later message */      \
  X(replaced)          /* an existing conn to another real server was expired first */     \
  X(stale_ignored)     /* INACTIVE message for a conn already replaced: ignored */         \
  X(table_full)        /* the table had no room */                                         \
  X(pe_unsupported)    /* persistence-engine data: lbd's conns cannot hold it (skipped) */ \
  X(laddr_unavailable) /* full NAT: laddr:lport not in this service's pool, or taken */

struct SyncBackupCounters {
#define LB_SYNC_BACKUP_FIELD(name) uint64_t name = 0;
  LB_SYNC_BACKUP_COUNTERS(LB_SYNC_BACKUP_FIELD)
#undef LB_SYNC_BACKUP_FIELD
};

enum class SyncApplyResult : uint8_t {
  kCreated,
  kUpdated,
  kIgnored,  // stale expiration message, or skipped (see the counters)
  kFailed,   // table full
};

// ip_vs_proc_conn for one decoded entry. Flags: the message's masked with BACKUP_MASK (v0: all
// but HASHED), plus SYNC; lbd's full-NAT / SYN-proxy / assured bits from the lbd option.
// - A conn (not a template) is looked up like a packet (findIn); if one exists with another
//   real server, an active message expires it and creates the new one, an INACTIVE one (the
//   old conn's expiry report) is ignored. A template is looked up with findTemplate.
// - Existing entry: only INACTIVE and the SEQ bits change (BACKUP_UPD_MASK), the dest's
//   active/inactive counters follow the INACTIVE bit; an unbound one is bound if its real
//   server now exists (ip_vs_try_bind_dest).
// - New entry: the service by fwmark or <af, protocol, vaddr, vport> (ServiceSnapshot::
//   findService), the real server in it by daddr and dport (port 0 for a fwmark service's
//   non-NAT dest, as ip_vs_find_dest); none: created unbound (dest kNoDest), as the kernel's
//   "will remain unbound but still handled". Bound conns count in their dest's inactconns or
//   activeconns (by INACTIVE), templates in persistconns, with the overload check.
// - Both: state from the message, in_pkts = sync_threshold, timeout from the message (v1)
//   or else the protocol table for the state (conns) or 180 s (templates).
// Full NAT: the local address and port come from the lbd option and are reserved in the
// service's pool. Control thread (the backup's receive thread), no other guard held.
// `runtime` may be null (no counters).
SyncApplyResult applySyncConn(ConnTable& table,
                              const ServiceSnapshot& snap,
                              ServiceRuntime* runtime,
                              const SyncConn& sc,
                              const SyncSysctls& sys,
                              MonoTime now,
                              SyncBackupCounters& counters) noexcept;

// ip_vs_try_bind_dest for a synced conn left unbound: binds it (and counts it) when its real
// server exists in `snap` now. True when bound. Worker or control thread, with the conn's
// guard. Hot path.
bool syncTryBindDest(Conn& conn, const ServiceSnapshot& snap, ServiceRuntime* runtime) noexcept;

}  // namespace lb
