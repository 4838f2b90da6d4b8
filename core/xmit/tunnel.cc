// SPDX-License-Identifier: Apache-2.0
// Tunnelling: ip_vs_tunnel_xmit[_v6] with ipvs_gue_encap / ipvs_gre_encap (ip_vs_xmit.c).
// IP-in-IP per RFC 2003 (IPv6 in IPv4: proto 41, RFC 4213; IPv4 in IPv6: next header 4,
// RFC 2473), GUE per draft-ietf-intarea-gue (version 0), GRE per RFC 2784.
#include <cstring>

#include "core/xmit/xmit_util.h"

namespace lb::xmit {
namespace {

constexpr size_t kIpv4HdrLen = 20;
constexpr size_t kIpv6HdrLen = 40;
constexpr size_t kUdpHdrLen = 8;
constexpr size_t kGueHdrLen = 4;
constexpr uint16_t kGreFlagCsum = 0x8000;
constexpr uint16_t kEthPIp = 0x0800;
constexpr uint16_t kEthPIpv6 = 0x86dd;
constexpr uint32_t kMinMtuV4 = 68;
constexpr uint32_t kMinMtuV6 = 1280;

bool wantsChecksum(const DestConfig& d) {
  return d.tun_csum == TunCsum::kCsum || d.tun_csum == TunCsum::kRemCsum;
}

// Bytes between the outer IP header and the inner packet (__ip_vs_get_out_rt's MTU account).
size_t encapLen(const DestConfig& d) {
  switch (d.tun_type) {
    case TunType::kIpip:
      return 0;
    case TunType::kGue:
      return kUdpHdrLen + kGueHdrLen;
    case TunType::kGre:
      return d.tun_csum == TunCsum::kCsum ? 8 : 4;  // gre_calc_hlen
  }
  return 0;
}

// Inner DS field, TTL, DF and IP ID, read after the inner TTL was decremented
// (ip_vs_prepare_tunneled_skb).
struct InnerInfo {
  uint8_t dsfield = 0;
  uint8_t ttl = 0;
  bool df = false;
  uint16_t ip_id = 0;
  uint8_t next_protocol = 0;  // 4 (IPIP) or 41 (IPv6)
};

InnerInfo readInner(const PacketBuffer& pkt, const ParsedPacket& pp, bool pmtu_disc) {
  const uint8_t* d = pkt.data() + pp.outer.l3_off;
  InnerInfo in;
  if (pp.outer.af == Af::kInet6) {
    in.dsfield = static_cast<uint8_t>(((d[0] & 0x0f) << 4) | (d[1] >> 4));
    in.ttl = d[7];
    in.next_protocol = static_cast<uint8_t>(L4Proto::kIpv6);
  } else {
    in.dsfield = d[1];
    in.ttl = d[8];
    in.df = pmtu_disc && (d[6] & 0x40) != 0;  // DF is copied only with pmtu_disc
    in.ip_id = load16(d + 4);
    in.next_protocol = static_cast<uint8_t>(L4Proto::kIpip);
  }
  return in;
}

// GUE: UDP (sport from the flow hash, dport = tun_port) + a 4-byte GUE header (version 0,
// C 0, hlen 0, proto_ctype = inner protocol, flags 0). `p` points at the UDP header; the inner
// packet follows the GUE header. The UDP checksum is computed later, over the final outer
// addresses, and only with --tun-csum / --tun-remcsum (udp_set_csum(!check, ...)).
void writeGue(uint8_t* p, size_t udp_len, uint16_t sport, uint16_t dport, uint8_t proto) {
  store16(p, sport);
  store16(p + 2, dport);
  store16(p + 4, static_cast<uint16_t>(udp_len));
  store16(p + 6, 0);
  p[8] = 0;  // version 0, control 0, hlen 0
  p[9] = proto;
  store16(p + 10, 0);
}

// GRE (gre_build_header): flags/version, protocol, and with TUNNEL_CSUM a checksum over the GRE
// header and payload plus a reserved word. `len` covers the GRE header and the inner packet.
void writeGre(uint8_t* p, size_t len, bool csum, bool inner_v6) {
  store16(p, csum ? kGreFlagCsum : 0);
  store16(p + 2, inner_v6 ? kEthPIpv6 : kEthPIp);
  if (!csum)
    return;
  store16(p + 4, 0);
  store16(p + 6, 0);
  store16(p + 4, foldComplement(sumWords(p, len, 0)));
}

void writeOuterV4(uint8_t* p,
                  size_t tot_len,
                  const InnerInfo& in,
                  uint8_t proto,
                  const IpAddr& src,
                  const IpAddr& dst) {
  p[0] = 0x45;
  p[1] = ecnEncapsulate(in.dsfield);
  store16(p + 2, static_cast<uint16_t>(tot_len));
  // ip_select_ident: 0 with DF; otherwise lbd reuses the inner IPv4 ID (the kernel draws a
  // hashed counter) so fragments of one outer packet share an ID that varies per packet.
  store16(p + 4, in.df ? 0 : in.ip_id);
  store16(p + 6, in.df ? 0x4000 : 0);
  p[8] = in.ttl;
  p[9] = proto;
  store16(p + 10, 0);
  std::memcpy(p + 12, src.data(), 4);
  std::memcpy(p + 16, dst.data(), 4);
  store16(p + 10, foldComplement(sumWords(p, kIpv4HdrLen, 0)));
}

void writeOuterV6(uint8_t* p,
                  size_t payload_len,
                  const InnerInfo& in,
                  uint8_t proto,
                  const IpAddr& src,
                  const IpAddr& dst) {
  uint8_t tc = ecnEncapsulate(in.dsfield);
  p[0] = static_cast<uint8_t>(0x60 | (tc >> 4));
  p[1] = static_cast<uint8_t>((tc & 0x0f) << 4);  // flow label 0
  p[2] = 0;
  p[3] = 0;
  store16(p + 4, static_cast<uint16_t>(payload_len));
  p[6] = proto;
  p[7] = in.ttl;
  std::memcpy(p + 8, src.data(), 16);
  std::memcpy(p + 24, dst.data(), 16);
}

// Describes the new outer header in pp (forwarders keep pp in step with the bytes).
void describeOuter(ParsedPacket& pp,
                   Af af,
                   L4Proto proto,
                   const IpAddr& src,
                   const IpAddr& dst,
                   size_t ip_len,
                   size_t total,
                   uint8_t ttl,
                   bool df) {
  L3L4 o;
  o.af = af;
  o.proto = proto;
  o.src = src;
  o.dst = dst;
  o.l3_off = 0;
  o.l3_len = static_cast<uint16_t>(ip_len);
  o.l4_off = static_cast<uint16_t>(ip_len);
  o.tot_len = static_cast<uint16_t>(total);
  o.ttl = ttl;
  o.df = df;
  pp.outer = o;
  pp.is_icmp_error = false;
}

class TunnelForwarder final : public Forwarder {
 public:
  // Forwarder
  FwdMethod method() const override { return FwdMethod::kTunnel; }

  XmitResult forward(PacketBuffer& pkt,
                     ParsedPacket& pp,
                     const Conn& conn,
                     Direction dir,
                     const XmitContext& ctx) noexcept override {
    // Real servers answer clients directly; tunnel conns never see replies.
    if (dir != Direction::kToRealServer || ctx.dest == nullptr) {
      return dropWith(DropReason::kUnsupported);
    }
    const DestConfig& dest = ctx.dest->config;
    Af outer_af = conn.daddr.af();
    if (ctx.tunnel_src.af() != outer_af || pp.outer.l3_off != 0) {
      return dropWith(DropReason::kUnsupported);
    }
    if (dest.tun_type == TunType::kGue && dest.tun_port == 0) {
      return dropWith(DropReason::kUnsupported);
    }
    size_t ip_len = outer_af == Af::kInet6 ? kIpv6HdrLen : kIpv4HdrLen;
    size_t overhead = ip_len + encapLen(dest);
    // __ip_vs_get_out_rt (IP_VS_RT_MODE_TUNNEL): the inner packet's MTU is the route MTU
    // minus the tunnel overhead, and a route too small for that fails.
    uint32_t min_mtu = outer_af == Af::kInet6 ? kMinMtuV6 : kMinMtuV4;
    if (ctx.mtu < overhead + min_mtu)
      return dropWith(DropReason::kUnsupported);
    auto mtu = static_cast<uint32_t>(ctx.mtu - overhead);
    // With pmtu_disc=0 the outer packet is fragmented instead of answering FRAG_NEEDED.
    XmitResult check = checkTtlAndMtu(pkt, pp, mtu, /*df_check=*/ctx.pmtu_disc);
    if (check.verdict != Verdict::kForward)
      return check;
    if (pkt.headroom() < overhead)
      return dropWith(DropReason::kNoRoom);
    if (pkt.offload.gso != OffloadInfo::Gso::kNone) {
      // See forwarder.h: encapsulated once here, cut into wire packets by io/ (tunnel_gso.h).
      XmitResult g = prepareGso(pkt, pp, mtu, ctx.pmtu_disc);
      if (g.verdict != Verdict::kForward)
        return g;
    } else if (!resolvePartialChecksum(pkt, pp.outer.proto)) {
      // The inner L4 checksum must be final before it is hidden inside the tunnel: lbd
      // completes CHECKSUM_PARTIAL here rather than sending GUE remote-checksum options.
      return dropWith(DropReason::kMalformed);
    }
    decrementOuterTtl(pkt, pp);
    pkt.trim(packetLength(pkt, pp));
    InnerInfo in = readInner(pkt, pp, ctx.pmtu_disc);
    encapsulate(pkt, pp, conn, dest, ctx, in, ip_len);
    pkt.tx = TxPath::kTun;
    pkt.next_hop = conn.daddr;
    return forwarded();
  }

 private:
  // A TCP or UDP super-packet (gso_size payload bytes per segment): its wire packets must fit
  // `mtu` (the route MTU minus the tunnel overhead), as skb_gso_validate_network_len checks.
  // Too big, with DF (or IPv6) and pmtu_disc: kFragNeeded, so the sender learns the tunnel's
  // MTU as it would for a single packet. Too big without DF: TCP is cut smaller (any segment
  // size is valid TCP); a UDP datagram's size is the sender's, so it is dropped. The inner
  // checksum is left to the segmentation: csum_start marks the inner L4 header.
  static XmitResult prepareGso(PacketBuffer& pkt, ParsedPacket& pp, uint32_t mtu, bool pmtu_disc) {
    const bool udp = pkt.offload.gso == OffloadInfo::Gso::kUdpL4;
    if (!pp.outer.has_l4 ||
        (udp ? pp.outer.proto != L4Proto::kUdp : pp.outer.proto != L4Proto::kTcp))
      return dropWith(DropReason::kMalformed);
    const size_t l4 = pp.outer.l4_off;
    size_t l4_hdr = 8;
    if (!udp) {
      if (l4 + 20 > pkt.size())
        return dropWith(DropReason::kMalformed);
      l4_hdr = static_cast<size_t>(pkt.data()[l4 + 12] >> 4) * 4;
    }
    const size_t hdrs = l4 + l4_hdr;
    if (hdrs + 1 > mtu)
      return dropWith(DropReason::kUnsupported);
    if (hdrs + pkt.offload.gso_size > mtu) {
      const bool df = pp.outer.af == Af::kInet6 || (pmtu_disc && pp.outer.df);
      if (df)
        return dropWith(DropReason::kFragNeeded, mtu);
      if (udp)
        return dropWith(DropReason::kUnsupported);
      pkt.offload.gso_size = static_cast<uint16_t>(mtu - hdrs);
    }
    pkt.offload.csum = OffloadInfo::Csum::kPartial;
    pkt.offload.csum_start = static_cast<uint16_t>(l4);
    pkt.offload.csum_offset = udp ? 6 : 16;
    return forwarded();
  }

  static void encapsulate(PacketBuffer& pkt,
                          ParsedPacket& pp,
                          const Conn& conn,
                          const DestConfig& dest,
                          const XmitContext& ctx,
                          const InnerInfo& in,
                          size_t ip_len) {
    size_t encap = encapLen(dest);
    size_t inner_len = pkt.size();
    uint8_t* e = pkt.push(encap);
    L4Proto outer_proto = static_cast<L4Proto>(in.next_protocol);
    bool udp_csum = false;
    if (dest.tun_type == TunType::kGue) {
      writeGue(e, encap + inner_len, udpFlowSrcPort(ctx.flow_hash), dest.tun_port,
               in.next_protocol);
      outer_proto = L4Proto::kUdp;
      udp_csum = wantsChecksum(dest);
    } else if (dest.tun_type == TunType::kGre) {
      writeGre(e, encap + inner_len, dest.tun_csum == TunCsum::kCsum,
               in.next_protocol == static_cast<uint8_t>(L4Proto::kIpv6));
      outer_proto = L4Proto::kGre;
    }
    uint8_t* o = pkt.push(ip_len);
    auto proto = static_cast<uint8_t>(outer_proto);
    if (ip_len == kIpv6HdrLen) {
      writeOuterV6(o, encap + inner_len, in, proto, ctx.tunnel_src, conn.daddr);
    } else {
      writeOuterV4(o, pkt.size(), in, proto, ctx.tunnel_src, conn.daddr);
    }
    if (udp_csum) {
      auto udp_len = static_cast<uint32_t>(encap + inner_len);
      uint16_t c = foldComplement(
          sumWords(o + ip_len, udp_len, pseudoSum(ctx.tunnel_src, conn.daddr, proto, udp_len)));
      store16(o + ip_len + 6, c == 0 ? 0xffff : c);
    }
    describeOuter(pp, conn.daddr.af(), outer_proto, ctx.tunnel_src, conn.daddr, ip_len, pkt.size(),
                  in.ttl, in.df);
    if (outer_proto == L4Proto::kUdp) {
      pp.outer.has_l4 = true;
      pp.outer.sport = load16(o + ip_len);
      pp.outer.dport = dest.tun_port;
      pp.outer.l4_csum_off = static_cast<uint16_t>(ip_len + 6);
    }
  }
};

}  // namespace

Forwarder& tunnelForwarder() noexcept {
  static TunnelForwarder instance;
  return instance;
}

}  // namespace lb::xmit
