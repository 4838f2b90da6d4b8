// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_model.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lb::health {
namespace {

namespace pb = ::lbd::v1;

absl::StatusOr<std::vector<VsPlan>> plan(const std::string& text) {
  ConfReader r;
  r.read = [&](const std::string&) -> absl::StatusOr<std::string> { return text; };
  r.glob = [](const std::string&) { return std::vector<std::string>{}; };
  absl::StatusOr<KeepalivedConfig> c = parseKeepalivedConf("/k.conf", r);
  if (!c.ok())
    return c.status();
  return planVirtualServers(*c);
}

TEST(HealthModelTest, VirtualServerBecomesServiceAndDests) {
  absl::StatusOr<std::vector<VsPlan>> p = plan(R"(
virtual_server 198.18.0.1 80 {
  lb_algo sh
  sh-port
  persistence_timeout 50
  persistence_granularity 255.255.255.0
  sorry_server 198.18.9.9 8080
  real_server 198.18.1.1 8080 {
    weight 3
    uthreshold 10
  }
  real_server 198.18.1.2 {
    lvs_method DR
  }
})");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 1u);
  const VsPlan& v = (*p)[0];
  ASSERT_EQ(v.keys.size(), 1u);
  EXPECT_EQ(keyName(v.keys[0]), "TCP 198.18.0.1:80");
  EXPECT_EQ(v.fifo_names[0], "[198.18.0.1]:tcp:80");
  EXPECT_EQ(v.service.scheduler(), "sh");
  EXPECT_TRUE(v.service.sh().port());
  EXPECT_FALSE(v.service.sh().fallback());
  EXPECT_EQ(v.service.persistence().timeout().seconds(), 50);
  EXPECT_EQ(v.service.persistence().netmask_prefix(), 24u);
  ASSERT_EQ(v.dests.size(), 2u);
  EXPECT_EQ(v.dests[0].address(), "198.18.1.1");
  EXPECT_EQ(v.dests[0].port(), 8080u);
  EXPECT_EQ(v.dests[0].weight(), 3u);
  EXPECT_EQ(v.dests[0].upper_threshold(), 10u);
  EXPECT_EQ(v.dests[0].forward_method(), pb::FORWARD_METHOD_MASQ);
  EXPECT_EQ(v.dests[1].forward_method(), pb::FORWARD_METHOD_DIRECT_ROUTE);
  EXPECT_EQ(v.dests[1].port(), 80u);  // DR keeps the service's port
  EXPECT_EQ(v.dests[1].weight(), 1u);
  ASSERT_TRUE(v.sorry.has_value());
  EXPECT_EQ(v.sorry->address(), "198.18.9.9");
  EXPECT_EQ(v.sorry->port(), 8080u);
}

TEST(HealthModelTest, GroupsExpandAndAddressesAreCanonical) {
  absl::StatusOr<std::vector<VsPlan>> p = plan(R"(
virtual_server_group G {
  198.18.0.1-3 80
  2001:0002::0a 443
  fwmark 7
}
virtual_server group G {
  protocol UDP
  persistence_timeout 10
  real_server 2001:2:0::1 53 {
  }
})");
  ASSERT_TRUE(p.ok()) << p.status();
  const VsPlan& v = (*p)[0];
  std::vector<std::string> names;
  for (const pb::ServiceKey& k : v.keys)
    names.push_back(keyName(k));
  EXPECT_THAT(names, ::testing::ElementsAre("UDP 198.18.0.1:80", "UDP 198.18.0.2:80",
                                            "UDP 198.18.0.3:80", "UDP [2001:2::a]:443", "FWM 7"));
  EXPECT_EQ(v.fifo_names[0], "[G]:80");
  EXPECT_EQ(v.dests[0].address(), "2001:2::1");
}

TEST(HealthModelTest, ErrorsNameTheLine) {
  EXPECT_EQ(plan("virtual_server 198.18.0.1 80 {\n}\nvirtual_server 198.18.0.1 80 {\n}\n")
                .status()
                .message(),
            "/k.conf:3: virtual_server TCP 198.18.0.1:80: already defined at /k.conf:1");
  EXPECT_EQ(plan("virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n }\n"
                 " real_server 198.18.1.1 80 {\n }\n}\n")
                .status()
                .message(),
            "/k.conf:4: real_server 198.18.1.1 80: defined twice");
  EXPECT_EQ(plan("virtual_server 198.18.0.1 80 {\n persistence_timeout 5\n"
                 " persistence_granularity 255.0.255.0\n}\n")
                .status()
                .message(),
            "/k.conf:1: persistence_granularity 255.0.255.0: not a netmask");
}

PoolService svc(const std::string& addr, std::vector<std::pair<std::string, uint32_t>> dests) {
  PoolService s;
  s.key.mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  s.key.mutable_address()->set_address(addr);
  s.key.mutable_address()->set_port(80);
  s.service.set_scheduler("rr");
  for (const auto& [a, w] : dests) {
    pb::Dest d;
    d.set_address(a);
    d.set_port(80);
    d.set_forward_method(pb::FORWARD_METHOD_MASQ);
    d.set_weight(w);
    s.dests.emplace(destId(d), d);
  }
  return s;
}

std::vector<std::string> kinds(const pb::ApplyBatchRequest& r) {
  std::vector<std::string> out;
  for (const pb::BatchOperation& op : r.operations()) {
    const auto* f = op.GetDescriptor()->FindOneofByName("kind");
    out.push_back(op.GetReflection()->GetOneofFieldDescriptor(op, f)->name());
  }
  return out;
}

TEST(HealthModelTest, DiffOnlyWhatChanged) {
  Pool a, b;
  a.emplace("x", svc("198.18.0.1", {{"198.18.1.1", 1}, {"198.18.1.2", 2}}));
  a.emplace("gone", svc("198.18.0.9", {}));
  b.emplace("x", svc("198.18.0.1", {{"198.18.1.2", 0}, {"198.18.1.3", 1}}));
  b.emplace("new", svc("198.18.0.2", {{"198.18.1.1", 1}}));
  EXPECT_THAT(kinds(diffPools(a, b)),
              ::testing::ElementsAre("delete_service", "create_service", "create_dest",
                                     "delete_dest", "update_dest", "create_dest"));
  EXPECT_EQ(diffPools(a, a).operations_size(), 0);
  b = a;
  b["x"].service.set_scheduler("wrr");
  EXPECT_THAT(kinds(diffPools(a, b)), ::testing::ElementsAre("update_service"));
}

}  // namespace
}  // namespace lb::health
