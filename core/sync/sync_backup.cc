// SPDX-License-Identifier: Apache-2.0
#include "core/sync/sync_backup.h"

#include <algorithm>
#include <atomic>

#include "core/pipeline/conn_events.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/sync_bind.h"
#include "core/proto/proto.h"

namespace lb {

namespace {

constexpr Duration kTemplateDefaultTimeout = seconds(3 * 60);  // ip_vs_proc_conn: 3*60*HZ

// ip_vs_proc_conn's timeout: the message's (v1), else the protocol's table for the state
// (conns) or 3 minutes (templates, and v0's fwmark-less guesses).
Duration syncTimeout(const SyncConn& sc, uint32_t flags, const ServiceSnapshot& snap) {
  if (sc.timeout_s != 0)
    return seconds(sc.timeout_s);
  if ((flags & kConnFTemplate) != 0)
    return kTemplateDefaultTimeout;
  const ProtoTimeouts& t = snap.timeouts();
  switch (static_cast<L4Proto>(sc.protocol)) {
    case L4Proto::kTcp:
      return sc.state < kTcpStateCount ? t.tcp[sc.state] : kTemplateDefaultTimeout;
    case L4Proto::kSctp:
      return sc.state < kSctpStateCount ? t.sctp[sc.state] : kTemplateDefaultTimeout;
    case L4Proto::kUdp:
      return t.udp;
    default:
      return kTemplateDefaultTimeout;
  }
}

// The message's flags as the backup keeps them: v1 masked with BACKUP_MASK (v0 delivers
// 16 bits, of which the kernel keeps all but HASHED: the same bits in practice), plus SYNC and
// lbd's own bits from its option.
uint32_t backupFlags(const SyncConn& sc) {
  uint32_t flags = (sc.flags & kSyncConnFBackupMask) | kConnFSync;
  if (sc.has_lbd && (sc.lbd.flags & kSyncLbdFullNat) != 0 && (flags & kConnFTemplate) == 0 &&
      sc.lbd.lport != 0 && sc.lbd.laddr.af() != Af::kUnspec) {
    flags = (flags & ~kConnFFwdMask) | kConnFFullNat;
  }
  if (sc.has_lbd && (sc.lbd.flags & kSyncLbdSynproxy) != 0)
    flags |= kConnFSynproxy;
  // A synced conn is past its handshake (TCP/SCTP are synced from ESTABLISHED on) or has seen
  // sync_threshold packets: early drop must not take it.
  if ((flags & kConnFTemplate) == 0)
    flags |= kConnFAssured;
  return flags;
}

ConnTuple inTuple(const SyncConn& sc) {
  ConnTuple t;
  t.af = sc.af;
  t.proto = static_cast<L4Proto>(sc.protocol);
  t.saddr = sc.caddr;
  t.daddr = sc.vaddr;
  t.sport = sc.cport;
  t.dport = sc.vport;
  return t;
}

// The fields every message sets, on a new or an existing entry.
void applyCommon(
    ConnGuard& g, const SyncConn& sc, const SyncSysctls& sys, Duration timeout, MonoTime now) {
  g->in_pkts = sys.sync_threshold;
  g->state = static_cast<uint8_t>(sc.state);
  g->old_state = g->state;
  if (sc.has_lbd && (sc.lbd.flags & kSyncLbdSynproxy) != 0)
    g.setSeqDelta(sc.lbd.seq_delta);
  g.setTimeout(timeout, now);
}

}  // namespace

bool syncTryBindDest(Conn& conn, const ServiceSnapshot& snap, ServiceRuntime* runtime) noexcept {
  return bindSyncedConn(conn, snap, runtime);
}

// ip_vs_proc_conn (ip_vs_sync.c).
SyncApplyResult applySyncConn(ConnTable& table,
                              const ServiceSnapshot& snap,
                              ServiceRuntime* runtime,
                              const SyncConn& sc,
                              const SyncSysctls& sys,
                              MonoTime now,
                              SyncBackupCounters& counters) noexcept {
  // lbd's conns have no room for persistence-engine data: as a kernel without that engine
  // ("BACKUP, no %s engine found/loaded"), the entry is skipped.
  if (!sc.pe_data.empty()) {
    ++counters.pe_unsupported;
    return SyncApplyResult::kIgnored;
  }
  const uint32_t flags = backupFlags(sc);
  const bool is_template = (flags & kConnFTemplate) != 0;
  const Duration timeout = syncTimeout(sc, flags, snap);

  ConnTuple t = inTuple(sc);
  ConnGuard g = is_template ? table.findTemplate(t) : table.findIn(t);
  if (g && !is_template && (g->dport != sc.dport || !(g->daddr == sc.daddr))) {
    if ((flags & kConnFInactive) != 0) {
      // "This is the expiration message for the connection that was already replaced."
      ++counters.stale_ignored;
      return SyncApplyResult::kIgnored;
    }
    table.expireNow(g);  // empties g
    ++counters.replaced;
  }

  if (g) {
    // An existing entry: INACTIVE and SEQ bits follow the message, the dest's counters with it.
    if (((g->flags ^ flags) & kConnFInactive) != 0 && !is_template && g->dest != kNoDest &&
        runtime != nullptr && g->dest < runtime->maxDests()) {
      DestCounters& dc = runtime->destCounters()[g->dest];
      if ((flags & kConnFInactive) != 0) {
        dc.active_conns.fetch_sub(1, std::memory_order_relaxed);
        dc.inact_conns.fetch_add(1, std::memory_order_relaxed);
      } else {
        dc.active_conns.fetch_add(1, std::memory_order_relaxed);
        dc.inact_conns.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    g->flags = (flags & kSyncConnFBackupUpdMask) | (g->flags & ~kSyncConnFBackupUpdMask);
    if (g->dest == kNoDest && syncTryBindDest(*g, snap, runtime))
      ++counters.bound_later;
    applyCommon(g, sc, sys, timeout, now);
    ++counters.updated;
    return SyncApplyResult::kUpdated;
  }

  // A new entry: bound to its real server when the service and dest exist, else unbound.
  ConnParams p;
  p.af = sc.af;
  p.daf = sc.af;  // the kernel syncs no mixed-family pools (ip_vs_proc_conn)
  p.proto = static_cast<L4Proto>(sc.protocol);
  p.flags = flags;
  p.cport = sc.cport;
  p.vport = sc.vport;
  p.dport = sc.dport;
  p.caddr = sc.caddr;
  p.vaddr = sc.vaddr;
  p.daddr = sc.daddr;
  p.fwmark = sc.fwmark;
  p.timeout = timeout;
  const SnapService* svc = nullptr;
  const SnapDest* d = findSyncDest(snap, sc.af, p.proto, sc.vaddr, sc.vport, sc.fwmark, sc.daddr,
                                   sc.dport, flags, &svc);
  p.svc = svc != nullptr ? svc->id : kNoService;
  p.dest = d != nullptr ? d->id : kNoDest;
  // Full NAT: the real server knows the conn by laddr:lport; it must be this service's and
  // free here, and goes back to the pool with the conn (PipelineConnEvents::onConnFreed).
  LocalAddrPool* pool = nullptr;
  if ((flags & kConnFFullNat) != 0) {
    pool = svc != nullptr ? svc->laddr_pool : nullptr;
    if (pool == nullptr || !pool->reserve(p.proto, sc.lbd.laddr, sc.lbd.lport)) {
      ++counters.laddr_unavailable;
      return SyncApplyResult::kIgnored;
    }
    p.laddr = sc.lbd.laddr;
    p.lport = sc.lbd.lport;
    if (runtime != nullptr)
      Pipeline::noteFullNatPool(*runtime, svc->id, pool);
  }
  g = table.create(p, now);
  if (!g) {
    if (pool != nullptr)
      pool->release(p.proto, p.laddr, p.lport);
    ++counters.table_full;
    return SyncApplyResult::kFailed;
  }
  if (d != nullptr)
    countSyncBind(runtime, nullptr, *d, flags);
  else
    ++counters.unbound;
  applyCommon(g, sc, sys, timeout, now);
  ++counters.created;
  return SyncApplyResult::kCreated;
}

}  // namespace lb
