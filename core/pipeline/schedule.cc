// SPDX-License-Identifier: Apache-2.0
// New connections: conn_schedule / ip_vs_schedule / ip_vs_sched_persist / ip_vs_leave
// (ip_vs_core.c, ip_vs_proto_*.c) and the binding half of ip_vs_conn_new (ip_vs_bind_dest).
#include <algorithm>
#include <optional>

#include "core/pipeline/conn_events.h"
#include "core/pipeline/pe_sip.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/pipeline/sync_bind.h"
#include "core/service/runtime.h"

namespace lb {

using pipeline_internal::drop;
using pipeline_internal::fwdFlags;
using pipeline_internal::isNatMethod;
using pipeline_internal::toHost;

namespace {

constexpr uint16_t kFtpPort = 21;
constexpr uint16_t kFtpDataPort = 20;

// ip_vs_check_template: the template's dest must still exist, be available and, with
// expire_quiescent_template, have a non-zero weight.
bool templateValid(const ServiceSnapshot& snap, const Conn& ct) {
  const SnapDest* d = snap.dest(ct.dest);
  if (d == nullptr || !d->available)
    return false;
  return !(snap.sysctls().expire_quiescent_template && d->config.weight == 0);
}

}  // namespace

// The flood pickup. Early drop frees the oldest conns that never became ESTABLISHED; under a
// SYN flood a real client's conn can be among them when its handshake's last ACK was lost (a
// full TUN queue drops packets of every kind) and its first data packet comes after the conn
// was freed. The kernel's IPVS never frees such a conn (it has no early drop); conntrack, which
// does, makes a new entry from the mid-stream packet (nf_conntrack_proto_tcp.c, tcp_new with
// nf_conntrack_tcp_loose). lbd does the same, only for a while after early drop last freed a
// conn (kFloodPickupWindow, SYN_RECV's own timeout): a TCP ACK without SYN or RST to a service
// that is not a SYN proxy (whose ACKs must carry a cookie) is scheduled as a new conn, which
// stays early-droppable (kConnFPickedUp) until its real server answers. A spoofed ACK flood thus
// costs what a SYN flood does; the client whose conn was freed keeps its connection when the
// scheduler picks the same real server (always with persistence, sh or mh), and gets the new
// server's reset instead of a hang otherwise. While SYN cookies may be returned (syncookies.h),
// an ACK returning a valid one has already been taken by syncookieAnswer (synproxyOpen opens
// its conn); only the others come here.
bool Pipeline::pickupUnderFlood(const L3L4& o,
                                const SnapService& svc,
                                MonoTime now) const noexcept {
  return o.proto == L4Proto::kTcp && (o.tcp_flags & (kTcpAck | kTcpSyn | kTcpRst)) == kTcpAck &&
         !svc.synproxy() && now < pickup_until_;
}

// conn_schedule (ip_vs_proto_{tcp,udp,sctp}.c) and the checks at the top of ip_vs_schedule:
// only a new-connection packet to a service may create a conn (an ICMP error scheduled under
// schedule_icmp skips that test: only its ports are quoted), and drop_packet may refuse it.
ConnGuard Pipeline::schedule(Packet& p) noexcept {
  const L3L4& o = p.flow();
  const Sysctls& sys = p.snap.sysctls();
  uint32_t mark = p.snap.classify(o.af, o.proto, o.dst, o.dport);
  const SnapService* svc = p.snap.findService(o.af, o.proto, o.dst, o.dport, mark);
  if (svc == nullptr) {
    toHost(p.pkt);
    return {};
  }
  // The SYN proxy answers SYNs itself and schedules an ACK that returns a valid cookie; so do
  // other NAT services while SYN cookies are on (syncookies.h).
  if (o.proto == L4Proto::kTcp && !p.fromIcmp() &&
      (svc->synproxy() ? synproxyAnswer(p) : syncookieAnswer(p, *svc))) {
    return {};
  }
  if (!p.fromIcmp() && p.synproxy_mss == 0 &&
      !isNewConnPacket(o, sys.sloppy_tcp, sys.sloppy_sctp) && !pickupUnderFlood(o, *svc, p.now)) {
    drop(p.pkt, DropReason::kNotNewConn);
    return {};
  }
  // ip_vs_todrop: "it seems that we are very loaded" (drop_packet).
  if (todrop()) {
    drop(p.pkt, DropReason::kDefense);
    return {};
  }
  // ip_vs_schedule: active FTP data comes from the real server's port 20 and is never
  // scheduled, whatever the service (*ignored = 1: NF_ACCEPT). Its other check, "do not
  // schedule replies from a local real server", is for packets lbd never sees (locally
  // originated, skb->dev loopback): every packet here came in through the TUN device.
  if (o.sport == kFtpDataPort) {
    toHost(p.pkt);
    return {};
  }
  if (svc->persistent())
    return schedulePersist(p, *svc, mark);
  // ip_vs_schedule: a non-persistent service only takes its own port (a port-zero service must
  // be persistent; FTP data matched to port 21 is not scheduled).
  if (svc->config.key.fwmark == 0 && o.dport != svc->config.key.vport) {
    leave(p, *svc);
    return {};
  }
  const SnapDest* dest = pickDest(p, *svc);
  if (dest == nullptr) {
    leave(p, *svc);
    return {};
  }
  uint16_t dport = dest->config.port != 0 ? dest->config.port : o.dport;
  return createConn(p, *svc, *dest, dport, kNoConn, mark);
}

// ip_vs_sched_persist: find or make the template for the client's network, then create the
// conn under it.
ConnGuard Pipeline::schedulePersist(Packet& p, const SnapService& svc, uint32_t mark) noexcept {
  const L3L4& o = p.flow();
  const ServiceKey& key = svc.config.key;
  // The template's key (§3.3): <proto, snet, 0, vaddr, vport> for a normal service;
  // vport 0 for FTP (port 21) and port-zero services; <IPPROTO_IP, snet, 0, fwmark, 0> for
  // fwmark services.
  ConnTuple tt;
  tt.af = o.af;
  tt.proto = o.proto;
  tt.saddr = o.src.masked(svc.netmask_prefix);
  tt.daddr = o.dst;
  tt.sport = 0;
  tt.dport = 0;
  bool normal = o.dport == key.vport && key.fwmark == 0;
  if (normal && key.vport != kFtpPort)
    tt.dport = o.dport;
  if (key.fwmark != 0) {
    tt.proto = L4Proto::kNone;
    uint8_t mark_bytes[16] = {
        static_cast<uint8_t>(key.fwmark >> 24), static_cast<uint8_t>(key.fwmark >> 16),
        static_cast<uint8_t>(key.fwmark >> 8), static_cast<uint8_t>(key.fwmark)};
    tt.daddr = IpAddr::fromBytes(o.af, mark_bytes);  // htonl(fwmark) as the address
  }

  // ip_vs_conn_fill_param_persist: a service with a persistence engine (--pe sip) also keys
  // its templates by the engine's data, the request's Call-ID (ip_vs_sip_fill_param); a
  // packet it cannot take one from (not UDP, no or a bad Call-ID) is dropped (*ignored = -1).
  PeTemplates* pe = nullptr;
  PeTemplateKey pk;
  absl::string_view callid;
  std::optional<PeTemplates::Ref> ref;
  if (!svc.config.pe_name.empty()) {
    // dptr and datalen: the UDP payload (none for a packet quoted in an ICMP error).
    absl::string_view payload;
    if (!p.fromIcmp() && o.proto == L4Proto::kUdp && o.has_l4 && o.first_fragment) {
      const size_t begin = size_t{o.l4_off} + 8;
      const size_t end = std::min<size_t>(size_t{o.l3_off} + o.tot_len, p.pkt.size());
      if (begin < end)
        payload =
            absl::string_view(reinterpret_cast<const char*>(p.pkt.data()) + begin, end - begin);
    }
    std::optional<absl::string_view> id = sipCallId(payload);
    if (!id) {
      drop(p.pkt, DropReason::kPeData);
      return {};
    }
    callid = *id;
    pe = pe_templates_;  // taken when the pipeline was built: no lock, no allocation here
    pk = PeTemplateKey{tt.af, tt.proto, tt.saddr, tt.daddr, tt.dport};
  }

  const SnapDest* dest = nullptr;
  uint32_t control = kNoConn;
  ConnGuard ct;
  if (pe != nullptr) {
    // ip_vs_ct_in_get with pe_data: pe->ct_match (ip_vs_sip_ct_match).
    ref = pe->find(pk, callid);
    if (ref) {
      ct = conns_.get(ref->conn_index, ref->generation);
      if (!PeTemplates::holds(ct, *ref, pk)) {
        ct.release();
        pe->erase(*ref);
      }
    }
  } else {
    ct = conns_.findTemplate(tt);
  }
  // A template connection sync created before its real server existed here is bound now if
  // the server exists (ip_vs_try_bind_dest), else it fails the check below.
  if (ct && ct->dest == kNoDest && (ct->flags & kConnFSync) != 0 &&
      bindSyncedConn(*ct, p.snap, runtime_, events_)) {
    counters_.sync_bound.add();
  }
  if (ct && !templateValid(p.snap, *ct)) {
    conns_.invalidateTemplate(ct);  // shows as :65535, no longer matches
    ct.release();
    if (pe != nullptr)
      pe->erase(*ref);
  }
  if (ct) {
    dest = p.snap.dest(ct->dest);
    ct->n_control.fetch_add(1, std::memory_order_acq_rel);  // ip_vs_control_add
    control = ct.index();
    ct.setTimeout(ct->timeout, p.now);  // ip_vs_conn_put(ct): re-armed on every new conn
    ct.release();
  } else {
    dest = pickDest(p, svc);
    if (dest == nullptr) {
      leave(p, svc);
      return {};
    }
    ConnParams t;
    t.af = o.af;
    t.daf = dest->config.addr.af();
    t.proto = tt.proto;
    t.caddr = tt.saddr;
    t.cport = 0;
    t.vaddr = tt.daddr;
    t.vport = tt.dport;
    t.daddr = dest->config.addr;
    t.dport = normal && key.vport != kFtpPort ? dest->config.port : 0;
    t.fwmark = mark;
    t.flags = kConnFTemplate | fwdFlags(dest->config.fwd) | kConnFInactive;
    if (!isNatMethod(dest->config.fwd))
      t.flags |= kConnFNoOutput;
    t.svc = svc.id;
    t.dest = dest->id;
    t.timeout = seconds(svc.config.timeout_s);
    ConnGuard nt = conns_.create(t, p.now);
    if (!nt) {
      drop(p.pkt, DropReason::kConnTableFull);
      return {};
    }
    bindDest(p, *dest, /*is_template=*/true);
    counters_.templates_created.add();
    nt->n_control.fetch_add(1, std::memory_order_acq_rel);
    control = nt.index();
    if (pe != nullptr) {
      // The template's pe_data: its Call-ID, recorded beside the table (pe_sip.h).
      const uint32_t nonce = PeTemplates::nextNonce();
      nt.setSeqDelta(nonce);
      const uint32_t gen = nt->generation;
      nt.release();
      pe->sweep(conns_, 2);  // amortised removal of records whose template expired
      if (!pe->insert(pk, callid, control, gen, nonce) && pe->sweep(conns_, 64) > 0)
        (void)pe->insert(pk, callid, control, gen, nonce);
    }
    nt.release();
  }
  if (dest == nullptr) {  // cannot happen: a valid template has a live dest
    conns_.nControl(control).fetch_sub(1, std::memory_order_acq_rel);
    drop(p.pkt, DropReason::kNoDest);
    return {};
  }
  uint16_t dport = o.dport;
  if (dport == key.vport && dest->config.port != 0)
    dport = dest->config.port;
  return createConn(p, svc, *dest, dport, control, mark);
}

const SnapDest* Pipeline::pickDest(Packet& p, const SnapService& svc) noexcept {
  if (svc.scheduler == nullptr || runtime_ == nullptr)
    return nullptr;
  const L3L4& o = p.flow();
  PickContext ctx;
  ctx.saddr = o.src;
  ctx.daddr = o.dst;
  ctx.sport = o.sport;
  ctx.dport = o.dport;
  ctx.has_ports = true;
  ctx.now = p.now;
  ctx.random = nextRandom();
  std::optional<DestId> id = svc.scheduler->pick(ctx, runtime_->destLoad());
  if (!id)
    return nullptr;
  const SnapDest* d = p.snap.dest(*id);
  if (d == nullptr || !d->available)
    return nullptr;
  return d;
}

// ip_vs_conn_new + ip_vs_bind_dest for a real conn: dest flags (forwarding method, INACTIVE,
// NOOUTPUT for non-NAT), ONE_PACKET for UDP on -o services, full-NAT local address, counters.
ConnGuard Pipeline::createConn(Packet& p,
                               const SnapService& svc,
                               const SnapDest& dest,
                               uint16_t dport,
                               uint32_t control,
                               uint32_t mark) noexcept {
  const L3L4& o = p.flow();
  ConnParams c;
  c.af = o.af;
  c.daf = dest.config.addr.af();
  c.proto = o.proto;
  c.caddr = o.src;
  c.cport = o.sport;
  c.vaddr = o.dst;
  c.vport = o.dport;
  c.daddr = dest.config.addr;
  c.dport = dport;
  c.fwmark = mark;
  c.flags = fwdFlags(dest.config.fwd) | kConnFInactive;
  if (!isNatMethod(dest.config.fwd))
    c.flags |= kConnFNoOutput;
  if (svc.onePacket() && o.proto == L4Proto::kUdp)
    c.flags |= kConnFOnePacket;
  c.svc = svc.id;
  c.dest = dest.id;
  c.control = control;
  auto undo_control = [&] {
    if (control != kNoConn)
      conns_.nControl(control).fetch_sub(1, std::memory_order_acq_rel);
  };
  if (dest.config.fwd == FwdMethod::kFullNat) {
    uint32_t hint = pipeline_internal::flowHash(c.caddr, c.cport, c.vaddr, c.vport, c.proto);
    if (svc.laddr_pool == nullptr || !svc.laddr_pool->acquire(c.proto, hint, &c.laddr, &c.lport)) {
      undo_control();
      drop(p.pkt, DropReason::kNoLocalAddr);
      return {};
    }
    if (events_ != nullptr)
      events_->notePool(svc.id, svc.laddr_pool);
  }
  ConnGuard g = conns_.create(c, p.now);
  if (!g) {
    if (c.lport != 0)
      svc.laddr_pool->release(c.proto, c.laddr, c.lport);
    undo_control();
    drop(p.pkt, DropReason::kConnTableFull);
    return {};
  }
  bindDest(p, dest, /*is_template=*/false);
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addConn(svc.id, dest.id);
  counters_.conns_created.add();
  return g;
}

// ip_vs_bind_dest's counters: inactconns++ for a new conn (it starts INACTIVE), persistconns++
// for a template, then the upper-threshold overload check.
void Pipeline::bindDest(Packet& /*p*/, const SnapDest& dest, bool is_template) noexcept {
  if (runtime_ == nullptr || dest.id >= runtime_->maxDests())
    return;
  if (events_ != nullptr) {
    events_->noteDest(dest.id, dest.config.u_threshold, dest.config.l_threshold);
  }
  DestCounters& dc = runtime_->destCounters()[dest.id];
  if (is_template) {
    dc.persist_conns.fetch_add(1, std::memory_order_relaxed);
  } else {
    dc.inact_conns.fetch_add(1, std::memory_order_relaxed);
  }
  runtime_->updateOverloadOnBind(dest.id, dest.config.u_threshold);
}

// ip_vs_leave without cache_bypass: FTP data for a port-21 service goes to the host; a new conn
// scheduled from an ICMP error is dropped silently; anything else is answered with port
// unreachable (from the VIP) and dropped.
void Pipeline::leave(Packet& p, const SnapService& svc) noexcept {
  const L3L4& o = p.flow();
  if (svc.config.key.vport == kFtpPort && o.dport != kFtpPort)
    return toHost(p.pkt);
  if (p.fromIcmp())
    return drop(p.pkt, DropReason::kNoDest);
  sendIcmp(p, IcmpKind::kPortUnreach, 0, o.dst);
  drop(p.pkt, DropReason::kNoDest);
}

}  // namespace lb
