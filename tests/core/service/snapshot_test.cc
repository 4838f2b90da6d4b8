// SPDX-License-Identifier: Apache-2.0
// ServiceSnapshot's lookups: ip_vs_service_find's order, fwmark classification, VIPs and NAT
// real servers.
#include "core/service/snapshot.h"

#include "gtest/gtest.h"

#include "core/service/service_table.h"
#include "tests/core/service/service_test_util.h"
#include "tests/testlib/alloc_counter.h"

namespace lb {
namespace {

using ::lb::testing::dest;
using ::lb::testing::fwmKey;
using ::lb::testing::ip;
using ::lb::testing::key;
using ::lb::testing::persistentSvc;
using ::lb::testing::svc;
using ::lb::testing::tcpKey;

class FindServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(t_.addService(svc(tcpKey("198.18.0.1", 80))).ok());
    ASSERT_TRUE(t_.addService(svc(tcpKey("198.18.0.1", 21))).ok());
    ASSERT_TRUE(t_.addService(persistentSvc(tcpKey("198.18.0.1", 0))).ok());
    ASSERT_TRUE(t_.addService(persistentSvc(key(L4Proto::kUdp, "198.18.0.1", 0))).ok());
    ASSERT_TRUE(t_.addService(svc(fwmKey(7))).ok());
    ASSERT_TRUE(t_.addService(svc(tcpKey("2001:2::1", 80))).ok());
  }

  // The key of the service found, or "none".
  std::string find(
      L4Proto proto, const char* vaddr, uint16_t vport, uint32_t mark = 0, Af af = Af::kInet) {
    const SnapService* s = t_.snapshot()->findService(af, proto, ip(vaddr), vport, mark);
    return s == nullptr ? "none" : s->config.key.toString();
  }

  ServiceTable t_;
};

TEST_F(FindServiceTest, ExactMatch) {
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 80), "TCP 198.18.0.1:80");
  EXPECT_EQ(find(L4Proto::kTcp, "2001:2::1", 80, 0, Af::kInet6), "TCP [2001:2::1]:80");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.2", 80), "none");
  EXPECT_EQ(find(L4Proto::kSctp, "198.18.0.1", 80), "none");
}

TEST_F(FindServiceTest, FwmarkFirstThenFallsThrough) {
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 80, 7), "FWM 7");
  EXPECT_EQ(find(L4Proto::kUdp, "203.0.113.1", 9, 7), "FWM 7");
  // A mark with no service: the address lookups still run.
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 80, 8), "TCP 198.18.0.1:80");
  // The IPv4 fwmark service does not match IPv6 packets.
  EXPECT_EQ(find(L4Proto::kTcp, "2001:2::1", 80, 7, Af::kInet6), "TCP [2001:2::1]:80");
}

// FTP data: TCP to port 20 or an unprivileged port (>= 1024) of a VIP with a port-21 service
// goes to the port-21 service, before the port-zero one.
TEST_F(FindServiceTest, FtpDataBeforePortZero) {
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 20), "TCP 198.18.0.1:21");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 1024), "TCP 198.18.0.1:21");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 50000), "TCP 198.18.0.1:21");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 1023), "TCP 198.18.0.1:0");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 22), "TCP 198.18.0.1:0");
  // Only TCP.
  EXPECT_EQ(find(L4Proto::kUdp, "198.18.0.1", 20), "UDP 198.18.0.1:0");
  EXPECT_EQ(find(L4Proto::kUdp, "198.18.0.1", 5000), "UDP 198.18.0.1:0");
}

TEST_F(FindServiceTest, PortZeroCatchAll) {
  ASSERT_TRUE(t_.deleteService(tcpKey("198.18.0.1", 21)).ok());
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 20), "TCP 198.18.0.1:0");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 8080), "TCP 198.18.0.1:0");
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 80), "TCP 198.18.0.1:80");
  EXPECT_EQ(find(L4Proto::kSctp, "198.18.0.1", 8080), "none");
  ASSERT_TRUE(t_.deleteService(tcpKey("198.18.0.1", 0)).ok());
  EXPECT_EQ(find(L4Proto::kTcp, "198.18.0.1", 8080), "none");
}

TEST_F(FindServiceTest, LookupsDoNotAllocate) {
  SnapshotPtr snap = t_.snapshot();
  const IpAddr vip = ip("198.18.0.1");
  const IpAddr other = ip("198.18.7.7");
  uint64_t before = ::lb::testing::threadAllocations();
  int found = 0;
  for (uint16_t port = 0; port < 2000; ++port) {
    found += snap->findService(Af::kInet, L4Proto::kTcp, vip, port, port % 9) != nullptr;
    found += snap->findService(Af::kInet, L4Proto::kUdp, other, port, 0) != nullptr;
    found += static_cast<int>(snap->classify(Af::kInet, L4Proto::kTcp, vip, port));
    found += snap->isVip(vip) ? 1 : 0;
    found += snap->isNatRealServer(L4Proto::kTcp, other, port) ? 1 : 0;
  }
  EXPECT_EQ(::lb::testing::threadAllocations(), before);
  EXPECT_GT(found, 0);
}

TEST(ClassifyTest, FirstMatchingRuleWins) {
  ServiceTable t;
  FwmarkRule web;               // TCP 198.18.0.0/24 ports 80..443 => 1
  web.dst = ip("198.18.0.77");  // host bits are ignored
  web.prefix_len = 24;
  web.proto = L4Proto::kTcp;
  web.port_min = 80;
  web.port_max = 443;
  web.mark = 1;
  FwmarkRule any;  // anything to 198.18.0.0/16 => 2
  any.dst = ip("198.18.0.0");
  any.prefix_len = 16;
  any.mark = 2;
  FwmarkRule v6;
  v6.af = Af::kInet6;
  v6.dst = ip("2001:2::");
  v6.prefix_len = 48;
  v6.mark = 3;
  ASSERT_TRUE(t.setFwmarkRules({web, any, v6}).ok());
  SnapshotPtr s = t.snapshot();
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kTcp, ip("198.18.0.5"), 80), 1u);
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kTcp, ip("198.18.0.5"), 443), 1u);
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kTcp, ip("198.18.0.5"), 444), 2u);
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kUdp, ip("198.18.0.5"), 80), 2u);
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kTcp, ip("198.18.1.5"), 80), 2u);
  EXPECT_EQ(s->classify(Af::kInet, L4Proto::kTcp, ip("198.19.0.5"), 80), 0u);
  EXPECT_EQ(s->classify(Af::kInet6, L4Proto::kUdp, ip("2001:2::9"), 53), 3u);
  EXPECT_EQ(s->classify(Af::kInet6, L4Proto::kUdp, ip("2001:3::9"), 53), 0u);
}

TEST(SnapshotTest, VipsAndNatRealServers) {
  ServiceTable t;
  const ServiceKey k = tcpKey("198.18.0.1", 80);
  ASSERT_TRUE(t.addService(svc(k)).ok());
  ASSERT_TRUE(t.addLocalAddr(k, ip("198.18.9.1")).ok());
  ASSERT_TRUE(t.addDest(k, dest("198.18.1.1", 8080, FwdMethod::kMasq)).ok());
  ASSERT_TRUE(t.addDest(k, dest("198.18.1.2", 80, FwdMethod::kDirectRoute)).ok());
  ASSERT_TRUE(t.addDest(k, dest("198.18.1.3", 80, FwdMethod::kFullNat)).ok());
  ASSERT_TRUE(t.addService(svc(fwmKey(4))).ok());
  ASSERT_TRUE(t.addDest(fwmKey(4), dest("198.18.1.4", 80, FwdMethod::kMasq)).ok());
  SnapshotPtr s = t.snapshot();
  EXPECT_TRUE(s->isVip(ip("198.18.0.1")));
  EXPECT_FALSE(s->isVip(ip("198.18.1.1")));
  EXPECT_TRUE(s->isNatRealServer(L4Proto::kTcp, ip("198.18.1.1"), 8080));
  EXPECT_FALSE(s->isNatRealServer(L4Proto::kUdp, ip("198.18.1.1"), 8080));
  EXPECT_FALSE(s->isNatRealServer(L4Proto::kTcp, ip("198.18.1.1"), 80));
  EXPECT_FALSE(s->isNatRealServer(L4Proto::kTcp, ip("198.18.1.2"), 80));  // DR
  EXPECT_TRUE(s->isNatRealServer(L4Proto::kTcp, ip("198.18.1.3"), 80));   // full NAT
  EXPECT_TRUE(s->isNatRealServer(L4Proto::kUdp, ip("198.18.1.4"), 80));   // fwmark: any proto
  EXPECT_EQ(s->dest(12345), nullptr);
  EXPECT_EQ(s->service(999), nullptr);
}

}  // namespace
}  // namespace lb
