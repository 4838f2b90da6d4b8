// SPDX-License-Identifier: Apache-2.0
// The gRPC server in-process on a unix socket in a temp dir, driven by lbctl_lib's client with
// ipvsadm command lines, and by the raw stub for the gRPC codes.
#include "cmd/lbd/control/control_plane.h"

#include <arpa/inet.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd/control/metrics_server.h"
#include "tests/testlib/temp_dir.h"

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

  std::vector<std::pair<std::string, uint64_t>> metrics() const override {
    return {{"lb_test_metric", 7}};
  }

  int commits = 0;
  size_t services = 0;
};

struct Result {
  int rc;
  std::string out, err;
};

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    server_ = "unix://" + dir_ + "/run/lbd.sock";  // the server creates run/
    startServer();
  }

  void TearDown() override {
    plane_.reset();
    table_.reset();
  }

  void startServer() {
    plane_.reset();
    table_ = std::make_unique<ServiceTable>();
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

  std::unique_ptr<lbctl::Stub> stub() { return *lbctl::makeStub({server_, "", "", ""}); }

  lb::testing::TempDir tmp_{"lbd_control_test"};  // removed last, with what the test left in it
  std::string dir_, server_;
  CountingHooks hooks_;
  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ControlPlane> plane_;
};

constexpr char kHeader[] =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

TEST_F(ControlPlaneTest, SocketIsPrivate) {
  struct stat st {};

  ASSERT_EQ(stat((dir_ + "/run/lbd.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ControlPlaneTest, AddEditDeleteAndList) {
  EXPECT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  EXPECT_EQ(run("-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m -w 3").rc, 0);
  EXPECT_EQ(run("-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m").rc, 0);
  EXPECT_EQ(run("-A -u 198.18.0.1:53 -s sh -b sh-fallback -o").rc, 0);
  EXPECT_EQ(run("-a -u 198.18.0.1:53 -r 198.18.1.1 -g -x 100 -y 10").rc, 0);
  EXPECT_EQ(run("-A -f 9 -s wlc -p").rc, 0);
  EXPECT_EQ(hooks_.commits, 6);
  Result l = run("-Ln");
  EXPECT_EQ(l.rc, 0);
  EXPECT_EQ(l.out, std::string(kHeader) +
                       "TCP  198.18.0.1:80 rr\n"
                       "  -> 198.18.1.1:8080              Masq    1      0          0         \n"
                       "  -> 198.18.1.2:8080              Masq    3      0          0         \n"
                       "UDP  198.18.0.1:53 sh (sh-fallback) ops\n"
                       "  -> 198.18.1.1:53                Route   1      0          0         \n"
                       "FWM  9 wlc persistent 360\n");
  EXPECT_EQ(run("-e -t 198.18.0.1:80 -r 198.18.1.2:8080 -m -w 0").rc, 0);
  EXPECT_EQ(run("-E -t 198.18.0.1:80 -s wrr -p 60").rc, 0);
  EXPECT_EQ(run("-d -t 198.18.0.1:80 -r 198.18.1.1:8080").rc, 0);
  EXPECT_EQ(run("-D -f 9").rc, 0);
  EXPECT_EQ(run("-L -n -t 198.18.0.1:80").out,
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  198.18.0.1:80 wrr persistent 60\n"
            "  -> 198.18.1.2:8080              Masq    0      0          0         \n");
  EXPECT_EQ(run("-Ln --thresholds -u 198.18.0.1:53").out,
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
            "  -> RemoteAddress:Port\n"
            "UDP  198.18.0.1:53 sh (sh-fallback) ops\n"
            "  -> 198.18.1.1:53                100        10         0          0         \n");
  EXPECT_EQ(hooks_.services, 2u);
}

TEST_F(ControlPlaneTest, ErrorsAreIpvsadmsAndChangeNothing) {
  ASSERT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  ASSERT_EQ(run("-a -t 198.18.0.1:80 -r 198.18.1.1 -g").rc, 0);
  const std::string before = run("-S -n").out;
  const int commits = hooks_.commits;

  struct Case {
    const char* line;
    const char* err;
    int rc;
  };

  const Case cases[] = {
      {"-A -t 198.18.0.1:80 -s rr", "Service already exists\n", 255},
      {"-A -t 198.18.0.2:80 -s nosuch", "Scheduler or persistence engine not found\n", 255},
      {"-E -t 198.18.0.9:80 -s rr", "No such service\n", 255},
      {"-E -t 198.18.0.1:80 -s nosuch", "Scheduler or persistence engine not found\n", 255},
      {"-D -t 198.18.0.9:80", "No such service\n", 255},
      {"-a -t 198.18.0.9:80 -r 198.18.1.1", "Service not defined\n", 255},
      {"-a -t 198.18.0.1:80 -r 198.18.1.1", "Destination already exists\n", 255},
      {"-e -t 198.18.0.1:80 -r 198.18.1.7", "No such destination\n", 255},
      {"-d -t 198.18.0.1:80 -r 198.18.1.7", "No such destination\n", 255},
      {"-d -t 198.18.0.9:80 -r 198.18.1.7", "Service not defined\n", 255},
      {"-Z -t 198.18.0.9:80", "No such service\n", 255},
      {"-L -t 198.18.0.9:80", "No such service\n", 1},
      {"-A -t 198.18.0.1", "Zero port specified for non-persistent service\n", 2},
      // No SyncHooks in this ControlPlane (lbd gives it one).
      {"--start-daemon master", "lbd: connection synchronisation is not available in this lbd\n",
       255},
      {"--stop-daemon master", "lbd: connection synchronisation is not available in this lbd\n",
       255},
  };
  for (const Case& c : cases) {
    Result r = run(c.line);
    EXPECT_EQ(r.err, c.err) << c.line;
    EXPECT_EQ(r.rc, c.rc) << c.line;
    EXPECT_EQ(r.out, "") << c.line;
  }
  Result th = run("-a -t 198.18.0.1:80 -r 198.18.1.2 -y 10");
  EXPECT_EQ(th.rc, 255);
  EXPECT_EQ(th.err.substr(0, th.err.find('\n')), "Numerical result out of range");
  EXPECT_EQ(run("-S -n").out, before);
  EXPECT_EQ(hooks_.commits, commits);
}

TEST_F(ControlPlaneTest, SaveClearRestoreSaveAndRestart) {
  const std::string rules =
      "-A -t 198.18.0.1:80 -s wrr -p 300 -M 255.255.255.0\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.1:80 -g -w 1\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.2:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum\n"
      "-A -u 198.18.0.1:53 -s mh -o -b mh-fallback,mh-port\n"
      "-P -u 198.18.0.1:53 -z 198.18.9.9\n"
      "-a -u 198.18.0.1:53 -r 198.18.2.1:5353 -m -w 5\n"
      "-A -t [2001:2::1]:443 -s rr\n"
      "-a -t [2001:2::1]:443 -r [2001:2::10]:8443 -m -w 1\n"
      "-A -f 3 -6 -s lc\n";
  Result r = run("-R", rules);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string saved = run("-S -n").out;
  EXPECT_EQ(saved, rules);
  EXPECT_EQ(run("-C").rc, 0);
  EXPECT_EQ(run("-S -n").out, "");
  ASSERT_EQ(run("-R", saved).rc, 0);
  EXPECT_EQ(run("-S -n").out, saved);
  EXPECT_EQ(run("--set 1000 0 60").rc, 0);
  EXPECT_EQ(run("-L --timeout").out, "Timeout (tcp tcpfin udp): 1000 120 60\n");

  // A restart reads the state file back.
  startServer();
  EXPECT_EQ(run("-S -n").out, "--set 1000 120 60\n" + saved);
  EXPECT_EQ(run("-L --timeout").out, "Timeout (tcp tcpfin udp): 1000 120 60\n");
  EXPECT_EQ(run("-G").out,
            "VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n"
            "198.18.0.1:53        1        \n"
            "                              198.18.9.9           0          0         \n");
}

std::string fileText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A change the state file cannot record is refused (issue 17): the write error reaches lbctl,
// the state file and the configuration stay as they were, and the dataplane is handed the
// previous configuration again. "state.tmp" made a directory makes the write fail (EISDIR).
TEST_F(ControlPlaneTest, StateFileWriteFailureRefusesTheChange) {
  const std::string tmp = dir_ + "/state.tmp";
  // Before the first write there is no file: the previous configuration is the empty one.
  ASSERT_EQ(mkdir(tmp.c_str(), 0700), 0);
  Result r = run("-A -t 198.18.0.1:80 -s rr");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("Is a directory; the change is not applied"), std::string::npos) << r.err;
  EXPECT_EQ(run("-S -n").out, "");
  EXPECT_EQ(hooks_.services, 0u);
  ASSERT_EQ(rmdir(tmp.c_str()), 0);

  ASSERT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  ASSERT_EQ(run("-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m").rc, 0);
  const std::string saved = run("-S -n").out;
  const std::string file = fileText(dir_ + "/state");
  ASSERT_EQ(mkdir(tmp.c_str(), 0700), 0);
  for (const char* line : {"-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m", "-D -t 198.18.0.1:80",
                           "-A -u 198.18.0.1:53 -s rr", "-C"}) {
    r = run(line);
    EXPECT_NE(r.rc, 0) << line;
    EXPECT_NE(r.err.find("the change is not applied"), std::string::npos) << line << ": " << r.err;
    EXPECT_EQ(run("-S -n").out, saved) << line;
    EXPECT_EQ(fileText(dir_ + "/state"), file) << line;
    EXPECT_EQ(hooks_.services, 1u) << line;
  }
  r = run("-R", "-A -t 198.18.0.2:80 -s rr\n-a -t 198.18.0.2:80 -r 198.18.1.1:80 -m\n");
  EXPECT_NE(r.rc, 0);
  EXPECT_EQ(run("-S -n").out, saved);
  ASSERT_EQ(rmdir(tmp.c_str()), 0);

  // Room again: the same change goes through, and a restart reads it back.
  ASSERT_EQ(run("-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m").rc, 0);
  const std::string now = run("-S -n").out;
  EXPECT_NE(now, saved);
  startServer();
  EXPECT_EQ(run("-S -n").out, now);
}

pb::Config getConfig(lbctl::Stub& stub) {
  grpc::ClientContext ctx;
  pb::GetConfigResponse resp;
  EXPECT_TRUE(stub.GetConfig(&ctx, pb::GetConfigRequest(), &resp).ok());
  return resp.config();
}

// -S saves everything -R needs: a full-NAT dest added before its service's local address (DPVS's
// order), the pool, thresholds (which ipvsadm's -S leaves out), lbd's timeouts, sysctls and
// fwmark rules; -C, -R of that gives back the same
// configuration, line for line and message for message.
TEST_F(ControlPlaneTest, SaveRestoresFullNatPoolsSysctlsAndFwmarkRules) {
  const std::string typed =
      "-A -t 198.18.0.5:80 -s rr\n"
      "-a -t 198.18.0.5:80 -r 198.18.1.5:8080 --fullnat -w 2\n"
      "-P -t 198.18.0.5:80 -z 198.18.9.5\n"
      "-P -t 198.18.0.5:80 -z 198.18.9.6\n"
      "-A -f 7 -s wlc\n"
      "-a -f 7 -r 198.18.1.7:0 -g -w 1 -x 50 -y 5\n"
      "--add-fwmark-rule --mark 7 --dest 198.18.7.0/24 --proto tcp --dport 80:90\n"
      "--add-fwmark-rule --mark 7 --dest 198.18.8.1 --proto udp\n"
      "--sysctl expire_nodest_conn=1 am_droprate=20\n"
      "--set 1000 0 60\n";
  Result r = run("-R", typed);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string saved = run("-S -n").out;
  EXPECT_EQ(saved,
            "--set 1000 120 60\n"
            "--sysctl am_droprate=20 expire_nodest_conn=1\n"
            "-A -t 198.18.0.5:80 -s rr\n"
            "-P -t 198.18.0.5:80 -z 198.18.9.5\n"
            "-P -t 198.18.0.5:80 -z 198.18.9.6\n"
            "-a -t 198.18.0.5:80 -r 198.18.1.5:8080 --fullnat -w 2\n"
            "-A -f 7 -s wlc\n"
            "-a -f 7 -r 198.18.1.7:0 -g -w 1 -x 50 -y 5\n"
            "--clear-fwmark-rules\n"
            "--add-fwmark-rule --mark 7 --dest 198.18.7.0/24 --proto tcp --dport 80:90\n"
            "--add-fwmark-rule --mark 7 --dest 198.18.8.1/32 --proto udp\n");
  std::unique_ptr<lbctl::Stub> s = stub();
  const pb::Config before = getConfig(*s);
  ASSERT_EQ(run("-C").rc, 0);
  ASSERT_EQ(run("-R", saved).rc, 0) << run("-R", saved).err;
  EXPECT_EQ(run("-S -n").out, saved);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, getConfig(*s)))
      << before.DebugString() << "\n---\n"
      << getConfig(*s).DebugString();
  // A fresh lbd (no state) restored from the same lines: the same configuration again.
  std::remove((dir_ + "/state").c_str());
  startServer();
  ASSERT_EQ(run("-S -n").out, "");
  ASSERT_EQ(run("-R", saved).rc, 0);
  s = stub();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, getConfig(*s)));
}

// ipvsadm's restore_table() runs each line as it reads it; fail() on an unparsable line exits
// 2 there, so the lines before it stay applied and the rest never run.
TEST_F(ControlPlaneTest, RestoreStopsAtAnUnparsableLineKeepingTheLinesBefore) {
  Result r = run("-R",
                 "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.1 -w x\n"
                 "-A -t 198.18.0.2:80 -s rr\n");
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "illegal weight specified\n");
  EXPECT_EQ(run("-S -n").out, "-A -t 198.18.0.1:80 -s rr\n");
}

TEST_F(ControlPlaneTest, ListingsWithoutDataplane) {
  ASSERT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  EXPECT_EQ(run("-Lnc").out,
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n");
  EXPECT_EQ(run("-L --daemon").out, "");
  EXPECT_EQ(run("-Ln --stats").out,
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  198.18.0.1:80                       0        0        0        0        0\n");
  EXPECT_EQ(run("-Z").rc, 0);
  EXPECT_EQ(run("-Z -t 198.18.0.1:80").rc, 0);
  Result json = run("-Ln --output=json");
  EXPECT_EQ(json.rc, 0);
  EXPECT_NE(json.out.find("\"scheduler\": \"rr\""), std::string::npos) << json.out;
}

TEST_F(ControlPlaneTest, GrpcCodes) {
  std::unique_ptr<lbctl::Stub> s = stub();
  auto create = [&](const pb::Service& svc) {
    grpc::ClientContext ctx;
    pb::CreateServiceRequest req;
    *req.mutable_service() = svc;
    pb::CreateServiceResponse resp;
    return s->CreateService(&ctx, req, &resp);
  };
  pb::Service svc;
  svc.mutable_key()->mutable_address()->set_address("198.18.0.1");
  svc.mutable_key()->mutable_address()->set_port(80);
  EXPECT_EQ(create(svc).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // protocol unset
  svc.mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  EXPECT_EQ(create(svc).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(create(svc).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  pb::Service with_dests = svc;
  with_dests.mutable_key()->mutable_address()->set_port(81);
  with_dests.add_dests()->set_address("198.18.1.1");
  EXPECT_EQ(create(with_dests).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  pb::CreateDestRequest dreq;
  *dreq.mutable_key() = svc.key();
  dreq.mutable_dest()->set_address("198.18.1.1");
  pb::CreateDestResponse dresp;
  grpc::Status st = s->CreateDest(&ctx, dreq, &dresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // forward method unset
  EXPECT_EQ(st.error_message(), "dest.forward_method: forward method unspecified");

  grpc::ClientContext ctx2;
  pb::DeleteServiceRequest del;
  del.mutable_key()->mutable_fwmark()->set_mark(4);
  del.mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
  pb::DeleteServiceResponse delresp;
  st = s->DeleteService(&ctx2, del, &delresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "no such service: FWM 4");

  grpc::ClientContext ctx3;
  pb::GetConfigResponse cfg;
  ASSERT_TRUE(s->GetConfig(&ctx3, pb::GetConfigRequest(), &cfg).ok());
  ASSERT_EQ(cfg.config().services_size(), 1);
  EXPECT_EQ(cfg.config().services(0).scheduler(), "wlc");
  EXPECT_EQ(cfg.config().timeouts().tcp().seconds(), 900);

  grpc::ClientContext ctx4;
  pb::ReplaceConfigRequest rep;
  *rep.mutable_config() = cfg.config();
  rep.mutable_config()->mutable_services(0)->set_scheduler("nosuch");
  pb::ReplaceConfigResponse represp;
  EXPECT_EQ(s->ReplaceConfig(&ctx4, rep, &represp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext ctx5;
  pb::GetStatsResponse stats;
  ASSERT_TRUE(s->GetStats(&ctx5, pb::GetStatsRequest(), &stats).ok());
  bool found = false;
  for (const pb::Metric& m : stats.metrics())
    found |= m.name() == "lb_test_metric" && m.value() == 7;
  EXPECT_TRUE(found);
}

constexpr char kDefaultSysctls[] =
    "net.ipv4.vs.am_droprate = 10\n"
    "net.ipv4.vs.conn_reuse_mode = 1\n"
    "net.ipv4.vs.drop_entry = 0\n"
    "net.ipv4.vs.drop_packet = 0\n"
    "net.ipv4.vs.expire_nodest_conn = 0\n"
    "net.ipv4.vs.expire_quiescent_template = 0\n"
    "net.ipv4.vs.lblc_expiration = 86400\n"
    "net.ipv4.vs.lblcr_expiration = 86400\n"
    "net.ipv4.vs.nat_icmp_send = 0\n"
    "net.ipv4.vs.pmtu_disc = 1\n"
    "net.ipv4.vs.schedule_icmp = 0\n"
    "net.ipv4.vs.secure_tcp = 0\n"
    "net.ipv4.vs.sloppy_sctp = 0\n"
    "net.ipv4.vs.sloppy_tcp = 0\n"
    "net.ipv4.vs.sync_period = 50\n"
    "net.ipv4.vs.sync_persist_mode = 0\n"
    "net.ipv4.vs.sync_ports = 1\n"
    "net.ipv4.vs.sync_qlen_max = 0\n"
    "net.ipv4.vs.sync_refresh_period = 0\n"
    "net.ipv4.vs.sync_retries = 0\n"
    "net.ipv4.vs.sync_sock_size = 0\n"
    "net.ipv4.vs.sync_threshold = 3\n"
    "net.ipv4.vs.sync_version = 1\n"
    "net.ipv4.vs.syncookies = 1\n"
    "net.ipv4.vs.syncookies_threshold = 4096\n";

TEST_F(ControlPlaneTest, Sysctls) {
  EXPECT_EQ(run("--sysctl").out, kDefaultSysctls);
  const int commits = hooks_.commits;
  Result set = run("--sysctl expire_nodest_conn=1 net.ipv4.vs.drop_entry=2 lblcr_expiration=600");
  EXPECT_EQ(set.rc, 0) << set.err;
  EXPECT_EQ(set.out + set.err, "");
  EXPECT_EQ(hooks_.commits, commits + 1);  // one change
  EXPECT_EQ(run("--sysctl=pmtu_disc=0").rc, 0);
  EXPECT_EQ(
      run("--sysctl expire_nodest_conn drop_entry net/ipv4/vs/pmtu_disc lblcr_expiration").out,
      "net.ipv4.vs.expire_nodest_conn = 1\n"
      "net.ipv4.vs.drop_entry = 2\n"
      "net.ipv4.vs.pmtu_disc = 0\n"
      "net.ipv4.vs.lblcr_expiration = 600\n");
  EXPECT_TRUE(table_->config().sysctls.expire_nodest_conn);
  EXPECT_EQ(table_->config().sysctls.drop_entry, 2u);
  EXPECT_FALSE(table_->config().sysctls.pmtu_disc);
  EXPECT_EQ(table_->config().sysctls.lblcr_expiration_s, 600u);
  EXPECT_EQ(table_->config().sysctls.am_droprate, 10u);  // untouched
  Result json = run("--sysctl --output=json");
  EXPECT_NE(json.out.find("\"drop_entry\": 2"), std::string::npos) << json.out;
  // lbd's SYN cookies (core/pipeline/syncookies.h) travel like the kernel's knobs.
  EXPECT_EQ(run("--sysctl syncookies=0 syncookies_threshold=100").rc, 0);
  EXPECT_EQ(table_->config().sysctls.syncookies, 0u);
  EXPECT_EQ(table_->config().sysctls.syncookies_threshold, 100u);
  EXPECT_EQ(run("--sysctl syncookies syncookies_threshold").out,
            "net.ipv4.vs.syncookies = 0\nnet.ipv4.vs.syncookies_threshold = 100\n");
  EXPECT_EQ(run("--sysctl syncookies=3").err, "illegal value `3' for sysctl syncookies (0..2)\n");
  EXPECT_EQ(run("--sysctl syncookies=1 syncookies_threshold=4096").rc, 0);

  // Refusals change nothing: lbd's range check (255 + lbd's reason), lbctl's own checks (2).
  const std::string before = run("--sysctl").out;
  Result bad = run("--sysctl drop_entry=1 secure_tcp=4");
  EXPECT_EQ(bad.rc, 255);
  EXPECT_EQ(bad.err,
            "Invalid operation.  Possibly wrong module version, address not unicast, ...\n"
            "lbd: sysctl secure_tcp 4 out of range 0..3\n");

  struct Case {
    const char* line;
    const char* err;
  };

  for (const Case& c : {
           Case{"--sysctl nosuch=1", "unknown sysctl `nosuch' (lbctl --sysctl lists them)\n"},
           Case{"--sysctl pmtu_disc=2", "illegal value `2' for sysctl pmtu_disc (0..1)\n"},
           Case{"--sysctl am_droprate=-1",
                "illegal value `-1' for sysctl am_droprate (0..4294967295)\n"},
           Case{"--sysctl lblc_expiration=0",
                "illegal value `0' for sysctl lblc_expiration (1..4294967295)\n"},
           Case{"--sysctl am_droprate am_droprate=5",
                "--sysctl: either read (NAME) or write (NAME=VALUE), not both at once\n"},
           Case{"--sysctl am_droprate=5 --output=json",
                "Illegal 'output' option with the 'sysctl' command when writing\n"},
       }) {
    Result r = run(c.line);
    EXPECT_EQ(r.rc, 2) << c.line;
    EXPECT_EQ(r.err, c.err) << c.line;
  }
  EXPECT_EQ(run("--sysctl").out, before);

  // The state file keeps them across a restart.
  startServer();
  EXPECT_EQ(run("--sysctl").out, before);
}

TEST_F(ControlPlaneTest, FwmarkRules) {
  EXPECT_EQ(run("--list-fwmark-rules").out, "");
  EXPECT_EQ(run("--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80:90").rc, 0);
  EXPECT_EQ(run("--add-fwmark-rule --dest=198.18.7.7 --mark=2 --proto UDP --dport 53").rc, 0);
  EXPECT_EQ(run("--add-fwmark-rule --mark 3 --dest 2001:2::1/64").rc, 0);
  EXPECT_EQ(run("--add-fwmark-rule --mark 4 --dest 0.0.0.0/0 --proto sctp").rc, 0);
  const std::string rules =
      "--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80:90\n"
      "--add-fwmark-rule --mark 2 --dest 198.18.7.7/32 --proto udp --dport 53\n"
      "--add-fwmark-rule --mark 3 --dest 2001:2::/64\n"
      "--add-fwmark-rule --mark 4 --dest 0.0.0.0/0 --proto sctp\n";
  EXPECT_EQ(run("--list-fwmark-rules").out, rules);
  ASSERT_EQ(table_->config().fwmark_rules.size(), 4u);
  EXPECT_EQ(table_->config().fwmark_rules[1].port_min, 53);
  EXPECT_EQ(table_->config().fwmark_rules[1].port_max, 53);
  EXPECT_EQ(table_->config().fwmark_rules[2].proto, L4Proto::kNone);

  // Errors change nothing.
  const std::string dup =
      "--add-fwmark-rule --mark 1 --dest 198.18.0.9/24 --proto tcp --dport 80:90";
  Result r = run(dup);
  EXPECT_EQ(r.rc, 255);
  EXPECT_EQ(r.err, "Fwmark rule already exists\n");
  r = run("--del-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp");
  EXPECT_EQ(r.rc, 255);
  EXPECT_EQ(r.err, "No such fwmark rule\n");

  struct Case {
    const char* line;
    const char* err;
    int rc;
  };

  for (const Case& c : {
           Case{"--add-fwmark-rule --dest 198.18.0.1",
                "You need to supply the 'mark' option for the 'add-fwmark-rule' command\n", 2},
           Case{"--add-fwmark-rule --mark 1",
                "You need to supply the 'dest' option for the 'add-fwmark-rule' command\n", 2},
           Case{"--add-fwmark-rule --mark 0 --dest 198.18.0.1",
                "invalid fwmark value `0' specified\n", 2},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1/33",
                "illegal destination `198.18.0.1/33' specified\n", 2},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1 --proto icmp",
                "illegal protocol `icmp' specified\n", 2},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1 --dport 90:80",
                "illegal port range `90:80' specified\n", 2},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1 --weight 3",
                "--weight: unknown option\n", 255},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1 -A", "multiple commands specified\n",
                2},
           Case{"--list-fwmark-rules --mark 1",
                "Illegal 'mark' option with the 'list-fwmark-rules' command\n", 2},
           Case{"--add-fwmark-rule --mark 1 --dest 198.18.0.1 --output=json",
                "Illegal 'output' option with the 'add-fwmark-rule' command\n", 2},
       }) {
    Result e = run(c.line);
    EXPECT_EQ(e.rc, c.rc) << c.line;
    EXPECT_EQ(e.err, c.err) << c.line;
  }
  EXPECT_EQ(run("--list-fwmark-rules").out, rules);

  // Delete matches the stored (masked) rule; -R replays listed rules; clear empties.
  EXPECT_EQ(run("--del-fwmark-rule --mark 3 --dest 2001:2::99/64").rc, 0);
  EXPECT_EQ(run("--del-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80:90").rc, 0);
  EXPECT_EQ(run("--list-fwmark-rules").out,
            "--add-fwmark-rule --mark 2 --dest 198.18.7.7/32 --proto udp --dport 53\n"
            "--add-fwmark-rule --mark 4 --dest 0.0.0.0/0 --proto sctp\n");
  EXPECT_EQ(run("--clear-fwmark-rules").rc, 0);
  EXPECT_EQ(run("--list-fwmark-rules").out, "");
  Result restore = run("-R", rules);
  EXPECT_EQ(restore.rc, 0) << restore.err;
  EXPECT_EQ(run("--list-fwmark-rules").out, rules);
  EXPECT_NE(run("--list-fwmark-rules --output=json").out.find("\"destination\": \"2001:2::/64\""),
            std::string::npos);
  startServer();  // kept in the state file
  EXPECT_EQ(run("--list-fwmark-rules").out, rules);
}

TEST_F(ControlPlaneTest, CorruptStateFileStopsTheStart) {
  ASSERT_EQ(run("-A -t 198.18.0.1:80 -s rr").rc, 0);
  plane_.reset();
  std::ofstream(dir_ + "/state") << "services { key { address { port: 80 } } } garbage";
  table_ = std::make_unique<ServiceTable>();
  ControlOptions o;
  o.listen = server_;
  o.state_file = dir_ + "/state";
  ControlPlane p(*table_, &hooks_, o);
  absl::Status st = p.loadInitialConfig();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(st.message()),
            "state file " + dir_ +
                "/state:1:50: Message type \"lbd.v1.Config\" has no field named "
                "\"garbage\". (corrupt; lbd refuses to start empty)");
  EXPECT_TRUE(table_->config().services.empty());
}

TEST(MetricsServerTest, ServesRenderedText) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> m =
      MetricsServer::start("127.0.0.1:0", [] { return std::string("lb_x 1\n"); });
  ASSERT_TRUE(m.ok()) << m.status();
  auto get = [&](const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons((*m)->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string resp;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
      resp.append(buf, static_cast<size_t>(n));
    close(fd);
    return resp;
  };
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 7\r\n"
            "\r\nlb_x 1\n");
  EXPECT_EQ(get("GET /nope HTTP/1.0\r\n\r\n").substr(0, 22), "HTTP/1.0 404 Not Found");
  (*m)->stop();
}

}  // namespace
}  // namespace lb::lbd
