// SPDX-License-Identifier: Apache-2.0
// Service ownership (lbd.v1 Service.owner) for controllers beside operators: a batch with an
// owner changes only that owner's services, an owner-scoped ReplaceConfig replaces only them,
// the owner survives a restart (state file), and lbctl's listings never show it. GetInfo's
// instance id tells a client that lbd restarted. The gRPC server in-process on a unix socket.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd/control/control_plane.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;
using ::testing::HasSubstr;

class NullHooks : public DataplaneHooks {
 public:
  absl::Status onCommit(const ServiceTable&) override { return absl::OkStatus(); }

  const ConnTable* conns() const override { return nullptr; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override { return {}; }
};

pb::ServiceKey key(const std::string& vip) {
  pb::ServiceKey k;
  k.mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  k.mutable_address()->set_address(vip);
  k.mutable_address()->set_port(80);
  return k;
}

pb::Service service(const std::string& vip, const std::string& owner = "") {
  pb::Service s;
  *s.mutable_key() = key(vip);
  s.set_scheduler("rr");
  s.set_owner(owner);
  return s;
}

pb::Dest dest(const std::string& rip, uint32_t weight = 1) {
  pb::Dest d;
  d.set_address(rip);
  d.set_port(8080);
  d.set_forward_method(pb::FORWARD_METHOD_MASQ);
  d.set_weight(weight);
  return d;
}

pb::BatchOperation createService(const std::string& vip) {
  pb::BatchOperation op;
  *op.mutable_create_service()->mutable_service() = service(vip);
  return op;
}

pb::BatchOperation updateService(const std::string& vip, const std::string& sched) {
  pb::BatchOperation op;
  *op.mutable_update_service()->mutable_service() = service(vip);
  op.mutable_update_service()->mutable_service()->set_scheduler(sched);
  return op;
}

pb::BatchOperation deleteService(const std::string& vip) {
  pb::BatchOperation op;
  *op.mutable_delete_service()->mutable_key() = key(vip);
  return op;
}

pb::BatchOperation createDest(const std::string& vip, const std::string& rip) {
  pb::BatchOperation op;
  *op.mutable_create_dest()->mutable_key() = key(vip);
  *op.mutable_create_dest()->mutable_dest() = dest(rip);
  return op;
}

pb::BatchOperation updateDest(const std::string& vip, const std::string& rip, uint32_t w) {
  pb::BatchOperation op;
  *op.mutable_update_dest()->mutable_key() = key(vip);
  *op.mutable_update_dest()->mutable_dest() = dest(rip, w);
  return op;
}

pb::BatchOperation deleteDest(const std::string& vip, const std::string& rip) {
  pb::BatchOperation op;
  *op.mutable_delete_dest()->mutable_key() = key(vip);
  op.mutable_delete_dest()->set_address(rip);
  op.mutable_delete_dest()->set_port(8080);
  return op;
}

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lbd_owner_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    server_ = "unix://" + dir_ + "/lbd.sock";
    startServer();
  }

  void TearDown() override {
    stub_.reset();
    plane_.reset();
    table_.reset();
    std::remove((dir_ + "/state").c_str());
    std::remove(dir_.c_str());
  }

  void startServer() {
    plane_.reset();
    table_ = std::make_unique<ServiceTable>(ServiceTable::Limits{});
    ControlOptions o;
    o.listen = server_;
    o.state_file = dir_ + "/state";
    plane_ = std::make_unique<ControlPlane>(*table_, &hooks_, o);
    ASSERT_TRUE(plane_->loadInitialConfig().ok());
    ASSERT_TRUE(plane_->start().ok());
    stub_ = *lbctl::makeStub({server_, "", "", ""});
  }

  std::string lbctl(const std::string& line) {
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    args.push_back("--server=" + server_);
    std::istringstream in;
    std::ostringstream out, err;
    int rc = lbctl::runLbctl("ipvsadm", args, in, out, err, lbctl::makeStub);
    EXPECT_EQ(rc, 0) << line << ": " << err.str();
    return out.str();
  }

  pb::ApplyBatchResponse apply(const std::string& owner,
                               const std::vector<pb::BatchOperation>& ops) {
    pb::ApplyBatchRequest req;
    req.set_owner(owner);
    for (const pb::BatchOperation& op : ops)
      *req.add_operations() = op;
    grpc::ClientContext ctx;
    pb::ApplyBatchResponse resp;
    grpc::Status st = stub_->ApplyBatch(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  grpc::Status replace(const std::string& owner, const pb::Config& config) {
    pb::ReplaceConfigRequest req;
    req.set_owner(owner);
    *req.mutable_config() = config;
    grpc::ClientContext ctx;
    pb::ReplaceConfigResponse resp;
    return stub_->ReplaceConfig(&ctx, req, &resp);
  }

  // vip -> owner, from ListServices.
  std::map<std::string, std::string> owners() {
    grpc::ClientContext ctx;
    pb::ListServicesResponse resp;
    EXPECT_TRUE(stub_->ListServices(&ctx, pb::ListServicesRequest(), &resp).ok());
    std::map<std::string, std::string> m;
    for (const pb::ServiceStatus& s : resp.services())
      m[s.service().key().address().address()] = s.service().owner();
    return m;
  }

  pb::Config config() {
    grpc::ClientContext ctx;
    pb::GetConfigResponse resp;
    EXPECT_TRUE(stub_->GetConfig(&ctx, pb::GetConfigRequest(), &resp).ok());
    return resp.config();
  }

  pb::GetInfoResponse info() {
    grpc::ClientContext ctx;
    pb::GetInfoResponse resp;
    grpc::Status st = stub_->GetInfo(&ctx, pb::GetInfoRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::string dir_, server_;
  NullHooks hooks_;
  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<lbctl::Stub> stub_;
};

TEST_F(OwnershipTest, AnOwnedBatchMakesServicesCarryingTheOwnerThroughARestart) {
  pb::ApplyBatchResponse r = apply(
      "lbd-controller", {createService("198.18.0.1"), createDest("198.18.0.1", "198.18.1.1")});
  EXPECT_EQ(r.applied(), 2u);
  EXPECT_EQ(r.failures_size(), 0);
  lbctl("-A -t 198.18.0.2:80 -s rr");
  EXPECT_EQ(owners(), (std::map<std::string, std::string>{{"198.18.0.1", "lbd-controller"},
                                                          {"198.18.0.2", ""}}));
  EXPECT_EQ(config().services(0).owner(), "lbd-controller");
  startServer();  // the state file brings the owner back
  EXPECT_EQ(owners()["198.18.0.1"], "lbd-controller");
  // The operator's plain UpdateService (lbctl -E) keeps the owner.
  lbctl("-E -t 198.18.0.1:80 -s wlc");
  EXPECT_EQ(owners()["198.18.0.1"], "lbd-controller");
}

TEST_F(OwnershipTest, LbctlListingsOfAnOwnedServiceAreThoseOfAnOperatorsOne) {
  apply("lbd-controller", {createService("198.18.0.1"), createDest("198.18.0.1", "198.18.1.1")});
  const std::string owned_l = lbctl("-L -n");
  const std::string owned_s = lbctl("-S -n");
  lbctl("-C");
  lbctl("-A -t 198.18.0.1:80 -s rr");
  lbctl("-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1");
  EXPECT_EQ(owners()["198.18.0.1"], "");
  EXPECT_EQ(lbctl("-L -n"), owned_l);
  EXPECT_EQ(lbctl("-S -n"), owned_s);
  EXPECT_EQ(owned_s,
            "-A -t 198.18.0.1:80 -s rr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1\n");
  EXPECT_THAT(owned_l, ::testing::Not(HasSubstr("lbd-controller")));
}

TEST_F(OwnershipTest, AnOwnedBatchRefusesEveryChangeToAnOperatorsServiceAndAppliesTheRest) {
  lbctl("-A -t 198.18.0.9:80 -s rr");
  lbctl("-a -t 198.18.0.9:80 -r 198.18.1.9:8080 -m -w 1");
  const std::string before = lbctl("-S -n");
  pb::BatchOperation local;
  *local.mutable_create_local_address()->mutable_key() = key("198.18.0.9");
  local.mutable_create_local_address()->set_address("198.18.50.1");
  pb::ApplyBatchResponse r =
      apply("lbd-controller",
            {createService("198.18.0.9"), updateService("198.18.0.9", "wlc"),
             createDest("198.18.0.9", "198.18.1.1"), updateDest("198.18.0.9", "198.18.1.9", 0),
             deleteDest("198.18.0.9", "198.18.1.9"), local, deleteService("198.18.0.9"),
             createService("198.18.0.1")});
  EXPECT_EQ(r.applied(), 1u);
  ASSERT_EQ(r.failures_size(), 7);
  EXPECT_EQ(r.failures(0).code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(r.failures(0).message(), HasSubstr("198.18.0.9"));
  EXPECT_THAT(r.failures(0).message(), HasSubstr("an operator"));
  for (int i = 1; i < 7; ++i) {
    EXPECT_EQ(r.failures(i).index(), static_cast<uint32_t>(i));
    EXPECT_EQ(r.failures(i).code(), grpc::StatusCode::FAILED_PRECONDITION) << i;
    EXPECT_THAT(r.failures(i).message(), HasSubstr("service TCP 198.18.0.9:80")) << i;
    EXPECT_THAT(r.failures(i).message(), HasSubstr("belongs to an operator")) << i;
  }
  EXPECT_EQ(owners(), (std::map<std::string, std::string>{{"198.18.0.1", "lbd-controller"},
                                                          {"198.18.0.9", ""}}));
  lbctl("-D -t 198.18.0.1:80");
  EXPECT_EQ(lbctl("-S -n"), before);
}

TEST_F(OwnershipTest, AnOwnedBatchRefusesAnotherOwnersServices) {
  apply("other", {createService("198.18.0.7")});
  pb::ApplyBatchResponse r = apply(
      "lbd-controller", {createService("198.18.0.7"), createDest("198.18.0.7", "198.18.1.1")});
  ASSERT_EQ(r.failures_size(), 2);
  EXPECT_EQ(r.failures(0).code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(r.failures(0).message(), HasSubstr("owner \"other\""));
  EXPECT_EQ(r.failures(1).code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(r.failures(1).message(), HasSubstr("owner \"other\""));
  // Its own services, created and changed in the same batch, are its to change.
  r = apply("lbd-controller",
            {createService("198.18.0.1"), createDest("198.18.0.1", "198.18.1.1"),
             updateDest("198.18.0.1", "198.18.1.1", 0), updateService("198.18.0.1", "wlc")});
  EXPECT_EQ(r.failures_size(), 0);
  EXPECT_EQ(r.applied(), 4u);
}

TEST_F(OwnershipTest, AnOwnedFlushDeletesOnlyItsServicesAndGlobalSettingsAreRefused) {
  lbctl("-A -t 198.18.0.9:80 -s rr");
  apply("other", {createService("198.18.0.7")});
  apply("lbd-controller", {createService("198.18.0.1"), createService("198.18.0.2")});
  pb::BatchOperation flush;
  flush.mutable_flush_services();
  pb::BatchOperation timeouts;
  timeouts.mutable_set_timeouts()->mutable_timeouts()->mutable_tcp()->set_seconds(10);
  pb::ApplyBatchResponse r = apply("lbd-controller", {flush, timeouts});
  EXPECT_EQ(r.applied(), 1u);
  ASSERT_EQ(r.failures_size(), 1);
  EXPECT_EQ(r.failures(0).code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(owners(),
            (std::map<std::string, std::string>{{"198.18.0.7", "other"}, {"198.18.0.9", ""}}));
  EXPECT_EQ(config().timeouts().tcp().seconds(), 900);
}

TEST_F(OwnershipTest, ABatchWithoutAnOwnerIsTheOperatorsAndMayChangeAnything) {
  apply("lbd-controller", {createService("198.18.0.1")});
  pb::ApplyBatchResponse r =
      apply("", {createDest("198.18.0.1", "198.18.1.1"), deleteService("198.18.0.1")});
  EXPECT_EQ(r.failures_size(), 0);
  EXPECT_TRUE(owners().empty());
}

TEST_F(OwnershipTest, AnOwnerScopedReplaceConfigReplacesOnlyThatOwnersServices) {
  lbctl("-A -t 198.18.0.9:80 -s rr");
  lbctl("--set 100 20 30");
  apply("other", {createService("198.18.0.7")});
  apply("lbd-controller", {createService("198.18.0.1"), createService("198.18.0.2"),
                           createDest("198.18.0.2", "198.18.1.1")});
  pb::Config want;
  *want.add_services() = service("198.18.0.2");  // kept, now without its dest
  *want.mutable_services(0)->add_dests() = dest("198.18.1.5", 3);
  *want.add_services() = service("198.18.0.3", "ignored");  // stamped with the request's owner
  want.mutable_timeouts()->mutable_tcp()->set_seconds(5);   // ignored: the operator's
  grpc::Status st = replace("lbd-controller", want);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(owners(), (std::map<std::string, std::string>{{"198.18.0.2", "lbd-controller"},
                                                          {"198.18.0.3", "lbd-controller"},
                                                          {"198.18.0.7", "other"},
                                                          {"198.18.0.9", ""}}));
  pb::Config now = config();
  EXPECT_EQ(now.timeouts().tcp().seconds(), 100);
  for (const pb::Service& s : now.services()) {
    if (s.key().address().address() == "198.18.0.2") {
      ASSERT_EQ(s.dests_size(), 1);
      EXPECT_EQ(s.dests(0).address(), "198.18.1.5");
      EXPECT_EQ(s.dests(0).weight(), 3u);
    }
  }
}

TEST_F(OwnershipTest, AnOwnerScopedReplaceConfigCollidingWithAnotherOwnerChangesNothing) {
  lbctl("-A -t 198.18.0.9:80 -s rr");
  apply("lbd-controller", {createService("198.18.0.1")});
  const pb::Config before = config();
  pb::Config want;
  *want.add_services() = service("198.18.0.2");
  *want.add_services() = service("198.18.0.9");
  grpc::Status st = replace("lbd-controller", want);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("198.18.0.9"));
  EXPECT_THAT(st.error_message(), HasSubstr("an operator"));
  EXPECT_EQ(config().SerializeAsString(), before.SerializeAsString());
}

TEST_F(OwnershipTest, AReplaceConfigWithoutAnOwnerStillReplacesEverything) {
  apply("lbd-controller", {createService("198.18.0.1")});
  lbctl("-A -t 198.18.0.9:80 -s rr");
  pb::Config want;
  *want.add_services() = service("198.18.0.3");
  ASSERT_TRUE(replace("", want).ok());
  EXPECT_EQ(owners(), (std::map<std::string, std::string>{{"198.18.0.3", ""}}));
}

TEST_F(OwnershipTest, AnOverlongOwnerIsInvalid) {
  pb::ApplyBatchResponse r =
      apply("", {[] {
              pb::BatchOperation op = createService("198.18.0.1");
              op.mutable_create_service()->mutable_service()->set_owner(std::string(254, 'x'));
              return op;
            }()});
  ASSERT_EQ(r.failures_size(), 1);
  EXPECT_EQ(r.failures(0).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.failures(0).message(), HasSubstr("service.owner"));
}

TEST_F(OwnershipTest, GetInfoGivesVersionPidStartTimeAndAnInstanceIdNewOnEveryStart) {
  const pb::GetInfoResponse a = info();
  EXPECT_FALSE(a.version().empty());
  EXPECT_EQ(a.pid(), static_cast<uint32_t>(getpid()));
  EXPECT_GT(a.start_time().seconds(), 1'600'000'000);
  ASSERT_EQ(a.instance_id().size(), 32u);
  EXPECT_EQ(a.instance_id().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(info().instance_id(), a.instance_id());  // same process, same start
  startServer();
  EXPECT_NE(info().instance_id(), a.instance_id());
}

}  // namespace
}  // namespace lb::lbd
