// SPDX-License-Identifier: Apache-2.0
// Whole flows through Pipeline::process: every packet that comes out is compared byte for byte
// with an independently built expected packet, and conn states, dest counters and stats are
// checked after each step.
#include "core/pipeline/pipeline.h"

#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";

class PipelineTest : public PipelineFixture {};

TEST_F(PipelineTest, NatTcpWholeFlow) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 8080);
  ServiceId s = svcId(key);
  StatsValues want_stats;
  auto in = [&](uint8_t flags, const std::string& payload) {
    Bytes pkt = PacketBuilder::tcp(kClient, 40000, kVip, 80, flags).payload(payload).build();
    Result r = send(pkt);
    EXPECT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    Bytes want =
        PacketBuilder::tcp(kClient, 40000, kRs1, 8080, flags).ttl(63).payload(payload).build();
    EXPECT_BYTES(r.out, want);
    EXPECT_TRUE(checksumsValid(r.out));
    EXPECT_EQ(r.tx, TxPath::kTun);
    want_stats.inpkts++;
    want_stats.inbytes += pkt.size();
  };
  auto out = [&](uint8_t flags, const std::string& payload) {
    Bytes pkt = PacketBuilder::tcp(kRs1, 8080, kClient, 40000, flags).payload(payload).build();
    Result r = send(pkt);
    EXPECT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    Bytes want =
        PacketBuilder::tcp(kVip, 80, kClient, 40000, flags).ttl(63).payload(payload).build();
    EXPECT_BYTES(r.out, want);
    want_stats.outpkts++;
    want_stats.outbytes += pkt.size();
  };

  in(kTcpSyn, "");
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(active(d), 1);  // SYN_RECV counts as active (tcp_state_active_table)
  EXPECT_EQ(inactive(d), 0);
  Conn c = connFrom(kClient, 40000);
  EXPECT_EQ(c.flags & (kConnFNoOutput | kConnFFwdMask | kConnFTemplate), 0u);
  EXPECT_EQ(c.daddr, ip(kRs1));
  EXPECT_EQ(c.dport, 8080);
  EXPECT_EQ(c.expires, clock_.now() + seconds(60));  // SYN_RECV timeout

  out(kTcpSyn | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  in(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(connFrom(kClient, 40000).expires, clock_.now() + seconds(900));
  in(kTcpAck | kTcpPsh, "GET / HTTP/1.0\r\n\r\n");
  out(kTcpAck | kTcpPsh, "HTTP/1.0 200 OK\r\n\r\nhello");
  EXPECT_EQ(active(d), 1);
  in(kTcpFin | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "CLOSE_WAIT");
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(inactive(d), 1);
  out(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "CLOSE_WAIT");
  out(kTcpFin | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "TIME_WAIT");
  in(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "TIME_WAIT");
  EXPECT_EQ(connFrom(kClient, 40000).expires, clock_.now() + seconds(120));

  want_stats.conns = 1;
  EXPECT_EQ(table_->runtime().serviceStats(s), want_stats);
  EXPECT_EQ(table_->runtime().destStats(d), want_stats);
  EXPECT_EQ(pipe_->counters().conns_created.value(), 1u);
  EXPECT_EQ(pipe_->counters().tx_packets.value(), 9u);

  // TIME_WAIT expires after 120 s: the conn is freed and the dest unbound.
  clock_.advance(seconds(121));
  conns_->expire(clock_.now());
  EXPECT_EQ(conns().size(), 0u);
  EXPECT_EQ(inactive(d), 0);
  EXPECT_EQ(active(d), 0);
}

}  // namespace
}  // namespace lb::testing
