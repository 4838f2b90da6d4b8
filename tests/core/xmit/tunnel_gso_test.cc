// SPDX-License-Identifier: Apache-2.0
// Userspace GSO for tunnel packets: synthetic TCP and UDP super-packets go through the tunnel
// forwarder (IPIP, GUE, GRE; IPv4 and IPv6 outside and inside) and are cut with
// tunnel_gso.h. Every wire packet is checked on its own, with checksums recomputed here and
// by tests/testlib (not core/): lengths, IDs, sequence numbers, flags, payload slices.
#include "core/xmit/tunnel_gso.h"

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "core/packet/parse.h"
#include "core/xmit/forwarder.h"
#include "core/xmit/xmit_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::checksumsValid;
using testing::ip;
using testing::PacketBuilder;
using Bytes = std::vector<uint8_t>;

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// Plain RFC 1071 over [p, p+n) plus `acc`, folded (0xffff when the data carries a valid sum).
uint16_t refFold(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2)
    acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2 == 1)
    acc += static_cast<uint32_t>(p[n - 1] << 8);
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

uint32_t refPseudo(const uint8_t* iph, bool v6, uint8_t proto, size_t len) {
  uint32_t acc = 0;
  const uint8_t* a = iph + (v6 ? 8 : 12);
  const size_t alen = v6 ? 32 : 8;
  for (size_t i = 0; i < alen; i += 2)
    acc += static_cast<uint32_t>((a[i] << 8) | a[i + 1]);
  return acc + proto + static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
}

struct Case {
  TunType type = TunType::kIpip;
  TunCsum csum = TunCsum::kNoCsum;
  const char* client = "198.18.0.1";
  const char* vip = "198.18.100.1";
  const char* rs = "198.18.1.10";
  const char* tsrc = "198.18.1.1";
  bool udp = false;
  bool df = true;
  size_t payload = 10 * 1400 + 123;
  uint16_t gso_size = 1400;
  uint8_t tcp_flags = kTcpAck | kTcpPsh | kTcpFin | 0x80;  // CWR
  uint32_t mtu = 1500;
};

struct Result {
  XmitResult xr;
  std::unique_ptr<PacketBuffer> pkt = std::make_unique<PacketBuffer>();
  Bytes original;  // the inner super-packet as built
  size_t inner_hdrs = 0;
};

Result forward(const Case& c) {
  Result r;
  const bool inner_v6 = ip(c.client).isV6();
  PacketBuilder b = c.udp ? PacketBuilder::udp(c.client, 40000, c.vip, 80)
                          : PacketBuilder::tcp(c.client, 40000, c.vip, 80, c.tcp_flags);
  b.payloadSize(c.payload).df(c.df).ipId(0x1234).ttl(64);
  if (!c.udp)
    b.seq(0xfffff000);  // wraps within the super-packet
  r.original = b.build();
  {
    // Random payload bytes, so that a slice from the wrong offset cannot match.
    std::mt19937 rng(static_cast<uint32_t>(c.payload));
    const size_t hdrs = (inner_v6 ? 40 : 20) + (c.udp ? 8 : 20);
    for (size_t i = hdrs; i < r.original.size(); ++i)
      r.original[i] = static_cast<uint8_t>(rng());
  }
  EXPECT_TRUE(r.pkt->assign(r.original));
  ParsedPacket pp;
  EXPECT_EQ(parsePacket(r.pkt->span(), pp), DropReason::kNone);
  const size_t l4 = inner_v6 ? 40 : 20;
  r.inner_hdrs = l4 + (c.udp ? 8 : 20);
  // As the TUN device hands it over: CHECKSUM_PARTIAL (pseudo-header sum only) and GSO.
  r.pkt->offload.gso = c.udp      ? OffloadInfo::Gso::kUdpL4
                       : inner_v6 ? OffloadInfo::Gso::kTcpV6
                                  : OffloadInfo::Gso::kTcpV4;
  r.pkt->offload.gso_size = c.gso_size;
  r.pkt->offload.csum = OffloadInfo::Csum::kPartial;
  r.pkt->offload.csum_start = static_cast<uint16_t>(l4);
  r.pkt->offload.csum_offset = c.udp ? 6 : 16;
  const size_t field = l4 + (c.udp ? 6 : 16);
  const uint16_t ps = refFold(
      nullptr, 0, refPseudo(r.original.data(), inner_v6, c.udp ? 17 : 6, r.original.size() - l4));
  r.pkt->data()[field] = static_cast<uint8_t>(ps >> 8);
  r.pkt->data()[field + 1] = static_cast<uint8_t>(ps);

  Conn conn;
  conn.af = ip(c.client).af();
  conn.daf = ip(c.rs).af();
  conn.caddr = ip(c.client);
  conn.cport = 40000;
  conn.vaddr = ip(c.vip);
  conn.vport = 80;
  conn.daddr = ip(c.rs);
  conn.dport = 80;
  conn.flags = static_cast<uint32_t>(FwdMethod::kTunnel);
  SnapDest dest;
  dest.config.addr = ip(c.rs);
  dest.config.port = 80;
  dest.config.fwd = FwdMethod::kTunnel;
  dest.config.tun_type = c.type;
  dest.config.tun_csum = c.csum;
  dest.config.tun_port = c.type == TunType::kGue ? 6080 : 0;
  XmitContext ctx;
  ctx.dest = &dest;
  ctx.tunnel_src = ip(c.tsrc);
  ctx.flow_hash = 0x12345678;
  ctx.mtu = c.mtu;
  r.xr =
      findForwarder(FwdMethod::kTunnel)->forward(*r.pkt, pp, conn, Direction::kToRealServer, ctx);
  return r;
}

// Cuts r.pkt and checks every wire packet against the original inner super-packet.
void checkSegments(const Case& c, const Result& r) {
  ASSERT_EQ(r.xr.verdict, Verdict::kForward) << static_cast<int>(r.xr.reason);
  xmit::TunnelGsoPlan plan;
  ASSERT_TRUE(xmit::planTunnelGso(*r.pkt, plan));
  const bool outer_v6 = ip(c.rs).isV6();
  const bool inner_v6 = ip(c.client).isV6();
  const size_t payload = r.original.size() - r.inner_hdrs;
  const size_t seg = r.pkt->offload.gso_size;
  ASSERT_GT(seg, 0U);
  const size_t want_count = (payload + seg - 1) / seg;
  ASSERT_EQ(plan.count, want_count);
  const size_t outer_l3 = outer_v6 ? 40 : 20;
  size_t encap = 0;
  if (c.type == TunType::kGue)
    encap = 12;
  else if (c.type == TunType::kGre)
    encap = c.csum == TunCsum::kCsum ? 8 : 4;
  EXPECT_EQ(plan.inner_l3, outer_l3 + encap);

  Bytes joined;
  auto out = std::make_unique<PacketBuffer>();
  uint16_t first_outer_id = 0;
  for (size_t i = 0; i < plan.count; ++i) {
    SCOPED_TRACE(::testing::Message() << "segment " << i);
    ASSERT_TRUE(xmit::writeTunnelGsoSegment(*r.pkt, plan, i, *out));
    EXPECT_EQ(out->offload.gso, OffloadInfo::Gso::kNone);
    EXPECT_EQ(out->offload.csum, OffloadInfo::Csum::kNone);
    const uint8_t* o = out->data();
    const size_t size = out->size();
    const size_t len = i + 1 < plan.count ? seg : payload - i * seg;
    ASSERT_EQ(size, outer_l3 + encap + r.inner_hdrs + len);
    EXPECT_LE(size, c.mtu);
    // Outer header.
    uint8_t proto;
    if (outer_v6) {
      EXPECT_EQ(o[0] >> 4, 6);
      EXPECT_EQ(get16(o + 4), size - 40);
      proto = o[6];
    } else {
      EXPECT_EQ(o[0], 0x45);
      EXPECT_EQ(get16(o + 2), size);
      EXPECT_EQ(refFold(o, 20), 0xffff) << "outer IPv4 header checksum";
      proto = o[9];
      const bool df = (o[6] & 0x40) != 0;
      if (i == 0)
        first_outer_id = get16(o + 4);
      EXPECT_EQ(get16(o + 4), df ? 0 : static_cast<uint16_t>(first_outer_id + i));
    }
    const uint8_t* e = o + outer_l3;
    if (c.type == TunType::kGue) {
      EXPECT_EQ(proto, 17);
      EXPECT_EQ(get16(e + 2), 6080);
      EXPECT_EQ(get16(e + 4), size - outer_l3);
      if (c.csum == TunCsum::kCsum) {
        ASSERT_NE(get16(e + 6), 0);
        EXPECT_EQ(refFold(e, size - outer_l3, refPseudo(o, outer_v6, 17, size - outer_l3)), 0xffff)
            << "GUE UDP checksum";
      } else {
        EXPECT_EQ(get16(e + 6), 0);
      }
      EXPECT_EQ(e[9], inner_v6 ? 41 : 4);
    } else if (c.type == TunType::kGre) {
      EXPECT_EQ(proto, 47);
      EXPECT_EQ(get16(e + 2), inner_v6 ? 0x86dd : 0x0800);
      if (c.csum == TunCsum::kCsum) {
        EXPECT_EQ(refFold(e, size - outer_l3), 0xffff) << "GRE checksum";
      }
    } else {
      EXPECT_EQ(proto, inner_v6 ? 41 : 4);
    }
    // Inner packet: testlib's own checksum check, then each field.
    const uint8_t* in = o + outer_l3 + encap;
    const size_t in_size = size - outer_l3 - encap;
    EXPECT_TRUE(checksumsValid(in, in_size)) << "inner checksums";
    const size_t l4 = inner_v6 ? 40 : 20;
    if (inner_v6) {
      EXPECT_EQ(get16(in + 4), in_size - 40);
      EXPECT_EQ(in[7], 63);
    } else {
      EXPECT_EQ(get16(in + 2), in_size);
      EXPECT_EQ(get16(in + 4), static_cast<uint16_t>(0x1234 + i));
      EXPECT_EQ(in[8], 63);
      EXPECT_EQ(refFold(in, 20), 0xffff) << "inner IPv4 header checksum";
    }
    const uint8_t* t = in + l4;
    if (c.udp) {
      EXPECT_EQ(get16(t + 4), 8 + len);
      EXPECT_EQ(refFold(t, 8 + len, refPseudo(in, inner_v6, 17, 8 + len)), 0xffff);
    } else {
      EXPECT_EQ(get32(t + 4), static_cast<uint32_t>(0xfffff000U + i * seg));
      const uint8_t flags = t[13];
      const bool last = i + 1 == plan.count;
      EXPECT_EQ((flags & 0x80) != 0, i == 0 && (c.tcp_flags & 0x80) != 0) << "CWR";
      EXPECT_EQ((flags & kTcpFin) != 0, last && (c.tcp_flags & kTcpFin) != 0) << "FIN";
      EXPECT_EQ((flags & kTcpPsh) != 0, last && (c.tcp_flags & kTcpPsh) != 0) << "PSH";
      EXPECT_EQ(flags & kTcpAck, c.tcp_flags & kTcpAck);
      EXPECT_EQ(refFold(t, 20 + len, refPseudo(in, inner_v6, 6, 20 + len)), 0xffff)
          << "inner TCP checksum";
    }
    const uint8_t* body = in + r.inner_hdrs;
    EXPECT_TRUE(std::equal(body, body + len,
                           r.original.begin() + static_cast<long>(r.inner_hdrs + i * seg)))
        << "payload slice";
    joined.insert(joined.end(), body, body + len);
  }
  EXPECT_EQ(joined, Bytes(r.original.begin() + static_cast<long>(r.inner_hdrs), r.original.end()));
}

TEST(TunnelGsoTest, IpipTcpV4InV4) {
  Case c;
  checkSegments(c, forward(c));
}

TEST(TunnelGsoTest, IpipTcpV6InV4AndV4InV6AndV6InV6) {
  Case a;
  a.client = "2001:2::1";
  a.vip = "2001:2:0:100::1";
  a.gso_size = 1380;
  checkSegments(a, forward(a));
  Case b;
  b.rs = "2001:2:0:1::10";
  b.tsrc = "2001:2:0:1::1";
  b.gso_size = 1380;
  checkSegments(b, forward(b));
  Case c = a;
  c.rs = "2001:2:0:1::10";
  c.tsrc = "2001:2:0:1::1";
  c.gso_size = 1360;
  checkSegments(c, forward(c));
}

TEST(TunnelGsoTest, GueWithAndWithoutUdpChecksum) {
  for (TunCsum csum : {TunCsum::kNoCsum, TunCsum::kCsum}) {
    Case c;
    c.type = TunType::kGue;
    c.csum = csum;
    c.gso_size = 1400;
    checkSegments(c, forward(c));
    Case v6 = c;
    v6.client = "2001:2::1";
    v6.vip = "2001:2:0:100::1";
    v6.rs = "2001:2:0:1::10";
    v6.tsrc = "2001:2:0:1::1";
    v6.gso_size = 1300;
    checkSegments(v6, forward(v6));
  }
}

TEST(TunnelGsoTest, GreWithAndWithoutChecksum) {
  for (TunCsum csum : {TunCsum::kNoCsum, TunCsum::kCsum}) {
    Case c;
    c.type = TunType::kGre;
    c.csum = csum;
    checkSegments(c, forward(c));
  }
}

TEST(TunnelGsoTest, OddLengthsAndASingleSegment) {
  for (size_t payload :
       {size_t{1}, size_t{1399}, size_t{1400}, size_t{1401}, size_t{2801}, size_t{63999}}) {
    SCOPED_TRACE(payload);
    Case c;
    c.payload = payload;
    checkSegments(c, forward(c));
  }
}

TEST(TunnelGsoTest, UdpSuperPacketBecomesDatagrams) {
  Case c;
  c.udp = true;
  c.payload = 5 * 1200 + 7;
  c.gso_size = 1200;
  checkSegments(c, forward(c));
  c.type = TunType::kGue;
  c.csum = TunCsum::kCsum;
  checkSegments(c, forward(c));
}

// Segments too big for the tunnel: with DF the sender is told the tunnel's MTU (and the bytes
// stay as they were, for the ICMP error); without DF TCP is cut smaller.
TEST(TunnelGsoTest, SegmentsMustFitTheTunnelMtu) {
  Case c;
  c.gso_size = 1460;  // 1500-byte inner packets: 1520 with the outer header
  Result r = forward(c);
  EXPECT_EQ(r.xr.verdict, Verdict::kDrop);
  EXPECT_EQ(r.xr.reason, DropReason::kFragNeeded);
  EXPECT_EQ(r.xr.mtu, 1480U);
  c.type = TunType::kGue;
  r = forward(c);
  EXPECT_EQ(r.xr.reason, DropReason::kFragNeeded);
  EXPECT_EQ(r.xr.mtu, 1468U);

  Case nodf;
  nodf.df = false;
  nodf.gso_size = 1460;
  Result s = forward(nodf);
  ASSERT_EQ(s.xr.verdict, Verdict::kForward);
  EXPECT_EQ(s.pkt->offload.gso_size, 1480 - 40);
  checkSegments(nodf, s);

  Case udp;
  udp.udp = true;
  udp.df = false;
  udp.gso_size = 1472;
  EXPECT_EQ(forward(udp).xr.verdict, Verdict::kDrop);
}

TEST(TunnelGsoTest, PlanRefusesWhatIsNotAnEncapsulatedSuperPacket) {
  auto p = std::make_unique<PacketBuffer>();
  ASSERT_TRUE(p->assign(
      PacketBuilder::tcp("198.18.0.1", 1, "198.18.0.2", 2, kTcpAck).payloadSize(3000).build()));
  xmit::TunnelGsoPlan plan;
  EXPECT_FALSE(xmit::planTunnelGso(*p, plan)) << "no GSO request";
  p->offload.gso = OffloadInfo::Gso::kTcpV4;
  p->offload.gso_size = 1400;
  p->offload.csum_start = 20;
  EXPECT_FALSE(xmit::planTunnelGso(*p, plan)) << "not encapsulated (TCP outer protocol)";
}

TEST(TunnelGsoTest, FastSumMatchesSumWords) {
  std::mt19937 rng(7);
  Bytes b(70000);
  for (auto& x : b)
    x = static_cast<uint8_t>(rng());
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{8}, size_t{9},
                   size_t{1501}, size_t{65535}, size_t{70000}}) {
    for (size_t off : {size_t{0}, size_t{1}, size_t{3}}) {
      if (off + n > b.size())
        continue;
      EXPECT_EQ(xmit::foldComplement(xmit::sumBytesFast(b.data() + off, n, 0x1234)),
                xmit::foldComplement(xmit::sumWords(b.data() + off, n, 0x1234)))
          << n << " bytes at " << off;
    }
  }
  Bytes ones(4096, 0xff);
  EXPECT_EQ(xmit::foldComplement(xmit::sumBytesFast(ones.data(), ones.size(), 0)),
            xmit::foldComplement(xmit::sumWords(ones.data(), ones.size(), 0)));
}

// ---- Receive side (decap): tcpCoalesce joins what the tunnel carried back into one packet ----

Bytes segment(uint32_t seq, const Bytes& payload, uint8_t flags, const char* src = "198.18.0.1") {
  PacketBuilder b = PacketBuilder::tcp(
      src, 40000, ip(src).isV6() ? "2001:2:0:100::1" : "198.18.100.1", 80, flags);
  b.seq(seq).ack(77).df(true).ttl(63).payload(std::string(payload.begin(), payload.end()));
  return b.build();
}

std::unique_ptr<PacketBuffer> bufferOf(const Bytes& b) {
  auto p = std::make_unique<PacketBuffer>();
  EXPECT_TRUE(p->assign(b));
  return p;
}

Bytes randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b)
    x = static_cast<uint8_t>(rng());
  return b;
}

TEST(TcpCoalesceTest, JoinsARunIntoOneGsoPacket) {
  for (const char* src : {"198.18.0.1", "2001:2::1"}) {
    SCOPED_TRACE(src);
    const bool v6 = ip(src).isV6();
    const size_t l4 = v6 ? 40 : 20;
    const Bytes data = randomBytes(10 * 1400 + 99, 3);
    auto head =
        bufferOf(segment(0xfffffc00, Bytes(data.begin(), data.begin() + 1400), kTcpAck, src));
    for (size_t off = 1400; off < data.size(); off += 1400) {
      const size_t n = std::min<size_t>(1400, data.size() - off);
      const bool last = off + n == data.size();
      Bytes part(data.begin() + static_cast<long>(off), data.begin() + static_cast<long>(off + n));
      auto next = bufferOf(segment(static_cast<uint32_t>(0xfffffc00 + off), part,
                                   last ? (kTcpAck | kTcpPsh) : kTcpAck, src));
      ASSERT_TRUE(xmit::tcpCoalesce(*head, *next)) << "at " << off;
    }
    xmit::finishCoalesced(*head);
    const uint8_t* d = head->data();
    ASSERT_EQ(head->size(), l4 + 20 + data.size());
    EXPECT_EQ(head->offload.gso, v6 ? OffloadInfo::Gso::kTcpV6 : OffloadInfo::Gso::kTcpV4);
    EXPECT_EQ(head->offload.gso_size, 1400);
    EXPECT_EQ(head->offload.csum, OffloadInfo::Csum::kPartial);
    EXPECT_EQ(head->offload.csum_start, l4);
    EXPECT_EQ(head->offload.csum_offset, 16);
    if (v6) {
      EXPECT_EQ(get16(d + 4), head->size() - 40);
    } else {
      EXPECT_EQ(get16(d + 2), head->size());
      EXPECT_EQ(refFold(d, 20), 0xffff);
    }
    EXPECT_EQ(get32(d + l4 + 4), 0xfffffc00U);
    EXPECT_EQ(d[l4 + 13], kTcpAck | kTcpPsh) << "the last segment's PSH";
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum; completing it over the
    // segment gives a valid checksum.
    const size_t len = head->size() - l4;
    EXPECT_EQ(get16(d + l4 + 16), refFold(nullptr, 0, refPseudo(d, v6, 6, len)));
    Bytes full(d, d + head->size());
    full[l4 + 16] = full[l4 + 17] = 0;
    const uint16_t c =
        static_cast<uint16_t>(~refFold(full.data() + l4, len, refPseudo(d, v6, 6, len)));
    full[l4 + 16] = static_cast<uint8_t>(c >> 8);
    full[l4 + 17] = static_cast<uint8_t>(c);
    EXPECT_TRUE(checksumsValid(full));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), d + l4 + 20));
  }
}

TEST(TcpCoalesceTest, RefusesWhatGroWouldNotJoin) {
  const Bytes p1 = randomBytes(1000, 1), p2 = randomBytes(1000, 2);
  auto fresh = [&] { return bufferOf(segment(5000, p1, kTcpAck)); };
  auto head = fresh();
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(5001, p2, kTcpAck)))) << "seq gap";
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, p2, kTcpAck | kTcpFin)))) << "FIN";
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, p2, kTcpAck, "198.18.0.9"))))
      << "another flow";
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, randomBytes(1001, 2), kTcpAck))))
      << "longer than the first segment";
  Bytes bad = segment(6000, p2, kTcpAck);
  bad.back() ^= 1;  // payload corrupted in transit: its checksum no longer holds
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(bad))) << "bad checksum";
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, {}, kTcpAck)))) << "pure ACK";
  EXPECT_EQ(head->size(), 40 + p1.size()) << "nothing was appended";
  EXPECT_EQ(head->offload.gso, OffloadInfo::Gso::kNone);

  auto pushed = bufferOf(segment(5000, p1, kTcpAck | kTcpPsh));
  EXPECT_FALSE(xmit::tcpCoalesce(*pushed, *bufferOf(segment(6000, p2, kTcpAck)))) << "head has PSH";

  head = fresh();
  ASSERT_TRUE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, randomBytes(500, 3), kTcpAck))));
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(6500, p2, kTcpAck))))
      << "a short segment ends the run";
  head = fresh();
  ASSERT_TRUE(xmit::tcpCoalesce(*head, *bufferOf(segment(6000, p2, kTcpAck | kTcpPsh))));
  EXPECT_FALSE(xmit::tcpCoalesce(*head, *bufferOf(segment(7000, p2, kTcpAck)))) << "after a PSH";

  // A plain packet nothing joined is left as it was.
  auto alone = fresh();
  const Bytes before(alone->data(), alone->data() + alone->size());
  xmit::finishCoalesced(*alone);
  EXPECT_EQ(Bytes(alone->data(), alone->data() + alone->size()), before);
  EXPECT_EQ(alone->offload.csum, OffloadInfo::Csum::kNone);
}

TEST(TcpCoalesceTest, StopsAt64KB) {
  const Bytes p = randomBytes(1400, 9);
  auto head = bufferOf(segment(0, p, kTcpAck));
  size_t joined = 1;
  for (uint32_t seq = 1400; seq < 200 * 1400; seq += 1400) {
    if (!xmit::tcpCoalesce(*head, *bufferOf(segment(seq, p, kTcpAck))))
      break;
    ++joined;
  }
  EXPECT_EQ(joined, (65535 - 40) / 1400);
  EXPECT_LE(head->size(), 65535U);
}

// A kernel-segmented GUE tunnel's super-packet as a UDP socket reads it: the inner TCP checksum
// field holds the pseudo-header sum (CHECKSUM_PARTIAL never finished).
Bytes partialOf(Bytes b, bool v6) {
  const size_t l4 = v6 ? 40 : 20;
  const size_t len = b.size() - l4;
  const uint16_t ps = refFold(nullptr, 0, refPseudo(b.data(), v6, 6, len));
  b[l4 + 16] = static_cast<uint8_t>(ps >> 8);
  b[l4 + 17] = static_cast<uint8_t>(ps);
  return b;
}

TEST(AdoptPartialTcpTest, TakesAPartialSuperPacketAndLeavesCompleteOnes) {
  for (const char* src : {"198.18.0.1", "2001:2::1"}) {
    SCOPED_TRACE(src);
    const bool v6 = ip(src).isV6();
    const size_t l4 = v6 ? 40 : 20;
    const Bytes data = randomBytes(60000, 7);
    const Bytes whole = segment(1000, data, kTcpAck, src);
    // Complete (valid checksum): untouched.
    auto complete = bufferOf(whole);
    EXPECT_FALSE(xmit::adoptPartialTcp(*complete, 1500));
    EXPECT_EQ(complete->offload.csum, OffloadInfo::Csum::kNone);
    EXPECT_EQ(complete->offload.gso, OffloadInfo::Gso::kNone);
    // Partial: CHECKSUM_PARTIAL and a GSO request of MTU-sized segments.
    auto partial = bufferOf(partialOf(whole, v6));
    ASSERT_TRUE(xmit::adoptPartialTcp(*partial, 1500));
    EXPECT_EQ(partial->offload.csum, OffloadInfo::Csum::kPartial);
    EXPECT_EQ(partial->offload.csum_start, l4);
    EXPECT_EQ(partial->offload.csum_offset, 16);
    EXPECT_EQ(partial->offload.gso, v6 ? OffloadInfo::Gso::kTcpV6 : OffloadInfo::Gso::kTcpV4);
    EXPECT_EQ(partial->offload.gso_size, 1500 - l4 - 20);
    xmit::finishCoalesced(*partial);
    const uint8_t* d = partial->data();
    const size_t len = partial->size() - l4;
    EXPECT_EQ(get16(d + l4 + 16), refFold(nullptr, 0, refPseudo(d, v6, 6, len)));
    // Completing the partial checksum gives the original segment back, byte for byte.
    Bytes done(d, d + partial->size());
    done[l4 + 16] = done[l4 + 17] = 0;
    const uint16_t c =
        static_cast<uint16_t>(~refFold(done.data() + l4, len, refPseudo(d, v6, 6, len)));
    done[l4 + 16] = static_cast<uint8_t>(c >> 8);
    done[l4 + 17] = static_cast<uint8_t>(c);
    EXPECT_EQ(done, whole);
    // A partial packet that fits the MTU: CHECKSUM_PARTIAL only.
    auto small = bufferOf(partialOf(segment(5, Bytes(100, 0x5a), kTcpAck, src), v6));
    ASSERT_TRUE(xmit::adoptPartialTcp(*small, 1500));
    EXPECT_EQ(small->offload.csum, OffloadInfo::Csum::kPartial);
    EXPECT_EQ(small->offload.gso, OffloadInfo::Gso::kNone);
  }
}

TEST(AdoptPartialTcpTest, UnwiredSkipsTheVerificationAndStaysCorrect) {
  const Bytes whole = segment(1000, randomBytes(60000, 11), kTcpAck);
  // A partial super-packet: adopted as without `unwired`.
  auto partial = bufferOf(partialOf(whole, false));
  ASSERT_TRUE(xmit::adoptPartialTcp(*partial, 1500, /*unwired=*/true));
  EXPECT_EQ(partial->offload.gso, OffloadInfo::Gso::kTcpV4);
  // A complete one keeps its valid checksum, which is not the pseudo-header sum: not adopted.
  auto complete = bufferOf(whole);
  EXPECT_FALSE(xmit::adoptPartialTcp(*complete, 1500, /*unwired=*/true));
  // A field neither valid nor the pseudo-header sum: not adopted either.
  Bytes bad = partialOf(whole, false);
  bad[20 + 16] ^= 0x80;
  auto b = bufferOf(bad);
  EXPECT_FALSE(xmit::adoptPartialTcp(*b, 1500, /*unwired=*/true));
}

TEST(AdoptPartialTcpTest, RefusesABadChecksumThatIsNotThePseudoHeaderSum) {
  Bytes b = partialOf(segment(1000, randomBytes(3000, 9), kTcpAck), false);
  b[20 + 17] ^= 1;  // neither valid nor the pseudo-header sum: left for the kernel to drop
  auto p = bufferOf(b);
  EXPECT_FALSE(xmit::adoptPartialTcp(*p, 1500));
  EXPECT_EQ(p->offload.csum, OffloadInfo::Csum::kNone);
  // Already carrying an offload request: not touched.
  auto q = bufferOf(partialOf(segment(1000, randomBytes(3000, 9), kTcpAck), false));
  q->offload.gso = OffloadInfo::Gso::kTcpV4;
  q->offload.gso_size = 1000;
  EXPECT_FALSE(xmit::adoptPartialTcp(*q, 1500));
  EXPECT_EQ(q->offload.gso_size, 1000);
}

}  // namespace
}  // namespace lb
