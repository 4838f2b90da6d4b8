// SPDX-License-Identifier: Apache-2.0
// Pipeline::setOffloader: which conns are offered to a flow fast path, when, and how often;
// applyFastPathFlags: what the fast path forwarded, fed back into the conn
// (core/pipeline/offload.h).
#include "core/pipeline/offload.h"

#include <utility>
#include <vector>

#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs = "198.18.1.10";

// Records every offer; takes them while `accept` is true.
class RecordingOffloader : public FlowOffloader {
 public:
  bool offer(const Conn& conn, uint32_t index) noexcept override {
    offers.push_back(conn);
    indexes.push_back(index);
    return accept;
  }

  bool offerTunnel(const Conn& conn, uint32_t index, const TunnelOffer& t) noexcept override {
    (void)index;
    tunnel_offers.push_back({conn, t});
    return accept;
  }

  bool accept = true;
  std::vector<Conn> offers;
  std::vector<uint32_t> indexes;
  std::vector<std::pair<Conn, TunnelOffer>> tunnel_offers;
};

class OffloadTest : public PipelineFixture {
 protected:
  Verdict in(uint8_t flags, uint16_t cport = 40000, const char* payload = "") {
    return send(PacketBuilder::tcp(kClient, cport, kVip, 80, flags).payload(payload).build())
        .verdict;
  }

  Verdict out(uint8_t flags, uint16_t cport = 40000) {
    return send(PacketBuilder::tcp(kRs, 8080, kClient, cport, flags).build()).verdict;
  }

  // SYN, SYN-ACK, ACK: ESTABLISHED with two client packets.
  void handshake(uint16_t cport = 40000) {
    ASSERT_EQ(in(kTcpSyn, cport), Verdict::kForward);
    ASSERT_EQ(out(kTcpSyn | kTcpAck, cport), Verdict::kForward);
    ASSERT_EQ(in(kTcpAck, cport), Verdict::kForward);
    ASSERT_EQ(stateOf(kClient, cport), "ESTABLISHED");
  }

  void natService(FwdMethod fwd = FwdMethod::kMasq) {
    ServiceKey key = tcpKey(kVip, 80);
    addService(key, "rr", 0, 0,
               fwd == FwdMethod::kFullNat ? std::vector{ip("198.18.1.1")} : std::vector<IpAddr>{});
    addDest(key, dest(kRs, 8080, fwd));
  }

  RecordingOffloader off_;
};

TEST_F(OffloadTest, EstablishedNatConnIsOfferedOnceWithItsHandle) {
  natService();
  pipe_->setOffloader(&off_, 2);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  ASSERT_EQ(out(kTcpSyn | kTcpAck), Verdict::kForward);
  EXPECT_TRUE(off_.offers.empty());  // one client packet so far
  ASSERT_EQ(in(kTcpAck), Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 1u);
  const Conn& c = off_.offers[0];
  EXPECT_EQ(c.state, kTcpEstablished);
  EXPECT_EQ(c.caddr, ip(kClient));
  EXPECT_EQ(c.daddr, ip(kRs));
  EXPECT_EQ(c.dport, 8080);
  // The handle finds the conn, which is now flagged.
  ConnGuard g = conns_->get(off_.indexes[0], c.generation);
  ASSERT_TRUE(g);
  EXPECT_NE(g->flags & kConnFOffloaded, 0u);
  g.release();
  // Later packets (both directions) are not offered again; they are still forwarded.
  EXPECT_EQ(in(kTcpAck | kTcpPsh, 40000, "GET /"), Verdict::kForward);
  EXPECT_EQ(out(kTcpAck), Verdict::kForward);
  EXPECT_EQ(off_.offers.size(), 1u);
  EXPECT_EQ(pipe_->counters().conns_offloaded.value(), 1u);
}

TEST_F(OffloadTest, WithThresholdOneTheSynIsOffered) {
  natService();
  pipe_->setOffloader(&off_, 1);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 1u);
  EXPECT_EQ(off_.offers[0].state, kTcpSynRecv);
  EXPECT_EQ(off_.offers[0].daddr, ip(kRs));
  // A conn that got past its handshake unoffered (a refused offer) is still offered; a
  // closing one is not.
  off_.accept = false;
  ASSERT_EQ(in(kTcpSyn, 40001), Verdict::kForward);
  off_.accept = true;
  ASSERT_EQ(in(kTcpFin | kTcpAck, 40001), Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40001), "TIME_WAIT");
  EXPECT_EQ(off_.offers.size(), 2u);
}

// The fast path forwarded the rest of a connection; lbd feeds the flags in afterwards.
TEST_F(OffloadTest, FastPathFlagsDriveTheStateMachine) {
  natService();
  const DestId d = destId(tcpKey(kVip, 80), kRs, 8080);
  pipe_->setOffloader(&off_, 1);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 1u);
  EXPECT_EQ(active(d), 1);  // SYN_RECV is active (tcp_state_active_table)
  const uint32_t index = off_.indexes[0];
  const uint32_t gen = off_.offers[0].generation;
  SnapshotPtr snap = table_->snapshot();

  // The handshake's ACK: ESTABLISHED, active, timer re-armed as of `when`.
  clock_.advance(seconds(1));
  {
    ConnGuard g = conns_->get(index, gen);
    ASSERT_TRUE(g);
    StateChange sc =
        applyFastPathFlags(g, FastPathFlags{.ack = true}, FastPathFlags{}, snap->timeouts(), false,
                           &table_->runtime(), *conns_, clock_.now());
    EXPECT_TRUE(sc.was_active);
    EXPECT_TRUE(sc.is_active);
    EXPECT_EQ(g->state, kTcpEstablished);
    EXPECT_EQ(g->expires, clock_.now() + snap->timeouts().tcp[kTcpEstablished]);
  }
  EXPECT_EQ(active(d), 1);
  EXPECT_EQ(inactive(d), 0);

  // The server's FIN alone: FIN_WAIT; then the client's: TIME_WAIT, inactive.
  {
    ConnGuard g = conns_->get(index, gen);
    applyFastPathFlags(g, FastPathFlags{}, FastPathFlags{.fin = true}, snap->timeouts(), false,
                       &table_->runtime(), *conns_, clock_.now());
    EXPECT_EQ(g->state, kTcpFinWait);
  }
  EXPECT_EQ(active(d), 0);
  {
    ConnGuard g = conns_->get(index, gen);
    applyFastPathFlags(g, FastPathFlags{.fin = true}, FastPathFlags{}, snap->timeouts(), false,
                       &table_->runtime(), *conns_, clock_.now());
    EXPECT_EQ(g->state, kTcpTimeWait);
    EXPECT_EQ(g->expires, clock_.now() + snap->timeouts().tcp[kTcpTimeWait]);
  }
  EXPECT_EQ(stateOf(kClient, 40000), "TIME_WAIT");
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(inactive(d), 1);
}

TEST_F(OffloadTest, FastPathFlagsAllAtOnce) {
  natService();
  const DestId d = destId(tcpKey(kVip, 80), kRs, 8080);
  pipe_->setOffloader(&off_, 1);
  SnapshotPtr snap = table_->snapshot();
  // A whole short connection between two looks: handshake, both FINs.
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  {
    ConnGuard g = conns_->get(off_.indexes[0], off_.offers[0].generation);
    StateChange sc = applyFastPathFlags(g, FastPathFlags{.ack = true, .fin = true},
                                        FastPathFlags{.ack = true, .fin = true}, snap->timeouts(),
                                        false, &table_->runtime(), *conns_, clock_.now());
    EXPECT_TRUE(sc.was_active);
    EXPECT_FALSE(sc.is_active);
    EXPECT_EQ(g->state, kTcpTimeWait);
  }
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(inactive(d), 1);
  // A reset from the server: CLOSE.
  ASSERT_EQ(in(kTcpSyn, 40001), Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 2u);
  {
    ConnGuard g = conns_->get(off_.indexes[1], off_.offers[1].generation);
    applyFastPathFlags(g, FastPathFlags{.ack = true}, FastPathFlags{.rst = true}, snap->timeouts(),
                       false, &table_->runtime(), *conns_, clock_.now());
    EXPECT_EQ(g->state, kTcpClose);
  }
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(inactive(d), 2);
}

TEST_F(OffloadTest, ThresholdCountsClientPackets) {
  natService();
  pipe_->setOffloader(&off_, 4);
  handshake();  // in_pkts 2
  EXPECT_TRUE(off_.offers.empty());
  ASSERT_EQ(out(kTcpAck), Verdict::kForward);  // replies do not count
  EXPECT_TRUE(off_.offers.empty());
  ASSERT_EQ(in(kTcpAck, 40000, "a"), Verdict::kForward);  // 3
  EXPECT_TRUE(off_.offers.empty());
  ASSERT_EQ(in(kTcpAck, 40000, "b"), Verdict::kForward);  // 4
  EXPECT_EQ(off_.offers.size(), 1u);
}

TEST_F(OffloadTest, ThresholdReachedOnAReplyOffersThere) {
  natService();
  pipe_->setOffloader(&off_, 3);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);  // a retransmitted SYN: in_pkts 2, SYN_RECV
  ASSERT_EQ(out(kTcpSyn | kTcpAck), Verdict::kForward);
  EXPECT_TRUE(off_.offers.empty());
  ASSERT_EQ(in(kTcpAck), Verdict::kForward);  // in_pkts 3, ESTABLISHED
  EXPECT_EQ(off_.offers.size(), 1u);
}

TEST_F(OffloadTest, RefusedOfferIsRepeatedWithTheNextPacket) {
  natService();
  off_.accept = false;
  pipe_->setOffloader(&off_, 2);
  handshake();
  ASSERT_EQ(off_.offers.size(), 1u);
  EXPECT_EQ(connFrom(kClient, 40000).flags & kConnFOffloaded, 0u);
  off_.accept = true;
  ASSERT_EQ(out(kTcpAck), Verdict::kForward);
  EXPECT_EQ(off_.offers.size(), 2u);
  EXPECT_NE(connFrom(kClient, 40000).flags & kConnFOffloaded, 0u);
  ASSERT_EQ(in(kTcpAck), Verdict::kForward);
  EXPECT_EQ(off_.offers.size(), 2u);
  EXPECT_EQ(pipe_->counters().conns_offloaded.value(), 1u);
}

TEST_F(OffloadTest, FullNatIsOfferedWithItsLocalAddress) {
  natService(FwdMethod::kFullNat);
  pipe_->setOffloader(&off_, 2);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  Conn c = connFrom(kClient, 40000);
  ASSERT_EQ(
      send(PacketBuilder::tcp(kRs, 8080, "198.18.1.1", c.lport, kTcpSyn | kTcpAck).build()).verdict,
      Verdict::kForward);
  ASSERT_EQ(in(kTcpAck), Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 1u);
  EXPECT_EQ(off_.offers[0].laddr, ip("198.18.1.1"));
  EXPECT_EQ(off_.offers[0].lport, c.lport);
  EXPECT_NE(off_.offers[0].flags & kConnFFullNat, 0u);
}

TEST_F(OffloadTest, DirectRoutingIsNotOffered) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs, 80, FwdMethod::kDirectRoute));
  pipe_->setOffloader(&off_, 1);
  ASSERT_EQ(in(kTcpSyn), Verdict::kForward);
  ASSERT_EQ(in(kTcpAck), Verdict::kForward);
  ASSERT_EQ(in(kTcpAck, 40000, "x"), Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_TRUE(off_.offers.empty());
}

// IPIP and checksum-less GUE and GRE dests are offered through offerTunnel with what the tc
// program needs to encapsulate as core's tunnel forwarder does; a GUE dest with UDP checksums or
// a GRE dest with GRE checksums is not (the program writes none), nor is any tunnel conn
// through offer().
TEST_F(OffloadTest, TunnelConnsWithoutChecksumsAreOfferedAsTunnels) {
  auto tunnelService = [&](uint16_t port, TunType type, TunCsum csum) {
    addService(tcpKey(kVip, port));
    DestConfig d = dest(kRs, port, FwdMethod::kTunnel);
    d.tun_type = type;
    d.tun_port = type == TunType::kGue ? 6080 : 0;
    d.tun_csum = csum;
    addDest(tcpKey(kVip, port), d);
  };
  tunnelService(81, TunType::kIpip, TunCsum::kNoCsum);
  tunnelService(82, TunType::kGue, TunCsum::kNoCsum);
  tunnelService(83, TunType::kGue, TunCsum::kCsum);
  tunnelService(84, TunType::kGre, TunCsum::kNoCsum);
  tunnelService(85, TunType::kGre, TunCsum::kCsum);
  Sysctls sys;
  sys.pmtu_disc = false;
  setSysctls(sys);
  pipe_->setOffloader(&off_, 1);
  for (uint16_t port : {81, 82, 83, 84, 85}) {
    ASSERT_EQ(send(PacketBuilder::tcp(kClient, port, kVip, port, kTcpSyn).build()).verdict,
              Verdict::kForward);
    ASSERT_EQ(send(PacketBuilder::tcp(kClient, port, kVip, port, kTcpAck).build()).verdict,
              Verdict::kForward);
  }
  EXPECT_TRUE(off_.offers.empty());
  ASSERT_EQ(off_.tunnel_offers.size(), 3u);
  const auto& [ipip_conn, ipip] = off_.tunnel_offers[0];
  EXPECT_EQ(ipip_conn.vport, 81);
  EXPECT_EQ(ipip.type, TunType::kIpip);
  EXPECT_EQ(ipip.src, ip(kVip));  // no tunnel source configured: the VIP
  EXPECT_EQ(ipip.sport, 0);
  EXPECT_EQ(ipip.dport, 0);
  EXPECT_FALSE(ipip.pmtu_disc);
  const auto& [gue_conn, gue] = off_.tunnel_offers[1];
  EXPECT_EQ(gue_conn.vport, 82);
  EXPECT_EQ(gue.type, TunType::kGue);
  EXPECT_NE(gue.sport, 0);
  EXPECT_EQ(gue.dport, 6080);
  const auto& [gre_conn, gre] = off_.tunnel_offers[2];
  EXPECT_EQ(gre_conn.vport, 84);
  EXPECT_EQ(gre.type, TunType::kGre);
  EXPECT_EQ(gre.src, ip(kVip));
  EXPECT_EQ(gre.sport, 0);
  EXPECT_EQ(gre.dport, 0);
  EXPECT_FALSE(gre.pmtu_disc);
  EXPECT_NE(connFrom(kClient, 81).flags & kConnFOffloaded, 0u);
  EXPECT_EQ(connFrom(kClient, 83).flags & kConnFOffloaded, 0u);
  EXPECT_NE(connFrom(kClient, 84).flags & kConnFOffloaded, 0u);
  EXPECT_EQ(connFrom(kClient, 85).flags & kConnFOffloaded, 0u);
}

TEST_F(OffloadTest, UdpIsOfferedFromItsSecondDatagramTemplatesNever) {
  ServiceKey key = udpKey(kVip, 53);
  addService(key, "rr", kSvcPersistent, 60);
  addDest(key, dest(kRs, 5353, FwdMethod::kMasq));
  pipe_->setOffloader(&off_, 1);
  ASSERT_EQ(send(PacketBuilder::udp(kClient, 40000, kVip, 53).payload("q").build()).verdict,
            Verdict::kForward);
  EXPECT_TRUE(off_.offers.empty());  // a one-datagram exchange is not worth the set-up
  ASSERT_EQ(send(PacketBuilder::udp(kClient, 40000, kVip, 53).payload("r").build()).verdict,
            Verdict::kForward);
  ASSERT_EQ(off_.offers.size(), 1u);  // the conn, not its persistence template
  EXPECT_EQ(off_.offers[0].flags & kConnFTemplate, 0u);
  EXPECT_EQ(off_.offers[0].proto, L4Proto::kUdp);
  EXPECT_EQ(conns().size(), 2u);
}

TEST_F(OffloadTest, NoOffloaderNoFlag) {
  natService();
  handshake();
  EXPECT_EQ(connFrom(kClient, 40000).flags & kConnFOffloaded, 0u);
  EXPECT_EQ(pipe_->counters().conns_offloaded.value(), 0u);
}

TEST(OffloadEligible, Rules) {
  Conn c;
  c.proto = L4Proto::kTcp;
  c.state = kTcpEstablished;
  c.in_pkts = 5;
  EXPECT_TRUE(offloadEligible(c, 5));
  EXPECT_FALSE(offloadEligible(c, 6));
  c.flags = kConnFOnePacket;
  EXPECT_FALSE(offloadEligible(c, 1));
  c.flags = kConnFTemplate;
  EXPECT_FALSE(offloadEligible(c, 1));
  c.flags = kConnFOffloaded;
  EXPECT_FALSE(offloadEligible(c, 1));
  c.flags = kConnFFullNat;
  EXPECT_TRUE(offloadEligible(c, 1));
  c.daf = Af::kInet6;  // a 4-in-6 conn: the fast path keeps one family
  EXPECT_FALSE(offloadEligible(c, 1));
  c.daf = Af::kInet;
  c.state = kTcpSynRecv;
  EXPECT_TRUE(offloadEligible(c, 1));
  c.state = kTcpFinWait;
  EXPECT_FALSE(offloadEligible(c, 1));
  c.state = kTcpTimeWait;
  EXPECT_FALSE(offloadEligible(c, 1));
  c.proto = L4Proto::kSctp;
  c.state = kSctpEstablished;
  EXPECT_FALSE(offloadEligible(c, 1));  // the fast path has no CRC32c rewrite
  c.proto = L4Proto::kUdp;
  c.flags = static_cast<uint32_t>(FwdMethod::kTunnel);
  EXPECT_FALSE(offloadEligible(c, 1));
}

// Tunnel conns are offered through offerTunnel: IPv4 in IPv4 only, the same states and counts;
// offloadEligible (the two-entry methods) never takes them.
TEST(OffloadEligibleTest, TunnelConnsAreTheirOwnKind) {
  Conn c;
  c.af = Af::kInet;
  c.daf = Af::kInet;
  c.proto = L4Proto::kTcp;
  c.state = kTcpSynRecv;
  c.in_pkts = 1;
  c.flags = static_cast<uint32_t>(FwdMethod::kTunnel) | kConnFNoOutput;
  EXPECT_TRUE(tunnelOffloadEligible(c, 1));
  EXPECT_FALSE(offloadEligible(c, 1));
  c.state = kTcpCloseWait;
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));
  c.state = kTcpEstablished;
  c.af = c.daf = Af::kInet6;
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));
  c.af = c.daf = Af::kInet;
  c.proto = L4Proto::kUdp;
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));  // one datagram so far
  c.in_pkts = 2;
  EXPECT_TRUE(tunnelOffloadEligible(c, 1));
  c.flags |= kConnFOffloaded;
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));
  c.flags = static_cast<uint32_t>(FwdMethod::kDirectRoute) | kConnFNoOutput;
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));
  c.flags = static_cast<uint32_t>(FwdMethod::kMasq);
  EXPECT_FALSE(tunnelOffloadEligible(c, 1));
}

}  // namespace
}  // namespace lb::testing
