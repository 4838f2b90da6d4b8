// SPDX-License-Identifier: Apache-2.0
// The FTP helper in the pipeline: the kernel's app hooks (net/netfilter/ipvs/ip_vs_app.c
// app_tcp_pkt_in / app_tcp_pkt_out, called from the NAT xmit of ip_vs_xmit.c and from
// handle_response of ip_vs_core.c) with ip_vs_ftp.c's pkt_in / pkt_out.
//
// Per control conn (ftp::StateTable): the client's PASV / EPSV switches the mode; the real
// server's next 227 / 229 reply makes a NO_CPORT data conn <client:0 -> VIP:port -> RS:port>
// controlled by the control conn and is rewritten to the VIP (227: "v,i,p,a,p1,p2"; 229:
// "|||port|"); the client's data SYN to VIP:port finds it (the conn table's cport-0 retry) and
// the conn is re-made with the client's port (ip_vs_conn_fill_cport's effect). A PORT / EPRT
// makes the active data conn <client addr:port -> VIP:vport-1 -> RS:dport-1> so that the real
// server's SYN from port 20 matches it as a reply and leaves NATed to VIP:20; for full NAT the
// conn gets a local address and port from the service's pool and the command is rewritten to
// them (what the real server must reach). A rewrite that changes the payload's length records
// the change (vs_seq_update) and every later segment of the control conn has its seq and ack
// fixed in both directions (vs_fix_seq, vs_fix_ack_seq). SACK blocks are not translated (the
// kernel's IPVS does not either; conntrack's seqadj does).
//
// Deviations: the kernel's IPVS leaves the length change to conntrack's seqadj
// (nf_nat_mangle_tcp_packet); lbd has no conntrack and keeps the kernel's own in_seq/out_seq
// instead. Control conns are never handed to the flow offload. Conns made by the SYN proxy and
// conns of persistent services are not helped.
#include <cstdint>

#include "core/pipeline/conn_events.h"
#include "core/pipeline/ftp.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/pipeline/synproxy.h"
#include "core/proto/proto.h"

namespace lb {

using pipeline_internal::drop;

namespace {

ConnTuple inTuple(const ConnParams& d) {
  ConnTuple t;
  t.af = d.af;
  t.proto = L4Proto::kTcp;
  t.saddr = d.caddr;
  t.daddr = d.vaddr;
  t.sport = (d.flags & kConnFNoCport) != 0 ? uint16_t{0} : d.cport;
  t.dport = d.vport;
  return t;
}

}  // namespace

bool Pipeline::ftpApplies(const Conn& conn) const noexcept {
  if (ftp_ == nullptr || conn.proto != L4Proto::kTcp || conn.control != kNoConn ||
      (conn.flags & (kConnFTemplate | kConnFSynproxy)) != 0 ||
      !pipeline_internal::isNatMethod(connFwd(conn))) {
    return false;
  }
  for (size_t i = 0; i < ftp_ports_n_; ++i) {
    if (ftp_ports_[i] == conn.vport)
      return true;
  }
  return false;
}

// Makes (or finds) the data conn `d` controlled by conn `index`; returns the local port for a
// full-NAT conn (d.laddr set), 1 for another method, 0 when none could be made (counted).
uint16_t Pipeline::ftpDataConn(Packet& p,
                               const Conn& conn,
                               uint32_t index,
                               ConnParams& d) noexcept {
  if (ConnGuard old = conns_.findIn(inTuple(d))) {
    if ((old->flags & kConnFFullNat) != 0) {
      d.laddr = old->laddr;
      d.lport = old->lport;
      return old->lport;
    }
    return 1;
  }
  const SnapService* svc = p.snap.service(conn.svc);
  const SnapDest* dest = p.snap.dest(conn.dest);
  if (svc == nullptr || dest == nullptr)
    return 0;
  // The control conn must still be this conn while it gains a controlled one.
  {
    ConnGuard ctl = conns_.get(index, conn.generation);
    if (!ctl)
      return 0;
    ctl->n_control.fetch_add(1, std::memory_order_acq_rel);
  }
  const bool full_nat = (d.flags & kConnFFullNat) != 0 && (d.flags & kConnFNoCport) == 0;
  if (full_nat) {
    uint32_t hint = pipeline_internal::flowHash(d.caddr, d.cport, d.vaddr, d.vport, d.proto);
    if (svc->laddr_pool == nullptr ||
        !svc->laddr_pool->acquire(d.proto, hint, &d.laddr, &d.lport)) {
      conns_.nControl(index).fetch_sub(1, std::memory_order_acq_rel);
      return 0;
    }
    if (events_ != nullptr)
      events_->notePool(svc->id, svc->laddr_pool);
  }
  const Duration listen = p.snap.timeouts().tcp[kTcpListen];
  d.timeout = listen;
  ConnGuard g = conns_.create(d, p.now);
  if (!g) {
    if (full_nat)
      svc->laddr_pool->release(d.proto, d.laddr, d.lport);
    conns_.nControl(index).fetch_sub(1, std::memory_order_acq_rel);
    return 0;
  }
  // ip_vs_tcp_conn_listen: LISTEN with its timeout until the data conn's first packet.
  g->state = kTcpListen;
  g.setTimeout(listen, p.now);
  g.release();
  bindDest(p, *dest, /*is_template=*/false);
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addConn(svc->id, dest->id);
  counters_.conns_created.add();
  counters_.ftp_data_conns.add();
  return full_nat ? d.lport : uint16_t{1};
}

// app_tcp_pkt_in + ip_vs_ftp_in, before the forwarder's rewrite: a client segment of a control
// conn (already released; `index` is its slab index).
void Pipeline::ftpIn(Packet& p, const Conn& conn, uint32_t index) noexcept {
  const L3L4& o = p.pp.outer;
  if (p.pp.is_icmp_error || !o.has_l4 || o.proto != L4Proto::kTcp)
    return;
  auto live = [this](uint32_t i, uint32_t gen) { return static_cast<bool>(conns_.get(i, gen)); };
  ftp::StateTable::State* st = ftp_->lock(index, conn.generation, /*create=*/true, live);
  if (st == nullptr) {
    counters_.ftp_no_state.add();
    return;
  }
  const uint32_t seq = synproxy::tcpSeq(p.pkt, o);
  if (st->in_active)
    ftp::setSeqField(p.pkt, o, ftp::fixSeq(st->in, seq), false);
  if (st->out_active && (o.tcp_flags & kTcpAck) != 0)
    ftp::setSeqField(p.pkt, o, ftp::fixAck(st->out, synproxy::tcpAck(p.pkt, o)), true);
  const absl::string_view payload = ftp::tcpPayload(p.pkt, o);
  if (conn.state != kTcpEstablished || payload.empty())
    return ftp_->unlock();
  const ftp::ClientScan c = ftp::scanClient(payload, conn.af);
  switch (c.kind) {
    case ftp::ClientScan::Kind::kNone:
      break;
    case ftp::ClientScan::Kind::kMalformed:
      counters_.ftp_malformed.add();
      break;
    case ftp::ClientScan::Kind::kPasv:
      st->mode = ftp::Mode::kPasv;
      break;
    case ftp::ClientScan::Kind::kEpsv:
      st->mode = ftp::Mode::kEpsv;
      break;
    case ftp::ClientScan::Kind::kPort:
    case ftp::ClientScan::Kind::kEprt: {
      st->mode = ftp::Mode::kActive;
      if (c.ap.addr.af() != conn.af || conn.vport == 0 || conn.dport == 0)
        break;
      ConnParams d;
      d.af = conn.af;
      d.daf = conn.daf;
      d.proto = L4Proto::kTcp;
      d.flags = (conn.flags & (kConnFFwdMask | kConnFFullNat)) | kConnFInactive;
      d.caddr = c.ap.addr;
      d.cport = c.ap.port;
      d.vaddr = conn.vaddr;
      d.vport = static_cast<uint16_t>(conn.vport - 1);
      d.daddr = conn.daddr;
      d.dport = static_cast<uint16_t>(conn.dport - 1);
      d.svc = conn.svc;
      d.dest = conn.dest;
      d.fwmark = conn.fwmark;
      d.control = index;
      const uint16_t made = ftpDataConn(p, conn, index, d);
      if (made == 0)
        break;
      counters_.ftp_active.add();
      if ((conn.flags & kConnFFullNat) == 0)
        break;  // NAT: the real server reaches the client's own address (through lbd)
      // Full NAT: the real server must reach lbd's local address for this data conn.
      char text[ftp::kMaxText];
      size_t n = 0;
      if (c.kind == ftp::ClientScan::Kind::kPort && d.laddr.af() == Af::kInet) {
        n = ftp::formatOld(d.laddr, d.lport, text);
      } else if (c.kind == ftp::ClientScan::Kind::kEprt) {
        n = ftp::formatEprt(d.laddr, d.lport, payload[c.ap.start], text);
      } else {
        counters_.ftp_mangle_failed.add();  // PORT cannot name an IPv6 local address
        break;
      }
      std::optional<int32_t> diff =
          ftp::mangle(p.pkt, o, c.ap.start, c.ap.end, absl::string_view(text, n));
      if (!diff || parsePacket(p.pkt.span(), p.pp) != DropReason::kNone) {
        counters_.ftp_mangle_failed.add();
        break;
      }
      if (*diff != 0)
        ftp::seqUpdate(st->in, st->in_active, seq, *diff);
      break;
    }
  }
  ftp_->unlock();
}

// app_tcp_pkt_out + ip_vs_ftp_out, before the forwarder's rewrite: a real server's segment.
void Pipeline::ftpOut(Packet& p, const Conn& conn, uint32_t index) noexcept {
  const L3L4& o = p.pp.outer;
  if (p.pp.is_icmp_error || !o.has_l4 || o.proto != L4Proto::kTcp)
    return;
  auto live = [this](uint32_t i, uint32_t gen) { return static_cast<bool>(conns_.get(i, gen)); };
  ftp::StateTable::State* st = ftp_->lock(index, conn.generation, /*create=*/false, live);
  if (st == nullptr)
    return;  // no client segment yet: nothing asked, nothing to adjust
  const uint32_t seq = synproxy::tcpSeq(p.pkt, o);
  if (st->out_active)
    ftp::setSeqField(p.pkt, o, ftp::fixSeq(st->out, seq), false);
  if (st->in_active && (o.tcp_flags & kTcpAck) != 0)
    ftp::setSeqField(p.pkt, o, ftp::fixAck(st->in, synproxy::tcpAck(p.pkt, o)), true);
  const absl::string_view payload = ftp::tcpPayload(p.pkt, o);
  // A retransmission of the reply that was rewritten gets the same rewrite (the kernel's mode
  // is back to active by then and it would pass the real server's address and length).
  const bool resent = st->out_active && seq == st->out.init_seq;
  const ftp::Mode mode = resent ? st->last_reply : st->mode;
  if (conn.state != kTcpEstablished || mode == ftp::Mode::kActive || payload.empty())
    return ftp_->unlock();
  ftp::AddrPort ap;
  const ftp::ParseResult r = ftp::parseReply(payload, mode, conn.af, conn.daddr, ap);
  if (r != ftp::ParseResult::kFound) {
    if (r == ftp::ParseResult::kMalformed)
      counters_.ftp_malformed.add();
    return ftp_->unlock();
  }
  st->mode = ftp::Mode::kActive;
  st->last_reply = mode;
  ConnParams d;
  d.af = conn.af;
  d.daf = conn.daf;
  d.proto = L4Proto::kTcp;
  d.flags = (conn.flags & (kConnFFwdMask | kConnFFullNat)) | kConnFInactive | kConnFNoCport;
  d.caddr = conn.caddr;
  d.cport = 0;
  d.vaddr = conn.vaddr;
  d.vport = ap.port;
  d.daddr = ap.addr;
  d.dport = ap.port;
  d.svc = conn.svc;
  d.dest = conn.dest;
  d.fwmark = conn.fwmark;
  d.control = index;
  if (ap.addr.af() != conn.daf || ftpDataConn(p, conn, index, d) == 0)
    return ftp_->unlock();
  counters_.ftp_passive.add();
  char text[ftp::kMaxText];
  size_t n = 0;
  if (mode == ftp::Mode::kPasv) {
    if (conn.vaddr.af() != Af::kInet)
      return ftp_->unlock();
    n = ftp::formatOld(conn.vaddr, ap.port, text);
  } else {
    n = ftp::formatEpsv(ap.port, text);  // only the port: the client uses the VIP
  }
  std::optional<int32_t> diff = ftp::mangle(p.pkt, o, ap.start, ap.end, absl::string_view(text, n));
  if (!diff || parsePacket(p.pkt.span(), p.pp) != DropReason::kNone) {
    counters_.ftp_mangle_failed.add();
    return ftp_->unlock();
  }
  if (*diff != 0)
    ftp::seqUpdate(st->out, st->out_active, seq, *diff);
  ftp_->unlock();
}

// ip_vs_conn_fill_cport's effect: a client packet found a NO_CPORT data conn through the
// cport-0 retry; the conn is made again with the client's port (and, for full NAT, a local
// address and port), controlled by the same control conn, and the placeholder freed. False
// when the packet was dropped (verdict set).
bool Pipeline::ftpFillCport(Packet& p, ConnGuard& cp) noexcept {
  const Conn ph = *cp;
  const SnapService* svc = p.snap.service(ph.svc);
  const SnapDest* dest = p.snap.dest(ph.dest);
  if (ph.control != kNoConn)
    conns_.nControl(ph.control).fetch_add(1, std::memory_order_acq_rel);
  conns_.expireNow(cp);
  if (svc == nullptr || dest == nullptr) {
    if (ph.control != kNoConn)
      conns_.nControl(ph.control).fetch_sub(1, std::memory_order_acq_rel);
    drop(p.pkt, DropReason::kDestUnavailable);
    return false;
  }
  cp = createConn(p, *svc, *dest, ph.dport, ph.control, ph.fwmark);
  return static_cast<bool>(cp);  // createConn gave the control reference back on failure
}

}  // namespace lb
