// SPDX-License-Identifier: Apache-2.0
// fwmark services (ip_vs_service_find's mark lookup; the mark comes from lbd's rule table) with
// persistence: one template <IPPROTO_IP, client, 0, htonl(mark), 0> pins every protocol and
// port of the mark to one real server (ip_vs_sched_persist).
#include <string>

#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";

class FwmarkTest : public PipelineFixture {
 protected:
  void SetUp() override {
    FwmarkRule rule;
    rule.af = Af::kInet;
    rule.dst = ip(kVip);
    rule.prefix_len = 32;
    rule.proto = L4Proto::kNone;
    rule.port_min = 80;
    rule.port_max = 90;
    rule.mark = 5;
    absl::Status st = table_->setFwmarkRules({rule});
    ASSERT_TRUE(st.ok()) << st;
    key_.fwmark = 5;
    addService(key_, "rr", kSvcPersistent, 300);
    addDest(key_, dest(kRs1, 0, FwdMethod::kMasq));
    addDest(key_, dest(kRs2, 0, FwdMethod::kMasq));
  }

  static IpAddr dstOf(const Result& r) { return IpAddr::fromBytes(Af::kInet, r.out.data() + 16); }

  ServiceKey key_;
};

TEST_F(FwmarkTest, PersistentTemplateCoversEveryPortAndProtocolOfTheMark) {
  Result first = send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpSyn).build());
  ASSERT_EQ(first.verdict, Verdict::kForward) << dropReasonName(first.reason);
  IpAddr rs = dstOf(first);
  // The port is kept (fwmark services have none of their own).
  EXPECT_EQ(first.out[22] << 8 | first.out[23], 80);
  Result tcp81 = send(PacketBuilder::tcp(kClient, 1001, kVip, 81, kTcpSyn).build());
  ASSERT_EQ(tcp81.verdict, Verdict::kForward);
  EXPECT_EQ(dstOf(tcp81), rs);
  Result udp85 = send(PacketBuilder::udp(kClient, 1002, kVip, 85).payload("x").build());
  ASSERT_EQ(udp85.verdict, Verdict::kForward);
  EXPECT_EQ(dstOf(udp85), rs);
  // Outside the rule's ports there is no mark and no service.
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 1003, kVip, 91, kTcpSyn).build()).verdict,
            Verdict::kToHost);

  int templates = 0;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFTemplate) == 0) {
      EXPECT_EQ(c.fwmark, 5u);
      continue;
    }
    ++templates;
    EXPECT_EQ(c.proto, L4Proto::kNone);
    EXPECT_EQ(c.caddr, ip(kClient));
    EXPECT_EQ(c.cport, 0);
    EXPECT_EQ(c.vaddr, ip("0.0.0.5"));  // htonl(fwmark) in the address
    EXPECT_EQ(c.vport, 0);
    EXPECT_EQ(c.dport, 0);
    EXPECT_EQ(c.daddr, rs);
    EXPECT_EQ(c.n_control.load(), 3);
  }
  EXPECT_EQ(templates, 1);
  EXPECT_EQ(conns().size(), 4u);
  EXPECT_EQ(persistent(destId(key_, rs.toString().c_str(), 0)), 1);
}

}  // namespace
}  // namespace lb::testing
