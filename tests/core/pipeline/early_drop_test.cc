// SPDX-License-Identifier: Apache-2.0
// A full conn table under a SYN flood (nf_conntrack early_drop): a new client's SYN is admitted
// by freeing the oldest half-open conn; established conns, persistence templates and UDP conns
// that saw a reply are never freed for it.
#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/offload.h"
#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";
constexpr const char* kClient = "198.18.0.1";

class EarlyDropTest : public PipelineFixture {
 protected:
  EarlyDropTest() : PipelineFixture(32) {}

  void SetUp() override {
    addService(tcpKey(kVip, 80));
    addDest(tcpKey(kVip, 80), dest(kRs1, 8080, FwdMethod::kMasq));
    addService(tcpKey(kVip, 443), "rr", kSvcPersistent, 300);
    addDest(tcpKey(kVip, 443), dest(kRs2, 8443, FwdMethod::kMasq));
    addService(udpKey(kVip, 53));
    addDest(udpKey(kVip, 53), dest(kRs1, 53, FwdMethod::kMasq));
    d_ = destId(tcpKey(kVip, 80), kRs1, 8080);
  }

  // A spoofed source from 198.19.0.0/16, n = 0..65535.
  static std::string spoofed(uint32_t n) {
    return "198.19." + std::to_string((n >> 8) & 0xff) + "." + std::to_string(n & 0xff);
  }

  Result syn(const std::string& src, uint16_t sport, uint16_t vport = 80) {
    return send(PacketBuilder::tcp(src.c_str(), sport, kVip, vport, kTcpSyn).build());
  }

  // The whole handshake of a real client through lbd: SYN, the server's SYN-ACK, the ACK.
  void connect(const std::string& src, uint16_t sport, uint16_t vport = 80) {
    ASSERT_EQ(syn(src, sport, vport).verdict, Verdict::kForward);
    const char* rs = vport == 80 ? kRs1 : kRs2;
    uint16_t rport = vport == 80 ? 8080 : 8443;
    ASSERT_EQ(
        send(PacketBuilder::tcp(rs, rport, src.c_str(), sport, kTcpSyn | kTcpAck).build()).verdict,
        Verdict::kForward);
    ASSERT_EQ(send(PacketBuilder::tcp(src.c_str(), sport, kVip, vport, kTcpAck).build()).verdict,
              Verdict::kForward);
    ASSERT_EQ(stateOf(src.c_str(), sport), "ESTABLISHED");
  }

  Result data(const std::string& src, uint16_t sport, uint16_t vport = 80) {
    return send(PacketBuilder::tcp(src.c_str(), sport, kVip, vport, kTcpAck | kTcpPsh)
                    .payload("GET /")
                    .build());
  }

  DestId d_ = kNoDest;
};

TEST_F(EarlyDropTest, FullTableAdmitsANewSynByFreeingTheOldestHalfOpen) {
  for (uint32_t n = 0; n < 32; ++n) {
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
    clock_.advance(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(conns_->stats().entries, 32u);
  // A real client's SYN: admitted, and the oldest spoofed conn made room for it.
  ASSERT_EQ(syn(kClient, 40000).verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(stateOf(spoofed(0).c_str(), 1000), "<none>");
  EXPECT_EQ(stateOf(spoofed(1).c_str(), 1000), "SYN_RECV");
  EXPECT_EQ(conns_->stats().early_drops, 1u);
  EXPECT_EQ(drops(DropReason::kConnTableFull), 0u);
  // The freed conn was unbound from its dest: 32 conns, all counted once.
  EXPECT_EQ(active(d_) + inactive(d_), 32);
  // Its handshake completes while the flood goes on.
  ASSERT_EQ(send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).build()).verdict,
            Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
}

TEST_F(EarlyDropTest, FloodNeverFreesEstablishedConnsOrTemplates) {
  // 4 persistent clients (a template and a conn each), 4 plain established conns, and a UDP
  // conn that saw a reply: 13 entries that early drop must leave alone.
  for (uint16_t i = 0; i < 4; ++i)
    connect("198.18.0." + std::to_string(10 + i), 2000, 443);
  for (uint16_t i = 0; i < 4; ++i)
    connect(kClient, static_cast<uint16_t>(3000 + i));
  ASSERT_EQ(send(PacketBuilder::udp(kClient, 5353, kVip, 53).payload("q").build()).verdict,
            Verdict::kForward);
  ASSERT_EQ(send(PacketBuilder::udp(kRs1, 53, kClient, 5353).payload("a").build()).verdict,
            Verdict::kForward);
  ASSERT_EQ(conns_->stats().entries, 13u);
  ASSERT_EQ(conns_->stats().templates, 4u);

  // 2,000 spoofed SYNs through a 32-entry table (and a few unanswered UDP datagrams).
  for (uint32_t n = 0; n < 2000; ++n) {
    ASSERT_EQ(syn(spoofed(n), static_cast<uint16_t>(1024 + n % 7)).verdict, Verdict::kForward) << n;
    if (n % 100 == 0) {
      ASSERT_EQ(
          send(PacketBuilder::udp(spoofed(n).c_str(), 999, kVip, 53).payload("q").build()).verdict,
          Verdict::kForward);
    }
  }
  EXPECT_EQ(drops(DropReason::kConnTableFull), 0u);
  EXPECT_EQ(conns_->stats().entries, 32u);
  EXPECT_EQ(conns_->stats().templates, 4u);
  EXPECT_EQ(conns_->stats().early_drops, 2000u + 20u - (32u - 13u));
  for (uint16_t i = 0; i < 4; ++i) {
    std::string c = "198.18.0." + std::to_string(10 + i);
    EXPECT_EQ(stateOf(c.c_str(), 2000), "ESTABLISHED") << c;
    EXPECT_EQ(data(c, 2000, 443).verdict, Verdict::kForward);
  }
  for (uint16_t i = 0; i < 4; ++i) {
    EXPECT_EQ(stateOf(kClient, static_cast<uint16_t>(3000 + i)), "ESTABLISHED");
    EXPECT_EQ(data(kClient, static_cast<uint16_t>(3000 + i)).verdict, Verdict::kForward);
  }
  EXPECT_EQ(stateOf(kClient, 5353), "UDP");

  // A persistent client's next conn still finds its template (same real server).
  connect("198.18.0.10", 2001, 443);
  EXPECT_EQ(connFrom("198.18.0.10", 2001).daddr, ip(kRs2));
}

// A real server's SYN-ACK to a client that has not proved its address asks for no next hop
// (a flood's spoofed sources would fill the dataplane's cache); replies of assured conns do.
TEST_F(EarlyDropTest, RepliesToUnassuredConnsLearnNoNextHop) {
  ASSERT_EQ(syn(spoofed(7), 1000).verdict, Verdict::kForward);
  Result r =
      send(PacketBuilder::tcp(kRs1, 8080, spoofed(7).c_str(), 1000, kTcpSyn | kTcpAck).build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_FALSE(r.learn_dst);
  connect(kClient, 3000);
  r = send(PacketBuilder::tcp(kRs1, 8080, kClient, 3000, kTcpAck | kTcpPsh).payload("x").build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(r.learn_dst);
}

TEST_F(EarlyDropTest, TableOfOnlyEstablishedConnsRefusesANewSyn) {
  for (uint16_t i = 0; i < 32; ++i)
    connect(kClient, static_cast<uint16_t>(3000 + i));
  Result r = syn(spoofed(1), 1000);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kConnTableFull);
  EXPECT_EQ(conns_->stats().early_drops, 0u);
  EXPECT_EQ(conns_->stats().table_full, 1u);
}

// A UDP conn of a direct-routing service never sees its replies: its client's second datagram
// assures it instead.
TEST_F(EarlyDropTest, DirectRoutingUdpIsAssuredByASecondDatagram) {
  addService(udpKey(kVip, 54));
  addDest(udpKey(kVip, 54), dest(kRs2, 54, FwdMethod::kDirectRoute));
  auto dg = [&](const char* src, uint16_t sport) {
    return send(PacketBuilder::udp(src, sport, kVip, 54).payload("q").build()).verdict;
  };
  ASSERT_EQ(dg(kClient, 7000), Verdict::kForward);
  ASSERT_EQ(dg(kClient, 7000), Verdict::kForward);
  ASSERT_EQ(dg(kClient, 7001), Verdict::kForward);  // one datagram: unassured
  for (uint32_t n = 0; n < 100; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 7000), "UDP");
  EXPECT_EQ(stateOf(kClient, 7001), "<none>");
}

// The flood pickup: a real client's conn freed by early drop before its handshake's ACK got
// through (a full TUN queue loses packets of every kind) is made again by its next packet.
TEST_F(EarlyDropTest, FloodPickupKeepsAClientWhoseHalfOpenConnWasFreed) {
  ASSERT_EQ(syn(kClient, 40000).verdict, Verdict::kForward);
  ASSERT_EQ(send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpSyn | kTcpAck).build()).verdict,
            Verdict::kForward);
  // The client's ACK is lost; the flood frees its half-open conn.
  for (uint32_t n = 0; n < 40; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  ASSERT_EQ(stateOf(kClient, 40000), "<none>");
  // Its request (ACK, PSH) makes the conn again, to the same real server.
  Result r = data(kClient, 40000);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(connFrom(kClient, 40000).daddr, ip(kRs1));
  EXPECT_EQ(pipe_->counters().conns_picked_up.value(), 1u);
  EXPECT_EQ(drops(DropReason::kNotNewConn), 0u);
  // Until its real server answers, the flood may take it like any half-open conn.
  for (uint32_t n = 100; n < 140; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "<none>");
  ASSERT_EQ(data(kClient, 40000).verdict, Verdict::kForward);
  EXPECT_EQ(pipe_->counters().conns_picked_up.value(), 2u);
  // The server's answer proves the flow: from then on early drop leaves it alone.
  ASSERT_EQ(send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck | kTcpPsh)
                     .payload("200 OK")
                     .build())
                .verdict,
            Verdict::kForward);
  for (uint32_t n = 200; n < 400; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(data(kClient, 40000).verdict, Verdict::kForward);
}

// Without a flood (early drop never freed a conn, or not for SYN_RECV's 60 s timeout) a TCP
// packet other than a SYN makes no conn, as in the kernel (sloppy_tcp off).
TEST_F(EarlyDropTest, NoPickupOutsideAFlood) {
  Result r = data(kClient, 40000);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNotNewConn);
  for (uint32_t n = 0; n < 40; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  ASSERT_EQ(data(kClient, 40001).verdict, Verdict::kForward);  // the window is open
  clock_.advance(std::chrono::seconds(61));
  r = data(kClient, 40002);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNotNewConn);
  // A RST or a SYN-ACK never makes a conn, flood or not.
  for (uint32_t n = 40; n < 80; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 40003, kVip, 80, kTcpRst | kTcpAck).build()).verdict,
            Verdict::kDrop);
  EXPECT_EQ(stateOf(kClient, 40003), "<none>");
}

// A spoofed ACK flood during a SYN flood costs what the SYN flood does: its conns are freed
// first, established conns stay, and a new client still gets in.
TEST_F(EarlyDropTest, SpoofedAckFloodCannotFillTheTableWithEstablishedConns) {
  for (uint16_t i = 0; i < 4; ++i)
    connect(kClient, static_cast<uint16_t>(3000 + i));
  for (uint32_t n = 0; n < 40; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  for (uint32_t n = 0; n < 2000; ++n) {
    ASSERT_EQ(send(PacketBuilder::tcp(spoofed(n).c_str(), 2000, kVip, 80, kTcpAck).build()).verdict,
              Verdict::kForward)
        << n;
    // The real server resets what it does not know: still not assured.
    ASSERT_EQ(
        send(PacketBuilder::tcp(kRs1, 8080, spoofed(n).c_str(), 2000, kTcpRst).build()).verdict,
        Verdict::kForward)
        << n;
  }
  EXPECT_EQ(drops(DropReason::kConnTableFull), 0u);
  EXPECT_EQ(conns_->stats().entries, 32u);
  for (uint16_t i = 0; i < 4; ++i)
    EXPECT_EQ(stateOf(kClient, static_cast<uint16_t>(3000 + i)), "ESTABLISHED");
  connect(kClient, 4000);
}

class CountingOffloader : public FlowOffloader {
 public:
  bool offer(const Conn& conn, uint32_t /*index*/) noexcept override {
    offered.push_back(conn.cport);
    return true;
  }

  std::vector<uint16_t> offered;
};

// Under a flood (the table in its last 1/16) a TCP conn is offloaded at the end of its
// handshake, not from its SYN; with room, from its SYN as before.
TEST_F(EarlyDropTest, FullTableOffloadsTcpConnsOnlyOnceHandshaken) {
  CountingOffloader off;
  pipe_->setOffloader(&off, 1);
  ASSERT_EQ(syn(kClient, 40000).verdict, Verdict::kForward);
  ASSERT_EQ(off.offered, std::vector<uint16_t>{40000});  // room: from the SYN
  for (uint32_t n = 0; n < 40; ++n)
    ASSERT_EQ(syn(spoofed(n), 1000).verdict, Verdict::kForward);
  // The client's and 30 spoofed ones: offered while 2 or more of the 32 slots were free.
  EXPECT_EQ(off.offered.size(), 31u);
  off.offered.clear();
  ASSERT_EQ(syn(kClient, 40001).verdict, Verdict::kForward);
  EXPECT_TRUE(off.offered.empty());
  ASSERT_EQ(send(PacketBuilder::tcp(kClient, 40001, kVip, 80, kTcpAck).build()).verdict,
            Verdict::kForward);
  EXPECT_EQ(off.offered, std::vector<uint16_t>{40001});
}

}  // namespace
}  // namespace lb::testing
