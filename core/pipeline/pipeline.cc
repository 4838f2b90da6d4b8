// SPDX-License-Identifier: Apache-2.0
// Pipeline::process and the conn-hit paths: ip_vs_in (client -> VIP) and ip_vs_out /
// handle_response (real server -> client) of ip_vs_core.c. Scheduling is in schedule.cc, ICMP
// in icmp.cc.
#include "core/pipeline/pipeline.h"

#include <algorithm>

#include "core/pipeline/conn_events.h"
#include "core/pipeline/pe_sip.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/pipeline/sync_bind.h"
#include "core/proto/proto.h"
#include "core/service/runtime.h"
#include "core/xmit/xmit_util.h"

namespace lb {

using pipeline_internal::drop;
using pipeline_internal::isNatMethod;
using pipeline_internal::toHost;
using pipeline_internal::tupleOf;

Pipeline::Pipeline(ConnTable& conns, size_t worker, uint64_t seed)
    : conns_(conns),
      pe_templates_(&acquirePeTemplates(conns)),
      worker_(worker),
      rng_(seed != 0 ? seed : 0x2545f4914f6cdd1dull) {}

Pipeline::~Pipeline() {
  releasePeTemplates(conns_);
}

void Pipeline::setTunnelSource(const IpAddr& addr) {
  if (addr.isV4())
    tunnel_src_v4_ = addr;
  if (addr.isV6())
    tunnel_src_v6_ = addr;
}

uint64_t Pipeline::nextRandom() noexcept {
  // xorshift64* (Vigna 2016).
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545f4914f6cdd1dull;
}

void Pipeline::attachRuntime(ServiceRuntime* runtime) noexcept {
  runtime_ = runtime;
  events_ = nullptr;
  if (runtime == nullptr)
    return;
  // Once per runtime (normally once per process): connEvents() was called when the table was
  // built, so this only looks the object up.
  events_ = &connEventsFor(*runtime);
  events_->attachTable(&conns_);
}

void Pipeline::process(const ServiceSnapshot& snap,
                       absl::Span<PacketBuffer* const> batch,
                       PacketSink& sink,
                       MonoTime now) noexcept {
  if (snap.runtime() != runtime_)
    attachRuntime(snap.runtime());
  updateDefense(snap.sysctls(), now);
  noteEarlyDrops(now);
  if (offloader_ != nullptr) {
    const ConnTableStats st = conns_.stats();
    table_roomy_ =
        st.capacity - std::min(st.entries, st.capacity) >= st.capacity / kDefenseThresholdDivisor;
  }
  for (PacketBuffer* pkt : batch) {
    processOne(snap, *pkt, sink, now);
    account(*pkt);
  }
  noteEarlyDrops(now);  // this batch's own, with this batch's time
}

// The flood pickup's window opens (again) whenever early drop freed a conn (any worker's)
// since the last look.
void Pipeline::noteEarlyDrops(MonoTime now) noexcept {
  if (const uint64_t ed = conns_.earlyDrops(); ed != early_drops_seen_) {
    early_drops_seen_ = ed;
    pickup_until_ = now + kFloodPickupWindow;
  }
}

void Pipeline::account(const PacketBuffer& pkt) noexcept {
  switch (pkt.verdict) {
    case Verdict::kForward:
      counters_.tx_packets.add();
      counters_.tx_bytes.add(pkt.size());
      break;
    case Verdict::kToHost:
      counters_.to_host.add();
      break;
    case Verdict::kDrop:
      counters_.drops[static_cast<int>(pkt.drop_reason)].add();
      break;
  }
}

// ip_vs_in / ip_vs_out for one packet, in the kernel's hook order: replies (ip_vs_out, LOCAL_IN
// prio NAT_SRC-2) are looked for before requests (ip_vs_in, NAT_SRC-1).
void Pipeline::processOne(const ServiceSnapshot& snap,
                          PacketBuffer& pkt,
                          PacketSink& sink,
                          MonoTime now) noexcept {
  counters_.rx_packets.add();
  counters_.rx_bytes.add(pkt.size());
  pkt.verdict = Verdict::kDrop;
  pkt.drop_reason = DropReason::kNone;
  pkt.tx = TxPath::kTun;
  pkt.next_hop = IpAddr();
  Packet p{snap, pkt, sink, now, {}, static_cast<uint32_t>(pkt.size()), nullptr};

  // 1. Parse; malformed packets are dropped with the parser's reason.
  DropReason r = parsePacket(pkt.span(), p.pp);
  if (r != DropReason::kNone)
    return drop(pkt, r);
  const L3L4& o = p.pp.outer;
  if (o.tot_len != 0 && o.tot_len < pkt.size())
    p.bytes = o.tot_len;

  // 2. ICMP: errors related to a conn, echo requests to a VIP.
  if (o.proto == L4Proto::kIcmp || o.proto == L4Proto::kIcmpv6)
    return handleIcmp(p);
  // Protocols IPVS does not balance go to the host (ip_vs_in: no pp => NF_ACCEPT).
  if (o.proto != L4Proto::kTcp && o.proto != L4Proto::kUdp && o.proto != L4Proto::kSctp) {
    return toHost(pkt);
  }
  // A non-first fragment has no ports to look up (the kernel would have reassembled it).
  if (!o.has_l4)
    return drop(pkt, DropReason::kFragment);

  // 3. Replies from real servers (ip_vs_out).
  if (handleReply(p))
    return;
  // 4-7. Client packets (ip_vs_in).
  handleRequest(p);
}

// ip_vs_out + handle_response: a NAT / full-NAT reply gets SNAT, the OUTPUT state transition and
// the out stats. Returns false when the packet is not a reply lbd handles (it then goes on to
// ip_vs_in, as NF_ACCEPT passes it to the next hook).
bool Pipeline::handleReply(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  ConnGuard cp = conns_.findOut(tupleOf(o));
  if (!cp) {
    // nat_icmp_send: a packet from a NAT real service with no conn is answered with port
    // unreachable so the real server does not keep retrying (not for TCP RST / SCTP ABORT).
    const Sysctls& sys = p.snap.sysctls();
    bool abort = (o.proto == L4Proto::kTcp && (o.tcp_flags & kTcpRst) != 0) ||
                 (o.proto == L4Proto::kSctp && o.sctp_chunk == 6);
    if (sys.nat_icmp_send && !abort && p.snap.isNatRealServer(o.proto, o.src, o.sport)) {
      sendIcmp(p, IcmpKind::kPortUnreach, 0, o.dst);
      drop(p.pkt, DropReason::kNotNewConn);
      return true;
    }
    return false;
  }
  // DR / tunnel conns never see replies through lbd (ip_vs_out: ignore_cp).
  if (!isNatMethod(connFwd(*cp)))
    return false;
  if ((cp->flags & kConnFSynproxyPending) != 0) {
    synproxyReply(p, cp);
    return true;
  }
  // A synced conn's first reply at the backup may come before its client's next packet.
  if (cp->dest == kNoDest && (cp->flags & kConnFSync) != 0 &&
      bindSyncedConn(*cp, p.snap, runtime_, events_)) {
    counters_.sync_bound.add();
  }
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addOut(cp->svc, cp->dest, p.bytes);
  applyState(p, cp, ConnDir::kOutput);
  if ((cp->flags & kConnFPickedUp) != 0 && (o.tcp_flags & kTcpRst) == 0)
    assurePickedUp(cp);  // the real server knows the flow: it was a real client's
  maybeOffload(p, cp);
  Conn conn = *cp;  // a copy, so the shard lock is not held while the packet is rewritten
  p.seq_delta = cp.seqDelta();
  const uint32_t index = cp.index();
  cp.release();
  if (ftpApplies(conn))
    ftpOut(p, conn, index);  // app_tcp_pkt_out (ftp_pipeline.cc)
  // A reply to a client that has not proved its address (a SYN-ACK to a spoofed source, most
  // likely) asks the dataplane for no next hop.
  p.pkt.learn_dst = (conn.flags & kConnFAssured) != 0;
  xmit(p, conn, Direction::kToClient);
  return true;
}

void Pipeline::assurePickedUp(ConnGuard& cp) noexcept {
  cp->flags = (cp->flags & ~kConnFPickedUp) | kConnFAssured;
  if (cp->control != kNoConn)
    conns_.assureTemplate(cp->control);
}

// ip_vs_in steps 4-7 for a client packet.
void Pipeline::handleRequest(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  const Sysctls& sys = p.snap.sysctls();
  ConnGuard cp = conns_.findIn(tupleOf(o));

  // 4. A SYN / INIT hitting an old conn: expire it and schedule afresh when the kernel would
  //    (conn_reuse_mode, expire_nodest_conn with a quiesced dest).
  bool syn_or_init = (o.proto == L4Proto::kTcp && (o.tcp_flags & kTcpSyn) != 0) ||
                     (o.proto == L4Proto::kSctp && o.sctp_chunk == 1);
  //    A SYN proxy service's SYN may have been answered by the tc program (io/bpf), never
  //    reaching lbd: the ACK returning its cookie stands for it (synproxyReusesTuple).
  if (cp && sys.conn_reuse_mode != 0 &&
      ((syn_or_init && shouldReschedule(p, *cp)) || synproxyReusesTuple(p, *cp))) {
    if (cp->n_control.load(std::memory_order_relaxed) == 0) {
      conns_.expireNow(cp);
    } else {
      cp.release();
    }
    counters_.conns_reused.add();
  }

  // 5. The conn's dest was removed: with expire_nodest_conn expire it and schedule afresh,
  //    otherwise drop.
  //    A conn connection sync created before its real server existed here is bound now if the
  //    server exists (ip_vs_try_bind_dest); still unbound, it is handled all the same, as
  //    ip_vs_in checks only a bound conn's dest ("will remain unbound but still handled").
  if (cp && cp->dest == kNoDest && (cp->flags & kConnFSync) != 0) {
    if (bindSyncedConn(*cp, p.snap, runtime_, events_))
      counters_.sync_bound.add();
    else
      counters_.sync_unbound.add();
  } else if (cp) {
    const SnapDest* d = p.snap.dest(cp->dest);
    if (d == nullptr || !d->available) {
      if (!sys.expire_nodest_conn)
        return drop(p.pkt, DropReason::kDestUnavailable);
      conns_.expireNow(cp);
      counters_.conns_reused.add();
    }
  }

  // A data conn the FTP helper made before the client's port was known (NO_CPORT) takes it now
  // (ip_vs_conn_fill_cport; ftp_pipeline.cc).
  if (cp && (cp->flags & kConnFNoCport) != 0 && o.sport != 0 && !ftpFillCport(p, cp))
    return;

  // 6. No conn: find the service and schedule (conn_schedule / ip_vs_schedule); the SYN
  //    proxy's conns open their real server's side here.
  if (!cp) {
    cp = schedule(p);
    if (!cp)
      return;  // schedule() set the verdict
    // A TCP conn made from anything but a SYN: the flood pickup (or sloppy_tcp). Not assured
    // until its real server answers (kConnFPickedUp).
    if (o.proto == L4Proto::kTcp && (o.tcp_flags & kTcpSyn) == 0 && p.synproxy_mss == 0) {
      cp->flags |= kConnFPickedUp;
      counters_.conns_picked_up.add();
    }
    if (p.synproxy_mss != 0)
      return synproxyOpen(p, cp);
  } else if ((cp->flags & kConnFSynproxyPending) != 0) {
    return synproxyResend(p, cp);  // the real server has not answered yet
  }

  // 7. Stats, state transition, transmit.
  inbound(p, cp);
}

// ip_vs_in step 4's tests: expire_nodest_conn with a weight-0 dest, or is_new_conn_expected.
bool Pipeline::shouldReschedule(const Packet& p, const Conn& conn) const noexcept {
  const Sysctls& sys = p.snap.sysctls();
  if (sys.expire_nodest_conn) {
    const SnapDest* d = p.snap.dest(conn.dest);
    if (d != nullptr && d->config.weight == 0)
      return true;
  }
  // Controlled conns (persistence) are never reused this way.
  if (conn.control != kNoConn)
    return false;
  switch (conn.proto) {
    case L4Proto::kTcp:
      return conn.state == kTcpTimeWait || conn.state == kTcpClose ||
             ((sys.conn_reuse_mode & 2) != 0 && conn.state == kTcpFinWait &&
              (conn.flags & kConnFNoOutput) != 0);
    case L4Proto::kSctp:
      return conn.state == kSctpClosed;
    default:
      return false;
  }
}

// ip_vs_in step 7: in stats, INPUT state transition, transmit; ONE_PACKET conns end here.
void Pipeline::inbound(Packet& p, ConnGuard& cp) noexcept {
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addIn(cp->svc, cp->dest, p.bytes);
  applyState(p, cp, ConnDir::kInput);
  cp->in_pkts++;
  // Replies to a UDP conn of a method that bypasses lbd on the way back (DR, tunnel) are never
  // seen: a second datagram from the client is the best proof of its address there is.
  if (cp->proto == L4Proto::kUdp && (cp->flags & kConnFNoOutput) != 0 && cp->in_pkts >= 2)
    cp->flags |= kConnFAssured;
  // The same proof for a conn picked up under a flood whose replies bypass lbd.
  if ((cp->flags & (kConnFPickedUp | kConnFNoOutput)) == (kConnFPickedUp | kConnFNoOutput) &&
      cp->in_pkts >= 2)
    assurePickedUp(cp);
  maybeOffload(p, cp);
  Conn conn = *cp;
  p.seq_delta = cp.seqDelta();
  const uint32_t index = cp.index();
  if ((conn.flags & kConnFOnePacket) != 0) {
    conns_.expireNow(cp);  // ip_vs_conn_put: ONE_PACKET conns are freed after their packet
  } else if (sync_hook_ != nullptr) {
    sync_hook_->onClientPacket(conns_, cp, p.now);  // ip_vs_sync_conn; releases cp
  } else {
    cp.release();
  }
  if (ftpApplies(conn))
    ftpIn(p, conn, index);  // app_tcp_pkt_in (ftp_pipeline.cc)
  xmit(p, conn, Direction::kToRealServer);
}

// ip_vs_set_state plus what follows it: moving the dest between activeconns and inactconns when
// the state crosses the boundary (ip_vs_*_state_transition), assuring the template, and
// ip_vs_conn_put's timer re-arm with the conn's (new) timeout on every packet.
void Pipeline::applyState(Packet& p, ConnGuard& cp, ConnDir dir) noexcept {
  StateChange sc = updateConnState(*cp, dir, p.pp.outer, p.snap.timeouts(), defense_.secure_tcp);
  commitStateChange(cp, sc, runtime_, conns_, p.now);
}

// Offers a conn that just became eligible to the offloader (offload.h). Only this worker's
// packets reach here with the conn's lock held, so the flag is set once.
void Pipeline::maybeOffload(const Packet& p, ConnGuard& cp) noexcept {
  if (offloader_ == nullptr)
    return;
  const bool tunnel = tunnelOffloadEligible(*cp, offload_min_in_pkts_);
  if (!tunnel && !offloadEligible(*cp, offload_min_in_pkts_))
    return;
  // An FTP control conn's payload is read and its numbers may be adjusted: never offloaded.
  if (ftpApplies(*cp))
    return;
  // With the table in its last 1/16 (a SYN flood, most likely), a TCP conn is offloaded once
  // its handshake is done, not from its SYN: a spoofed SYN would cost two map updates, a second
  // of polling and two removals, and take map room from real conns.
  if (!table_roomy_ && cp->proto == L4Proto::kTcp && (cp->flags & kConnFAssured) == 0)
    return;
  bool taken = false;
  if (tunnel) {
    // IPIP, GUE without a UDP checksum or GRE without a GRE checksum, IPv4 outer: what the tc
    // program encapsulates (xmit()'s context, as the tunnel forwarder would use it). A checksum
    // in the tunnel header covers the whole inner packet, which the program cannot sum for a GSO
    // super-packet (the kernel would have to finish it per segment: SKB_GSO_UDP_TUNNEL_CSUM /
    // SKB_GSO_GRE_CSUM, which bpf_skb_adjust_room does not set), so those dests keep lbd's path.
    const SnapDest* d = p.snap.dest(cp->dest);
    if (d == nullptr || !cp->daddr.isV4())
      return;
    const TunType type = d->config.tun_type;
    if (type != TunType::kIpip && d->config.tun_csum != TunCsum::kNoCsum)
      return;
    if (type == TunType::kGue && d->config.tun_port == 0)
      return;
    TunnelOffer t;
    t.src = tunnel_src_v4_.isUnspecified() ? cp->vaddr : tunnel_src_v4_;
    t.type = type;
    if (type == TunType::kGue) {
      t.sport = xmit::udpFlowSrcPort(
          pipeline_internal::flowHash(cp->caddr, cp->cport, cp->vaddr, cp->vport, cp->proto));
      t.dport = d->config.tun_port;
    }
    t.pmtu_disc = p.snap.sysctls().pmtu_disc;
    taken = offloader_->offerTunnel(*cp, cp.index(), t);
  } else {
    taken = offloader_->offer(*cp, cp.index());
  }
  if (taken) {
    cp->flags |= kConnFOffloaded;
    counters_.conns_offloaded.add();
  }
}

// cp->packet_xmit: the conn's forwarder. TTL and MTU failures are answered with ICMP.
void Pipeline::xmit(Packet& p, const Conn& conn, Direction dir) noexcept {
  Forwarder* f = findForwarder(connFwd(conn));
  if (f == nullptr)
    return drop(p.pkt, DropReason::kUnsupported);
  XmitContext ctx;
  ctx.dest = p.snap.dest(conn.dest);
  ctx.mtu = mtu_;
  ctx.pmtu_disc = p.snap.sysctls().pmtu_disc;
  ctx.flow_hash =
      pipeline_internal::flowHash(conn.caddr, conn.cport, conn.vaddr, conn.vport, conn.proto);
  const IpAddr& configured = conn.daddr.isV6() ? tunnel_src_v6_ : tunnel_src_v4_;
  ctx.tunnel_src =
      !configured.isUnspecified() || conn.vaddr.af() != conn.daddr.af() ? configured : conn.vaddr;
  // The packet as received, for an ICMP error quoting it (forwarders leave it unchanged on
  // drop). The ICMP comes from the address the sender talked to.
  IpAddr icmp_src = dir == Direction::kToRealServer        ? p.pp.outer.dst
                    : connFwd(conn) == FwdMethod::kFullNat ? conn.laddr
                                                           : conn.vaddr;
  XmitResult r = f->forward(p.pkt, p.pp, conn, dir, ctx);
  if (r.verdict == Verdict::kForward) {
    synproxyAdjust(p, conn, dir);
    pipeline_internal::setVerdict(p.pkt, Verdict::kForward);
    return;
  }
  if (r.reason == DropReason::kTtlExceeded)
    sendIcmp(p, IcmpKind::kTimeExceeded, 0, icmp_src);
  if (r.reason == DropReason::kFragNeeded)
    sendIcmp(p, IcmpKind::kFragNeeded, r.mtu, icmp_src);
  drop(p.pkt, r.reason);
}

}  // namespace lb
