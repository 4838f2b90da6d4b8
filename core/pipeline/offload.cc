// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/offload.h"

#include "core/packet/parse.h"

namespace lb {

namespace {

bool eligibleConn(const Conn& c, uint32_t min_in_pkts) noexcept {
  // SYN proxy conns stay on the slow path: the tc program does not translate sequence numbers.
  constexpr uint32_t kNever = kConnFTemplate | kConnFOnePacket | kConnFOffloaded | kConnFSynproxy;
  if ((c.flags & kNever) != 0 || c.in_pkts < min_in_pkts || c.af != c.daf)
    return false;
  if (c.proto == L4Proto::kTcp)
    return c.state == kTcpSynRecv || c.state == kTcpEstablished;
  // A one-datagram exchange (DNS) would pay two map updates and the bookkeeping for nothing.
  return c.proto == L4Proto::kUdp && c.in_pkts >= 2;
}

}  // namespace

bool offloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept {
  const FwdMethod m = connFwd(c);
  if (m != FwdMethod::kMasq && m != FwdMethod::kFullNat)
    return false;
  return eligibleConn(c, min_in_pkts);
}

bool tunnelOffloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept {
  if (connFwd(c) != FwdMethod::kTunnel || c.af != Af::kInet)
    return false;
  return eligibleConn(c, min_in_pkts);
}

void commitStateChange(ConnGuard& g,
                       const StateChange& sc,
                       ServiceRuntime* runtime,
                       ConnTable& conns,
                       MonoTime when) noexcept {
  if (sc.was_active != sc.is_active && runtime != nullptr && g->dest < runtime->maxDests()) {
    DestCounters& dc = runtime->destCounters()[g->dest];
    if (sc.is_active) {
      dc.active_conns.fetch_add(1, std::memory_order_relaxed);
      dc.inact_conns.fetch_sub(1, std::memory_order_relaxed);
    } else {
      dc.active_conns.fetch_sub(1, std::memory_order_relaxed);
      dc.inact_conns.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // A conn picked up mid-stream under a flood is assured by its real server's answer instead
  // (Pipeline::handleReply), not by the client's ACK that made it ESTABLISHED.
  if (sc.assure_control && (g->flags & kConnFPickedUp) == 0) {
    // The conn proved its client (TCP/SCTP ESTABLISHED, a UDP reply): early drop keeps it.
    g->flags |= kConnFAssured;
    if (g->control != kNoConn)
      conns.assureTemplate(g->control);
  }
  // old_state stays: it is the state the sync master last sent (ip_vs_sync_conn_needed sets
  // it), so that a change of state is sent at once.
  g.setTimeout(g->timeout, when);
}

StateChange applyFastPathFlags(ConnGuard& g,
                               FastPathFlags in,
                               FastPathFlags out,
                               const ProtoTimeouts& timeouts,
                               bool secure_tcp,
                               ServiceRuntime* runtime,
                               ConnTable& conns,
                               MonoTime when) noexcept {
  StateChange total;
  total.was_active = (g->flags & kConnFInactive) == 0;
  total.is_active = total.was_active;
  if (g->proto != L4Proto::kTcp) {
    g.setTimeout(g->timeout, when);
    return total;
  }
  const auto feed = [&](ConnDir dir, uint8_t flags) {
    L3L4 pkt;
    pkt.proto = L4Proto::kTcp;
    pkt.tcp_flags = flags;
    StateChange sc = updateConnState(*g, dir, pkt, timeouts, secure_tcp);
    total.changed |= sc.changed;
    total.assure_control |= sc.assure_control;
    total.is_active = sc.is_active;
    total.timeout = sc.timeout;
  };
  if (in.ack)
    feed(ConnDir::kInput, kTcpAck);
  if (out.fin)
    feed(ConnDir::kOutput, kTcpFin | kTcpAck);
  if (in.fin)
    feed(ConnDir::kInput, kTcpFin | kTcpAck);
  if (in.rst)
    feed(ConnDir::kInput, kTcpRst);
  if (out.rst)
    feed(ConnDir::kOutput, kTcpRst);
  commitStateChange(g, total, runtime, conns, when);
  return total;
}

}  // namespace lb
