// SPDX-License-Identifier: Apache-2.0
// Every forwarder against a hand-assembled expected packet: NAT both directions, full NAT, DR,
// and IPIP / GUE / GRE tunnels, IPv4 and IPv6, plus the TTL / MTU / GSO rules of forwarder.h.
#include "core/xmit/forwarder.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

#include "core/packet/parse.h"
#include "core/packet/rewrite.h"
#include "core/xmit/xmit_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::checksumsValid;
using testing::hexDump;
using testing::ip;
using testing::PacketBuilder;
using Bytes = std::vector<uint8_t>;

// A plain RFC 1071 sum for the expected packets (independent of core/).
uint16_t refChecksum(const Bytes& b, size_t off, size_t len, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < len; i += 2)
    acc += static_cast<uint32_t>((b[off + i] << 8) | b[off + i + 1]);
  if (len % 2 == 1)
    acc += static_cast<uint32_t>(b[off + len - 1] << 8);
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

void putAddr(Bytes& b, size_t off, const char* a) {
  IpAddr x = ip(a);
  std::copy(x.data(), x.data() + x.size(), b.begin() + static_cast<long>(off));
}

// Outer IPv4 header by hand: TOS, ID, DF, TTL, protocol, addresses; checksum computed here.
Bytes outerV4(size_t payload,
              uint8_t tos,
              uint16_t id,
              bool df,
              uint8_t ttl,
              uint8_t proto,
              const char* src,
              const char* dst) {
  Bytes h(20, 0);
  h[0] = 0x45;
  h[1] = tos;
  put16(h, 2, static_cast<uint16_t>(20 + payload));
  put16(h, 4, id);
  h[6] = df ? 0x40 : 0;
  h[8] = ttl;
  h[9] = proto;
  putAddr(h, 12, src);
  putAddr(h, 16, dst);
  put16(h, 10, refChecksum(h, 0, 20));
  return h;
}

Bytes outerV6(
    size_t payload, uint8_t tc, uint8_t hop, uint8_t nh, const char* src, const char* dst) {
  Bytes h(40, 0);
  h[0] = static_cast<uint8_t>(0x60 | (tc >> 4));
  h[1] = static_cast<uint8_t>((tc & 0xf) << 4);
  put16(h, 4, static_cast<uint16_t>(payload));
  h[6] = nh;
  h[7] = hop;
  putAddr(h, 8, src);
  putAddr(h, 24, dst);
  return h;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Loaded {
  std::unique_ptr<PacketBuffer> buf = std::make_unique<PacketBuffer>();
  ParsedPacket pp;

  Bytes bytes() const { return Bytes(buf->data(), buf->data() + buf->size()); }
};

Loaded load(const Bytes& b) {
  Loaded l;
  EXPECT_TRUE(l.buf->assign(b));
  EXPECT_EQ(parsePacket(l.buf->span(), l.pp), DropReason::kNone) << hexDump(b.data(), b.size());
  return l;
}

void setConn(Conn& c,
             FwdMethod m,
             const char* caddr,
             uint16_t cport,
             const char* vaddr,
             uint16_t vport,
             const char* daddr,
             uint16_t dport) {
  c.af = ip(caddr).af();
  c.daf = ip(daddr).af();
  c.caddr = ip(caddr);
  c.cport = cport;
  c.vaddr = ip(vaddr);
  c.vport = vport;
  c.daddr = ip(daddr);
  c.dport = dport;
  c.flags = m == FwdMethod::kFullNat ? kConnFFullNat : static_cast<uint32_t>(m);
}

XmitResult run(FwdMethod m, Loaded& l, const Conn& c, Direction dir, const XmitContext& ctx) {
  Forwarder* f = findForwarder(m);
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(f->method(), m);
  return f->forward(*l.buf, l.pp, c, dir, ctx);
}

#define EXPECT_BYTES(actual, expected)                                              \
  EXPECT_EQ(actual, expected) << "got:\n"                                           \
                              << hexDump(actual.data(), actual.size()) << "want:\n" \
                              << hexDump(expected.data(), expected.size())

TEST(ForwarderRegistryTest, OneForwarderPerMethod) {
  EXPECT_EQ(findForwarder(FwdMethod::kMasq)->method(), FwdMethod::kMasq);
  EXPECT_EQ(findForwarder(FwdMethod::kFullNat)->method(), FwdMethod::kFullNat);
  EXPECT_EQ(findForwarder(FwdMethod::kDirectRoute)->method(), FwdMethod::kDirectRoute);
  EXPECT_EQ(findForwarder(FwdMethod::kTunnel)->method(), FwdMethod::kTunnel);
  EXPECT_EQ(findForwarder(FwdMethod::kLocal), nullptr);
  EXPECT_EQ(findForwarder(FwdMethod::kBypass), nullptr);
}

// ---- NAT ----

TEST(NatForwarderTest, DnatTowardRealServerV4) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  Loaded l = load(PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn)
                      .ttl(64)
                      .ipId(77)
                      .payloadSize(33)
                      .build());
  XmitResult r = run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {});
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Bytes want = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.1.10", 8080, kTcpSyn)
                   .ttl(63)
                   .ipId(77)
                   .payloadSize(33)
                   .build();
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
  EXPECT_TRUE(checksumsValid(got));
  EXPECT_EQ(l.buf->tx, TxPath::kTun);
  EXPECT_EQ(l.pp.outer.dst, ip("198.18.1.10"));
  EXPECT_EQ(l.pp.outer.dport, 8080);
  EXPECT_EQ(l.pp.outer.ttl, 63);
}

TEST(NatForwarderTest, SnatTowardClientV4) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  Loaded l = load(PacketBuilder::tcp("198.18.1.10", 8080, "198.18.0.1", 40000, kTcpSyn | kTcpAck)
                      .ttl(64)
                      .payload("hello")
                      .build());
  XmitResult r = run(FwdMethod::kMasq, l, c, Direction::kToClient, {});
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Bytes want = PacketBuilder::tcp("198.18.100.1", 80, "198.18.0.1", 40000, kTcpSyn | kTcpAck)
                   .ttl(63)
                   .payload("hello")
                   .build();
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(NatForwarderTest, UdpBothDirectionsV6) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "2001:2::1", 5353, "2001:2:0:100::1", 53, "2001:2:0:1::10", 1053);
  Loaded in =
      load(PacketBuilder::udp("2001:2::1", 5353, "2001:2:0:100::1", 53).payload("q").build());
  ASSERT_EQ(run(FwdMethod::kMasq, in, c, Direction::kToRealServer, {}).verdict, Verdict::kForward);
  Bytes want_in =
      PacketBuilder::udp("2001:2::1", 5353, "2001:2:0:1::10", 1053).ttl(63).payload("q").build();
  Bytes got_in = in.bytes();
  EXPECT_BYTES(got_in, want_in);
  EXPECT_TRUE(checksumsValid(got_in));

  Loaded out =
      load(PacketBuilder::udp("2001:2:0:1::10", 1053, "2001:2::1", 5353).payload("answer").build());
  ASSERT_EQ(run(FwdMethod::kMasq, out, c, Direction::kToClient, {}).verdict, Verdict::kForward);
  Bytes want_out = PacketBuilder::udp("2001:2:0:100::1", 53, "2001:2::1", 5353)
                       .ttl(63)
                       .payload("answer")
                       .build();
  Bytes got_out = out.bytes();
  EXPECT_BYTES(got_out, want_out);
}

TEST(NatForwarderTest, ZeroUdpChecksumIsComputed) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 5000, "198.18.100.1", 53, "198.18.1.10", 53);
  Loaded l = load(PacketBuilder::udp("198.18.0.1", 5000, "198.18.100.1", 53)
                      .payload("abc")
                      .udpZeroChecksum()
                      .build());
  ASSERT_EQ(run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {}).verdict, Verdict::kForward);
  Bytes want =
      PacketBuilder::udp("198.18.0.1", 5000, "198.18.1.10", 53).ttl(63).payload("abc").build();
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(NatForwarderTest, TtlOneIsTimeExceededAndUntouched) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).ttl(1).build();
  Loaded l = load(in);
  XmitResult r = run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {});
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kTtlExceeded);
  Bytes got = l.bytes();
  EXPECT_BYTES(got, in);
}

TEST(NatForwarderTest, DfAndTooBigIsFragNeededWithMtu) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  // 20 + 20 + 1461 = 1501 bytes.
  Bytes big = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                  .df(true)
                  .payloadSize(1461)
                  .build();
  Loaded l = load(big);
  XmitResult r = run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {});
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kFragNeeded);
  EXPECT_EQ(r.mtu, 1500u);
  Bytes got = l.bytes();
  EXPECT_BYTES(got, big);
  // Exactly the MTU passes; without DF it passes too (the stack fragments).
  Loaded fits = load(PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                         .df(true)
                         .payloadSize(1460)
                         .build());
  EXPECT_EQ(run(FwdMethod::kMasq, fits, c, Direction::kToRealServer, {}).verdict,
            Verdict::kForward);
  Loaded nodf = load(PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                         .payloadSize(1461)
                         .build());
  EXPECT_EQ(run(FwdMethod::kMasq, nodf, c, Direction::kToRealServer, {}).verdict,
            Verdict::kForward);
}

TEST(NatForwarderTest, Ipv6TooBigIsPacketTooBig) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "2001:2::1", 40000, "2001:2:0:100::1", 80, "2001:2:0:1::10", 80);
  Loaded l = load(PacketBuilder::tcp("2001:2::1", 40000, "2001:2:0:100::1", 80, kTcpAck)
                      .payloadSize(1280 - 60 + 1)
                      .build());
  XmitContext ctx;
  ctx.mtu = 1280;
  XmitResult r = run(FwdMethod::kMasq, l, c, Direction::kToRealServer, ctx);
  EXPECT_EQ(r.reason, DropReason::kFragNeeded);
  EXPECT_EQ(r.mtu, 1280u);
}

TEST(NatForwarderTest, GsoPacketIsNotMtuChecked) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  Loaded l = load(PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                      .df(true)
                      .payloadSize(2920)
                      .build());
  l.buf->offload.gso = OffloadInfo::Gso::kTcpV4;
  l.buf->offload.gso_size = 1460;
  EXPECT_EQ(run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {}).verdict, Verdict::kForward);
}

TEST(NatForwarderTest, IcmpErrorFromClientSideGoesToRealServer) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  // A router near the client reports our SNATed reply vaddr:vport -> caddr:cport.
  Bytes quoted =
      PacketBuilder::tcp("198.18.100.1", 80, "198.18.0.1", 40000, kTcpAck).payloadSize(10).build();
  Loaded l = load(PacketBuilder::icmpError("198.18.50.1", "198.18.100.1", 3, 4, 1400, quoted));
  ASSERT_TRUE(l.pp.is_icmp_error);
  ASSERT_EQ(run(FwdMethod::kMasq, l, c, Direction::kToRealServer, {}).verdict, Verdict::kForward);
  Bytes inner =
      PacketBuilder::tcp("198.18.1.10", 8080, "198.18.0.1", 40000, kTcpAck).payloadSize(10).build();
  Bytes want = PacketBuilder::icmpError("198.18.50.1", "198.18.1.10", 3, 4, 1400, inner);
  want[8] = 63;  // TTL decremented
  put16(want, 10, 0);
  put16(want, 10, refChecksum(want, 0, 20));
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
  EXPECT_TRUE(checksumsValid(got));
}

TEST(NatForwarderTest, IcmpErrorFromRealServerSideGoesToClient) {
  Conn c;
  setConn(c, FwdMethod::kMasq, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  Bytes quoted = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.1.10", 8080, kTcpAck).build();
  Loaded l = load(PacketBuilder::icmpError("198.18.1.10", "198.18.0.1", 3, 3, 0, quoted));
  ASSERT_EQ(run(FwdMethod::kMasq, l, c, Direction::kToClient, {}).verdict, Verdict::kForward);
  Bytes inner = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck).build();
  Bytes want = PacketBuilder::icmpError("198.18.100.1", "198.18.0.1", 3, 3, 0, inner);
  want[8] = 63;
  put16(want, 10, 0);
  put16(want, 10, refChecksum(want, 0, 20));
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

// ---- Full NAT ----

TEST(FullNatForwarderTest, BothDirectionsV4) {
  Conn c;
  setConn(c, FwdMethod::kFullNat, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  c.laddr = ip("198.18.1.1");
  c.lport = 1025;
  Loaded in = load(PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).build());
  ASSERT_EQ(run(FwdMethod::kFullNat, in, c, Direction::kToRealServer, {}).verdict,
            Verdict::kForward);
  Bytes want_in =
      PacketBuilder::tcp("198.18.1.1", 1025, "198.18.1.10", 8080, kTcpSyn).ttl(63).build();
  Bytes got_in = in.bytes();
  EXPECT_BYTES(got_in, want_in);

  Loaded out = load(PacketBuilder::tcp("198.18.1.10", 8080, "198.18.1.1", 1025, kTcpSyn | kTcpAck)
                        .payload("xyz")
                        .build());
  ASSERT_EQ(run(FwdMethod::kFullNat, out, c, Direction::kToClient, {}).verdict, Verdict::kForward);
  Bytes want_out = PacketBuilder::tcp("198.18.100.1", 80, "198.18.0.1", 40000, kTcpSyn | kTcpAck)
                       .ttl(63)
                       .payload("xyz")
                       .build();
  Bytes got_out = out.bytes();
  EXPECT_BYTES(got_out, want_out);
  EXPECT_TRUE(checksumsValid(got_out));
}

TEST(FullNatForwarderTest, UdpV6TowardRealServer) {
  Conn c;
  setConn(c, FwdMethod::kFullNat, "2001:2::1", 7000, "2001:2:0:100::1", 53, "2001:2:0:1::10", 53);
  c.laddr = ip("2001:2:0:1::1");
  c.lport = 2000;
  Loaded in =
      load(PacketBuilder::udp("2001:2::1", 7000, "2001:2:0:100::1", 53).payload("q?").build());
  ASSERT_EQ(run(FwdMethod::kFullNat, in, c, Direction::kToRealServer, {}).verdict,
            Verdict::kForward);
  Bytes want =
      PacketBuilder::udp("2001:2:0:1::1", 2000, "2001:2:0:1::10", 53).ttl(63).payload("q?").build();
  Bytes got = in.bytes();
  EXPECT_BYTES(got, want);
}

TEST(FullNatForwarderTest, IcmpErrorFromRealServerSide) {
  Conn c;
  setConn(c, FwdMethod::kFullNat, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  c.laddr = ip("198.18.1.1");
  c.lport = 1025;
  Bytes quoted = PacketBuilder::tcp("198.18.1.1", 1025, "198.18.1.10", 8080, kTcpAck).build();
  Loaded l = load(PacketBuilder::icmpError("198.18.1.10", "198.18.1.1", 3, 3, 0, quoted));
  ASSERT_EQ(run(FwdMethod::kFullNat, l, c, Direction::kToClient, {}).verdict, Verdict::kForward);
  Bytes inner = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck).build();
  Bytes want = PacketBuilder::icmpError("198.18.100.1", "198.18.0.1", 3, 3, 0, inner);
  want[8] = 63;
  put16(want, 10, 0);
  put16(want, 10, refChecksum(want, 0, 20));
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(FullNatForwarderTest, IcmpErrorFromClientSideGoesToRealServer) {
  Conn c;
  setConn(c, FwdMethod::kFullNat, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 8080);
  c.laddr = ip("198.18.1.1");
  c.lport = 1025;
  // A router near the client cannot deliver VIP:80 -> client:40000; the real server must see
  // an error about its own daddr:dport -> laddr:lport, from laddr.
  Bytes quoted =
      PacketBuilder::tcp("198.18.100.1", 80, "198.18.0.1", 40000, kTcpAck).payloadSize(8).build();
  Loaded l = load(PacketBuilder::icmpError("198.18.50.1", "198.18.100.1", 3, 4, 1400, quoted));
  ASSERT_EQ(run(FwdMethod::kFullNat, l, c, Direction::kToRealServer, {}).verdict,
            Verdict::kForward);
  Bytes inner =
      PacketBuilder::tcp("198.18.1.10", 8080, "198.18.1.1", 1025, kTcpAck).payloadSize(8).build();
  Bytes want = PacketBuilder::icmpError("198.18.1.1", "198.18.1.10", 3, 4, 1400, inner);
  want[8] = 63;
  put16(want, 10, 0);
  put16(want, 10, refChecksum(want, 0, 20));
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
  EXPECT_TRUE(checksumsValid(got));
}

TEST(FullNatForwarderTest, RefusesMixedFamiliesAndExpiredTtl) {
  Conn c;
  setConn(c, FwdMethod::kFullNat, "198.18.0.1", 40000, "198.18.100.1", 80, "2001:2:0:1::10", 80);
  c.laddr = ip("198.18.1.1");
  c.lport = 1025;
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).build();
  Loaded mixed = load(in);
  XmitResult r = run(FwdMethod::kFullNat, mixed, c, Direction::kToRealServer, {});
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kUnsupported);
  EXPECT_BYTES(mixed.bytes(), in);

  setConn(c, FwdMethod::kFullNat, "198.18.0.1", 40000, "198.18.100.1", 80, "198.18.1.10", 80);
  Bytes ttl1 = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).ttl(1).build();
  Loaded l = load(ttl1);
  r = run(FwdMethod::kFullNat, l, c, Direction::kToRealServer, {});
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kTtlExceeded);
  EXPECT_BYTES(l.bytes(), ttl1);  // left as received, for the ICMP error quoting it
}

// ---- DR ----

TEST(DrForwarderTest, OnlyTtlChangesAndGoesOnL2) {
  for (const char* fam : {"v4", "v6"}) {
    bool v6 = fam[1] == '6';
    const char* cl = v6 ? "2001:2::1" : "198.18.0.1";
    const char* vip = v6 ? "2001:2:0:100::1" : "198.18.100.1";
    const char* rs = v6 ? "2001:2:0:1::10" : "198.18.1.10";
    Conn c;
    setConn(c, FwdMethod::kDirectRoute, cl, 40000, vip, 80, rs, 80);
    Loaded l = load(PacketBuilder::tcp(cl, 40000, vip, 80, kTcpSyn).ttl(10).build());
    ASSERT_EQ(run(FwdMethod::kDirectRoute, l, c, Direction::kToRealServer, {}).verdict,
              Verdict::kForward);
    Bytes want = PacketBuilder::tcp(cl, 40000, vip, 80, kTcpSyn).ttl(9).build();
    Bytes got = l.bytes();
    EXPECT_BYTES(got, want);
    EXPECT_EQ(l.buf->tx, TxPath::kL2);
    EXPECT_EQ(l.buf->next_hop, ip(rs));
    Loaded reply = load(PacketBuilder::tcp(vip, 80, cl, 40000, kTcpAck).build());
    XmitResult r = run(FwdMethod::kDirectRoute, reply, c, Direction::kToClient, {});
    EXPECT_EQ(r.verdict, Verdict::kDrop);
    EXPECT_EQ(r.reason, DropReason::kUnsupported);
  }
}

// ---- Tunnels ----

struct TunnelCase {
  Conn conn;
  SnapDest dest;
  XmitContext ctx;
};

void setupTunnel(TunnelCase& t,
                 TunType type,
                 TunCsum csum,
                 const char* cl,
                 const char* vip,
                 const char* rs,
                 const char* tsrc) {
  setConn(t.conn, FwdMethod::kTunnel, cl, 40000, vip, 80, rs, 80);
  t.dest.config.addr = ip(rs);
  t.dest.config.port = 80;
  t.dest.config.fwd = FwdMethod::kTunnel;
  t.dest.config.tun_type = type;
  t.dest.config.tun_csum = csum;
  t.dest.config.tun_port = type == TunType::kGue ? 6080 : 0;
  t.ctx.dest = &t.dest;
  t.ctx.tunnel_src = ip(tsrc);
  t.ctx.flow_hash = 0x12345678;
}

TEST(TunnelForwarderTest, IpipV4InV4) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  // DSCP 0x28 with CE (0x03): the outer TOS gets ECT(0) instead of CE.
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn)
                 .ttl(64)
                 .df(true)
                 .ipId(0x1234)
                 .payloadSize(7)
                 .build();
  in[1] = 0x2b;
  in[10] = in[11] = 0;
  put16(in, 10, refChecksum(in, 0, 20));
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner = in;
  inner[8] = 63;
  put16(inner, 10, 0);
  put16(inner, 10, refChecksum(inner, 0, 20));
  Bytes want =
      concat({outerV4(inner.size(), 0x2a, 0, true, 63, 4, "198.18.1.1", "198.18.1.10"), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
  EXPECT_TRUE(checksumsValid(got));
  EXPECT_EQ(l.pp.outer.proto, L4Proto::kIpip);
  EXPECT_EQ(l.pp.outer.dst, ip("198.18.1.10"));
}

TEST(TunnelForwarderTest, IpipWithoutPmtuDiscClearsDf) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  t.ctx.pmtu_disc = false;
  // Too big for 1500 - 20 with DF: still forwarded, outer DF clear (the outer is fragmented).
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                 .df(true)
                 .ipId(9)
                 .payloadSize(1460)
                 .build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                    .df(true)
                    .ipId(9)
                    .ttl(63)
                    .payloadSize(1460)
                    .build();
  Bytes want =
      concat({outerV4(inner.size(), 0, 9, false, 63, 4, "198.18.1.1", "198.18.1.10"), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(TunnelForwarderTest, MtuIsReducedByTheOverhead) {
  struct Case {
    TunType type;
    TunCsum csum;
    uint32_t mtu;
  };

  for (Case k :
       {Case{TunType::kIpip, TunCsum::kNoCsum, 1480}, Case{TunType::kGue, TunCsum::kNoCsum, 1468},
        Case{TunType::kGre, TunCsum::kNoCsum, 1476}, Case{TunType::kGre, TunCsum::kCsum, 1472}}) {
    TunnelCase t;
    setupTunnel(t, k.type, k.csum, "198.18.0.1", "198.18.100.1", "198.18.1.10", "198.18.1.1");
    Bytes fits = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                     .df(true)
                     .payloadSize(k.mtu - 40)
                     .build();
    Loaded a = load(fits);
    EXPECT_EQ(run(FwdMethod::kTunnel, a, t.conn, Direction::kToRealServer, t.ctx).verdict,
              Verdict::kForward);
    Bytes big = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                    .df(true)
                    .payloadSize(k.mtu - 39)
                    .build();
    Loaded b = load(big);
    XmitResult r = run(FwdMethod::kTunnel, b, t.conn, Direction::kToRealServer, t.ctx);
    EXPECT_EQ(r.reason, DropReason::kFragNeeded);
    EXPECT_EQ(r.mtu, k.mtu);
    Bytes got = b.bytes();
    EXPECT_BYTES(got, big);
  }
}

TEST(TunnelForwarderTest, IpipV6InV4UsesProto41) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "2001:2::1", "2001:2:0:100::1", "198.18.1.10",
              "198.18.1.1");
  Bytes in = PacketBuilder::udp("2001:2::1", 40000, "2001:2:0:100::1", 80).payload("v6").build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner =
      PacketBuilder::udp("2001:2::1", 40000, "2001:2:0:100::1", 80).ttl(63).payload("v6").build();
  // IPv6 inner: no DF, and no inner ID: the outer ID is 0.
  Bytes want =
      concat({outerV4(inner.size(), 0, 0, false, 63, 41, "198.18.1.1", "198.18.1.10"), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(TunnelForwarderTest, IpipV4InV6UsesNextHeader4) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "2001:2:0:1::10",
              "2001:2:0:1::1");
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner =
      PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).ttl(63).build();
  Bytes want = concat({outerV6(inner.size(), 0, 63, 4, "2001:2:0:1::1", "2001:2:0:1::10"), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

TEST(TunnelForwarderTest, IpipV6InV6CopiesTrafficClass) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "2001:2::1", "2001:2:0:100::1", "2001:2:0:1::10",
              "2001:2:0:1::1");
  Bytes in = PacketBuilder::tcp("2001:2::1", 40000, "2001:2:0:100::1", 80, kTcpSyn).build();
  in[0] = 0x6b;  // traffic class 0xb1: DSCP 0x2c, ECN ECT(1)
  in[1] = 0x10;
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner = in;
  inner[7] = 63;
  Bytes want =
      concat({outerV6(inner.size(), 0xb1, 63, 41, "2001:2:0:1::1", "2001:2:0:1::10"), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

Bytes gueHeader(size_t inner_len, uint16_t sport, uint16_t dport, uint8_t proto) {
  Bytes g(12, 0);
  put16(g, 0, sport);
  put16(g, 2, dport);
  put16(g, 4, static_cast<uint16_t>(12 + inner_len));
  g[9] = proto;
  return g;
}

TEST(TunnelForwarderTest, GueNoChecksumV4) {
  TunnelCase t;
  setupTunnel(t, TunType::kGue, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  Bytes in =
      PacketBuilder::udp("198.18.0.1", 40000, "198.18.100.1", 80).ipId(5).payload("gue").build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner = PacketBuilder::udp("198.18.0.1", 40000, "198.18.100.1", 80)
                    .ipId(5)
                    .ttl(63)
                    .payload("gue")
                    .build();
  // udp_flow_src_port(0x12345678) = 40299 (worked out in python from include/net/udp.h).
  Bytes want = concat({outerV4(12 + inner.size(), 0, 5, false, 63, 17, "198.18.1.1", "198.18.1.10"),
                       gueHeader(inner.size(), 40299, 6080, 4), inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
  EXPECT_TRUE(checksumsValid(got));  // outer UDP checksum 0 = none
  EXPECT_EQ(l.pp.outer.proto, L4Proto::kUdp);
  EXPECT_EQ(l.pp.outer.sport, 40299);
}

TEST(TunnelForwarderTest, GueWithChecksumV4) {
  TunnelCase t;
  setupTunnel(t, TunType::kGue, TunCsum::kCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).ipId(5).build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes got = l.bytes();
  ASSERT_EQ(got.size(), 20u + 12u + in.size());
  EXPECT_NE(got[26] | got[27], 0);   // a checksum is present
  EXPECT_TRUE(checksumsValid(got));  // and right (outer UDP over GUE + inner, from scratch)
  Bytes inner(got.begin() + 32, got.end());
  EXPECT_TRUE(checksumsValid(inner));
  Bytes want_inner =
      PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpSyn).ipId(5).ttl(63).build();
  EXPECT_BYTES(inner, want_inner);
  // Everything but the checksum, by hand.
  Bytes want = concat({outerV4(12 + in.size(), 0, 5, false, 63, 17, "198.18.1.1", "198.18.1.10"),
                       gueHeader(in.size(), 40299, 6080, 4), want_inner});
  want[26] = got[26];
  want[27] = got[27];
  EXPECT_BYTES(got, want);
}

TEST(TunnelForwarderTest, GueV6InV6WithChecksum) {
  TunnelCase t;
  setupTunnel(t, TunType::kGue, TunCsum::kRemCsum, "2001:2::1", "2001:2:0:100::1", "2001:2:0:1::10",
              "2001:2:0:1::1");
  Bytes in = PacketBuilder::udp("2001:2::1", 40000, "2001:2:0:100::1", 80).payload("six").build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes got = l.bytes();
  EXPECT_TRUE(checksumsValid(got));
  Bytes inner =
      PacketBuilder::udp("2001:2::1", 40000, "2001:2:0:100::1", 80).ttl(63).payload("six").build();
  Bytes want = concat({outerV6(12 + inner.size(), 0, 63, 17, "2001:2:0:1::1", "2001:2:0:1::10"),
                       gueHeader(inner.size(), 40299, 6080, 41), inner});
  want[46] = got[46];
  want[47] = got[47];
  EXPECT_BYTES(got, want);
}

TEST(TunnelForwarderTest, GreWithAndWithoutChecksum) {
  for (TunCsum csum : {TunCsum::kNoCsum, TunCsum::kCsum}) {
    TunnelCase t;
    setupTunnel(t, TunType::kGre, csum, "198.18.0.1", "198.18.100.1", "198.18.1.10", "198.18.1.1");
    Bytes in = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                   .ipId(3)
                   .payloadSize(11)
                   .build();
    Loaded l = load(in);
    ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
              Verdict::kForward);
    Bytes inner = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                      .ipId(3)
                      .ttl(63)
                      .payloadSize(11)
                      .build();
    bool with = csum == TunCsum::kCsum;
    Bytes gre(with ? 8 : 4, 0);
    put16(gre, 0, with ? 0x8000 : 0);
    put16(gre, 2, 0x0800);
    Bytes tail = concat({gre, inner});
    if (with)
      put16(tail, 4, refChecksum(tail, 0, tail.size()));
    Bytes want =
        concat({outerV4(tail.size(), 0, 3, false, 63, 47, "198.18.1.1", "198.18.1.10"), tail});
    Bytes got = l.bytes();
    EXPECT_BYTES(got, want);
  }
}

TEST(TunnelForwarderTest, GreV6InnerUsesEthPIpv6) {
  TunnelCase t;
  setupTunnel(t, TunType::kGre, TunCsum::kNoCsum, "2001:2::1", "2001:2:0:100::1", "2001:2:0:1::10",
              "2001:2:0:1::1");
  Bytes in = PacketBuilder::tcp("2001:2::1", 40000, "2001:2:0:100::1", 80, kTcpSyn).build();
  Loaded l = load(in);
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  Bytes inner =
      PacketBuilder::tcp("2001:2::1", 40000, "2001:2:0:100::1", 80, kTcpSyn).ttl(63).build();
  Bytes gre(4, 0);
  put16(gre, 2, 0x86dd);
  Bytes want =
      concat({outerV6(4 + inner.size(), 0, 63, 47, "2001:2:0:1::1", "2001:2:0:1::10"), gre, inner});
  Bytes got = l.bytes();
  EXPECT_BYTES(got, want);
}

// GSO super-packets are encapsulated whole and cut by tunnel_gso.h (tunnel_gso_test.cc).
TEST(TunnelForwarderTest, RefusesReplies) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  Loaded reply = load(PacketBuilder::tcp("198.18.100.1", 80, "198.18.0.1", 40000, kTcpAck).build());
  EXPECT_EQ(run(FwdMethod::kTunnel, reply, t.conn, Direction::kToClient, t.ctx).reason,
            DropReason::kUnsupported);
}

TEST(TunnelForwarderTest, CompletesPartialChecksumBeforeEncapsulating) {
  TunnelCase t;
  setupTunnel(t, TunType::kIpip, TunCsum::kNoCsum, "198.18.0.1", "198.18.100.1", "198.18.1.10",
              "198.18.1.1");
  Bytes full =
      PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck).payloadSize(100).build();
  // CHECKSUM_PARTIAL: the field holds the folded, uncomplemented pseudo-header sum.
  Bytes partial = full;
  uint32_t ps = 0;
  for (size_t i = 12; i < 20; i += 2)
    ps += static_cast<uint32_t>((full[i] << 8) | full[i + 1]);
  ps += 6 + static_cast<uint32_t>(full.size() - 20);
  while (ps >> 16)
    ps = (ps & 0xffff) + (ps >> 16);
  put16(partial, 36, static_cast<uint16_t>(ps));
  Loaded l = load(partial);
  l.buf->offload.csum = OffloadInfo::Csum::kPartial;
  l.buf->offload.csum_start = 20;
  l.buf->offload.csum_offset = 16;
  ASSERT_EQ(run(FwdMethod::kTunnel, l, t.conn, Direction::kToRealServer, t.ctx).verdict,
            Verdict::kForward);
  EXPECT_EQ(l.buf->offload.csum, OffloadInfo::Csum::kNone);
  Bytes got = l.bytes();
  Bytes inner(got.begin() + 20, got.end());
  Bytes want_inner = PacketBuilder::tcp("198.18.0.1", 40000, "198.18.100.1", 80, kTcpAck)
                         .ttl(63)
                         .payloadSize(100)
                         .build();
  EXPECT_BYTES(inner, want_inner);
}

TEST(XmitUtilTest, UdpFlowSrcPortMatchesKernelFormula) {
  // hash ^= hash << 16; ((u64)hash * (60999 - 32768)) >> 32) + 32768.
  EXPECT_EQ(xmit::udpFlowSrcPort(0), 32768);
  EXPECT_EQ(xmit::udpFlowSrcPort(0x12345678), 40299);
  EXPECT_EQ(xmit::udpFlowSrcPort(0xffffffffu), 32768);  // 0xffffffff ^ 0xffff0000 = 0xffff
  EXPECT_EQ(xmit::udpFlowSrcPort(0xffff0000u), 60998);
}

}  // namespace
}  // namespace lb
