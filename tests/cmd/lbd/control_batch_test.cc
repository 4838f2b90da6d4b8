// SPDX-License-Identifier: Apache-2.0
// ApplyBatch and lbctl -R on it: the gRPC server in-process on a unix socket in a temp dir.
// Order; refused operations skipped with the error of their own RPC and the rest applied, as
// ipvsadm -R goes on after a line the kernel refuses; a line that does not parse ends -R with
// the lines before it applied; one commit and one state-file write per batch; 10,000 services
// in one commit.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd/control/control_plane.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

class CountingHooks : public DataplaneHooks {
 public:
  absl::Status onCommit(const ServiceTable& table) override {
    ++commits;
    services = table.config().services.size();
    return absl::OkStatus();
  }

  const ConnTable* conns() const override { return nullptr; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override { return {}; }

  int commits = 0;
  size_t services = 0;
};

struct Result {
  int rc;
  std::string out, err;
};

pb::BatchOperation createService(const std::string& vip, const std::string& sched = "rr") {
  pb::BatchOperation op;
  pb::Service* s = op.mutable_create_service()->mutable_service();
  pb::VirtualAddress* a = s->mutable_key()->mutable_address();
  a->set_protocol(pb::PROTOCOL_TCP);
  a->set_address(vip);
  a->set_port(80);
  s->set_scheduler(sched);
  return op;
}

pb::BatchOperation createDest(const std::string& vip, const std::string& rip, uint32_t weight) {
  pb::BatchOperation op;
  pb::CreateDestRequest* r = op.mutable_create_dest();
  pb::VirtualAddress* a = r->mutable_key()->mutable_address();
  a->set_protocol(pb::PROTOCOL_TCP);
  a->set_address(vip);
  a->set_port(80);
  r->mutable_dest()->set_address(rip);
  r->mutable_dest()->set_port(8080);
  r->mutable_dest()->set_forward_method(pb::FORWARD_METHOD_MASQ);
  r->mutable_dest()->set_weight(weight);
  return op;
}

class ControlBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lbd_batch_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    server_ = "unix://" + dir_ + "/lbd.sock";
    startServer(ServiceTable::Limits{});
  }

  void TearDown() override {
    plane_.reset();
    table_.reset();
    std::remove((dir_ + "/state").c_str());
    std::remove(dir_.c_str());
  }

  void startServer(const ServiceTable::Limits& limits) {
    plane_.reset();
    table_ = std::make_unique<ServiceTable>(limits);
    ControlOptions o;
    o.listen = server_;
    o.state_file = dir_ + "/state";
    plane_ = std::make_unique<ControlPlane>(*table_, &hooks_, o);
    ASSERT_TRUE(plane_->loadInitialConfig().ok());
    ASSERT_TRUE(plane_->start().ok());
  }

  Result run(const std::string& line, const std::string& input = "") {
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    args.push_back("--server=" + server_);
    std::istringstream in(input);
    std::ostringstream out, err;
    int rc = lbctl::runLbctl("ipvsadm", args, in, out, err, lbctl::makeStub);
    return {rc, out.str(), err.str()};
  }

  grpc::Status apply(const std::vector<pb::BatchOperation>& ops, pb::ApplyBatchResponse* resp) {
    pb::ApplyBatchRequest req;
    for (const pb::BatchOperation& op : ops)
      *req.add_operations() = op;
    grpc::ClientContext ctx;
    return stub_->ApplyBatch(&ctx, req, resp);
  }

  // lbd's own counters (GetStats metrics), by name.
  std::map<std::string, uint64_t> metrics() {
    grpc::ClientContext ctx;
    pb::GetStatsResponse resp;
    EXPECT_TRUE(stub_->GetStats(&ctx, pb::GetStatsRequest(), &resp).ok());
    std::map<std::string, uint64_t> m;
    for (const pb::Metric& x : resp.metrics())
      m[x.name()] = x.value();
    return m;
  }

  uint64_t stateWrites() { return metrics()["lb_control_state_file_writes_total"]; }

  std::string dir_, server_;
  CountingHooks hooks_;
  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<lbctl::Stub> stub_ = nullptr;

  void initStub() { stub_ = *lbctl::makeStub({server_, "", "", ""}); }
};

TEST_F(ControlBatchTest, AppliesInOrderWithOneCommitAndOneStateFileWrite) {
  initStub();
  const uint64_t writes = stateWrites();
  const int commits = hooks_.commits;
  const pb::BatchOperation add = createDest("198.18.0.1", "198.18.1.1", 5);
  pb::BatchOperation edit;
  *edit.mutable_update_dest()->mutable_key() = add.create_dest().key();
  *edit.mutable_update_dest()->mutable_dest() = add.create_dest().dest();
  pb::BatchOperation del;
  *del.mutable_delete_dest()->mutable_key() = edit.update_dest().key();
  del.mutable_delete_dest()->set_address("198.18.1.2");
  del.mutable_delete_dest()->set_port(8080);
  pb::ApplyBatchResponse resp;
  ASSERT_TRUE(
      apply({createService("198.18.0.1"), createDest("198.18.0.1", "198.18.1.1", 1),
             createDest("198.18.0.1", "198.18.1.2", 1), createDest("198.18.0.1", "198.18.1.3", 2),
             edit, del, createService("198.18.0.2", "wlc")},
            &resp)
          .ok());
  EXPECT_EQ(resp.applied(), 7u);
  EXPECT_EQ(resp.failures_size(), 0);
  EXPECT_EQ(hooks_.commits, commits + 1);
  EXPECT_EQ(stateWrites(), writes + 1);
  EXPECT_EQ(metrics()["lb_control_commits_total"], 1u);
  // Newest dest first (the kernel's list order); the edit took effect.
  const std::string want =
      "-A -t 198.18.0.1:80 -s rr\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 5\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.3:8080 -m -w 2\n"
      "-A -t 198.18.0.2:80 -s wlc\n";
  EXPECT_EQ(run("-S -n").out, want);
  // The model keeps creation order, and dests newest first (the kernel's list order).
  grpc::ClientContext ctx;
  pb::GetConfigResponse cfg;
  ASSERT_TRUE(stub_->GetConfig(&ctx, pb::GetConfigRequest(), &cfg).ok());
  ASSERT_EQ(cfg.config().services_size(), 2);
  EXPECT_EQ(cfg.config().services(1).key().address().address(), "198.18.0.2");
  ASSERT_EQ(cfg.config().services(0).dests_size(), 2);
  EXPECT_EQ(cfg.config().services(0).dests(0).address(), "198.18.1.3");
  EXPECT_EQ(cfg.config().services(0).dests(1).address(), "198.18.1.1");
  // What was acknowledged is in the state file: a restart reads it back.
  startServer(ServiceTable::Limits{});
  EXPECT_EQ(run("-S -n").out, want);
}

TEST_F(ControlBatchTest, RefusedOperationsAreSkippedWithTheirOwnRpcsErrorAndTheRestApplied) {
  initStub();
  ASSERT_EQ(run("-A -t 198.18.0.9:80 -s rr").rc, 0);
  // The errors the single RPCs give: a service that exists, a dest of a missing service.
  grpc::Status exists, missing;
  {
    grpc::ClientContext ctx;
    pb::CreateServiceResponse r;
    exists = stub_->CreateService(&ctx, createService("198.18.0.9").create_service(), &r);
  }
  {
    grpc::ClientContext ctx;
    pb::CreateDestResponse r;
    missing = stub_->CreateDest(&ctx, createDest("198.18.0.7", "198.18.1.1", 1).create_dest(), &r);
  }
  ASSERT_EQ(exists.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  const int commits = hooks_.commits;
  const uint64_t writes = stateWrites();
  const uint64_t rejected = metrics()["lb_control_mutations_total{result=\"rejected\"}"];
  pb::ApplyBatchResponse resp;
  ASSERT_TRUE(
      apply({createService("198.18.0.1"), createDest("198.18.0.1", "198.18.1.1", 1),
             createService("198.18.0.9"), createService("198.18.0.2"),
             createDest("198.18.0.1", "198.18.1.2", 1), createDest("198.18.0.7", "198.18.1.1", 1),
             createDest("198.18.0.1", "198.18.1.1", 4), createService("198.18.0.3")},
            &resp)
          .ok());
  // Refused on its own now too (the dest exists): the same error as in the batch.
  grpc::Status dup;
  {
    grpc::ClientContext ctx;
    pb::CreateDestResponse r;
    dup = stub_->CreateDest(&ctx, createDest("198.18.0.1", "198.18.1.1", 4).create_dest(), &r);
  }
  ASSERT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(resp.applied(), 5u);
  ASSERT_EQ(resp.failures_size(), 3);
  const std::vector<std::pair<uint32_t, grpc::Status>> want = {{2, exists}, {5, missing}, {6, dup}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.failures(i).index(), want[i].first);
    EXPECT_EQ(resp.failures(i).code(), static_cast<int>(want[i].second.error_code()));
    EXPECT_EQ(resp.failures(i).message(), want[i].second.error_message());
  }
  EXPECT_EQ(hooks_.commits, commits + 1);
  EXPECT_EQ(stateWrites(), writes + 1);
  // 3 refused in the batch, then `dup` on its own.
  EXPECT_EQ(metrics()["lb_control_mutations_total{result=\"rejected\"}"], rejected + 4);
  EXPECT_EQ(run("-S -n").out,  // sorted, as ipvsadm -S sorts
            "-A -t 198.18.0.1:80 -s rr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m -w 1\n"
            "-A -t 198.18.0.2:80 -s rr\n"
            "-A -t 198.18.0.3:80 -s rr\n"
            "-A -t 198.18.0.9:80 -s rr\n");
}

TEST_F(ControlBatchTest, RefusedFirstOperationStillAppliesTheRest) {
  initStub();
  const int commits = hooks_.commits;
  const uint64_t writes = stateWrites();
  pb::ApplyBatchResponse none;
  ASSERT_TRUE(apply({createDest("198.18.0.1", "198.18.1.1", 1)}, &none).ok());
  EXPECT_EQ(none.applied(), 0u);
  ASSERT_EQ(none.failures_size(), 1);
  EXPECT_EQ(none.failures(0).index(), 0u);
  EXPECT_EQ(none.failures(0).code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(none.failures(0).message(), "no such service: TCP 198.18.0.1:80");
  EXPECT_EQ(hooks_.commits, commits);  // nothing applied, nothing committed
  EXPECT_EQ(stateWrites(), writes);

  pb::ApplyBatchResponse resp;
  ASSERT_TRUE(
      apply({createDest("198.18.0.1", "198.18.1.1", 1), createService("198.18.0.1")}, &resp).ok());
  EXPECT_EQ(resp.applied(), 1u);
  ASSERT_EQ(resp.failures_size(), 1);
  EXPECT_EQ(resp.failures(0).index(), 0u);
  EXPECT_EQ(hooks_.commits, commits + 1);
  EXPECT_EQ(run("-S -n").out, "-A -t 198.18.0.1:80 -s rr\n");

  pb::ApplyBatchResponse empty;
  ASSERT_TRUE(
      apply({createService("198.18.0.2"), pb::BatchOperation(), createService("198.18.0.3")},
            &empty)
          .ok());
  EXPECT_EQ(empty.applied(), 2u);
  ASSERT_EQ(empty.failures_size(), 1);
  EXPECT_EQ(empty.failures(0).index(), 1u);
  EXPECT_EQ(empty.failures(0).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
}

// Limits only the live table knows (here max_services) are found after the staged commit is
// refused, still name the operation that crossed them, and the operations after it still run.
TEST_F(ControlBatchTest, LiveTableLimitNamesTheOperationAndTheRestRun) {
  ServiceTable::Limits limits;
  limits.max_services = 3;
  startServer(limits);
  initStub();
  std::vector<pb::BatchOperation> ops;
  for (int i = 1; i <= 2; ++i)
    ops.push_back(createService(absl::StrCat("198.18.0.", i)));
  ops.push_back(createService("198.18.0.1"));  // 2: exists
  for (int i = 3; i <= 5; ++i)
    ops.push_back(createService(absl::StrCat("198.18.0.", i)));  // 4, 5: a 4th, 5th service
  ops.push_back(createDest("198.18.0.1", "198.18.1.1", 1));
  pb::ApplyBatchResponse resp;
  ASSERT_TRUE(apply(ops, &resp).ok());
  EXPECT_EQ(resp.applied(), 4u);
  ASSERT_EQ(resp.failures_size(), 3);
  EXPECT_EQ(resp.failures(0).index(), 2u);
  EXPECT_EQ(resp.failures(0).code(), static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  EXPECT_EQ(resp.failures(1).index(), 4u);
  EXPECT_EQ(resp.failures(1).code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(resp.failures(2).index(), 5u);
  EXPECT_EQ(resp.failures(2).code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(run("-S -n").out,
            "-A -t 198.18.0.1:80 -s rr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1\n"
            "-A -t 198.18.0.2:80 -s rr\n"
            "-A -t 198.18.0.3:80 -s rr\n");
}

TEST_F(ControlBatchTest, DeleteThenCreateOfALiveServiceIsANewService) {
  initStub();
  ASSERT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  const int commits = hooks_.commits;
  Result r = run("-R",
                 "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m\n"
                 "-D -t 198.18.0.1:80\n"
                 "-A -t 198.18.0.1:80 -s wrr\n"
                 "-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m\n");
  EXPECT_EQ(r.rc, 0) << r.err;
  // The delete is committed before the service is created again (ipvsadm: a new service).
  EXPECT_EQ(hooks_.commits, commits + 2);
  EXPECT_EQ(run("-S -n").out,
            "-A -t 198.18.0.1:80 -s wrr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m -w 1\n");
}

// ipvsadm's restore_table(): a line the kernel refuses prints its message and the restore goes
// on; the exit status is the last line's.
TEST_F(ControlBatchTest, RestoreGoesOnAfterARefusedLine) {
  initStub();
  const int commits = hooks_.commits;
  const std::string dup = "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m\n";
  Result r = run("-R",
                 "# restore\n"
                 "-A -t 198.18.0.1:80 -s rr\n"
                 "\n" +
                     dup + dup +
                     "-D -t 198.18.0.7:80\n"
                     "-A -t 198.18.0.2:80\n");
  EXPECT_EQ(r.rc, 0);  // the last line was applied
  // The messages the same commands print on their own.
  const Result single_dup = run(dup.substr(0, dup.size() - 1));
  const Result single_del = run("-D -t 198.18.0.7:80");
  EXPECT_EQ(single_dup.err, "Destination already exists\n");
  EXPECT_EQ(single_del.err, "No such service\n");
  EXPECT_EQ(r.err, single_dup.err + single_del.err);
  EXPECT_EQ(hooks_.commits, commits + 1);
  EXPECT_EQ(run("-S -n").out,
            "-A -t 198.18.0.1:80 -s rr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 1\n"
            "-A -t 198.18.0.2:80 -s wlc\n");

  r = run("-R", "-A -t 198.18.0.3:80\n-A -t 198.18.0.2:80\n");
  EXPECT_EQ(r.rc, 255);  // the last line was refused
  EXPECT_EQ(r.err, "Service already exists\n");
  EXPECT_NE(run("-S -n").out.find("-A -t 198.18.0.3:80 -s wlc\n"), std::string::npos);
}

// A line parse_options() exits on (fail(2, ...)) ends the restore: the lines before it are
// applied, in order, it and the ones after it are not.
TEST_F(ControlBatchTest, RestoreStopsAtALineThatDoesNotParse) {
  initStub();
  Result r = run("-R",
                 "-A -t 198.18.0.1:80 -s rr\n"
                 "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m\n"
                 "-A -t 198.18.0.1:80\n"  // refused by lbd: the restore goes on
                 "-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m\n"
                 "-a -t 198.18.0.1:80 -r 198.18.1.3:80 -w x\n"
                 "-A -t 198.18.0.2:80\n");
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "Service already exists\nillegal weight specified\n");
  EXPECT_EQ(run("-S -n").out,
            "-A -t 198.18.0.1:80 -s rr\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 1\n"
            "-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m -w 1\n");

  // Before the command, popt's error is tryhelp_exit(-1): the restore ends with 255.
  r = run("-R", "-A -t 198.18.0.3:80\n--bogus -A -t 198.18.0.4:80\n-A -t 198.18.0.5:80\n");
  EXPECT_EQ(r.rc, 255);
  EXPECT_EQ(r.err, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n");
  const std::string saved = run("-S -n").out;
  EXPECT_NE(saved.find("198.18.0.3:80"), std::string::npos);
  EXPECT_EQ(saved.find("198.18.0.5:80"), std::string::npos);
}

// popt's own errors after the command (unknown option, missing argument): parse_options()
// returns -1, so only that line fails and the restore goes on.
TEST_F(ControlBatchTest, RestoreGoesOnAfterAnUnknownOption) {
  initStub();
  Result r = run("-R",
                 "-A -t 198.18.0.1:80 -s rr\n"
                 "-A -t 198.18.0.2:80 -q\n"
                 "-A -t 198.18.0.3:80 -s rr\n");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.err, "-q: unknown option\n");
  EXPECT_EQ(run("-S -n").out, "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.3:80 -s rr\n");
  r = run("-R", "-A -t 198.18.0.4:80 -s rr\n-A -t\n");
  EXPECT_EQ(r.rc, 255);  // the last line's
  EXPECT_EQ(r.err, "-t: missing argument\n");
  EXPECT_NE(run("-S -n").out.find("198.18.0.4:80"), std::string::npos);
}

TEST_F(ControlBatchTest, TenThousandServicesInOneCommit) {
  initStub();
  std::string rules;
  for (int i = 0; i < 10000; ++i) {
    const std::string vip = absl::StrFormat("198.19.%d.%d", 100 + i / 250, 1 + i % 250);
    absl::StrAppend(&rules, "-A -t ", vip, ":80 -s wrr\n");
    for (int j = 0; j < 10; ++j)
      absl::StrAppend(&rules, "-a -t ", vip, ":80 -r 198.18.61.", 10 + j, ":80 -m -w 1\n");
  }
  const int commits = hooks_.commits;
  const uint64_t writes = stateWrites();
  Result r = run("-R", rules);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(hooks_.commits, commits + 1);
  EXPECT_EQ(hooks_.services, 10000u);
  EXPECT_EQ(stateWrites(), writes + 1);
  EXPECT_EQ(metrics()["lb_control_mutations_total{result=\"accepted\"}"], 110000u);
  // -S (a 10,000-service listing is more than gRPC's default 4 MiB message) gives it back.
  const std::string saved = run("-S -n").out;
  EXPECT_EQ(std::count(saved.begin(), saved.end(), '\n'), 110000);
  EXPECT_NE(saved.find("-A -t 198.19.139.250:80 -s wrr\n"
                       "-a -t 198.19.139.250:80 -r 198.18.61.10:80 -m -w 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace lb::lbd
