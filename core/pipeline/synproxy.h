// SPDX-License-Identifier: Apache-2.0
// The SYN proxy's SYN cookies and TCP header surgery (DPVS's ip_vs_synproxy.c, the kernel's
// syncookies.c): pure functions; the pipeline's use of them is in synproxy.cc.
//
// A cookie is the kernel's scheme (cookie_v4_init_sequence / __cookie_v4_check) over a keyed
// hash of the connection's addresses and ports: with c = the time counter (64 s steps), m = the
// index of the MSS in a 4-entry table and isn the client's ISN,
//   cookie = H1 + isn + (c << 24) + ((H2(c) + m) mod 2^24)
// which is valid for two counter steps (64..128 s). Nothing else is encoded: the SYN-ACK offers
// only MSS, so neither side uses window scaling, SACK or timestamps on a proxied connection.
#pragma once

#include <cstdint>
#include <optional>

#include "core/base/addr.h"
#include "core/base/time.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"

namespace lb::synproxy {

// The client's side of the connection a cookie is for, as the SYN carries it.
struct CookieFlow {
  IpAddr saddr, daddr;
  uint16_t sport = 0, dport = 0;
};

// The window of lbd's SYN-ACK (no window scaling is offered).
inline constexpr uint16_t kSynAckWindow = 65535;

// The process's cookie key, from its conn table's random seed (ConnTable::seed). The pipeline
// and the tc program (io/bpf, which answers SYNs in the kernel) both use it.
constexpr uint64_t secretOf(uint64_t table_seed) {
  return table_seed ^ 0x5350524f58590001ull;  // "SPROXY"
}

// The MSS option of lbd's SYN-ACK: the pipeline's MTU less the IP and TCP headers.
constexpr uint16_t synAckMss(uint32_t mtu, Af af) {
  return static_cast<uint16_t>(mtu - (af == Af::kInet ? 40 : 60));
}

// The MSS a cookie can carry (the kernel's msstab): the largest not above the client's.
uint16_t cookieMss(uint16_t client_mss) noexcept;

// The ISN of lbd's SYN-ACK for a SYN with `client_isn` and MSS option `client_mss` (0: none,
// 536 assumed). `secret` is the process's key. Pure.
uint32_t makeCookie(
    uint64_t secret, const CookieFlow& f, uint32_t client_isn, uint16_t client_mss, MonoTime now);

// Checks the cookie an ACK returns (its ack number - 1) against its seq number - 1 (the
// client's ISN). The MSS it carries, or nullopt when it is not a valid cookie of the last two
// counter steps. Pure.
std::optional<uint16_t> checkCookie(
    uint64_t secret, const CookieFlow& f, uint32_t client_isn, uint32_t cookie, MonoTime now);

// The MSS option of a TCP SYN (0 when absent). `tcp` is the TCP header and its options.
uint16_t synMss(const uint8_t* tcp, size_t len) noexcept;

// What a rewritten segment carries.
struct Segment {
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;  // kTcp*
  uint16_t window = 0;
  uint16_t mss = 0;  // non-zero: an MSS option (SYN, SYN-ACK)
};

// Rewrites the TCP packet in `pkt` (IPv4 without options or IPv6 without extension headers,
// parsed as `o`) into a bare segment `s` with no payload: addresses, ports, numbers, flags,
// window and options replaced, TTL / hop limit 64, both checksums computed whole, offloads
// cleared. False (nothing changed) for a packet with IP options or extension headers. Hot path.
bool rewriteSegment(PacketBuffer& pkt, const L3L4& o, const Segment& s) noexcept;

// Adds `delta` to the TCP sequence number (`ack` false) or the acknowledgement number (`ack`
// true) of the parsed TCP packet, keeping its checksum right (a CHECKSUM_PARTIAL one needs no
// change: it covers the pseudo-header only). Hot path.
void addToSeq(PacketBuffer& pkt, const L3L4& o, uint32_t delta, bool ack) noexcept;

// The TCP sequence and acknowledgement numbers of a parsed packet.
uint32_t tcpSeq(const PacketBuffer& pkt, const L3L4& o) noexcept;
uint32_t tcpAck(const PacketBuffer& pkt, const L3L4& o) noexcept;

}  // namespace lb::synproxy
