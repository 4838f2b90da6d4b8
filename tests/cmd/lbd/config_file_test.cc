// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/config_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "core/service/service_table.h"

namespace lb::lbd {
namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/lbd_config_test.XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d;
}

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
  expectLineError("-L -n\n",
                  "config x.conf:1: only -A -E -D -C -a -e -d --set -P -Q are allowed in a config "
                  "file");
  ServiceTable table;
  absl::StatusOr<FullConfig> cfg =
      parseConfigText("-A -t 198.18.0.1:80 -s nosuchsched\n", "x.conf", validator(table));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cfg.status().message().substr(0, 15), "config x.conf:1");
}

TEST(ConfigFileTest, StateFileRoundTripAndAtomicWrite) {
  const std::string dir = tempDir();
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
