// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the forwarders (the route/TTL/MTU half of ip_vs_xmit.c's __ip_vs_get_out_rt
// and ensure_mtu_is_adequate) and the per-method instances the registry hands out. Internal to
// core/xmit (tests may include it).
#pragma once

#include <cstdint>

#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/xmit/forwarder.h"

namespace lb::xmit {

// A kDrop result with `reason`.
inline XmitResult dropWith(DropReason reason, uint32_t mtu = 0) {
  return XmitResult{Verdict::kDrop, reason, mtu};
}

inline XmitResult forwarded() {
  return XmitResult{Verdict::kForward, DropReason::kNone, 0};
}

// The checks __ip_vs_get_out_rt makes before a packet may leave, in the kernel's order:
// TTL <= 1 => kTtlExceeded (decrement_ttl); then ensure_mtu_is_adequate: an IPv4 packet with DF
// (or any IPv6 packet) longer than `mtu` => kFragNeeded carrying `mtu`. GSO super-packets and
// packets carried inside an ICMP error are exempt, as in the kernel. `df_check` false skips the
// IPv4 DF rule (tunnels with pmtu_disc=0: the outer packet is fragmented instead).
// Returns kForward when the packet may go. Hot path.
XmitResult checkTtlAndMtu(const PacketBuffer& pkt,
                          const ParsedPacket& pp,
                          uint32_t mtu,
                          bool df_check) noexcept;

// Decrements the outer TTL / hop limit (IPv4 header checksum updated) and keeps pp in step.
// Call only after checkTtlAndMtu passed. Hot path.
void decrementOuterTtl(PacketBuffer& pkt, ParsedPacket& pp) noexcept;

// The length of the packet as the IP header states it (skb->len after ip_rcv's trim).
inline uint32_t packetLength(const PacketBuffer& pkt, const ParsedPacket& pp) {
  uint32_t tot = pp.outer.tot_len;
  if (tot == 0 || tot > pkt.size())
    tot = static_cast<uint32_t>(pkt.size());
  return tot;
}

// udp_flow_src_port() with the default ephemeral range 32768..60999 (include/net/udp.h):
// hash ^= hash << 16; port = ((u64)hash * (max - min)) >> 32) + min. Host order.
uint16_t udpFlowSrcPort(uint32_t flow_hash) noexcept;

// INET_ECN_encapsulate(inner, inner) (include/net/inet_ecn.h): the outer TOS/traffic class is
// the inner one, except that CE becomes ECT(0) (ip_vs_prepare_tunneled_skb).
inline uint8_t ecnEncapsulate(uint8_t inner_dsfield) {
  constexpr uint8_t kEcnMask = 0x03, kEcnCe = 0x03, kEcnEct0 = 0x02;
  uint8_t outer = static_cast<uint8_t>(inner_dsfield & ~kEcnMask);
  return static_cast<uint8_t>(
      outer | ((inner_dsfield & kEcnMask) == kEcnCe ? kEcnEct0 : (inner_dsfield & kEcnMask)));
}

// Completes a CHECKSUM_PARTIAL L4 checksum in software (skb_checksum_help) and clears the
// offload request. False when csum_start/csum_offset point outside the packet. Hot path.
bool resolvePartialChecksum(PacketBuffer& pkt, L4Proto proto) noexcept;

// Big-endian loads/stores.
inline uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// RFC 1071 sum of big-endian 16-bit words (odd tail padded with zero), added to `acc`.
uint32_t sumWords(const uint8_t* p, size_t n, uint32_t acc) noexcept;
// Folds and complements: the host-order value to store with store16.
uint16_t foldComplement(uint32_t acc) noexcept;
// Pseudo-header sum (RFC 768 / RFC 8200 §8.1) in the same big-endian convention.
uint32_t pseudoSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t len) noexcept;

// The one instance of each method (registry.cc hands them out).
Forwarder& natForwarder() noexcept;
Forwarder& fullNatForwarder() noexcept;
Forwarder& drForwarder() noexcept;
Forwarder& tunnelForwarder() noexcept;

}  // namespace lb::xmit
