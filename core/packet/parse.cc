// SPDX-License-Identifier: Apache-2.0
// Header parsing. Every read is preceded by a length check against `end`, the end of the IP
// datagram as its header states it (or of the quoted bytes, for the packet inside an ICMP error).
#include "core/packet/parse.h"

#include "core/packet/bytes.h"

namespace lb {
namespace {

constexpr uint8_t kNextHopByHop = 0;
constexpr uint8_t kNextRouting = 43;
constexpr uint8_t kNextFragment = 44;
constexpr uint8_t kNextAh = 51;
constexpr uint8_t kNextDestOpts = 60;
// More extension headers than any sane packet carries (RFC 8200 §4.1 recommends one of each).
constexpr int kMaxExtHeaders = 8;

constexpr uint8_t kSctpChunkInit = 1;
constexpr uint8_t kSctpChunkAbort = 6;

// Whether we parse an outer packet (lengths must be consistent with the buffer) or the packet
// quoted in an ICMP error (truncated; lengths in its headers may exceed what is present).
enum class Mode { kOuter, kQuoted };

bool isIcmpErrorV4(uint8_t type) {
  // ip_vs_in_icmp: only Destination Unreachable, Source Quench and Time Exceeded are related.
  return type == 3 || type == 4 || type == 11;
}

// Parses TCP/UDP/SCTP/ICMP at p.l4_off; [l4_off, end) is what is present of the L4 data.
DropReason parseL4(const uint8_t* d, size_t end, Mode mode, L3L4& p) {
  const size_t off = p.l4_off;
  const size_t avail = end > off ? end - off : 0;
  const uint8_t* l4 = d + off;
  const bool quoted = mode == Mode::kQuoted;
  // A truncated first fragment or quoted packet may lack the tail; the ports must be there.
  const bool partial_ok = quoted || p.is_fragment;
  switch (p.proto) {
    case L4Proto::kTcp: {
      if (avail < (quoted ? 8u : 20u))
        return DropReason::kMalformed;
      p.sport = loadBe16(l4);
      p.dport = loadBe16(l4 + 2);
      if (avail >= 14)
        p.tcp_flags = l4[13];
      if (avail >= 13) {
        size_t doff = static_cast<size_t>(l4[12] >> 4) * 4;
        if (doff < 20)
          return DropReason::kMalformed;
        if (!quoted && doff > avail)
          return DropReason::kMalformed;
      }
      if (avail >= 18)
        p.l4_csum_off = static_cast<uint16_t>(off + 16);
      break;
    }
    case L4Proto::kUdp: {
      if (avail < 8)
        return DropReason::kMalformed;
      p.sport = loadBe16(l4);
      p.dport = loadBe16(l4 + 2);
      size_t ulen = loadBe16(l4 + 4);
      if (ulen < 8)
        return DropReason::kMalformed;
      if (!partial_ok && ulen > avail)
        return DropReason::kMalformed;
      p.l4_csum_off = static_cast<uint16_t>(off + 6);
      break;
    }
    case L4Proto::kSctp: {
      if (avail < 8)
        return DropReason::kMalformed;
      p.sport = loadBe16(l4);
      p.dport = loadBe16(l4 + 2);
      if (avail >= 12)
        p.l4_csum_off = static_cast<uint16_t>(off + 8);
      if (!partial_ok && avail < 16)
        return DropReason::kMalformed;  // common header + a chunk
      if (avail >= 16) {
        p.sctp_chunk = l4[12];
        size_t clen = loadBe16(l4 + 14);
        if (clen < 4)
          return DropReason::kMalformed;
        size_t next = 12 + ((clen + 3) & ~size_t{3});
        if (next + 4 <= avail)
          p.sctp_second_chunk = l4[next];
      }
      break;
    }
    case L4Proto::kIcmp:
    case L4Proto::kIcmpv6: {
      if (avail < 8)
        return DropReason::kMalformed;
      p.icmp_type = l4[0];
      p.icmp_code = l4[1];
      p.l4_csum_off = static_cast<uint16_t>(off + 2);
      bool echo = p.proto == L4Proto::kIcmp ? (p.icmp_type == 8 || p.icmp_type == 0)
                                            : (p.icmp_type == 128 || p.icmp_type == 129);
      if (echo)
        p.sport = p.dport = loadBe16(l4 + 4);
      break;
    }
    default:
      return DropReason::kNone;  // no L4 we understand: has_l4 stays false
  }
  p.has_l4 = true;
  return DropReason::kNone;
}

// IPv4 header at `off`. `size` is the bytes available from the buffer start. On success,
// `end` is the end of the datagram (or of the quoted part).
DropReason parseIpv4(const uint8_t* d, size_t size, size_t off, Mode mode, L3L4& p, size_t& end) {
  if (size < off + 20)
    return DropReason::kMalformed;
  const uint8_t* h = d + off;
  if ((h[0] >> 4) != 4)
    return DropReason::kMalformed;
  size_t ihl = static_cast<size_t>(h[0] & 0x0f) * 4;
  if (ihl < 20 || off + ihl > size)
    return DropReason::kMalformed;
  const size_t stated = loadBe16(h + 2);
  size_t tot = stated;
  size_t avail = size - off;
  if (tot == 0 && mode == Mode::kOuter && avail > 0xffff) {
    tot = avail;  // a GSO super-packet beyond 64 KB (BIG TCP) states tot_len 0
  } else if (tot < ihl) {
    return DropReason::kMalformed;
  } else if (tot > avail) {
    if (mode == Mode::kOuter)
      return DropReason::kMalformed;
    tot = avail;  // quoted packet: truncated by the ICMP error
  }
  p.af = Af::kInet;
  p.l3_off = static_cast<uint16_t>(off);
  p.l3_len = static_cast<uint16_t>(ihl);
  p.l4_off = static_cast<uint16_t>(off + ihl);
  p.tot_len = static_cast<uint32_t>(mode == Mode::kOuter ? tot : stated);
  p.ttl = h[8];
  p.proto = static_cast<L4Proto>(h[9]);
  p.src = IpAddr::fromBytes(Af::kInet, h + 12);
  p.dst = IpAddr::fromBytes(Af::kInet, h + 16);
  uint16_t frag = loadBe16(h + 6);
  p.df = (frag & 0x4000) != 0;
  p.is_fragment = (frag & 0x3fff) != 0;  // MF or a non-zero offset
  p.first_fragment = (frag & 0x1fff) == 0;
  end = off + tot;
  return DropReason::kNone;
}

// IPv6 header and extension-header chain at `off` (ipv6_skip_exthdr, bounded).
DropReason parseIpv6(const uint8_t* d, size_t size, size_t off, Mode mode, L3L4& p, size_t& end) {
  if (size < off + 40)
    return DropReason::kMalformed;
  const uint8_t* h = d + off;
  if ((h[0] >> 4) != 6)
    return DropReason::kMalformed;
  const size_t stated = loadBe16(h + 4);
  size_t plen = stated;
  size_t avail = size - off - 40;
  if (plen == 0 && avail > 0 && mode == Mode::kOuter) {
    if (avail <= 0xffff)
      return DropReason::kUnsupported;  // a jumbogram (RFC 2675)
    plen = avail;                       // GSO super-packet beyond 64 KB (BIG TCP): payload_len 0
  } else if (plen > avail) {
    if (mode == Mode::kOuter)
      return DropReason::kMalformed;
    plen = avail;
  }
  p.af = Af::kInet6;
  p.l3_off = static_cast<uint16_t>(off);
  p.tot_len = static_cast<uint32_t>((mode == Mode::kOuter ? plen : stated) + 40);
  p.ttl = h[7];
  p.src = IpAddr::fromBytes(Af::kInet6, h + 8);
  p.dst = IpAddr::fromBytes(Af::kInet6, h + 24);
  end = off + 40 + plen;
  uint8_t nh = h[6];
  size_t pos = off + 40;
  for (int n = 0;; ++n) {
    if (nh != kNextHopByHop && nh != kNextRouting && nh != kNextDestOpts && nh != kNextFragment &&
        nh != kNextAh) {
      break;  // upper-layer header (or ESP / No Next Header, which end the chain too)
    }
    if (n == kMaxExtHeaders)
      return DropReason::kUnsupported;
    if (pos + 8 > end)
      return DropReason::kMalformed;
    const uint8_t* e = d + pos;
    size_t len;
    if (nh == kNextFragment) {
      len = 8;
      uint16_t fo = loadBe16(e + 2);
      p.is_fragment = true;
      p.first_fragment = (fo & 0xfff8) == 0;
      p.frag_hdr_off = static_cast<uint16_t>(pos);
    } else if (nh == kNextAh) {
      len = (static_cast<size_t>(e[1]) + 2) * 4;
    } else {
      len = (static_cast<size_t>(e[1]) + 1) * 8;
    }
    nh = e[0];
    pos += len;
    if (pos > end)
      return DropReason::kMalformed;
    if (p.is_fragment && !p.first_fragment)
      break;  // the rest is payload of the datagram
  }
  // Offsets are 16-bit; headers that end this deep are not worth supporting.
  if (pos > 0xff00)
    return DropReason::kUnsupported;
  p.proto = static_cast<L4Proto>(nh);
  p.l3_len = static_cast<uint16_t>(pos - off);
  p.l4_off = static_cast<uint16_t>(pos);
  return DropReason::kNone;
}

// One IP header chain (v4 or v6 by the version nibble, which must match `want` unless kUnspec)
// plus its L4 header.
DropReason parseChain(const uint8_t* d, size_t size, size_t off, Mode mode, Af want, L3L4& p) {
  p = L3L4{};
  if (size < off + 1)
    return DropReason::kMalformed;
  const uint8_t version = d[off] >> 4;
  size_t end = 0;
  DropReason r;
  if (version == 4 && want != Af::kInet6) {
    r = parseIpv4(d, size, off, mode, p, end);
  } else if (version == 6 && want != Af::kInet) {
    r = parseIpv6(d, size, off, mode, p, end);
  } else {
    return mode == Mode::kOuter && version != 4 && version != 6 ? DropReason::kUnsupported
                                                                : DropReason::kMalformed;
  }
  if (r != DropReason::kNone)
    return r;
  if (p.af == Af::kInet && p.proto == L4Proto::kIcmpv6)
    return DropReason::kNone;
  if (p.af == Af::kInet6 && p.proto == L4Proto::kIcmp)
    return DropReason::kNone;
  if (!p.first_fragment)
    return DropReason::kNone;  // a non-first fragment has no L4 header
  return parseL4(d, end, mode, p);
}

}  // namespace

DropReason parsePacket(absl::Span<const uint8_t> pkt, ParsedPacket& out) noexcept {
  out.is_icmp_error = false;
  out.inner = L3L4{};
  DropReason r = parseChain(pkt.data(), pkt.size(), 0, Mode::kOuter, Af::kUnspec, out.outer);
  if (r != DropReason::kNone)
    return r;
  const L3L4& o = out.outer;
  if (!o.has_l4)
    return DropReason::kNone;
  bool error = false;
  if (o.proto == L4Proto::kIcmp)
    error = isIcmpErrorV4(o.icmp_type);
  if (o.proto == L4Proto::kIcmpv6)
    error = o.icmp_type < 128;  // ICMPv6 error messages
  if (!error)
    return DropReason::kNone;
  // The quoted packet ends where the ICMP message ends (the outer datagram), not where its own
  // header says. Its L4 must hold the 8 bytes with the ports (RFC 792).
  const size_t end = size_t{o.l3_off} + o.tot_len;
  r = parseChain(pkt.data(), end, size_t{o.l4_off} + 8, Mode::kQuoted, o.af, out.inner);
  if (r != DropReason::kNone)
    return r;
  out.is_icmp_error = true;
  return DropReason::kNone;
}

bool isNewConnPacket(const L3L4& p, bool sloppy_tcp, bool sloppy_sctp) noexcept {
  if (!p.has_l4)
    return false;
  switch (p.proto) {
    case L4Proto::kTcp:
      // tcp_conn_schedule: (th->syn || sloppy_tcp) && !th->rst; SYN+ACK allowed (active FTP).
      return ((p.tcp_flags & kTcpSyn) != 0 || sloppy_tcp) && (p.tcp_flags & kTcpRst) == 0;
    case L4Proto::kSctp:
      // sctp_conn_schedule: not ABORT, and INIT unless sloppy_sctp.
      return p.sctp_chunk != kSctpChunkAbort && (sloppy_sctp || p.sctp_chunk == kSctpChunkInit);
    case L4Proto::kUdp:
      return true;
    default:
      return false;
  }
}

}  // namespace lb
