// SPDX-License-Identifier: Apache-2.0
// Header parsing for IPv4 (options, fragments), IPv6 (extension-header chain), TCP, UDP, SCTP,
// ICMP and ICMPv6, including the packet quoted inside an ICMP error. The analogue of the
// header pulls in ip_vs_core.c (ip_vs_fill_iph_skb, ip_vs_in_icmp).
#pragma once

#include <cstdint>

#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/base/verdict.h"

namespace lb {

// TCP flag bits as in the TCP header's byte 13.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

// L3 + L4 view of one IP header chain. All offsets are from the start of the buffer passed to
// parse. Ports are host order. Addresses are copies. Value type, no ownership.
struct L3L4 {
  Af af = Af::kUnspec;
  L4Proto proto = L4Proto::kNone;  // upper-layer protocol after the extension-header chain
  IpAddr src, dst;
  uint16_t l3_off = 0;  // start of the IP header
  uint16_t l3_len = 0;  // IPv4 IHL*4, or IPv6 40 + extension headers
  uint16_t l4_off = 0;  // start of the L4 header (== l3_off + l3_len)
  // IP total length (bytes from l3_off; IPv6: 40 + payload length). For an outer packet this is
  // where the datagram ends in the buffer (trailing bytes beyond it are link padding); a GSO
  // super-packet over 64 KB stating 0 gets the buffer's length. For a quoted packet it is what
  // its header states, which may exceed the bytes quoted.
  uint32_t tot_len = 0;
  uint8_t ttl = 0;             // TTL / hop limit
  bool is_fragment = false;    // any fragment (MF set or offset != 0; IPv6 fragment header)
  bool first_fragment = true;  // offset 0: L4 header present
  bool df = false;             // IPv4 DF bit
  uint16_t frag_hdr_off = 0;   // IPv6: offset of the fragment header, 0 if none
  // L4 (valid when has_l4).
  bool has_l4 = false;
  uint16_t sport = 0, dport = 0;  // TCP/UDP/SCTP ports; ICMP: echo id in both
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0, icmp_code = 0;
  uint8_t sctp_chunk = 0;            // type of the first SCTP chunk
  uint8_t sctp_second_chunk = 0xff;  // type of the second chunk, 0xff if none (ABORT-after-COOKIE)
  uint16_t l4_csum_off = 0;          // offset of the L4 checksum (SCTP: CRC32c field), 0 if none
};

// A parsed packet: the outer headers and, for an ICMP/ICMPv6 error, the quoted inner packet
// (which may be truncated: the inner L4 has ports at least, per RFC 792's 8 bytes).
struct ParsedPacket {
  L3L4 outer;
  bool is_icmp_error = false;  // Destination Unreachable, Source Quench, Time Exceeded (v4);
                               // ICMPv6 type < 128 (ip_vs_in_icmp / ip_vs_in_icmp_v6)
  L3L4 inner;                  // valid when is_icmp_error
};

// Parses `pkt` (starting at an IP header; no link-layer header). Never reads outside `pkt`.
// Returns:
//   kNone        parsed. has_l4 is false for a non-first fragment and for protocols other than
//                TCP/UDP/SCTP/ICMP/ICMPv6 (proto still says which); the caller decides.
//   kMalformed   bad version/IHL/length, TCP data offset, UDP length, SCTP chunk length, an
//                extension header running past the payload, a truncated L4 header, or an ICMP
//                error whose quoted packet lacks its IP header or the 8 L4 bytes with the ports
//                (or is of the other address family). Trailing bytes past the IP length are
//                allowed (link padding); the IP length governs.
//   kUnsupported IP version other than 4/6 (outer), an IPv6 jumbogram, more than 8 IPv6
//                extension headers, or headers ending past offset 0xff00.
// Any thread. Hot path.
DropReason parsePacket(absl::Span<const uint8_t> pkt, ParsedPacket& out) noexcept;

// True for a packet that may create a connection: TCP SYN without RST (or, with sloppy, any
// non-RST), SCTP INIT (or, with sloppy, any non-ABORT), any UDP. ip_vs_proto_*.c conn_schedule.
bool isNewConnPacket(const L3L4& p, bool sloppy_tcp, bool sloppy_sctp) noexcept;

}  // namespace lb
