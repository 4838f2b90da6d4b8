// SPDX-License-Identifier: Apache-2.0
// schedule_icmp (ip_vs_in_icmp -> ip_vs_try_to_schedule with the quoted packet turned around)
// and ip_vs_schedule's refusal of active FTP data (client port 20).
#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kRouter = "198.18.50.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";

class IcmpScheduleTest : public PipelineFixture {
 protected:
  void enable() {
    Sysctls s;
    s.schedule_icmp = true;
    setSysctls(s);
  }

  // A router near the client cannot deliver a reply VIP:vport -> client:cport.
  static Bytes fragNeeded(uint16_t vport, uint16_t cport, L4Proto proto = L4Proto::kTcp) {
    Bytes quoted =
        proto == L4Proto::kTcp
            ? PacketBuilder::tcp(kVip, vport, kClient, cport, kTcpAck).payloadSize(20).build()
            : PacketBuilder::udp(kVip, vport, kClient, cport).payloadSize(20).build();
    return PacketBuilder::icmpError(kRouter, kVip, 3, 4, 1400, quoted);
  }
};

TEST_F(IcmpScheduleTest, OffLeavesUnrelatedErrorsToTheHost) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  EXPECT_EQ(send(fragNeeded(80, 40000)).verdict, Verdict::kToHost);
  EXPECT_EQ(conns().size(), 0u);
}

TEST_F(IcmpScheduleTest, NatConnIsCreatedFromTheQuotedPacket) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 8080);
  enable();
  Bytes in = fragNeeded(80, 40000);
  Result r = send(in);
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  // ip_vs_nat_icmp toward the real server: outer dst and quoted src become the RS.
  Bytes inner = PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck).payloadSize(20).build();
  Bytes want = patchV4(PacketBuilder::icmpError(kRouter, kRs1, 3, 4, 1400, inner), 0, 7, 63);
  EXPECT_BYTES(r.out, want);
  EXPECT_TRUE(r.icmp.empty());

  // The conn: client side from the quoted destination, no state transition, 3 s to live.
  Conn c = connFrom(kClient, 40000);
  EXPECT_EQ(c.vaddr, ip(kVip));
  EXPECT_EQ(c.vport, 80);
  EXPECT_EQ(c.daddr, ip(kRs1));
  EXPECT_EQ(c.dport, 8080);
  EXPECT_EQ(c.state, 0);
  EXPECT_EQ(stateOf(kClient, 40000), "NONE");
  EXPECT_EQ(c.expires, clock_.now() + seconds(3));
  EXPECT_EQ(c.in_pkts, 0u);
  EXPECT_EQ(inactive(d), 1);
  EXPECT_EQ(pipe_->counters().conns_created.value(), 1u);
  StatsValues st = table_->runtime().serviceStats(svcId(key));
  EXPECT_EQ(st.conns, 1u);
  EXPECT_EQ(st.inpkts, 1u);
  EXPECT_EQ(st.inbytes, in.size());

  // The next error about the same flow finds the conn; a SYN from the client uses it too.
  EXPECT_EQ(send(in).verdict, Verdict::kForward);
  Result s = send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn).build());
  EXPECT_EQ(s.verdict, Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(pipe_->counters().conns_created.value(), 1u);
}

TEST_F(IcmpScheduleTest, DirectRouteForwardsTheErrorUnchanged) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 80, FwdMethod::kDirectRoute));
  enable();
  Bytes in = fragNeeded(80, 40000);
  Result r = send(in);
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_BYTES(r.out, patchV4(in, 0, 7, 63));
  EXPECT_EQ(r.tx, TxPath::kL2);
  EXPECT_EQ(r.next_hop, ip(kRs1));
  EXPECT_NE(connFrom(kClient, 40000).flags & kConnFNoOutput, 0u);
}

TEST_F(IcmpScheduleTest, OnePacketConnIsGoneAfterTheError) {
  ServiceKey key = udpKey(kVip, 53);
  addService(key, "rr", kSvcOnePacket);
  addDest(key, dest(kRs1, 53, FwdMethod::kMasq));
  enable();
  Result r = send(fragNeeded(53, 5353, L4Proto::kUdp));
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_EQ(pipe_->counters().conns_created.value(), 1u);
  EXPECT_EQ(conns().size(), 0u);
  EXPECT_EQ(inactive(destId(key, kRs1, 53)), 0);
}

TEST_F(IcmpScheduleTest, PersistentServiceGetsATemplate) {
  ServiceKey key = tcpKey(kVip, 443);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 443, FwdMethod::kMasq));
  enable();
  ASSERT_EQ(send(fragNeeded(443, 40000)).verdict, Verdict::kForward);
  EXPECT_EQ(conns().size(), 2u);
  EXPECT_EQ(persistent(destId(key, kRs1, 443)), 1);
  EXPECT_EQ(pipe_->counters().templates_created.value(), 1u);
}

TEST_F(IcmpScheduleTest, NoDestDropsWithoutAnsweringAnError) {
  addService(tcpKey(kVip, 81));
  enable();
  Result r = send(fragNeeded(81, 40000));
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNoDest);
  EXPECT_TRUE(r.icmp.empty());  // ip_vs_leave: never an ICMP error about an ICMP error
  EXPECT_EQ(pipe_->counters().icmp_sent.value(), 0u);
}

TEST_F(IcmpScheduleTest, NoServiceOrFtpDataGoToTheHost) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  addService(tcpKey(kVip, 21));  // FTP without dests: data ports go to the host
  enable();
  EXPECT_EQ(send(fragNeeded(82, 40000)).verdict, Verdict::kToHost);    // no service
  EXPECT_EQ(send(fragNeeded(2000, 40000)).verdict, Verdict::kToHost);  // FTP data, no dest
  EXPECT_EQ(send(fragNeeded(80, 20)).verdict, Verdict::kToHost);       // client port 20
  EXPECT_EQ(conns().size(), 0u);
}

TEST_F(IcmpScheduleTest, DropPacketAppliesToo) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  Sysctls s;
  s.schedule_icmp = true;
  s.drop_packet = 3;
  s.am_droprate = 2;
  setSysctls(s);
  EXPECT_EQ(send(fragNeeded(80, 40000)).reason, DropReason::kDefense);
  EXPECT_EQ(send(fragNeeded(80, 40001)).verdict, Verdict::kForward);
  EXPECT_EQ(send(fragNeeded(80, 40002)).reason, DropReason::kDefense);
}

TEST_F(IcmpScheduleTest, ClientPort20IsNeverScheduled) {
  // ip_vs_schedule: "never schedule Active FTPDATA connections from real server", whatever the
  // service: NF_ACCEPT.
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  Result r = send(PacketBuilder::tcp(kClient, 20, kVip, 80, kTcpSyn).build());
  EXPECT_EQ(r.verdict, Verdict::kToHost);
  EXPECT_EQ(conns().size(), 0u);
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 21, kVip, 80, kTcpSyn).build()).verdict,
            Verdict::kForward);
}

}  // namespace
}  // namespace lb::testing
