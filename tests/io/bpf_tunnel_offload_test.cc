// SPDX-License-Identifier: Apache-2.0
// A tunnel conn's flows entry (io/bpf/tunnel_offload.bpf.h, FlowRewrite::encap): the client's
// packet, sent from C, must reach S as exactly the GUE, IPIP or GRE packet core's tunnel
// forwarder (core/xmit/tunnel.cc) makes of it for the same conn: outer IPv4 header (DS field
// with ECN, ID, DF, TTL, protocol, checksum), for GUE the UDP ports and length, GUE header,
// outer UDP checksum 0, for GRE the 4-byte header without checksum, the inner packet with its TTL
// decremented and nothing else changed. A packet whose
// outer packet exceeds the route MTU takes the old path (the TUN device), as does the entry in a v6
// flow. Same fixture as bpf_flow_offload_test.cc (real namespaces, root: label integration).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/xmit/xmit_util.h"
#include "tests/io/bpf_flow_offload_fixture.h"
#include "tests/io/core_tunnel.h"

namespace lb::io::flow_offload_test {
namespace {

constexpr uint16_t kTunPort = 6080;
constexpr uint32_t kFlowHash = 0x12345678;

Bytes withTos(Bytes p, uint8_t tos);  // below

class TunnelOffloadTest : public FlowOffloadTest {
 protected:
  // A socket on S's tunnel port and raw IPIP and GRE sockets, so that S answers no tunnel
  // packet with an ICMP error (which would reach B's TUN device: kLip is in dsts).
  void SetUp() override {
    FlowOffloadTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    sink_ = net_.socketIn(Ns::kServer, AF_INET, SOCK_DGRAM);
    socklen_t len = 0;
    sockaddr_storage ss = sockAddr(ip(kRip), kTunPort, &len);
    ASSERT_GE(sink_, 0);
    ASSERT_EQ(bind(sink_, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
    ipip_sink_ = net_.socketIn(Ns::kServer, AF_INET, SOCK_RAW, IPPROTO_IPIP);
    ASSERT_GE(ipip_sink_, 0) << strerror(errno);
    gre_sink_ = net_.socketIn(Ns::kServer, AF_INET, SOCK_RAW, IPPROTO_GRE);
    ASSERT_GE(gre_sink_, 0) << strerror(errno);
  }

  void TearDown() override {
    if (sink_ >= 0)
      close(sink_);
    if (ipip_sink_ >= 0)
      close(ipip_sink_);
    if (gre_sink_ >= 0)
      close(gre_sink_);
    FlowOffloadTest::TearDown();
  }

  static TunType typeOf(FlowEncap e) {
    if (e == FlowEncap::kIpip4 || e == FlowEncap::kIpip4NoPmtu)
      return TunType::kIpip;
    if (e == FlowEncap::kGre4 || e == FlowEncap::kGre4NoPmtu)
      return TunType::kGre;
    return TunType::kGue;
  }

  // The bytes core's forwarder puts before the inner packet, and the outer protocol.
  static size_t outerLen(TunType t) {
    return t == TunType::kGue ? 32 : t == TunType::kGre ? 24 : 20;
  }

  static uint8_t outerProto(TunType t) {
    return t == TunType::kGue ? IPPROTO_UDP : t == TunType::kGre ? IPPROTO_GRE : IPPROTO_IPIP;
  }

  static ParsedPacket parse(const Bytes& p) {
    auto b = std::make_unique<PacketBuffer>();
    ParsedPacket pp;
    EXPECT_TRUE(b->assign(p));
    EXPECT_EQ(parsePacket(b->span(), pp), DropReason::kNone);
    return pp;
  }

  // Core's GUE (or IPIP, or GRE without checksum) encapsulation of `inner` for the conn
  // kFarClient:cport -> VIP:vport, real server kRip, tunnel source kLip (B's address towards S),
  // pmtu_disc as given.
  static Bytes coreTunnel(const Bytes& inner, bool pmtu_disc, TunType type = TunType::kGue) {
    return testing::coreTunnel(inner, {.type = type,
                                       .src = ip(kLip),
                                       .dst = ip(kRip),
                                       .port = kTunPort,
                                       .flow_hash = kFlowHash,
                                       .pmtu_disc = pmtu_disc});
  }

  // The tunnel entry for `inner`'s tuple (client -> VIP), as lbd installs it.
  FlowKey addTunnel(const Bytes& inner, FlowEncap encap = FlowEncap::kGue4) {
    const ParsedPacket pp = parse(inner);
    const FlowKey k{pp.outer.proto, pp.outer.src, pp.outer.dst, pp.outer.sport, pp.outer.dport};
    FlowRewrite rw{ip(kLip), ip(kRip), xmit::udpFlowSrcPort(kFlowHash), kTunPort, encap};
    if (typeOf(encap) != TunType::kGue)
      rw.sport = rw.dport = 0;  // as FlowOffload::inRewrite makes it
    absl::Status s = redirect_->addFlow(k, rw, FlowKey{}, 7, false);
    EXPECT_TRUE(s.ok()) << s;
    return k;
  }

  // Sends `inner` from C and returns what S captured on the tunnel port, or for IPIP and GRE
  // the packet of that protocol (nullopt: nothing).
  std::optional<Bytes> sendAndCapture(const Bytes& inner, TunType type = TunType::kGue) {
    if (!net_.sendFrame(inner))
      return std::nullopt;
    if (type != TunType::kGue) {
      const uint8_t proto = outerProto(type);
      return BpfNetns::nextCaptured(cap_s_, kWait,
                                    [proto](const Bytes& p) { return l4Proto(p) == proto; });
    }
    return BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, kTunPort));
  }

  void expectEncapsulated(const Bytes& inner, bool pmtu_disc, TunType type = TunType::kGue) {
    const Bytes want = coreTunnel(inner, pmtu_disc, type);
    const size_t outer = outerLen(type);
    ASSERT_EQ(want.size(), inner.size() + outer);
    auto got = sendAndCapture(inner, type);
    ASSERT_TRUE(got.has_value()) << "S saw no packet of protocol " << int{outerProto(type)};
    EXPECT_EQ(*got, want) << "got  " << hexDump(got->data(), got->size()) << "\nwant "
                          << hexDump(want.data(), want.size());
    EXPECT_TRUE(checksumsValid(*got));
    if (type != TunType::kGue && got->size() > outer) {
      EXPECT_TRUE(checksumsValid(got->data() + outer, got->size() - outer)) << "the inner packet";
    }
  }

  // A TCP segment with DF and ECN CE from `cport` and a UDP datagram without DF from cport + 1,
  // each its own conn with an entry of kind `encap` (pmtu_disc 1): both reach S as core makes
  // them, and the entries count the inner packets.
  void expectTcpAndUdpAsCore(uint16_t cport, FlowEncap encap) {
    const TunType type = typeOf(encap);
    const Bytes tcp = withTos(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x18)
                                  .df(true)
                                  .ipId(0x1234)
                                  .ttl(64)
                                  .payload("tunnelled segment")
                                  .build(),
                              0x2b);  // DSCP with CE: the outer gets ECT(0)
    const FlowKey tk = addTunnel(tcp, encap);
    expectEncapsulated(tcp, true, type);
    // No DF: the outer keeps the inner ID.
    const Bytes udp = PacketBuilder::udp(kFarClient, static_cast<uint16_t>(cport + 1), kVip, 53)
                          .df(false)
                          .ipId(0x4321)
                          .ttl(20)
                          .payloadSize(700)
                          .build();
    const FlowKey uk = addTunnel(udp, encap);
    expectEncapsulated(udp, true, type);
    EXPECT_EQ(counters().flow_forwarded, 2u);
    EXPECT_EQ(counters().flow_slow, 0u);
    FlowState ts = state(tk);
    EXPECT_EQ(ts.packets, 1u);
    EXPECT_EQ(ts.bytes, tcp.size()) << "the inner packet's bytes";
    EXPECT_TRUE(ts.ack);
    EXPECT_EQ(state(uk).packets, 1u);
  }

  // A TCP segment with DF from `cport`, an entry of kind `encap` (pmtu_disc 0): no outer DF,
  // the inner ID kept.
  void expectNoDfWithoutPmtuDisc(uint16_t cport, FlowEncap encap) {
    const Bytes tcp = PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x10)
                          .df(true)
                          .ipId(0x5555)
                          .payload("x")
                          .build();
    addTunnel(tcp, encap);
    expectEncapsulated(tcp, false, typeOf(encap));
  }

  // An egress MTU of 1000: a UDP packet one byte too big for the outer headers of `encap`
  // takes the old path (lbd answers FRAG_NEEDED there), one that makes an outer packet of
  // exactly 1000 bytes is encapsulated.
  void expectTooBigTakesTheOldPath(uint16_t cport, FlowEncap encap) {
    ASSERT_TRUE(net_.ipInB("link set vbs mtu 1000"));
    const TunType type = typeOf(encap);
    const size_t room = 1000 - outerLen(type) - 28;  // UDP payload making a 1000-byte outer
    const Bytes big =
        PacketBuilder::udp(kFarClient, cport, kVip, 53).df(true).payloadSize(room + 1).build();
    ASSERT_EQ(big.size() + outerLen(type), 1001u);
    const FlowKey k = addTunnel(big, encap);
    expectOldPath(big);
    EXPECT_EQ(counters().flow_slow, 1u);
    EXPECT_EQ(state(k).packets, 0u);
    const Bytes fits =
        PacketBuilder::udp(kFarClient, cport, kVip, 53).df(true).payloadSize(room).build();
    ASSERT_EQ(fits.size() + outerLen(type), 1000u);
    expectEncapsulated(fits, true, type);
    EXPECT_EQ(state(k).packets, 1u);
  }

  int sink_ = -1;
  int ipip_sink_ = -1;
  int gre_sink_ = -1;
};

// Sets the IPv4 DS field and fixes the header checksum.
Bytes withTos(Bytes p, uint8_t tos) {
  p[1] = tos;
  p[10] = p[11] = 0;
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<uint8_t>(~sum >> 8);
  p[11] = static_cast<uint8_t>(~sum);
  return p;
}

TEST_F(TunnelOffloadTest, TcpAndUdpEncapsulatedAsCoreDoes) {
  expectTcpAndUdpAsCore(40000, FlowEncap::kGue4);
}

TEST_F(TunnelOffloadTest, WithoutPmtuDiscTheOuterHasNoDf) {
  expectNoDfWithoutPmtuDisc(40002, FlowEncap::kGue4NoPmtu);
}

// The FIN and RST a tunnel entry forwards are recorded; it has no reverse, so the program
// finishes nothing (lbd's reads do).
TEST_F(TunnelOffloadTest, FlagsRecordedNothingFinished) {
  const Bytes fin = PacketBuilder::tcp(kFarClient, 40003, kVip, 80, 0x11).build();
  const FlowKey k = addTunnel(fin);
  ASSERT_TRUE(sendAndCapture(fin).has_value());
  const Bytes ack = PacketBuilder::tcp(kFarClient, 40003, kVip, 80, 0x10).build();
  ASSERT_TRUE(sendAndCapture(ack).has_value());
  const Bytes rst = PacketBuilder::tcp(kFarClient, 40003, kVip, 80, 0x14).build();
  ASSERT_TRUE(sendAndCapture(rst).has_value());
  FlowState s = state(k);
  EXPECT_TRUE(s.fin && s.ack && s.rst);
  EXPECT_EQ(s.packets, 3u);
  EXPECT_EQ(counters().flow_done, 0u);
  EXPECT_TRUE(done().empty());
  // A new SYN on the tuple closes it: the old path from then on.
  expectOldPath(PacketBuilder::tcp(kFarClient, 40003, kVip, 80, 0x02).build());
  EXPECT_TRUE(state(k).closed);
}

// GUE adds 32 bytes: with an egress MTU of 1000 a 969-byte packet (1001 outer) takes the old
// path, a 968-byte one (1000 outer) is encapsulated.
TEST_F(TunnelOffloadTest, TooBigForTheOuterTakesTheOldPath) {
  expectTooBigTakesTheOldPath(40004, FlowEncap::kGue4);
}

TEST_F(TunnelOffloadTest, AddFlowRejectsV6AndReplyTunnelEntries) {
  const FlowRewrite rw{ip(kLip), ip(kRip), 1, kTunPort, FlowEncap::kGue4};
  const FlowKey v4{L4Proto::kTcp, ip(kFarClient), ip(kVip), 1, 80};
  const FlowKey v6{L4Proto::kTcp, ip(kFarClient6), ip(kVip6), 1, 80};
  EXPECT_EQ(redirect_->addFlow(v6, rw, FlowKey{}, 0, false).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(v4, rw, FlowKey{}, 0, true).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(redirect_->addFlow(v4, rw, FlowKey{}, 0, false).ok());
}

// IPIP (ipvsadm -i): the outer IPv4 header alone, protocol 4, the same DS / ID / DF / TTL rules.
TEST_F(TunnelOffloadTest, IpipTcpAndUdpEncapsulatedAsCoreDoes) {
  expectTcpAndUdpAsCore(40010, FlowEncap::kIpip4);
}

TEST_F(TunnelOffloadTest, IpipWithoutPmtuDiscTheOuterHasNoDf) {
  expectNoDfWithoutPmtuDisc(40012, FlowEncap::kIpip4NoPmtu);
  const Bytes udp =
      PacketBuilder::udp(kFarClient, 40013, kVip, 53).df(true).ipId(0x6666).payloadSize(9).build();
  addTunnel(udp, FlowEncap::kIpip4NoPmtu);
  expectEncapsulated(udp, false, TunType::kIpip);
}

// IPIP adds 20 bytes: with an egress MTU of 1000 a 981-byte packet (1001 outer) takes the old
// path, a 980-byte one (1000 outer) is encapsulated.
TEST_F(TunnelOffloadTest, IpipTooBigForTheOuterTakesTheOldPath) {
  expectTooBigTakesTheOldPath(40014, FlowEncap::kIpip4);
}

// GRE (--tun-type gre, no --tun-csum): the outer IPv4 header (protocol 47) and a 4-byte GRE
// header (flags 0, protocol 0x0800), the same DS / ID / DF / TTL rules.
TEST_F(TunnelOffloadTest, GreTcpAndUdpEncapsulatedAsCoreDoes) {
  expectTcpAndUdpAsCore(40020, FlowEncap::kGre4);
}

TEST_F(TunnelOffloadTest, GreWithoutPmtuDiscTheOuterHasNoDf) {
  expectNoDfWithoutPmtuDisc(40022, FlowEncap::kGre4NoPmtu);
}

// GRE adds 24 bytes: a 977-byte packet (1001 outer) takes the old path, a 976-byte one is
// encapsulated.
TEST_F(TunnelOffloadTest, GreTooBigForTheOuterTakesTheOldPath) {
  expectTooBigTakesTheOldPath(40024, FlowEncap::kGre4);
}

}  // namespace
}  // namespace lb::io::flow_offload_test
