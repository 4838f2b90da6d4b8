// SPDX-License-Identifier: Apache-2.0
// Userspace GSO for encapsulated super-packets. The kernel cannot take an IPIP/GUE/GRE-wrapped
// GSO packet from a TUN device (virtio_net_hdr has no SKB_GSO_IPXIP4/6 or GRE type:
// ipip_gso_segment is never reached and the write is dropped at egress), so lbd reads TCP and
// UDP super-packets whole (TSO/USO stay on), the tunnel forwarder encapsulates the super-packet
// once, and io/ cuts it here into wire packets: tcp_gso_segment / __udp_gso_segment for the
// inner packet and the outer header's per-segment fields (skb_udp_tunnel_segment,
// gre_gso_segment, ipip_gso_segment's inet_gso_segment), all checksums final in software.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/packet/packet_buffer.h"

namespace lb::xmit {

// Where the headers of an encapsulated super-packet sit (offsets from data()).
struct TunnelGsoPlan {
  uint16_t outer_l3_len = 0;  // outer IPv4 (IHL) or IPv6 (40) header
  uint16_t encap_len = 0;     // UDP + GUE, or GRE header; 0 for IP-in-IP
  uint16_t inner_l3 = 0;      // inner IP header
  uint16_t inner_l4 = 0;      // inner TCP / UDP header
  uint16_t hdrs = 0;          // every header: the payload starts here
  uint16_t seg = 0;           // payload bytes per segment (the last may be shorter)
  uint16_t count = 0;         // wire packets
  bool outer_v6 = false;
  bool inner_v6 = false;
  bool udp = false;  // inner UDP (USO): each segment is a datagram of its own
};

// Reads the headers of `p`, an encapsulated packet with pkt.offload.gso set and csum_start at
// the inner L4 header (as TunnelForwarder leaves it), and plans its segments of
// offload.gso_size payload bytes. False if `p` is not such a packet. Hot path.
bool planTunnelGso(const PacketBuffer& p, TunnelGsoPlan& plan) noexcept;

// Writes wire packet `i` (< plan.count) of `p` into `out` (reset first): the headers with
// every length, IPv4 ID (+i), TCP sequence number (+i * seg), TCP flags (CWR on the first only,
// FIN and PSH on the last only), the inner L4 checksum, the inner and outer IPv4 header
// checksums, and a GUE UDP or GRE checksum when the super-packet carries one. `out` leaves
// with no offload request. False if `out` lacks room. Hot path: no allocation.
bool writeTunnelGsoSegment(const PacketBuffer& p,
                           const TunnelGsoPlan& plan,
                           size_t i,
                           PacketBuffer& out) noexcept;

// RFC 1071 sum of `n` bytes (odd tail padded with zero) in the big-endian convention of
// xmit_util.h's sumWords, eight bytes at a time. Hot path.
uint32_t sumBytesFast(const uint8_t* p, size_t n, uint32_t acc) noexcept;

}  // namespace lb::xmit

namespace lb::xmit {

// The receive half (lbd --mode=decap): consecutive in-order TCP segments of one flow, as they
// come out of the tunnel, joined into one super-packet that one TUN write hands the kernel
// with a virtio GSO request, as tcp_gro_receive would join them: same addresses, TOS, TTL,
// ports, ack, window and options; seq continuing the head; head flags ACK only (a PSH or a
// short segment ends the run); no IPv4 options or IPv6 extension headers; at most 64 KB.
// Each segment's TCP checksum is verified before it is joined (the kernel will not check a
// CHECKSUM_PARTIAL packet again). `head` holds an inner IP packet; true if `next` was
// appended to it. Hot path.
bool tcpCoalesce(PacketBuffer& head, const PacketBuffer& next) noexcept;

// The receive half of a kernel-segmented GUE tunnel (docs/tunnel-speed.md): a super-packet the
// LB handed its kernel whole crosses veth whole, and a UDP socket reads it as one datagram
// whose inner TCP checksum is still partial (the pseudo-header sum; CHECKSUM_PARTIAL is never
// finished on that path) and whose gso_size it cannot learn. If `p` (an inner IP packet, no
// offload set) is TCP whose checksum field is the pseudo-header sum of its own length and
// whose checksum does not verify, it is taken as such a packet: CHECKSUM_PARTIAL at its TCP
// header, and a GSO request of `mtu` - headers bytes per segment when its payload is larger
// (the kernel segments it only where it is forwarded on). True if `p` was adopted; any other
// packet is left as it is. finishCoalesced completes what the TUN write needs.
// `unwired`: the caller knows `p` never crossed a wire as one piece (a datagram larger than any
// link carries that was not reassembled from fragments): the checksum is not verified first.
// A complete segment whose field happens to be the pseudo-header sum is then adopted too, which
// is harmless: completing that field over the segment gives its own checksum back. Hot path.
bool adoptPartialTcp(PacketBuffer& p, size_t mtu, bool unwired = false) noexcept;

// After tcpCoalesce appended to `head`: the IPv4 header checksum and the GSO request
// (gso_size = the first segment's payload, CHECKSUM_PARTIAL with the pseudo-header sum in the
// TCP checksum field). Nothing to do for a packet nothing was appended to. Hot path.
void finishCoalesced(PacketBuffer& head) noexcept;

}  // namespace lb::xmit
