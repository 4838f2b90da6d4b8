// SPDX-License-Identifier: Apache-2.0
// ICMP: errors related to a conn (ip_vs_out_icmp / ip_vs_in_icmp and their v6 twins in
// ip_vs_core.c), echo requests to a VIP, and the ICMP errors lbd itself sends (ip_vs_leave's port
// unreachable, xmit's time exceeded and fragmentation needed).
#include <cstring>

#include "core/packet/rewrite.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/pipeline_internal.h"
#include "core/service/runtime.h"
#include "core/xmit/xmit_util.h"

namespace lb {

using pipeline_internal::drop;
using pipeline_internal::isNatMethod;
using pipeline_internal::reverseTupleOf;
using pipeline_internal::toHost;

namespace {

constexpr uint8_t kEchoReplyTtl = 64;

// The ICMP / ICMPv6 checksum of the message from l4_off to the end, verified from scratch.
bool icmpChecksumOk(const PacketBuffer& pkt, const L3L4& o, uint32_t len) {
  if (len <= o.l4_off)
    return false;
  uint32_t n = len - o.l4_off;
  uint32_t acc = 0;
  if (o.af == Af::kInet6)
    acc = xmit::pseudoSum(o.src, o.dst, 58, n);
  return xmit::foldComplement(xmit::sumWords(pkt.data() + o.l4_off, n, acc)) == 0;
}

void setIcmpChecksum(PacketBuffer& pkt, const L3L4& o, const IpAddr& src, const IpAddr& dst) {
  uint8_t* d = pkt.data();
  auto n = static_cast<uint32_t>(pkt.size() - o.l4_off);
  xmit::store16(d + o.l4_off + 2, 0);
  uint32_t acc = o.af == Af::kInet6 ? xmit::pseudoSum(src, dst, 58, n) : 0;
  xmit::store16(d + o.l4_off + 2, xmit::foldComplement(xmit::sumWords(d + o.l4_off, n, acc)));
}

}  // namespace

void Pipeline::handleIcmp(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  if (p.pp.is_icmp_error)
    return handleIcmpError(p);
  bool echo = (o.af == Af::kInet && o.icmp_type == kIcmpEcho) ||
              (o.af == Af::kInet6 && o.icmp_type == kIcmp6EchoRequest);
  if (echo && !o.is_fragment && p.snap.isVip(o.dst))
    return echoReply(p);
  // Everything else is for the host (ip_vs_in_icmp: not related => NF_ACCEPT).
  toHost(p.pkt);
}

// ip_vs_out_icmp then ip_vs_in_icmp: the quoted packet, turned around, is looked up as a reply
// (an error from the real-server side about a packet we sent it) and then as a request (an
// error from the client side about a reply we sent the client).
void Pipeline::handleIcmpError(Packet& p) noexcept {
  const L3L4& in = p.pp.inner;
  if (!in.has_l4 ||
      (in.proto != L4Proto::kTcp && in.proto != L4Proto::kUdp && in.proto != L4Proto::kSctp)) {
    return toHost(p.pkt);
  }
  if (!icmpChecksumOk(p.pkt, p.pp.outer, p.bytes))
    return drop(p.pkt, DropReason::kBadChecksum);
  ConnTuple t = reverseTupleOf(in);

  ConnGuard cp = conns_.findOut(t);
  if (cp && isNatMethod(connFwd(*cp))) {
    if (runtime_ != nullptr)
      runtime_->workerStats(worker_).addOut(cp->svc, cp->dest, p.bytes);
    Conn conn = *cp;
    cp.release();
    return xmit(p, conn, Direction::kToClient);  // ip_vs_nat_icmp toward the client
  }
  cp.release();

  cp = conns_.findIn(t);
  if (!cp) {
    // schedule_icmp: a new conn from the quoted packet, turned around (ip_vs_in_icmp ->
    // ip_vs_try_to_schedule with the inverse header). The conn gets no state transition: it
    // keeps the 3 s timeout of a new conn until a packet of its own moves it.
    if (!p.snap.sysctls().schedule_icmp)
      return toHost(p.pkt);  // unrelated
    L3L4 flow = pipeline_internal::reversed(in);
    p.icmp_flow = &flow;
    cp = schedule(p);
    p.icmp_flow = nullptr;
    if (!cp)
      return;  // schedule() set the verdict
  }
  if (runtime_ != nullptr)
    runtime_->workerStats(worker_).addIn(cp->svc, cp->dest, p.bytes);
  Conn conn = *cp;
  if ((conn.flags & kConnFOnePacket) != 0) {
    conns_.expireNow(cp);  // ip_vs_conn_put of a new ONE_PACKET conn: timer 0
  } else {
    cp.release();
  }
  // NAT: ip_vs_nat_icmp toward the real server; DR / tunnel: forwarded as is / encapsulated.
  xmit(p, conn, Direction::kToRealServer);
}

// An echo request to a VIP becomes its reply in place: addresses swapped, type 0 / 129, TTL 64,
// checksums recomputed.
void Pipeline::echoReply(Packet& p) noexcept {
  const L3L4& o = p.pp.outer;
  PacketBuffer& pkt = p.pkt;
  pkt.trim(p.bytes);
  uint8_t* d = pkt.data();
  if (o.af == Af::kInet) {
    std::memcpy(d + 12, o.dst.data(), 4);
    std::memcpy(d + 16, o.src.data(), 4);
    d[8] = kEchoReplyTtl;
    xmit::store16(d + 10, 0);
    xmit::store16(d + 10, xmit::foldComplement(xmit::sumWords(d, o.l3_len, 0)));
    d[o.l4_off] = kIcmpEchoReply;
  } else {
    std::memcpy(d + 8, o.dst.data(), 16);
    std::memcpy(d + 24, o.src.data(), 16);
    d[7] = kEchoReplyTtl;
    d[o.l4_off] = kIcmp6EchoReply;
  }
  pkt.offload = OffloadInfo{};
  setIcmpChecksum(pkt, o, o.dst, o.src);
  pipeline_internal::setVerdict(pkt, Verdict::kForward);
  counters_.icmp_echo_replies.add();
}

void Pipeline::sendIcmp(Packet& p, IcmpKind kind, uint32_t info, const IpAddr& src) noexcept {
  bool v6 = p.pp.outer.af == Af::kInet6;
  uint8_t type = 0, code = 0;
  switch (kind) {
    case IcmpKind::kPortUnreach:
      type = v6 ? kIcmp6DestUnreach : kIcmpDestUnreach;
      code = v6 ? kIcmp6PortUnreach : kIcmpPortUnreach;
      break;
    case IcmpKind::kTimeExceeded:
      type = v6 ? kIcmp6TimeExceeded : kIcmpTimeExceeded;
      code = 0;
      break;
    case IcmpKind::kFragNeeded:
      type = v6 ? kIcmp6PacketTooBig : kIcmpDestUnreach;
      code = v6 ? 0 : kIcmpFragNeeded;
      break;
  }
  PacketBuffer* out = p.sink.allocate();
  if (out == nullptr) {
    counters_.icmp_send_failed.add();
    return;
  }
  if (!buildIcmpError(*out, p.pkt, p.pp.outer, type, code, info, src)) {
    out->reset();  // not to be answered (an ICMP error, a fragment, multicast): left unsent
    return;
  }
  out->verdict = Verdict::kForward;
  out->drop_reason = DropReason::kNone;
  out->tx = TxPath::kTun;
  counters_.icmp_sent.add();
}

}  // namespace lb
