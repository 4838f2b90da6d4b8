// SPDX-License-Identifier: Apache-2.0
// State of one packet on its way through Pipeline::process, and small helpers shared by the
// pipeline's source files. Internal to core/pipeline.
#pragma once

#include <cstdint>

#include "core/conn/conn.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/pipeline/pipeline.h"
#include "core/service/snapshot.h"

namespace lb {

struct Pipeline::Packet {
  const ServiceSnapshot& snap;
  PacketBuffer& pkt;
  PacketSink& sink;
  MonoTime now;
  ParsedPacket pp;
  uint32_t bytes = 0;  // length as received (ip_vs_in_stats counts skb->len before xmit)
  // The client -> VIP tuple a new conn is scheduled from: the packet itself, or for an ICMP
  // error scheduled with schedule_icmp the quoted packet turned around (the kernel's
  // IP_VS_HDR_INVERSE header).
  const L3L4* icmp_flow = nullptr;
  // SYN proxy: a client's ACK with a valid cookie (synproxy.cc) is scheduled as a new conn;
  // mss != 0 marks it. seq_delta: the conn's ConnGuard::seqDelta, for xmit.
  uint16_t synproxy_mss = 0;
  uint32_t synproxy_isn = 0;     // the client's ISN
  uint32_t synproxy_cookie = 0;  // lbd's ISN towards the client
  uint32_t seq_delta = 0;

  const L3L4& flow() const { return icmp_flow != nullptr ? *icmp_flow : pp.outer; }

  bool fromIcmp() const { return icmp_flow != nullptr; }
};

namespace pipeline_internal {

inline void setVerdict(PacketBuffer& pkt, Verdict v, DropReason r = DropReason::kNone) {
  pkt.verdict = v;
  pkt.drop_reason = r;
}

inline void drop(PacketBuffer& pkt, DropReason r) {
  setVerdict(pkt, Verdict::kDrop, r);
}

inline void toHost(PacketBuffer& pkt) {
  setVerdict(pkt, Verdict::kToHost);
}

// The packet's own tuple (src = saddr:sport), as findIn / findOut take it.
inline ConnTuple tupleOf(const L3L4& o) {
  ConnTuple t;
  t.af = o.af;
  t.proto = o.proto;
  t.saddr = o.src;
  t.daddr = o.dst;
  t.sport = o.sport;
  t.dport = o.dport;
  return t;
}

// The tuple of the packet an ICMP error quotes, turned around (src and dst swapped).
inline ConnTuple reverseTupleOf(const L3L4& o) {
  ConnTuple t = tupleOf(o);
  t.saddr = o.dst;
  t.daddr = o.src;
  t.sport = o.dport;
  t.dport = o.sport;
  return t;
}

// The quoted packet of an ICMP error turned around: the client -> VIP direction of the conn the
// error is about (ports and addresses swapped; everything else as quoted).
inline L3L4 reversed(const L3L4& o) {
  L3L4 r = o;
  r.src = o.dst;
  r.dst = o.src;
  r.sport = o.dport;
  r.dport = o.sport;
  return r;
}

// A hash of the conn's client side (GUE source port, full-NAT pool hint).
inline uint32_t flowHash(
    const IpAddr& caddr, uint16_t cport, const IpAddr& vaddr, uint16_t vport, L4Proto proto) {
  uint64_t h = (uint64_t{caddr.fold()} << 32) | vaddr.fold();
  h ^= ((uint64_t{cport} << 24) | (uint64_t{vport} << 8) | static_cast<uint8_t>(proto)) *
       0x9e3779b97f4a7c15ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<uint32_t>(h);
}

inline bool isNatMethod(FwdMethod m) {
  return m == FwdMethod::kMasq || m == FwdMethod::kFullNat;
}

inline uint32_t fwdFlags(FwdMethod m) {
  return m == FwdMethod::kFullNat ? kConnFFullNat : static_cast<uint32_t>(m);
}

}  // namespace pipeline_internal
}  // namespace lb
