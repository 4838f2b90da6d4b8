// SPDX-License-Identifier: Apache-2.0
// NAT rewrites: tcp_dnat_handler / tcp_snat_handler (ip_vs_proto_tcp.c), udp_*nat_handler
// (ip_vs_proto_udp.c), sctp_*nat_handler (ip_vs_proto_sctp.c) and ip_vs_nat_icmp[_v6]
// (ip_vs_core.c), done on our PacketBuffer with incremental checksum updates (RFC 1624).
#include "core/packet/rewrite.h"

#include <cstring>

#include "core/packet/bytes.h"
#include "core/packet/checksum.h"

namespace lb {
namespace {

constexpr size_t kIpv4SrcOff = 12, kIpv4DstOff = 16, kIpv4CsumOff = 10;
constexpr size_t kIpv6SrcOff = 8, kIpv6DstOff = 24;

// A host-order port as it sits in the packet (network order in a native integer).
uint16_t rawPort(uint16_t host) noexcept {
  uint8_t b[2];
  storeBe16(b, host);
  return loadRaw16(b);
}

size_t addrOffset(Af af, bool dst) noexcept {
  if (af == Af::kInet)
    return dst ? kIpv4DstOff : kIpv4SrcOff;
  return dst ? kIpv6DstOff : kIpv6SrcOff;
}

// Replaces the source or destination address of the IP header at `l3`, fixing the IPv4 header
// checksum incrementally. Returns the old address. The caller checked the header is present.
IpAddr replaceAddr(uint8_t* l3, Af af, bool dst, const IpAddr& addr) noexcept {
  uint8_t* a = l3 + addrOffset(af, dst);
  IpAddr old = IpAddr::fromBytes(af, a);
  std::memcpy(a, addr.data(), addr.size());
  if (af == Af::kInet) {
    storeRaw16(l3 + kIpv4CsumOff, csumReplaceAddr(loadRaw16(l3 + kIpv4CsumOff), old, addr));
  }
  return old;
}

// A UDP checksum that computes to 0 is sent as 0xffff; 0 means "no checksum" (RFC 768).
uint16_t udpMangle0(uint16_t c) noexcept {
  return c == 0 ? 0xffff : c;
}

// TCP/UDP checksum field update for an address and port change (tcp_fast_csum_update), or, for
// CHECKSUM_PARTIAL, the pseudo-header-only update (tcp_partial_csum_update): the ports are
// summed later by whoever completes the checksum.
uint16_t portAddrUpdate(uint16_t c,
                        bool partial,
                        const IpAddr& old_addr,
                        const IpAddr& new_addr,
                        uint16_t old_port,
                        uint16_t new_port) noexcept {
  if (partial)
    return csumReplaceAddrPartial(c, old_addr, new_addr);
  c = csumReplaceAddr(c, old_addr, new_addr);
  return csumReplace2(c, old_port, new_port);
}

// Full UDP checksum over [l4, end) with the new addresses (the else-branch of udp_dnat_handler:
// taken when the packet came with checksum 0).
uint16_t udpFullChecksum(uint8_t* d, const L3L4& p, size_t end) noexcept {
  const size_t len = end - p.l4_off;
  storeRaw16(d + p.l4_off + 6, 0);
  uint32_t s = pseudoHeaderSum(p.src, p.dst, L4Proto::kUdp, static_cast<uint32_t>(len));
  return udpMangle0(csumFold(csumPartial({d + p.l4_off, len}, s)));
}

// Recomputes the SCTP CRC32c over [l4, end) (sctp_nat_csum), stored little-endian.
void sctpRecompute(uint8_t* d, size_t l4, size_t end) noexcept {
  uint8_t* f = d + l4 + 8;
  std::memset(f, 0, 4);
  uint32_t crc = crc32c({d + l4, end - l4});
  f[0] = static_cast<uint8_t>(crc);
  f[1] = static_cast<uint8_t>(crc >> 8);
  f[2] = static_cast<uint8_t>(crc >> 16);
  f[3] = static_cast<uint8_t>(crc >> 24);
}

bool isIcmpEcho(const L3L4& p) noexcept {
  if (p.proto == L4Proto::kIcmp)
    return p.icmp_type == kIcmpEcho || p.icmp_type == kIcmpEchoReply;
  return p.icmp_type == kIcmp6EchoRequest || p.icmp_type == kIcmp6EchoReply;
}

// The L4 half of a rewrite: the address in the IP header already changed from `old_addr`.
DropReason rewriteL4(PacketBuffer& pkt,
                     L3L4& p,
                     bool dst,
                     const IpAddr& old_addr,
                     const IpAddr& new_addr,
                     uint16_t port) noexcept {
  uint8_t* d = pkt.data();
  const size_t end = size_t{p.l3_off} + p.tot_len;
  if (end > pkt.size())
    return DropReason::kMalformed;
  const size_t l4 = p.l4_off;
  const bool partial = pkt.offload.csum == OffloadInfo::Csum::kPartial;
  const size_t port_off = l4 + (dst ? 2 : 0);
  const uint16_t new_port = rawPort(port);
  switch (p.proto) {
    case L4Proto::kTcp: {
      if (l4 + 20 > end)
        return DropReason::kMalformed;
      const uint16_t old_port = loadRaw16(d + port_off);
      storeRaw16(d + port_off, new_port);
      uint16_t c = loadRaw16(d + l4 + 16);
      storeRaw16(d + l4 + 16, portAddrUpdate(c, partial, old_addr, new_addr, old_port, new_port));
      break;
    }
    case L4Proto::kUdp: {
      if (l4 + 8 > end)
        return DropReason::kMalformed;
      const uint16_t old_port = loadRaw16(d + port_off);
      storeRaw16(d + port_off, new_port);
      uint16_t c = loadRaw16(d + l4 + 6);
      if (partial) {
        c = csumReplaceAddrPartial(c, old_addr, new_addr);
      } else if (c != 0) {
        c = udpMangle0(portAddrUpdate(c, false, old_addr, new_addr, old_port, new_port));
      } else if (!p.is_fragment) {
        c = udpFullChecksum(d, p, end);  // ip_vs_proto_udp.c computes a zero checksum in full
      }
      storeRaw16(d + l4 + 6, c);
      break;
    }
    case L4Proto::kSctp: {
      if (l4 + 12 > end)
        return DropReason::kMalformed;
      // sctp_dnat_handler: only when the port changes (or CHECKSUM_PARTIAL) is the CRC redone;
      // addresses are not covered by it. A fragment's CRC covers data we do not have.
      if (loadRaw16(d + port_off) != new_port || partial) {
        storeRaw16(d + port_off, new_port);
        if (!p.is_fragment)
          sctpRecompute(d, l4, end);
        if (partial)
          pkt.offload.csum = OffloadInfo::Csum::kNone;
      }
      break;
    }
    case L4Proto::kIcmp:
    case L4Proto::kIcmpv6: {
      if (l4 + 8 > end)
        return DropReason::kMalformed;
      uint16_t c = loadRaw16(d + l4 + 2);
      const bool v6 = p.proto == L4Proto::kIcmpv6;
      // ICMPv6 covers a pseudo header; ICMP does not.
      if (v6)
        c = partial ? csumReplaceAddrPartial(c, old_addr, new_addr)
                    : csumReplaceAddr(c, old_addr, new_addr);
      if (isIcmpEcho(p)) {
        // The echo identifier plays the port.
        if (!partial)
          c = csumReplace2(c, loadRaw16(d + l4 + 4), new_port);
        storeRaw16(d + l4 + 4, new_port);
        p.sport = p.dport = port;
      }
      storeRaw16(d + l4 + 2, c);
      return DropReason::kNone;
    }
    default:
      return DropReason::kNone;
  }
  (dst ? p.dport : p.sport) = port;
  return DropReason::kNone;
}

DropReason rewriteAddrPort(
    PacketBuffer& pkt, L3L4& p, bool dst, const IpAddr& addr, uint16_t port) noexcept {
  if (addr.af() != p.af || (p.af != Af::kInet && p.af != Af::kInet6)) {
    return DropReason::kMalformed;
  }
  const size_t hdr = p.af == Af::kInet ? 20 : 40;
  if (size_t{p.l3_off} + hdr > pkt.size())
    return DropReason::kMalformed;
  IpAddr old = replaceAddr(pkt.data() + p.l3_off, p.af, dst, addr);
  (dst ? p.dst : p.src) = addr;
  if (!p.has_l4)
    return DropReason::kNone;  // a non-first fragment, or no L4 we know
  return rewriteL4(pkt, p, dst, old, addr, port);
}

}  // namespace

DropReason rewriteDst(PacketBuffer& pkt, L3L4& p, const IpAddr& addr, uint16_t port) noexcept {
  return rewriteAddrPort(pkt, p, true, addr, port);
}

DropReason rewriteSrc(PacketBuffer& pkt, L3L4& p, const IpAddr& addr, uint16_t port) noexcept {
  return rewriteAddrPort(pkt, p, false, addr, port);
}

bool decrementTtl(PacketBuffer& pkt, const L3L4& p) noexcept {
  uint8_t* l3 = pkt.data() + p.l3_off;
  if (p.af == Af::kInet) {
    if (size_t{p.l3_off} + 20 > pkt.size() || l3[8] <= 1)
      return false;
    // ip_decrease_ttl: the TTL shares a 16-bit word with the protocol.
    uint16_t old_word = loadRaw16(l3 + 8);
    --l3[8];
    uint16_t c = loadRaw16(l3 + kIpv4CsumOff);
    storeRaw16(l3 + kIpv4CsumOff, csumReplace2(c, old_word, loadRaw16(l3 + 8)));
    return true;
  }
  if (p.af == Af::kInet6) {
    if (size_t{p.l3_off} + 40 > pkt.size() || l3[7] <= 1)
      return false;
    --l3[7];
    return true;
  }
  return false;
}

DropReason rewriteIcmpError(PacketBuffer& pkt,
                            ParsedPacket& pp,
                            bool inner_src,
                            const IpAddr& addr,
                            uint16_t port,
                            const IpAddr& outer_addr) noexcept {
  L3L4& o = pp.outer;
  L3L4& in = pp.inner;
  if (!pp.is_icmp_error || addr.af() != in.af || outer_addr.af() != o.af) {
    return DropReason::kMalformed;
  }
  uint8_t* d = pkt.data();
  const size_t end = size_t{o.l3_off} + o.tot_len;
  const size_t inner_hdr = in.af == Af::kInet ? 20 : 40;
  if (end > pkt.size() || size_t{in.l3_off} + inner_hdr > end || in.l4_off > end) {
    return DropReason::kMalformed;
  }
  // Outer header: toward the real server the destination, toward the client the source.
  replaceAddr(d + o.l3_off, o.af, inner_src, outer_addr);
  (inner_src ? o.dst : o.src) = outer_addr;
  // Inner header: ip_vs_nat_icmp recomputes its header checksum (ip_send_check).
  uint8_t* ih = d + in.l3_off;
  IpAddr old_inner = IpAddr::fromBytes(in.af, ih + addrOffset(in.af, !inner_src));
  std::memcpy(ih + addrOffset(in.af, !inner_src), addr.data(), addr.size());
  if (in.af == Af::kInet) {
    storeRaw16(ih + kIpv4CsumOff, 0);
    storeRaw16(ih + kIpv4CsumOff, ipv4HeaderChecksum({ih, in.l3_len}));
  }
  (inner_src ? in.src : in.dst) = addr;
  const bool ports =
      in.proto == L4Proto::kTcp || in.proto == L4Proto::kUdp || in.proto == L4Proto::kSctp;
  if (in.has_l4 && ports && size_t{in.l4_off} + 4 <= end) {
    const size_t port_off = size_t{in.l4_off} + (inner_src ? 0 : 2);
    const uint16_t old_port = loadRaw16(d + port_off);
    const uint16_t new_port = rawPort(port);
    storeRaw16(d + port_off, new_port);
    (inner_src ? in.sport : in.dport) = port;
    // Beyond the kernel: keep the quoted L4 checksum consistent where it was quoted, so the
    // quote reads as what the peer really sent. SCTP's CRC covers bytes we do not have.
    const size_t co = in.l4_csum_off;
    if (co != 0 && co + 2 <= end && in.proto != L4Proto::kSctp) {
      uint16_t c = loadRaw16(d + co);
      if (in.proto == L4Proto::kTcp) {
        storeRaw16(d + co, portAddrUpdate(c, false, old_inner, addr, old_port, new_port));
      } else if (c != 0) {
        storeRaw16(d + co,
                   udpMangle0(portAddrUpdate(c, false, old_inner, addr, old_port, new_port)));
      }
    }
  }
  // And the ICMP checksum, from scratch.
  const size_t icmp = o.l4_off;
  const size_t len = end - icmp;
  storeRaw16(d + icmp + 2, 0);
  uint32_t s = o.af == Af::kInet6
                   ? pseudoHeaderSum(o.src, o.dst, L4Proto::kIcmpv6, static_cast<uint32_t>(len))
                   : 0;
  storeRaw16(d + icmp + 2, csumFold(csumPartial({d + icmp, len}, s)));
  if (pkt.offload.csum == OffloadInfo::Csum::kPartial)
    pkt.offload.csum = OffloadInfo::Csum::kNone;
  return DropReason::kNone;
}

}  // namespace lb
