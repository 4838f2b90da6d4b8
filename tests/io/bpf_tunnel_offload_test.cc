// SPDX-License-Identifier: Apache-2.0
// A tunnel conn's flows entry (io/bpf/tunnel_offload.bpf.h, FlowRewrite::encap): the client's
// packet, sent from C, must reach S as exactly the GUE or IPIP packet core's tunnel forwarder
// (core/xmit/tunnel.cc) makes of it for the same conn: outer IPv4 header (DS field with ECN,
// ID, DF, TTL, protocol, checksum), for GUE the UDP ports and length, GUE header, outer UDP
// checksum 0, the inner packet with its TTL decremented and nothing else changed. A packet whose
// outer packet exceeds the route MTU takes the old path (the TUN device), as does the entry in a v6
// flow. Same fixture as bpf_flow_offload_test.cc (real namespaces, root: label integration).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/conn/conn.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/service/snapshot.h"
#include "core/xmit/forwarder.h"
#include "core/xmit/xmit_util.h"
#include "tests/io/bpf_flow_offload_fixture.h"

namespace lb::io::flow_offload_test {
namespace {

constexpr uint16_t kTunPort = 6080;
constexpr uint32_t kFlowHash = 0x12345678;

Bytes withTos(Bytes p, uint8_t tos);  // below

class TunnelOffloadTest : public FlowOffloadTest {
 protected:
  // A socket on S's tunnel port and a raw IPIP socket, so that S answers no GUE or IPIP
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
  }

  void TearDown() override {
    if (sink_ >= 0)
      close(sink_);
    if (ipip_sink_ >= 0)
      close(ipip_sink_);
    FlowOffloadTest::TearDown();
  }

  static bool isIpip(FlowEncap e) { return e == FlowEncap::kIpip4 || e == FlowEncap::kIpip4NoPmtu; }

  static ParsedPacket parse(const Bytes& p) {
    auto b = std::make_unique<PacketBuffer>();
    ParsedPacket pp;
    EXPECT_TRUE(b->assign(p));
    EXPECT_EQ(parsePacket(b->span(), pp), DropReason::kNone);
    return pp;
  }

  // Core's GUE (or IPIP) encapsulation of `inner` for the conn kFarClient:cport -> VIP:vport,
  // real server kRip, tunnel source kLip (B's address towards S), pmtu_disc as given.
  static Bytes coreTunnel(const Bytes& inner, bool pmtu_disc, TunType type = TunType::kGue) {
    Conn c;
    const ParsedPacket probe = parse(inner);
    c.af = Af::kInet;
    c.daf = Af::kInet;
    c.proto = probe.outer.proto;
    c.caddr = probe.outer.src;
    c.cport = probe.outer.sport;
    c.vaddr = probe.outer.dst;
    c.vport = probe.outer.dport;
    c.daddr = ip(kRip);
    c.dport = probe.outer.dport;
    c.flags = static_cast<uint32_t>(FwdMethod::kTunnel);
    SnapDest d;
    d.config.addr = ip(kRip);
    d.config.port = c.dport;
    d.config.fwd = FwdMethod::kTunnel;
    d.config.tun_type = type;
    d.config.tun_csum = TunCsum::kNoCsum;
    d.config.tun_port = kTunPort;
    XmitContext ctx;
    ctx.dest = &d;
    ctx.mtu = 1500;
    ctx.pmtu_disc = pmtu_disc;
    ctx.flow_hash = kFlowHash;
    ctx.tunnel_src = ip(kLip);
    auto buf = std::make_unique<PacketBuffer>();
    ParsedPacket pp;
    EXPECT_TRUE(buf->assign(inner));
    EXPECT_EQ(parsePacket(buf->span(), pp), DropReason::kNone);
    Forwarder* f = findForwarder(FwdMethod::kTunnel);
    EXPECT_NE(f, nullptr);
    if (f == nullptr)
      return {};
    XmitResult r = f->forward(*buf, pp, c, Direction::kToRealServer, ctx);
    EXPECT_EQ(r.verdict, Verdict::kForward);
    return Bytes(buf->data(), buf->data() + buf->size());
  }

  // The tunnel entry for `inner`'s tuple (client -> VIP), as lbd installs it.
  FlowKey addTunnel(const Bytes& inner, FlowEncap encap = FlowEncap::kGue4) {
    const ParsedPacket pp = parse(inner);
    const FlowKey k{pp.outer.proto, pp.outer.src, pp.outer.dst, pp.outer.sport, pp.outer.dport};
    FlowRewrite rw{ip(kLip), ip(kRip), xmit::udpFlowSrcPort(kFlowHash), kTunPort, encap};
    if (isIpip(encap))
      rw.sport = rw.dport = 0;  // as FlowOffload::inRewrite makes it
    absl::Status s = redirect_->addFlow(k, rw, FlowKey{}, 7, false);
    EXPECT_TRUE(s.ok()) << s;
    return k;
  }

  // Sends `inner` from C and returns what S captured on the tunnel port, or with `ipip` the
  // IPIP packet (nullopt: nothing).
  std::optional<Bytes> sendAndCapture(const Bytes& inner, bool ipip = false) {
    if (!net_.sendFrame(inner))
      return std::nullopt;
    if (ipip)
      return BpfNetns::nextCaptured(cap_s_, kWait,
                                    [](const Bytes& p) { return l4Proto(p) == IPPROTO_IPIP; });
    return BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, kTunPort));
  }

  void expectEncapsulated(const Bytes& inner, bool pmtu_disc, bool ipip = false) {
    const Bytes want = coreTunnel(inner, pmtu_disc, ipip ? TunType::kIpip : TunType::kGue);
    ASSERT_EQ(want.size(), inner.size() + (ipip ? 20 : 32));
    auto got = sendAndCapture(inner, ipip);
    ASSERT_TRUE(got.has_value()) << "S saw no " << (ipip ? "IPIP" : "GUE") << " packet";
    EXPECT_EQ(*got, want) << "got  " << hexDump(got->data(), got->size()) << "\nwant "
                          << hexDump(want.data(), want.size());
    EXPECT_TRUE(checksumsValid(*got));
    if (ipip && got->size() > 20) {
      EXPECT_TRUE(checksumsValid(got->data() + 20, got->size() - 20)) << "the inner packet";
    }
  }

  // A TCP segment with DF and ECN CE from `cport` and a UDP datagram without DF from cport + 1,
  // each its own conn with an entry of kind `encap` (pmtu_disc 1): both reach S as core makes
  // them, and the entries count the inner packets.
  void expectTcpAndUdpAsCore(uint16_t cport, FlowEncap encap) {
    const bool ipip = isIpip(encap);
    const Bytes tcp = withTos(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x18)
                                  .df(true)
                                  .ipId(0x1234)
                                  .ttl(64)
                                  .payload("tunnelled segment")
                                  .build(),
                              0x2b);  // DSCP with CE: the outer gets ECT(0)
    const FlowKey tk = addTunnel(tcp, encap);
    expectEncapsulated(tcp, true, ipip);
    // No DF: the outer keeps the inner ID.
    const Bytes udp = PacketBuilder::udp(kFarClient, static_cast<uint16_t>(cport + 1), kVip, 53)
                          .df(false)
                          .ipId(0x4321)
                          .ttl(20)
                          .payloadSize(700)
                          .build();
    const FlowKey uk = addTunnel(udp, encap);
    expectEncapsulated(udp, true, ipip);
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
    expectEncapsulated(tcp, false, isIpip(encap));
  }

  int sink_ = -1;
  int ipip_sink_ = -1;
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

// A non-GSO packet that fits the egress MTU but not with the 32 outer bytes takes the old
// path (lbd answers FRAG_NEEDED there); one 32 bytes smaller is encapsulated.
TEST_F(TunnelOffloadTest, TooBigForTheOuterTakesTheOldPath) {
  ASSERT_TRUE(net_.ipInB("link set vbs mtu 1000"));
  const Bytes big =
      PacketBuilder::udp(kFarClient, 40004, kVip, 53).df(true).payloadSize(1000 - 28 - 16).build();
  ASSERT_EQ(big.size(), 984u);  // 984 + 32 > 1000
  const FlowKey k = addTunnel(big);
  expectOldPath(big);
  EXPECT_EQ(counters().flow_slow, 1u);
  EXPECT_EQ(state(k).packets, 0u);
  const Bytes fits =
      PacketBuilder::udp(kFarClient, 40004, kVip, 53).df(true).payloadSize(1000 - 32 - 28).build();
  expectEncapsulated(fits, true);
  EXPECT_EQ(state(k).packets, 1u);
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
  expectEncapsulated(udp, false, true);
}

// IPIP adds 20 bytes: with an egress MTU of 1000 a 981-byte packet (1001 outer) takes the old
// path, a 980-byte one (1000 outer) is encapsulated.
TEST_F(TunnelOffloadTest, IpipTooBigForTheOuterTakesTheOldPath) {
  ASSERT_TRUE(net_.ipInB("link set vbs mtu 1000"));
  const Bytes big =
      PacketBuilder::udp(kFarClient, 40014, kVip, 53).df(true).payloadSize(1000 - 28 - 19).build();
  ASSERT_EQ(big.size(), 981u);  // 981 + 20 > 1000
  const FlowKey k = addTunnel(big, FlowEncap::kIpip4);
  expectOldPath(big);
  EXPECT_EQ(counters().flow_slow, 1u);
  EXPECT_EQ(state(k).packets, 0u);
  const Bytes fits =
      PacketBuilder::udp(kFarClient, 40014, kVip, 53).df(true).payloadSize(1000 - 20 - 28).build();
  ASSERT_EQ(fits.size(), 980u);  // 980 + 20 = 1000
  expectEncapsulated(fits, true, true);
  EXPECT_EQ(state(k).packets, 1u);
}

}  // namespace
}  // namespace lb::io::flow_offload_test
