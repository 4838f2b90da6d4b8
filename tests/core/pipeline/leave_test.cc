// SPDX-License-Identifier: Apache-2.0
// Packets with no conn that IPVS answers or passes on: nat_icmp_send (ip_vs_out: port unreachable
// to a NAT real server, never for RST / ABORT) and ip_vs_leave's FTP rule (a port-21 service
// without dests passes its data ports to the host and answers port 21 with port unreachable).
#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";

class LeaveTest : public PipelineFixture {
 protected:
  void SetUp() override {
    addService(tcpKey(kVip, 80));
    addDest(tcpKey(kVip, 80), dest(kRs1, 8080, FwdMethod::kMasq));
    addDest(tcpKey(kVip, 80), dest(kRs2, 80, FwdMethod::kDirectRoute));
  }

  void natIcmpSend(bool on) {
    Sysctls s;
    s.nat_icmp_send = on;
    setSysctls(s);
  }
};

TEST_F(LeaveTest, NatIcmpSendAnswersARealServerWithoutAConn) {
  natIcmpSend(true);
  Bytes in = PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck).payloadSize(10).build();
  Result r = send(in);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNotNewConn);
  ASSERT_EQ(r.icmp.size(), 1u);
  // From the address the real server talked to, quoting its packet.
  Bytes want = patchV4(PacketBuilder::icmpError(kClient, kRs1, 3, 3, 0, in), 0xc0, 0, 64);
  EXPECT_BYTES(r.icmp[0], want);
  EXPECT_EQ(pipe_->counters().icmp_sent.value(), 1u);
}

TEST_F(LeaveTest, NatIcmpSendIsNotForRstOrOtherSenders) {
  natIcmpSend(true);
  // RST: nothing to stop retrying.
  Result rst = send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpRst).build());
  EXPECT_TRUE(rst.icmp.empty());
  EXPECT_EQ(rst.verdict, Verdict::kToHost);
  // A DR real server's replies never pass lbd; from it this is just a packet to the host.
  Result dr = send(PacketBuilder::tcp(kRs2, 80, kClient, 40000, kTcpAck).build());
  EXPECT_TRUE(dr.icmp.empty());
  EXPECT_EQ(dr.verdict, Verdict::kToHost);
  // Another port of the NAT real server is not a real service.
  Result other = send(PacketBuilder::tcp(kRs1, 8081, kClient, 40000, kTcpAck).build());
  EXPECT_TRUE(other.icmp.empty());
  EXPECT_EQ(pipe_->counters().icmp_sent.value(), 0u);
}

TEST_F(LeaveTest, NatIcmpSendOffPassesToTheHost) {
  natIcmpSend(false);
  Result r = send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck).build());
  EXPECT_EQ(r.verdict, Verdict::kToHost);
  EXPECT_TRUE(r.icmp.empty());
}

TEST_F(LeaveTest, FtpServiceWithoutDestsPassesDataPortsOnly) {
  addService(tcpKey(kVip, 21));
  // FTP data to an unprivileged port is looked up as the port-21 service; with no dest it is not
  // IPVS's business (NF_ACCEPT).
  Result data = send(PacketBuilder::tcp(kClient, 40000, kVip, 3000, kTcpSyn).build());
  EXPECT_EQ(data.verdict, Verdict::kToHost);
  EXPECT_TRUE(data.icmp.empty());
  // The control port itself is answered with port unreachable.
  Bytes in = PacketBuilder::tcp(kClient, 40000, kVip, 21, kTcpSyn).build();
  Result ctl = send(in);
  EXPECT_EQ(ctl.reason, DropReason::kNoDest);
  ASSERT_EQ(ctl.icmp.size(), 1u);
  EXPECT_BYTES(ctl.icmp[0],
               patchV4(PacketBuilder::icmpError(kVip, kClient, 3, 3, 0, in), 0xc0, 0, 64));
}

TEST_F(LeaveTest, FtpServiceWithADestDoesNotScheduleDataPorts) {
  // ip_vs_schedule: a non-persistent service takes only its own port; FTP data matched to the
  // port-21 service is left to the host.
  addService(tcpKey(kVip, 21));
  addDest(tcpKey(kVip, 21), dest(kRs1, 21, FwdMethod::kMasq));
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 40000, kVip, 3000, kTcpSyn).build()).verdict,
            Verdict::kToHost);
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 40000, kVip, 21, kTcpSyn).build()).verdict,
            Verdict::kForward);
  EXPECT_EQ(conns().size(), 1u);
}

TEST_F(LeaveTest, SinkWithoutBuffersCountsTheFailure) {
  addService(tcpKey(kVip, 82));
  sink_ = TestSink(0);
  Result r = send(PacketBuilder::tcp(kClient, 40000, kVip, 82, kTcpSyn).build());
  EXPECT_EQ(r.reason, DropReason::kNoDest);
  EXPECT_TRUE(r.icmp.empty());
  EXPECT_EQ(pipe_->counters().icmp_send_failed.value(), 1u);
  EXPECT_EQ(pipe_->counters().icmp_sent.value(), 0u);
}

}  // namespace
}  // namespace lb::testing
