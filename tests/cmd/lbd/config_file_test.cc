// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/config_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "core/service/service_table.h"
#include "tests/testlib/temp_dir.h"

namespace lb::lbd {
namespace {

using lb::testing::TempDir;
constexpr char kTmp[] = "lbd_config_test";

ConfigValidator validator(ServiceTable& t) {
  return [&t](const FullConfig& c) { return t.validate(c); };
}

TEST(ConfigFileTest, ParsesIpvsadmRules) {
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg = parseConfigText(
      "# lbd config\n"
      "-A -t 198.18.0.1:80 -s rr\n"
      "ipvsadm -a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 3\n"
      "\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m   # second server\n"
      "-A -u 198.18.0.1:53 -s sh -b sh-port -o\n"
      "--set 1000 0 30\n"
      "-A -f 7 -s wlc -p 60\n"
      "-E -f 7 -s rr -p 120\n",
      "test.conf", validator(table));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->services.size(), 3u);
  const ServiceWithDests& tcp = cfg->services[0];
  EXPECT_EQ(tcp.service.scheduler, "rr");
  ASSERT_EQ(tcp.dests.size(), 2u);
  EXPECT_EQ(tcp.dests[0].addr, *IpAddr::parse("198.18.1.2"));  // newest first
  EXPECT_EQ(tcp.dests[1].weight, 3u);
  EXPECT_EQ(tcp.dests[1].port, 8080);
  EXPECT_EQ(cfg->services[2].service.scheduler, "rr");
  EXPECT_EQ(cfg->services[2].service.timeout_s, 120u);
  EXPECT_EQ(cfg->timeouts.tcp, 1000u);
  EXPECT_EQ(cfg->timeouts.tcp_fin, 120u);  // 0 keeps the value
  EXPECT_EQ(cfg->timeouts.udp, 30u);
  EXPECT_TRUE(table.replace(*cfg).ok());
}

void expectLineError(const std::string& text, const std::string& message) {
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg = parseConfigText(text, "x.conf", validator(table));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), message);
}

TEST(ConfigFileTest, BadLineNamesFileAndLine) {
  expectLineError("-A -t 198.18.0.1:80\n-A -t 198.18.0.1\n",
                  "config x.conf:2: Zero port specified for non-persistent service");
  expectLineError("-A -t 198.18.0.1:80\n\n-A -t 198.18.0.1:80\n",
                  "config x.conf:3: service TCP 198.18.0.1:80 already exists");
  expectLineError("-a -t 198.18.0.1:80 -r 198.18.1.1\n",
                  "config x.conf:1: no such service: TCP 198.18.0.1:80");
  expectLineError(
      "-L -n\n",
      "config x.conf:1: only -A -E -D -C -a -e -d --set -P -Q --sysctl NAME=VALUE "
      "--add-fwmark-rule --del-fwmark-rule --clear-fwmark-rules are allowed in a config "
      "file");
  expectLineError("--sysctl expire_nodest_conn\n",
                  "config x.conf:1: --sysctl expire_nodest_conn: needs =VALUE");
  expectLineError("--sysctl drop_entry=9\n",
                  "config x.conf:1: sysctl drop_entry 9 out of range 0..3");
  expectLineError("--sysctl nosuch=1\n",
                  "config x.conf:1: unknown sysctl `nosuch' (lbctl --sysctl lists them)");
  expectLineError(
      "--add-fwmark-rule --mark 1 --dest 198.18.0.0/24\n"
      "--add-fwmark-rule --mark 1 --dest 198.18.0.9/24\n",
      "config x.conf:2: fwmark rule already exists: --add-fwmark-rule --mark 1 --dest "
      "198.18.0.0/24");
  expectLineError("--del-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto udp\n",
                  "config x.conf:1: no such fwmark rule: --add-fwmark-rule --mark 1 --dest "
                  "198.18.0.0/24 --proto udp");
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg =
      parseConfigText("-A -t 198.18.0.1:80 -s nosuchsched\n", "x.conf", validator(table));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cfg.status().message().substr(0, 15), "config x.conf:1");
}

TEST(ConfigFileTest, SysctlsAndFwmarkRules) {
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg = parseConfigText(
      "--sysctl expire_nodest_conn=1 net.ipv4.vs.am_droprate=20\n"
      "--sysctl=pmtu_disc=0\n"
      "--sysctl lblc_expiration=3600\n"
      "--add-fwmark-rule --mark 7 --dest 198.18.0.0/16 --proto tcp --dport 80:90\n"
      "--add-fwmark-rule --mark 8 --dest 2001:2::/64\n"
      "--add-fwmark-rule --mark 9 --dest 198.18.5.5 --proto udp --dport 53\n"
      "--del-fwmark-rule --mark 8 --dest 2001:2::1/64\n"  // the same prefix once masked
      "--add-fwmark-rule --mark 10 --dest 198.18.9.0/24\n"
      "-A -f 7 -s rr\n",
      "x.conf", validator(table));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  Sysctls want;
  want.expire_nodest_conn = true;
  want.am_droprate = 20;
  want.pmtu_disc = false;
  want.lblc_expiration_s = 3600;
  EXPECT_EQ(cfg->sysctls, want);
  ASSERT_EQ(cfg->fwmark_rules.size(), 3u);
  const FwmarkRule& r = cfg->fwmark_rules[0];
  EXPECT_EQ(r.dst, *IpAddr::parse("198.18.0.0"));
  EXPECT_EQ(r.prefix_len, 16);
  EXPECT_EQ(r.proto, L4Proto::kTcp);
  EXPECT_EQ(r.port_min, 80);
  EXPECT_EQ(r.port_max, 90);
  EXPECT_EQ(r.mark, 7u);
  EXPECT_EQ(cfg->fwmark_rules[1].mark, 9u);
  EXPECT_EQ(cfg->fwmark_rules[1].port_min, 53);
  EXPECT_EQ(cfg->fwmark_rules[1].port_max, 53);
  EXPECT_EQ(cfg->fwmark_rules[2].proto, L4Proto::kNone);  // any
  EXPECT_EQ(cfg->fwmark_rules[2].port_max, 65535);
  EXPECT_TRUE(table.replace(*cfg).ok());
  EXPECT_EQ(table.config().fwmark_rules, cfg->fwmark_rules);
  absl::StatusOr<FullConfig> cleared =
      parseConfigText("--add-fwmark-rule --mark 1 --dest 198.18.0.1\n--clear-fwmark-rules\n", "y",
                      validator(table));
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_TRUE(cleared->fwmark_rules.empty());
}

// lbctl -S's own lines read back by --config: --set, --sysctl, a full-NAT dest before its
// service's first local address, and the fwmark rules after --clear-fwmark-rules.
TEST(ConfigFileTest, ReadsWhatLbctlSaveWrites) {
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg = parseConfigText(
      "--set 1000 120 60\n"
      "--sysctl am_droprate=20 expire_nodest_conn=1\n"
      "-A -t 198.18.0.5:80 -s rr\n"
      "-a -t 198.18.0.5:80 -r 198.18.1.5:8080 --fullnat -w 2\n"
      "-P -t 198.18.0.5:80 -z 198.18.9.5\n"
      "--clear-fwmark-rules\n"
      "--add-fwmark-rule --mark 7 --dest 198.18.7.0/24 --proto tcp --dport 80:90\n",
      "x.conf", validator(table));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->timeouts.tcp, 1000u);
  EXPECT_EQ(cfg->timeouts.udp, 60u);
  EXPECT_EQ(cfg->sysctls.am_droprate, 20u);
  ASSERT_EQ(cfg->services.size(), 1u);
  EXPECT_EQ(cfg->services[0].dests.size(), 1u);
  EXPECT_EQ(cfg->services[0].service.local_addrs.size(), 1u);
  EXPECT_EQ(cfg->fwmark_rules.size(), 1u);
  EXPECT_TRUE(table.replace(*cfg).ok());
}

TEST(ConfigFileTest, CorruptStateFileIsRefusedNamingIt) {
  const TempDir tmp(kTmp);
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path();
  const std::string path = dir + "/state";
  // Missing: NotFound (a first start).
  EXPECT_EQ(readStateFile(path).status(),
            absl::NotFoundError("state file " + path + ": No such file or directory"));
  // Empty: a truncated file, never what writeStateFile leaves.
  std::ofstream(path) << "\n";
  EXPECT_EQ(readStateFile(path).status(),
            absl::InvalidArgumentError("state file " + path +
                                       ": empty (lbd never writes an empty state); remove it to "
                                       "start empty"));
  // Garbage: the line and column protobuf's text parser stopped at.
  std::ofstream(path) << "timeouts { tcp { seconds: 900 } }\nservices { this is not text format";
  EXPECT_EQ(readStateFile(path).status(),
            absl::InvalidArgumentError(
                "state file " + path +
                ":2:17: Message type \"lbd.v1.Service\" has no field named \"this\". (corrupt; lbd "
                "refuses to start empty)"));
  // Well-formed but invalid: the field at fault.
  std::ofstream(path) << "fwmark_rules { destination: \"198.18.0.0/99\" mark: 1 }";
  EXPECT_EQ(readStateFile(path).status().message(),
            "state file " + path + ": fwmark_rule.destination: bad prefix in '198.18.0.0/99'");
  // Not a file: refused (FailedPrecondition), not taken for a first start.
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  absl::Status st = readStateFile(path).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(st.message(), "state file " + path + ": not a file");
}

TEST(ConfigFileTest, StateFileRoundTripAndAtomicWrite) {
  const TempDir tmp(kTmp);
  ASSERT_FALSE(tmp.path().empty());
  const std::string dir = tmp.path();
  const std::string path = dir + "/state";
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg = parseConfigText(
      "-A -t 198.18.0.1:80 -s wrr -p 30 -M 255.255.0.0\n"
      "-a -t 198.18.0.1:80 -r 198.18.1.1 -i --tun-type gue --tun-port 6080 --tun-csum -w 2\n"
      "-A -t [2001:2::1]:443 -s mh -b mh-fallback\n"
      "-P -t [2001:2::1]:443 -z 2001:2::99\n"
      "-a -t [2001:2::1]:443 -r [2001:2::5]:8443 --fullnat\n",
      "x", validator(table));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(readStateFile(path).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(writeStateFile(path, *cfg).ok());

  struct stat st {};

  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // renamed away
  absl::StatusOr<FullConfig> back = readStateFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *cfg);
  std::ofstream(path) << "services { this is not text format";
  EXPECT_EQ(readStateFile(path).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lb::lbd
