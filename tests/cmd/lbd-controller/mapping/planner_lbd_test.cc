// SPDX-License-Identifier: Apache-2.0
// mapCluster + planSync against lbd's real control plane (in-process, on a unix socket): the
// batch is accepted whole, a second plan against what lbd then lists is empty (lbd's own
// spellings and defaults are no differences), changes converge in one batch each, and an
// operator's services are never touched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd-controller/mapping/planner.h"
#include "cmd/lbd/control/control_plane.h"

namespace lbd::controller::mapping {
namespace {

namespace pb = ::lbd::v1;

class NullHooks : public lb::lbd::DataplaneHooks {
 public:
  absl::Status onCommit(const lb::ServiceTable&) override { return absl::OkStatus(); }

  const lb::ConnTable* conns() const override { return nullptr; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override { return {}; }
};

model::Service service(const std::string& name,
                       std::vector<std::string> ips,
                       std::vector<model::ServicePort> ports) {
  model::Service s;
  s.ns = "shop";
  s.name = name;
  s.type = "ClusterIP";
  s.cluster_ip = ips[0];
  for (const std::string& ip : ips)
    s.ip_families.push_back(ip.find(':') == std::string::npos ? "IPv4" : "IPv6");
  s.cluster_ips = std::move(ips);
  s.ports = std::move(ports);
  s.session_affinity = "None";
  s.internal_traffic_policy = "Cluster";
  s.external_traffic_policy = "Cluster";
  return s;
}

model::EndpointSlice slice(const std::string& svc,
                           const std::string& name,
                           const std::string& type,
                           std::vector<std::pair<std::string, bool>> addresses_ready,
                           std::vector<model::EndpointPort> ports) {
  model::EndpointSlice s;
  s.ns = "shop";
  s.name = name;
  s.service_name = svc;
  s.address_type = type;
  for (const auto& [a, ready] : addresses_ready) {
    model::Endpoint e;
    e.addresses = {a};
    e.conditions.ready = ready;
    e.conditions.serving = true;
    e.conditions.terminating = !ready;
    s.endpoints.push_back(e);
  }
  s.ports = std::move(ports);
  return s;
}

class PlannerLbdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lbd_planner_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    server_ = "unix://" + dir_ + "/lbd.sock";
    table_ = std::make_unique<lb::ServiceTable>(lb::ServiceTable::Limits{});
    lb::lbd::ControlOptions o;
    o.listen = server_;
    o.state_file = dir_ + "/state";
    plane_ = std::make_unique<lb::lbd::ControlPlane>(*table_, &hooks_, o);
    ASSERT_TRUE(plane_->loadInitialConfig().ok());
    ASSERT_TRUE(plane_->start().ok());
    stub_ = *lb::lbctl::makeStub({server_, "", "", ""});
  }

  void TearDown() override {
    stub_.reset();
    plane_.reset();
    table_.reset();
    std::remove((dir_ + "/state").c_str());
    std::remove(dir_.c_str());
  }

  std::string lbctl(const std::string& line) {
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    args.push_back("--server=" + server_);
    std::istringstream in;
    std::ostringstream out, err;
    EXPECT_EQ(lb::lbctl::runLbctl("ipvsadm", args, in, out, err, lb::lbctl::makeStub), 0)
        << line << ": " << err.str();
    return out.str();
  }

  pb::ListServicesResponse list() {
    grpc::ClientContext ctx;
    pb::ListServicesResponse resp;
    EXPECT_TRUE(stub_->ListServices(&ctx, pb::ListServicesRequest(), &resp).ok());
    return resp;
  }

  // One reconcile: map, plan against lbd, apply. Returns the plan.
  Plan reconcile() {
    Desired d = mapCluster(services_, slices_, std::nullopt, MapOptions{});
    Plan p = planSync(d, list(), drain_, now_, PlanOptions{});
    if (p.request.operations_size() > 0) {
      grpc::ClientContext ctx;
      pb::ApplyBatchResponse resp;
      grpc::Status st = stub_->ApplyBatch(&ctx, p.request, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      for (const pb::BatchFailure& f : resp.failures())
        ADD_FAILURE() << "operation " << f.index() << " refused: " << f.message();
    }
    return p;
  }

  void add(model::Service s) { services_[s.key()] = std::move(s); }

  void add(model::EndpointSlice s) { slices_[s.key()] = std::move(s); }

  std::string dir_, server_;
  NullHooks hooks_;
  std::unique_ptr<lb::ServiceTable> table_;
  std::unique_ptr<lb::lbd::ControlPlane> plane_;
  std::unique_ptr<lb::lbctl::Stub> stub_;
  model::Store<model::Service> services_;
  model::Store<model::EndpointSlice> slices_;
  DrainState drain_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(PlannerLbdTest, ConvergesInOneBatchAndThenPlansNothing) {
  lbctl("-A -t 198.18.0.9:80 -s wlc");  // an operator's service
  lbctl("-a -t 198.18.0.9:80 -r 198.18.9.9:80 -m -w 3");
  const std::string operators = lbctl("-S -n");

  model::Service web = service("web", {"198.18.100.1", "2001:2:0:0::100:1"},
                               {{"http", "TCP", 80, 0}, {"dns", "UDP", 53, 0}});
  web.session_affinity = "ClientIP";
  web.affinity_timeout_seconds = 600;
  web.annotations["lbd.io/scheduler"] = "wrr";
  add(web);
  model::Service dr = service("dr", {"198.18.100.2"}, {{"", "TCP", 443, 0}});
  dr.annotations["lbd.io/forward-method"] = "dr";
  add(dr);
  model::Service fnat = service("fnat", {"198.18.100.3"}, {{"", "SCTP", 9000, 0}});
  fnat.annotations["lbd.io/forward-method"] = "fullnat";
  fnat.annotations["lbd.io/local-addresses"] = "198.18.50.1,198.18.50.2";
  add(fnat);
  add(slice("web", "web-a", "IPv4", {{"198.18.1.1", true}, {"198.18.1.2", false}},
            {{"http", 8080, "TCP"}, {"dns", 5353, "UDP"}}));
  add(slice("web", "web-b", "IPv4", {{"198.18.1.3", true}}, {{"http", 9090, "TCP"}}));
  add(slice("web", "web-6", "IPv6", {{"2001:2:0:0:0:0:1:1", true}},
            {{"http", 8080, "TCP"}, {"dns", 5353, "UDP"}}));
  add(slice("dr", "dr-a", "IPv4", {{"198.18.2.1", true}}, {{"", 8443, "TCP"}}));
  add(slice("fnat", "fnat-a", "IPv4", {{"198.18.3.1", true}}, {{"", 9000, "SCTP"}}));

  Plan first = reconcile();
  EXPECT_GT(first.request.operations_size(), 10);
  Plan second = reconcile();
  EXPECT_EQ(second.request.operations_size(), 0) << second.request.DebugString();

  // lbd holds what kube-proxy would program, and lbctl shows it as ipvsadm would.
  const std::string s = lbctl("-S -n");
  EXPECT_THAT(s, ::testing::HasSubstr("-A -t 198.18.100.1:80 -s wrr -p 600\n"));
  EXPECT_THAT(s, ::testing::HasSubstr("-a -t 198.18.100.1:80 -r 198.18.1.3:9090 -m -w 1\n"));
  EXPECT_THAT(s, ::testing::HasSubstr("-a -t 198.18.100.1:80 -r 198.18.1.2:8080 -m -w 0\n"));
  EXPECT_THAT(s, ::testing::HasSubstr("-a -t 198.18.100.2:443 -r 198.18.2.1:443 -g -w 1\n"));
  EXPECT_THAT(s, ::testing::HasSubstr("-A -t [2001:2::100:1]:80 -s wrr -p 600\n"));
  EXPECT_THAT(s, ::testing::HasSubstr("-a -t 198.18.0.9:80 -r 198.18.9.9:80 -m -w 3\n"));

  // An endpoint leaves (UDP: deleted at once), one becomes ready: one batch, then nothing.
  slices_["shop/web-a"].endpoints[0].addresses = {"198.18.1.4"};
  slices_["shop/web-a"].endpoints[1].conditions = {true, true, false};
  Plan change = reconcile();
  EXPECT_GT(change.request.operations_size(), 0);
  EXPECT_EQ(change.draining, 0u);  // no connections: TCP deleted too
  EXPECT_EQ(reconcile().request.operations_size(), 0);

  // The Services go: only the controller's lbd services go with them.
  services_.clear();
  reconcile();
  EXPECT_EQ(reconcile().request.operations_size(), 0);
  EXPECT_EQ(lbctl("-S -n"), operators);
}

TEST_F(PlannerLbdTest, AVipAnOperatorHoldsIsAConflictAndTheRestApplies) {
  lbctl("-A -t 198.18.100.1:80 -s rr");
  add(service("clash", {"198.18.100.1"}, {{"", "TCP", 80, 0}}));
  add(service("fine", {"198.18.100.2"}, {{"", "TCP", 80, 0}}));
  Plan p = reconcile();
  EXPECT_EQ(p.conflicts.count("shop/clash"), 1u);
  EXPECT_EQ(reconcile().request.operations_size(), 0);
  EXPECT_EQ(lbctl("-S -n"), "-A -t 198.18.100.1:80 -s rr\n-A -t 198.18.100.2:80 -s rr\n");
}

}  // namespace
}  // namespace lbd::controller::mapping
