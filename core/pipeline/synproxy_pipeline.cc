// SPDX-License-Identifier: Apache-2.0
// The SYN proxy in the pipeline (DPVS's ip_vs_synproxy.c: syn_proxy_syn_rcv, syn_proxy_ack_rcv,
// syn_proxy_synack_rcv, the seq adjustments of its NAT and full-NAT xmit). For a service with
// kSvcSynproxy:
//   1. A client's SYN is answered in place with a SYN-ACK whose ISN is a cookie (synproxy.h);
//      nothing is scheduled and no conn is made, so a spoofed source costs one reply and no
//      table entry.
//   2. The client's ACK returning a valid cookie proves its address: it is scheduled like a
//      SYN (templates, the scheduler, drop_packet), its conn is made in SYN_RECV with
//      kConnFSynproxy | kConnFSynproxyPending, and the ACK itself is turned into the SYN that
//      opens the connection to the real server (the client's ISN, the cookie's MSS). A payload
//      on it is dropped (the client sends it again). Until the real server answers, the
//      client's first segment again re-sends that SYN; other client packets are dropped.
//   3. The real server's SYN-ACK is turned into the handshake's last ACK to it, the conn
//      becomes ESTABLISHED, and from then on the real server's sequence numbers are shifted by
//      ConnGuard::seqDelta (cookie - its ISN) towards the client and the client's acks back.
//      A RST instead of the SYN-ACK reaches the client on the cookie's numbers.
// SYN proxy conns are never offloaded (offload.h). ICMP errors about them quote the real
// server's numbers untranslated.
#include <optional>

#include "core/pipeline/conn_events.h"
#include "core/pipeline/offload.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/pipeline/syncookies.h"
#include "core/pipeline/synproxy.h"
#include "core/proto/proto.h"
#include "core/service/runtime.h"
#include "core/xmit/xmit_util.h"

namespace lb {

using pipeline_internal::drop;
using pipeline_internal::isNatMethod;

namespace {

// The window the handshake's last ACK announces to the real server for the client, whose real
// window comes with its next packet (20 segments, Linux's initial receive window).
constexpr uint16_t kAckWindow = 29200;

synproxy::CookieFlow cookieFlow(const L3L4& o) {
  return synproxy::CookieFlow{o.src, o.dst, o.sport, o.dport};
}

// INPUT `flags` through the conn's TCP state machine, then what applyState does after it.
void feedInput(ConnGuard& cp,
               uint8_t flags,
               const ProtoTimeouts& timeouts,
               bool secure_tcp,
               ServiceRuntime* runtime,
               ConnTable& conns,
               MonoTime now) {
  L3L4 pkt;
  pkt.proto = L4Proto::kTcp;
  pkt.tcp_flags = flags;
  StateChange sc = updateConnState(*cp, ConnDir::kInput, pkt, timeouts, secure_tcp);
  commitStateChange(cp, sc, runtime, conns, now);
}

}  // namespace

uint64_t Pipeline::synproxySecret() const noexcept {
  return synproxy::secretOf(conns_.seed());
}

// Step 1: answers the bare SYN in `p` in place with a SYN-ACK carrying a cookie.
void Pipeline::synproxyAnswerSyn(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  PacketBuffer& pkt = p.pkt;
  const uint8_t* tcp = pkt.data() + o.l4_off;
  const size_t tcp_len = o.tot_len > o.l4_off ? o.tot_len - o.l4_off : pkt.size() - o.l4_off;
  const uint32_t isn = synproxy::tcpSeq(pkt, o);
  const uint16_t client_mss = synproxy::synMss(tcp, tcp_len);
  const uint32_t cookie =
      synproxy::makeCookie(synproxySecret(), cookieFlow(o), isn, client_mss, p.now);
  const uint16_t our_mss = synproxy::synAckMss(mtu_, o.af);
  synproxy::Segment s{o.dst,
                      o.src,
                      o.dport,
                      o.sport,
                      cookie,
                      isn + 1,
                      static_cast<uint8_t>(kTcpSyn | kTcpAck),
                      synproxy::kSynAckWindow,
                      our_mss};
  if (!synproxy::rewriteSegment(pkt, o, s))
    return drop(pkt, DropReason::kUnsupported);
  pkt.tx = TxPath::kTun;
  pkt.learn_dst = false;  // one new (maybe spoofed) address per SYN
  pipeline_internal::setVerdict(pkt, Verdict::kForward);
  counters_.synproxy_syn_answered.add();
  conns_.noteCookieSent(p.now);  // syncookiesAccept's window (syncookies.h)
}

// The check of step 2: true when the ACK in `p` returns a valid cookie; its MSS, the client's
// ISN and the cookie are then in `p` for synproxyOpen.
bool Pipeline::synproxyCookieAck(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  const uint32_t isn = synproxy::tcpSeq(p.pkt, o) - 1;
  const uint32_t cookie = synproxy::tcpAck(p.pkt, o) - 1;
  std::optional<uint16_t> mss =
      synproxy::checkCookie(synproxySecret(), cookieFlow(o), isn, cookie, p.now);
  if (!mss)
    return false;
  p.synproxy_mss = *mss;
  p.synproxy_isn = isn;
  p.synproxy_cookie = cookie;
  return true;
}

// Step 1 and the check of step 2 for a --synproxy service. True: the packet is dealt with (a
// SYN answered, anything else without a conn dropped). False: an ACK with a valid cookie, to
// be scheduled.
bool Pipeline::synproxyAnswer(Packet& p) noexcept {
  const uint8_t f = p.pp.outer.tcp_flags;
  if ((f & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) == kTcpSyn) {
    synproxyAnswerSyn(p);
    return true;
  }
  if ((f & (kTcpSyn | kTcpRst | kTcpFin)) != 0 || (f & kTcpAck) == 0) {
    drop(p.pkt, DropReason::kNotNewConn);
    return true;
  }
  if (!synproxyCookieAck(p)) {
    drop(p.pkt, DropReason::kSynproxy);
    return true;
  }
  return false;
}

// The same for a service without --synproxy (syncookies.h): a bare SYN is answered with a
// cookie while syncookiesAnswer says so, and a bare ACK returning a valid cookie is scheduled
// while syncookiesAccept does (even after the state went off: the cookie is still valid). True
// only when the SYN was answered; anything else (a SYN while cookies are off, an ACK without a
// valid cookie) goes on as without cookies (scheduling, the flood pickup, kNotNewConn).
bool Pipeline::syncookiesOn(const Sysctls& sys, ServiceId svc) const noexcept {
  return conns_.syncookiesActive(svc) ||
         (sys.syncookies == 1 && conns_.embryonicTcp(svc) > sys.syncookies_threshold);
}

bool Pipeline::syncookieAnswer(Packet& p, const SnapService& svc) noexcept {
  const L3L4& o = p.pp.outer;
  const Sysctls& sys = p.snap.sysctls();
  if (o.proto != L4Proto::kTcp || sys.syncookies == 0)
    return false;
  // The FTP helper's control conns adjust sequence numbers of their own (ftpApplies): never
  // a cookie conn.
  for (size_t i = 0; ftp_ != nullptr && i < ftp_ports_n_; ++i) {
    if (ftp_ports_[i] == svc.config.key.vport)
      return false;
  }
  const uint8_t f = o.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin);
  if (f == kTcpSyn) {
    if (!syncookiesAnswer(sys, syncookiesOn(sys, svc.id)) || !syncookieEligible(p.snap, svc))
      return false;
    synproxyAnswerSyn(p);
    return true;
  }
  if (f == kTcpAck &&
      syncookiesAccept(sys, syncookiesOn(sys, svc.id), conns_.lastCookieSent(), p.now) &&
      syncookieEligible(p.snap, svc)) {
    (void)synproxyCookieAck(p);
  }
  return false;
}

// Step 1 done in the kernel: the tc program (io/bpf/ingress_redirect.bpf.c) answers a SYN proxy
// service's SYNs itself, so a SYN on a tuple whose old conn is closing (a client reusing its
// port while lbd's conn sits in TIME_WAIT) never reaches lbd to expire that conn. The client's
// ACK returning the cookie then stands for the SYN: true when `p` is a bare ACK whose ack - 1
// is a valid cookie for its tuple and the conn is one a SYN would reschedule
// (shouldReschedule), to a service with the SYN proxy on. A pending conn (its client's ACK
// again) is synproxyResend's.
// A service answering with SYN cookies on its own (syncookies.h) has conns made before the state
// went on: when the client's SYN or the real server's SYN-ACK was lost, the client's SYN again
// is answered with a cookie (by the tc program, which sees no conn), and its ACK returning that
// cookie would reach the real server on numbers it never sent (a reset). So there the ACK also
// stands for a SYN on a conn that never got past its handshake (not ESTABLISHED, not assured,
// not a cookie conn): the old conn goes and the cookie opens a new one.
bool Pipeline::synproxyReusesTuple(const Packet& p, const Conn& conn) const noexcept {
  const L3L4& o = p.pp.outer;
  if (o.proto != L4Proto::kTcp ||
      (o.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) != kTcpAck ||
      (conn.flags & kConnFSynproxyPending) != 0 || p.fromIcmp()) {
    return false;
  }
  const SnapService* svc = p.snap.service(conn.svc);
  if (svc == nullptr)
    return false;
  if (svc->synproxy()) {
    if (!shouldReschedule(p, conn))
      return false;
  } else {
    // A service without --synproxy answers with cookies only while syncookies.h says so.
    const Sysctls& sys = p.snap.sysctls();
    if (!syncookiesAccept(sys, syncookiesOn(sys, svc->id), conns_.lastCookieSent(), p.now) ||
        !syncookieEligible(p.snap, *svc)) {
      return false;
    }
    const bool handshaking = (conn.flags & (kConnFSynproxy | kConnFAssured)) == 0 &&
                             conn.state != kTcpEstablished &&
                             conn.n_control.load(std::memory_order_relaxed) == 0;
    if (!handshaking && !shouldReschedule(p, conn))
      return false;
  }
  const uint32_t isn = synproxy::tcpSeq(p.pkt, o) - 1;
  const uint32_t cookie = synproxy::tcpAck(p.pkt, o) - 1;
  return synproxy::checkCookie(synproxySecret(), cookieFlow(o), isn, cookie, p.now).has_value();
}

// Step 2: the conn scheduled from a valid cookie's ACK opens the connection to the real server.
void Pipeline::synproxyOpen(Packet& p, ConnGuard& cp) noexcept {
  if (!isNatMethod(connFwd(*cp))) {
    // DR and tunnels send replies past lbd: nothing could translate their numbers.
    conns_.expireNow(cp);
    return drop(p.pkt, DropReason::kSynproxy);
  }
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addIn(cp->svc, cp->dest, p.bytes);
  cp->flags |= kConnFSynproxy | kConnFSynproxyPending | kConnFAssured;
  cp.setSeqDelta(p.synproxy_cookie);
  feedInput(cp, kTcpSyn, p.snap.timeouts(), defense_.secure_tcp, runtime_, conns_, p.now);
  cp->in_pkts++;
  const Conn conn = *cp;
  cp.release();
  const L3L4 o = p.pp.outer;
  const uint16_t window = xmit::load16(p.pkt.data() + o.l4_off + 14);
  synproxy::Segment s{o.src, o.dst,   o.sport, o.dport,       p.synproxy_isn,
                      0,     kTcpSyn, window,  p.synproxy_mss};
  if (!synproxy::rewriteSegment(p.pkt, o, s) ||
      parsePacket(p.pkt.span(), p.pp) != DropReason::kNone) {
    return drop(p.pkt, DropReason::kUnsupported);
  }
  p.bytes = static_cast<uint32_t>(p.pkt.size());
  counters_.synproxy_conns_opened.add();
  xmit(p, conn, Direction::kToRealServer);
}

// Step 2 again: a client packet while the real server's handshake is pending. The SYN to the
// real server, or its SYN-ACK, may have been lost: the client's first segment (its cookie ACK
// or its first data, which the client sends again until answered) re-sends the SYN; anything
// else is dropped.
void Pipeline::synproxyResend(Packet& p, ConnGuard& cp) noexcept {
  const L3L4 o = p.pp.outer;
  const uint8_t f = o.tcp_flags;
  if (o.proto != L4Proto::kTcp || (f & (kTcpSyn | kTcpRst | kTcpFin)) != 0 || (f & kTcpAck) == 0)
    return drop(p.pkt, DropReason::kSynproxy);
  const uint32_t isn = synproxy::tcpSeq(p.pkt, o) - 1;
  const uint32_t cookie = synproxy::tcpAck(p.pkt, o) - 1;
  std::optional<uint16_t> mss =
      cookie == cp.seqDelta()
          ? synproxy::checkCookie(synproxySecret(), cookieFlow(o), isn, cookie, p.now)
          : std::nullopt;
  if (!mss)
    return drop(p.pkt, DropReason::kSynproxy);
  const Conn conn = *cp;
  cp.release();
  const uint16_t window = xmit::load16(p.pkt.data() + o.l4_off + 14);
  synproxy::Segment s{o.src, o.dst, o.sport, o.dport, isn, 0, kTcpSyn, window, *mss};
  if (!synproxy::rewriteSegment(p.pkt, o, s) ||
      parsePacket(p.pkt.span(), p.pp) != DropReason::kNone) {
    return drop(p.pkt, DropReason::kUnsupported);
  }
  p.bytes = static_cast<uint32_t>(p.pkt.size());
  counters_.synproxy_syn_resent.add();
  xmit(p, conn, Direction::kToRealServer);
}

// Step 3: a packet from the real server while its handshake is pending.
void Pipeline::synproxyReply(Packet& p, ConnGuard& cp) noexcept {
  const L3L4 o = p.pp.outer;
  const uint32_t cookie = cp.seqDelta();
  if (o.proto != L4Proto::kTcp || cp->af != o.af)
    return drop(p.pkt, DropReason::kSynproxy);
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addOut(cp->svc, cp->dest, p.bytes);
  if ((o.tcp_flags & kTcpRst) != 0) {
    // Refused: the client hears it on the numbers it knows.
    synproxy::addToSeq(p.pkt, o, cookie + 1 - synproxy::tcpSeq(p.pkt, o), false);
    applyState(p, cp, ConnDir::kOutput);
    const Conn conn = *cp;
    cp.release();
    return xmit(p, conn, Direction::kToClient);
  }
  if ((o.tcp_flags & (kTcpSyn | kTcpAck)) != (kTcpSyn | kTcpAck))
    return drop(p.pkt, DropReason::kSynproxy);
  const uint32_t server_isn = synproxy::tcpSeq(p.pkt, o);
  const uint32_t client_next = synproxy::tcpAck(p.pkt, o);
  cp.setSeqDelta(cookie - server_isn);
  cp->flags &= ~kConnFSynproxyPending;
  // The client's handshake ACK came long ago; the conn is ESTABLISHED now.
  feedInput(cp, kTcpAck, p.snap.timeouts(), defense_.secure_tcp, runtime_, conns_, p.now);
  const Conn conn = *cp;
  p.seq_delta = cp.seqDelta();
  cp.release();
  // The SYN-ACK becomes that ACK, as the client would have sent it to the VIP; xmit's NAT
  // then addresses it to the real server and shifts its ack onto the server's numbers.
  synproxy::Segment s{conn.caddr, conn.vaddr, conn.cport, conn.vport, client_next,
                      cookie + 1, kTcpAck,    kAckWindow, 0};
  if (!synproxy::rewriteSegment(p.pkt, o, s) ||
      parsePacket(p.pkt.span(), p.pp) != DropReason::kNone) {
    return drop(p.pkt, DropReason::kUnsupported);
  }
  p.bytes = static_cast<uint32_t>(p.pkt.size());
  xmit(p, conn, Direction::kToRealServer);
}

// After the forwarder's rewrite: the real server's numbers towards the client, the client's
// acks towards the real server.
void Pipeline::synproxyAdjust(Packet& p, const Conn& conn, Direction dir) noexcept {
  const L3L4& o = p.pp.outer;
  if ((conn.flags & (kConnFSynproxy | kConnFSynproxyPending)) != kConnFSynproxy ||
      o.proto != L4Proto::kTcp || p.pp.is_icmp_error || !o.has_l4) {
    return;
  }
  if (dir == Direction::kToClient) {
    synproxy::addToSeq(p.pkt, o, p.seq_delta, false);
  } else if ((o.tcp_flags & kTcpAck) != 0) {
    synproxy::addToSeq(p.pkt, o, 0u - p.seq_delta, true);
  }
}

}  // namespace lb
