// SPDX-License-Identifier: Apache-2.0
// In-place header rewrites with incremental checksum updates; what ip_vs_nat_xmit and
// handle_response do to a packet. Each honours OffloadInfo::kPartial (pseudo-header only).
#pragma once

#include <cstdint>

#include "core/base/addr.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"

namespace lb {

// Rewrites the destination address and port of the outer header (DNAT), updating the IPv4
// header checksum and the L4 checksum as tcp/udp/sctp_dnat_handler do: TCP/UDP incremental
// (RFC 1624); a zero UDP checksum computed in full (a computed 0 sent as 0xffff) unless the
// packet is a fragment; SCTP CRC32c recomputed when the port changes. ICMP/ICMPv6 echo: the
// identifier is the port. With OffloadInfo::kPartial only the pseudo-header part (addresses)
// is adjusted and ports are left to the checksum completion; SCTP is then computed in full and
// the offload cleared. Without an L4 header (non-first fragment, other protocols) only the IP
// header changes. `p` is updated to match. Hot path. Returns kNone, or kMalformed when the
// family differs from the packet's or `p` does not fit the buffer.
DropReason rewriteDst(PacketBuffer& pkt, L3L4& p, const IpAddr& addr, uint16_t port) noexcept;
// Rewrites the source address and port (SNAT), as above.
DropReason rewriteSrc(PacketBuffer& pkt, L3L4& p, const IpAddr& addr, uint16_t port) noexcept;

// Decrements TTL / hop limit, updating the IPv4 header checksum. Returns false when the TTL is
// already <= 1 (the caller answers Time Exceeded). Hot path.
bool decrementTtl(PacketBuffer& pkt, const L3L4& p) noexcept;

// For an ICMP error whose quoted packet is described by `pp.inner`: rewrites the inner source
// (or destination) address and port and the outer destination (or source), then recomputes the
// ICMP checksum from scratch, as ip_vs_nat_icmp / ip_vs_nat_icmp_v6 do. The inner IPv4 header
// checksum is recomputed; beyond the kernel, the inner TCP/UDP checksum is also updated
// incrementally when it lies within the quote (SCTP's CRC is left: it covers unquoted bytes).
// Ports are rewritten for inner TCP/UDP/SCTP only. Returns kMalformed if `pp` is not an ICMP
// error or the families differ. Hot path.
//   inner_src == true:  inner src := addr:port, outer dst := outer_addr (toward a real server)
//   inner_src == false: inner dst := addr:port, outer src := outer_addr (toward the client)
DropReason rewriteIcmpError(PacketBuffer& pkt,
                            ParsedPacket& pp,
                            bool inner_src,
                            const IpAddr& addr,
                            uint16_t port,
                            const IpAddr& outer_addr) noexcept;

// Writes into `out` an ICMP (v4) or ICMPv6 error about `orig` (the offending packet as
// received): type/code/info (MTU for frag-needed / packet-too-big), from `src` to the
// original sender, quoting as much of the original as fits in 576 (v4) / 1280 (v6) bytes.
// IPv4: TTL 64, TOS = original TOS bits | 0xc0, IP ID 0, no DF. IPv6: hop limit 64. `out` is
// reset first. Returns false when `orig` must not be answered (it is itself an ICMP error, a
// non-first fragment, from an unspecified/multicast/broadcast source, or to a multicast or
// broadcast destination; IPv6 allows Packet Too Big to multicast) or `src` is of the other
// family. Hot path.
bool buildIcmpError(PacketBuffer& out,
                    const PacketBuffer& orig,
                    const L3L4& p,
                    uint8_t type,
                    uint8_t code,
                    uint32_t info,
                    const IpAddr& src) noexcept;

// ICMP types and codes used by the pipeline.
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreach = 3;
inline constexpr uint8_t kIcmpSourceQuench = 4;
inline constexpr uint8_t kIcmpEcho = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpPortUnreach = 3;  // code
inline constexpr uint8_t kIcmpFragNeeded = 4;   // code
inline constexpr uint8_t kIcmp6DestUnreach = 1;
inline constexpr uint8_t kIcmp6PacketTooBig = 2;
inline constexpr uint8_t kIcmp6TimeExceeded = 3;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;
inline constexpr uint8_t kIcmp6PortUnreach = 4;  // code

}  // namespace lb
