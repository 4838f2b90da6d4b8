// SPDX-License-Identifier: Apache-2.0
#include "core/xmit/tunnel_gso.h"

#include <bit>
#include <cstring>

#include "core/base/addr.h"
#include "core/xmit/xmit_util.h"

namespace lb::xmit {
namespace {

static_assert(std::endian::native == std::endian::little, "sumBytesFast assumes little endian");

constexpr uint8_t kProtoIpip = 4;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIpv6 = 41;
constexpr uint8_t kProtoGre = 47;
constexpr uint16_t kGreCsum = 0x8000;
constexpr uint16_t kGreKey = 0x2000;
constexpr uint16_t kGreSeq = 0x1000;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpCwr = 0x80;

uint32_t load32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void ipv4HeaderChecksum(uint8_t* ip) {
  const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  store16(ip + 10, 0);
  store16(ip + 10, foldComplement(sumWords(ip, ihl, 0)));
}

// Pseudo-header sum of the IP header at `ip` for `len` bytes of `proto`.
uint32_t pseudoOf(const uint8_t* ip, bool v6, uint8_t proto, uint32_t len) {
  const IpAddr src =
      v6 ? IpAddr::fromBytes(Af::kInet6, ip + 8) : IpAddr::fromBytes(Af::kInet, ip + 12);
  const IpAddr dst =
      v6 ? IpAddr::fromBytes(Af::kInet6, ip + 24) : IpAddr::fromBytes(Af::kInet, ip + 16);
  return pseudoSum(src, dst, proto, len);
}

}  // namespace

uint32_t sumBytesFast(const uint8_t* p, size_t n, uint32_t acc) noexcept {
  uint64_t s = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
    s += (s < w) ? 1 : 0;  // end-around carry
  }
  for (; i + 2 <= n; i += 2) {
    uint16_t w;
    std::memcpy(&w, p + i, 2);
    s += w;
    s += (s < w) ? 1 : 0;
  }
  if (i < n) {
    s += p[i];  // the low byte of a little-endian word: the high byte of the big-endian one
    s += (s < p[i]) ? 1 : 0;
  }
  uint64_t t = (s & 0xffffffffU) + (s >> 32);
  t = (t & 0xffffffffU) + (t >> 32);
  t = (t & 0xffff) + (t >> 16);
  t = (t & 0xffff) + (t >> 16);
  t = (t & 0xffff) + (t >> 16);
  // A one's-complement sum of byte-swapped words is the byte-swapped sum (RFC 1071 §2(B)).
  const auto native = static_cast<uint16_t>(t);
  return acc + static_cast<uint16_t>((native >> 8) | (native << 8));
}

bool planTunnelGso(const PacketBuffer& p, TunnelGsoPlan& plan) noexcept {
  plan = {};
  const OffloadInfo& o = p.offload;
  if (o.gso == OffloadInfo::Gso::kNone || o.gso_size == 0 || p.size() < 20)
    return false;
  const uint8_t* d = p.data();
  const size_t size = p.size();
  uint8_t proto = 0;
  if ((d[0] >> 4) == 4) {
    plan.outer_l3_len = static_cast<uint16_t>((d[0] & 0x0f) * 4);
    proto = d[9];
    if (plan.outer_l3_len < 20)
      return false;
  } else if ((d[0] >> 4) == 6 && size >= 40) {
    plan.outer_v6 = true;
    plan.outer_l3_len = 40;
    proto = d[6];
  } else {
    return false;
  }
  const size_t l3 = plan.outer_l3_len;
  size_t encap = 0;
  if (proto == kProtoUdp) {
    if (l3 + 12 > size)
      return false;
    const uint8_t* g = d + l3 + 8;
    const uint8_t version = g[0] >> 6;
    if (version == 1) {
      encap = 8;  // GUE variant 1: the IP header follows the UDP header
    } else if (version == 0 && (g[0] & 0x20) == 0) {
      encap = 8 + 4 + static_cast<size_t>(g[0] & 0x1f) * 4;
    } else {
      return false;
    }
  } else if (proto == kProtoGre) {
    if (l3 + 4 > size)
      return false;
    const uint16_t flags = load16(d + l3);
    encap = 4;
    for (uint16_t bit : {kGreCsum, kGreKey, kGreSeq})
      encap += (flags & bit) != 0 ? 4 : 0;
  } else if (proto != kProtoIpip && proto != kProtoIpv6) {
    return false;
  }
  plan.encap_len = static_cast<uint16_t>(encap);
  const size_t in3 = l3 + encap;
  if (in3 + 20 > size)
    return false;
  plan.inner_l3 = static_cast<uint16_t>(in3);
  const uint8_t iv = d[in3] >> 4;
  if (iv != 4 && iv != 6)
    return false;
  plan.inner_v6 = iv == 6;
  const size_t in4 = o.csum_start;
  if (in4 < in3 + (plan.inner_v6 ? 40 : static_cast<size_t>(d[in3] & 0x0f) * 4) ||
      (!plan.inner_v6 && (d[in3] & 0x0f) < 5))
    return false;
  plan.inner_l4 = static_cast<uint16_t>(in4);
  plan.udp = o.gso == OffloadInfo::Gso::kUdpL4;
  size_t l4_hdr = 8;
  if (!plan.udp) {
    if (in4 + 20 > size)
      return false;
    l4_hdr = static_cast<size_t>(d[in4 + 12] >> 4) * 4;
    if (l4_hdr < 20)
      return false;
  }
  const size_t hdrs = in4 + l4_hdr;
  if (hdrs > size)
    return false;
  plan.hdrs = static_cast<uint16_t>(hdrs);
  plan.seg = o.gso_size;
  const size_t payload = size - hdrs;
  const size_t count = payload == 0 ? 1 : (payload + plan.seg - 1) / plan.seg;
  if (count > 0xffff)
    return false;
  plan.count = static_cast<uint16_t>(count);
  return true;
}

bool writeTunnelGsoSegment(const PacketBuffer& p,
                           const TunnelGsoPlan& plan,
                           size_t i,
                           PacketBuffer& out) noexcept {
  if (i >= plan.count)
    return false;
  const size_t from = plan.hdrs + i * plan.seg;
  const size_t rest = p.size() > from ? p.size() - from : 0;
  const size_t len = rest < plan.seg ? rest : plan.seg;
  const size_t size = plan.hdrs + len;
  out.reset();
  if (!out.setSize(size))
    return false;
  uint8_t* o = out.data();
  std::memcpy(o, p.data(), plan.hdrs);
  std::memcpy(o + plan.hdrs, p.data() + from, len);
  const bool last = i + 1 == plan.count;

  // Inner L4: tcp_gso_segment / __udp_gso_segment, checksum in full.
  uint8_t* ip = o + plan.inner_l3;
  uint8_t* l4 = o + plan.inner_l4;
  const auto l4_len = static_cast<uint32_t>(size - plan.inner_l4);
  if (plan.udp) {
    store16(l4 + 4, static_cast<uint16_t>(l4_len));
    store16(l4 + 6, 0);
    uint16_t c =
        foldComplement(sumBytesFast(l4, l4_len, pseudoOf(ip, plan.inner_v6, kProtoUdp, l4_len)));
    store16(l4 + 6, c == 0 ? 0xffff : c);
  } else {
    store32(l4 + 4, load32(l4 + 4) + static_cast<uint32_t>(i * plan.seg));
    uint8_t flags = l4[13];
    if (i != 0)
      flags = static_cast<uint8_t>(flags & ~kTcpCwr);
    if (!last)
      flags = static_cast<uint8_t>(flags & ~(kTcpFin | kTcpPsh));
    l4[13] = flags;
    store16(l4 + 16, 0);
    store16(l4 + 16, foldComplement(
                         sumBytesFast(l4, l4_len, pseudoOf(ip, plan.inner_v6, kProtoTcp, l4_len))));
  }
  // Inner IP: length, and for IPv4 an ID per segment (inet_gso_segment) and the header sum.
  if (plan.inner_v6) {
    store16(ip + 4, static_cast<uint16_t>(size - plan.inner_l3 - 40));
  } else {
    store16(ip + 2, static_cast<uint16_t>(size - plan.inner_l3));
    store16(ip + 4, static_cast<uint16_t>(load16(ip + 4) + i));
    ipv4HeaderChecksum(ip);
  }
  // Encapsulation header.
  uint8_t* outer = o;
  uint8_t* e = o + plan.outer_l3_len;
  const uint8_t proto = plan.outer_v6 ? outer[6] : outer[9];
  const auto encap_and_inner = static_cast<uint32_t>(size - plan.outer_l3_len);
  if (proto == kProtoUdp) {
    store16(e + 4, static_cast<uint16_t>(encap_and_inner));
    if (load16(e + 6) != 0) {  // --tun-csum: the outer UDP checksum over everything after it
      store16(e + 6, 0);
      uint16_t c = foldComplement(sumBytesFast(
          e, encap_and_inner, pseudoOf(outer, plan.outer_v6, kProtoUdp, encap_and_inner)));
      store16(e + 6, c == 0 ? 0xffff : c);
    }
  } else if (proto == kProtoGre && (load16(e) & kGreCsum) != 0) {
    store16(e + 4, 0);
    store16(e + 4, foldComplement(sumBytesFast(e, encap_and_inner, 0)));
  }
  // Outer IP. An outer IPv4 header without DF gets an ID per segment, so that fragments of
  // different segments never share one.
  if (plan.outer_v6) {
    store16(outer + 4, static_cast<uint16_t>(size - 40));
  } else {
    store16(outer + 2, static_cast<uint16_t>(size));
    if ((outer[6] & 0x40) == 0)
      store16(outer + 4, static_cast<uint16_t>(load16(outer + 4) + i));
    ipv4HeaderChecksum(outer);
  }
  return true;
}

}  // namespace lb::xmit

namespace lb::xmit {
namespace {

// The TCP segment an inner IP packet carries (no IPv4 options, no IPv6 extension headers).
struct TcpView {
  bool ok = false;
  bool v6 = false;
  size_t l4 = 0;
  size_t thl = 0;
  size_t payload = 0;
};

TcpView tcpView(const PacketBuffer& p) {
  TcpView v;
  const uint8_t* d = p.data();
  const size_t n = p.size();
  if (n < 40)
    return v;
  if (d[0] == 0x45) {
    if (d[9] != kProtoTcp || load16(d + 2) != n || (load16(d + 6) & 0x3fff) != 0)
      return v;  // not TCP, padded, or a fragment
    v.l4 = 20;
  } else if ((d[0] >> 4) == 6 && n >= 60) {
    if (d[6] != kProtoTcp || load16(d + 4) + 40U != n)
      return v;
    v.v6 = true;
    v.l4 = 40;
  } else {
    return v;
  }
  v.thl = static_cast<size_t>(d[v.l4 + 12] >> 4) * 4;
  if (v.thl < 20 || v.l4 + v.thl > n)
    return v;
  v.payload = n - v.l4 - v.thl;
  v.ok = true;
  return v;
}

bool tcpChecksumValid(const PacketBuffer& p, const TcpView& v) {
  const auto len = static_cast<uint32_t>(p.size() - v.l4);
  return foldComplement(
             sumBytesFast(p.data() + v.l4, len, pseudoOf(p.data(), v.v6, kProtoTcp, len))) == 0;
}

constexpr uint8_t kTcpAckOnly = 0x10;

}  // namespace

bool tcpCoalesce(PacketBuffer& head, const PacketBuffer& next) noexcept {
  const TcpView h = tcpView(head);
  const TcpView x = tcpView(next);
  if (!h.ok || !x.ok || h.v6 != x.v6 || h.thl != x.thl || h.payload == 0 || x.payload == 0)
    return false;
  const uint8_t* a = head.data();
  const uint8_t* b = next.data();
  const bool joined = head.offload.gso != OffloadInfo::Gso::kNone;
  const size_t seg = joined ? head.offload.gso_size : h.payload;
  // The run ends at a short segment or a PSH; a longer segment than the first starts anew.
  if (h.payload % seg != 0 || x.payload > seg || a[h.l4 + 13] != kTcpAckOnly)
    return false;
  const uint8_t xflags = b[x.l4 + 13];
  if (xflags != kTcpAckOnly && xflags != (kTcpAckOnly | kTcpPsh))
    return false;
  if (h.v6) {
    // Version, traffic class, flow label; next header, hop limit; addresses.
    if (std::memcmp(a, b, 4) != 0 || std::memcmp(a + 6, b + 6, 34) != 0)
      return false;
  } else {
    // TOS, DF, TTL, protocol; addresses.
    if (a[1] != b[1] || a[6] != b[6] || a[8] != b[8] || std::memcmp(a + 12, b + 12, 8) != 0)
      return false;
  }
  // Ports; then ack, header length, window, urgent pointer and every option byte (the seq,
  // flags and checksum are compared or rewritten separately).
  if (std::memcmp(a + h.l4, b + x.l4, 4) != 0 || std::memcmp(a + h.l4 + 8, b + x.l4 + 8, 5) != 0 ||
      std::memcmp(a + h.l4 + 14, b + x.l4 + 14, 2) != 0 ||
      std::memcmp(a + h.l4 + 18, b + x.l4 + 18, h.thl - 18) != 0)
    return false;
  if (load32(b + x.l4 + 4) != load32(a + h.l4 + 4) + static_cast<uint32_t>(h.payload))
    return false;
  const size_t total = head.size() + x.payload;
  if (total - (h.v6 ? 40 : 0) > 0xffff || total > head.size() + head.tailroom())
    return false;
  if (!joined && !tcpChecksumValid(head, h))
    return false;
  if (!tcpChecksumValid(next, x))
    return false;
  const size_t old = head.size();
  head.setSize(total);
  uint8_t* d = head.data();
  std::memcpy(d + old, b + x.l4 + x.thl, x.payload);
  d[h.l4 + 13] = xflags;  // a PSH ends the run
  if (h.v6)
    store16(d + 4, static_cast<uint16_t>(total - 40));
  else
    store16(d + 2, static_cast<uint16_t>(total));
  if (!joined) {
    head.offload.gso = h.v6 ? OffloadInfo::Gso::kTcpV6 : OffloadInfo::Gso::kTcpV4;
    head.offload.gso_size = static_cast<uint16_t>(h.payload);
  }
  return true;
}

bool adoptPartialTcp(PacketBuffer& p, size_t mtu, bool unwired) noexcept {
  if (p.offload.gso != OffloadInfo::Gso::kNone || p.offload.csum != OffloadInfo::Csum::kNone)
    return false;
  const TcpView v = tcpView(p);
  if (!v.ok)
    return false;
  uint8_t* d = p.data();
  uint32_t ps = pseudoOf(d, v.v6, kProtoTcp, static_cast<uint32_t>(p.size() - v.l4));
  while ((ps >> 16) != 0)
    ps = (ps & 0xffff) + (ps >> 16);
  // A complete segment's checksum field is the pseudo-header sum only by chance (1 in 65,536):
  // a valid checksum keeps it complete (unless unwired: see the header).
  if (load16(d + v.l4 + 16) != ps || (!unwired && tcpChecksumValid(p, v)))
    return false;
  const size_t hdrs = v.l4 + v.thl;
  p.offload.csum = OffloadInfo::Csum::kPartial;
  p.offload.csum_start = static_cast<uint16_t>(v.l4);
  p.offload.csum_offset = 16;
  p.offload.hdr_len = static_cast<uint16_t>(hdrs);
  if (mtu > hdrs && v.payload > mtu - hdrs) {
    p.offload.gso = v.v6 ? OffloadInfo::Gso::kTcpV6 : OffloadInfo::Gso::kTcpV4;
    p.offload.gso_size = static_cast<uint16_t>(mtu - hdrs);
  }
  return true;
}

void finishCoalesced(PacketBuffer& head) noexcept {
  if (head.offload.gso == OffloadInfo::Gso::kNone)
    return;
  const TcpView v = tcpView(head);
  if (!v.ok)
    return;
  uint8_t* d = head.data();
  if (!v.v6)
    ipv4HeaderChecksum(d);
  const auto len = static_cast<uint32_t>(head.size() - v.l4);
  uint32_t ps = pseudoOf(d, v.v6, kProtoTcp, len);
  while ((ps >> 16) != 0)
    ps = (ps & 0xffff) + (ps >> 16);
  store16(d + v.l4 + 16, static_cast<uint16_t>(ps));
  head.offload.csum = OffloadInfo::Csum::kPartial;
  head.offload.csum_start = static_cast<uint16_t>(v.l4);
  head.offload.csum_offset = 16;
  head.offload.hdr_len = static_cast<uint16_t>(v.l4 + v.thl);
}

}  // namespace lb::xmit
