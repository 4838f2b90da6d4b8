// SPDX-License-Identifier: Apache-2.0
#include "core/sync/sync_master.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>

#include "absl/strings/str_cat.h"

#include "core/proto/proto.h"

namespace lb {

namespace {

// Conn::sync_endtime keeps (now + timeout) in whole seconds mod 2^14 above 2 retry bits; the
// kernel keeps jiffies & ~3 in an unsigned long. Differences are taken mod 2^14 (signed), so
// they are exact while the real difference is under 8192 s (2 h 16 min).
constexpr uint32_t kEndMask = 0x3fff;

int64_t wallSeconds(MonoTime t) {
  int64_t s = t.ns / 1'000'000'000;
  if (t.ns % 1'000'000'000 < 0)
    --s;
  return s;
}

int32_t signedDiff14(int64_t a, int64_t b) {
  auto d = static_cast<int32_t>(static_cast<uint64_t>(a - b) & kEndMask);
  return d >= 0x2000 ? d - 0x4000 : d;
}

uint32_t timeoutSeconds(const Conn& c) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(c.timeout).count();
  return s <= 0 ? 0u : static_cast<uint32_t>(std::min<int64_t>(s, UINT32_MAX));
}

// The states ip_vs_sync_conn_needed syncs, and whether a change into `state` is sent at once.
bool tcpSyncState(uint8_t state) {
  return state == kTcpEstablished || state == kTcpFinWait || state == kTcpClose ||
         state == kTcpCloseWait || state == kTcpTimeWait;
}

bool sctpSyncState(uint8_t state) {
  return state == kSctpEstablished || state == kSctpShutdownSent ||
         state == kSctpShutdownReceived || state == kSctpShutdownAckSent || state == kSctpClosed;
}

}  // namespace

absl::Status validateSyncSysctls(const SyncSysctls& s) {
  // proc_do_sync_threshold: "val[0] >= val[1] && val[1]" is refused.
  if (s.sync_period != 0 && s.sync_threshold >= s.sync_period) {
    return absl::InvalidArgumentError(absl::StrCat("sync_threshold ", s.sync_threshold, " ",
                                                   s.sync_period,
                                                   ": threshold must be below the period"));
  }
  if (s.sync_retries > 3)
    return absl::InvalidArgumentError(absl::StrCat("sync_retries ", s.sync_retries, ": 0..3"));
  if (s.sync_version > 1)
    return absl::InvalidArgumentError(absl::StrCat("sync_version ", s.sync_version, ": 0 or 1"));
  // proc_do_sync_ports: >= 1 and a power of two (the daemon clamps it to 64).
  if (s.sync_ports == 0 || (s.sync_ports & (s.sync_ports - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sync_ports ", s.sync_ports, ": a power of two, at least 1"));
  }
  return absl::OkStatus();
}

// ip_vs_sync_conn_needed (ip_vs_sync.c), with ip_vs_sync_conn's ONE_PACKET test and
// ip_vs_sync_conn_v0's address-family test in front.
bool syncConnNeeded(Conn& conn, uint32_t pkts, const SyncSysctls& s, MonoTime now) noexcept {
  if ((conn.flags & kConnFOnePacket) != 0)
    return false;
  if (s.sync_version == 0 && conn.af != Af::kInet)
    return false;
  const uint16_t orig = conn.sync_endtime;
  const int64_t now_s = wallSeconds(now);
  const uint32_t timeout_s = timeoutSeconds(conn);
  uint16_t n = static_cast<uint16_t>(((static_cast<uint64_t>(now_s) + timeout_s) & kEndMask) << 2);
  bool force = false;
  bool go_set = false;
  if ((conn.flags & kConnFTemplate) != 0) {
    force = false;
  } else if (s.sync_persist_mode && conn.control != kNoConn) {
    // in_persistence(): lbd links conns only to persistence templates.
    return false;
  } else if (conn.proto == L4Proto::kTcp) {
    if (!tcpSyncState(conn.state))
      return false;
    force = conn.state != conn.old_state;
    go_set = force && conn.state != kTcpEstablished;
  } else if (conn.proto == L4Proto::kSctp) {
    if (!sctpSyncState(conn.state))
      return false;
    force = conn.state != conn.old_state;
    go_set = force && conn.state != kSctpEstablished;
  }
  if (!go_set) {
    const uint32_t refresh = s.sync_refresh_period_s;
    if (refresh > 0) {
      const int32_t diff = signedDiff14(static_cast<int64_t>(n >> 2), orig >> 2);
      const int64_t min_diff = std::max<int64_t>(timeout_s / 2, 10);
      // "Avoid sync if difference is below sync_refresh_period and below the half timeout."
      if (std::abs(diff) < std::min<int64_t>(refresh, min_diff)) {
        const uint32_t retries = orig & 3u;
        if (retries >= s.sync_retries)
          return false;
        // time_before(now, orig - timeout + refresh / 8): the last sync (orig - timeout) was
        // less than refresh / 8 ago.
        const int32_t since = signedDiff14(now_s, static_cast<int64_t>(orig >> 2) - timeout_s);
        if (static_cast<int64_t>(since) * 8 < static_cast<int64_t>(refresh))
          return false;
        n = static_cast<uint16_t>(n | (retries + 1));
      }
    }
    if (s.sync_period > 0) {
      if ((conn.flags & kConnFTemplate) == 0 && pkts % s.sync_period != s.sync_threshold)
        return false;
    } else if (refresh == 0 && pkts != s.sync_threshold) {
      return false;
    }
  }
  // set: the kernel's cmpxchg on sync_endtime cannot lose here (the conn's lock is held).
  conn.old_state = conn.state;
  conn.sync_endtime = n;
  return true;
}

SyncConn syncConnFrom(const Conn& conn, uint32_t seq_delta) noexcept {
  SyncConn s;
  s.af = conn.af;
  s.protocol = static_cast<uint8_t>(conn.proto);
  s.flags = conn.flags & kSyncConnFWireMask;
  s.state = conn.state;
  s.cport = conn.cport;
  s.vport = conn.vport;
  s.dport = conn.dport;
  s.fwmark = conn.fwmark;
  s.timeout_s = timeoutSeconds(conn);
  s.caddr = conn.caddr;
  s.vaddr = conn.vaddr;
  s.daddr = conn.daddr;
  if ((conn.flags & kConnFFullNat) != 0 && (conn.flags & kConnFTemplate) == 0) {
    s.has_lbd = true;
    s.lbd.flags |= kSyncLbdFullNat;
    s.lbd.laddr = conn.laddr;
    s.lbd.lport = conn.lport;
  }
  if ((conn.flags & kConnFSynproxy) != 0) {
    s.has_lbd = true;
    s.lbd.flags |= kSyncLbdSynproxy;
    s.lbd.seq_delta = seq_delta;
  }
  return s;
}

uint32_t syncPktsInRange(uint32_t before, uint32_t after, const SyncSysctls& s) noexcept {
  if (after <= before)
    return after;
  const uint32_t th = s.sync_threshold;
  if (s.sync_period == 0)
    return th > before && th <= after ? th : after;
  // The largest p <= after with p % period == threshold, if it is above `before`.
  const uint32_t r = after % s.sync_period;
  if (r < th && after - r < s.sync_period)
    return after;  // no p >= threshold below after
  const uint32_t p = r >= th ? after - (r - th) : after - r - s.sync_period + th;
  return p > before ? p : after;
}

// ip_vs_sync_conn: the conn, then (v1: always; v0: only after the conn was sent) its
// controller with pkts = ++controller.in_pkts for a template, sync_threshold otherwise.
void syncConnChain(ConnTable& table,
                   ConnGuard& cp,
                   uint32_t pkts,
                   const SyncSysctls& s,
                   MonoTime now,
                   absl::FunctionRef<void(const SyncConn&)> emit) noexcept {
  syncConnChain(table, cp, pkts, s, now, 0,
                [emit](const SyncConn& c, uint32_t /*thread_id*/) { emit(c); });
}

uint32_t syncThreadCount(uint32_t sync_ports) noexcept {
  return std::clamp<uint32_t>(sync_ports, 1, kSyncPortsMax);
}

uint32_t syncMasterThreadId(const Conn* cp, uint32_t threads_mask) noexcept {
  constexpr auto kShift = static_cast<unsigned>(1 + (std::bit_width(sizeof(Conn)) - 1));
  return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(cp) >> kShift) & threads_mask);
}

void syncConnChain(ConnTable& table,
                   ConnGuard& cp,
                   uint32_t pkts,
                   const SyncSysctls& s,
                   MonoTime now,
                   uint32_t threads_mask,
                   absl::FunctionRef<void(const SyncConn&, uint32_t thread_id)> emit) noexcept {
  if (!cp)
    return;
  const bool v0 = s.sync_version == 0;
  bool sent = syncConnNeeded(*cp, pkts, s, now);
  if (sent)
    emit(syncConnFrom(*cp, cp.seqDelta()), syncMasterThreadId(&*cp, threads_mask));
  uint32_t control = (!v0 || sent) ? cp->control : kNoConn;
  cp.release();
  // lbd's control links are one deep (conn -> template); the bound only guards the loop.
  for (int depth = 0; depth < 8 && control != kNoConn; ++depth) {
    ConnGuard t = table.getControl(control);
    if (!t)
      return;
    uint32_t tpkts = s.sync_threshold;
    if ((t->flags & kConnFTemplate) != 0)
      tpkts = ++t->in_pkts;
    sent = syncConnNeeded(*t, tpkts, s, now);
    if (sent)
      emit(syncConnFrom(*t, t.seqDelta()), syncMasterThreadId(&*t, threads_mask));
    control = (!v0 || sent) ? t->control : kNoConn;
  }
}

}  // namespace lb
