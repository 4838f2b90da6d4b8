// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_daemon_config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <optional>
#include <string>

namespace lb::lbd::sync {
namespace {

SyncDaemonConfig master(const std::string& ifn = "eth0") {
  SyncDaemonConfig c;
  c.role = SyncDaemonRole::kMaster;
  c.mcast_ifn = ifn;
  return c;
}

TEST(SyncDaemonConfig, ListLineAsIpvsadmWithTheKernelsDefaults) {
  // ipvsadm -L --daemon against the kernel, after `ipvsadm --start-daemon master`
  // (the inventory's rendered example).
  EXPECT_EQ(formatDaemonLine(withDefaults(master(), 1472)),
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, "
            "port=8848, ttl=1)\n");
  SyncDaemonConfig b = master("br0");
  b.role = SyncDaemonRole::kBackup;
  b.syncid = 7;
  b.mcast_group = *IpAddr::parse("ff02::51");
  b.mcast_port = 9000;
  b.mcast_ttl = 3;
  EXPECT_EQ(formatDaemonLine(withDefaults(b, 1452)),
            "backup sync daemon (mcast=br0, syncid=7, maxlen=1452, group=ff02::51, port=9000, "
            "ttl=3)\n");
}

// ipvsadm prints the group with inet_ntop(mcast_af, ...) (list_daemon): an IPv6 group's text
// is inet_ntop's, whatever form it was given in.
TEST(SyncDaemonConfig, Ipv6GroupPrintedAsInetNtop) {
  for (const char* given :
       {"ff02::51", "FF02:0:0:0:0:0:0:81", "ff05::1:3", "ff0e:0:0:0:0:0:0:101", "ff02:0:0:1::1",
        "ff15:0:0:0:1:0:0:1", "ff02:1:0:0:1:0:0:1", "ff3e:30:2001:db8::1234"}) {
    SCOPED_TRACE(given);
    in6_addr a{};
    ASSERT_EQ(inet_pton(AF_INET6, given, &a), 1);
    char ntop[INET6_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET6, &a, ntop, sizeof(ntop)), nullptr);
    SyncDaemonConfig c = master();
    std::optional<IpAddr> g = IpAddr::parse(given);
    ASSERT_TRUE(g.has_value());
    c.mcast_group = *g;
    EXPECT_EQ(formatDaemonLine(withDefaults(c, 1452)),
              std::string("master sync daemon (mcast=eth0, syncid=0, maxlen=1452, group=") + ntop +
                  ", port=8848, ttl=1)\n");
  }
}

TEST(SyncDaemonConfig, ZeroFieldsAreLeftOutAsListDaemonDoes) {
  EXPECT_EQ(formatDaemonLine(master()), "master sync daemon (mcast=eth0, syncid=0)\n");
}

TEST(SyncDaemonConfig, StartLineHasOnlyTheGivenOptions) {
  EXPECT_EQ(startDaemonLine(master()), "--start-daemon master --mcast-interface eth0");
  SyncDaemonConfig c = master("veth1");
  c.role = SyncDaemonRole::kBackup;
  c.syncid = 9;
  c.sync_maxlen = 1200;
  c.mcast_group = *IpAddr::parse("239.1.2.3");
  c.mcast_port = 8849;
  c.mcast_ttl = 2;
  EXPECT_EQ(startDaemonLine(c),
            "--start-daemon backup --mcast-interface veth1 --syncid 9 --sync-maxlen 1200 "
            "--mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 2");
}

TEST(SyncDaemonConfig, Checks) {
  EXPECT_TRUE(validateSyncDaemonConfig(master()).ok());
  EXPECT_EQ(validateSyncDaemonConfig(master("")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(validateSyncDaemonConfig(master("a-very-long-ifname")).code(),
            absl::StatusCode::kInvalidArgument);
  SyncDaemonConfig c = master();
  c.syncid = 256;
  EXPECT_EQ(validateSyncDaemonConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c = master();
  c.sync_maxlen = 65508;
  EXPECT_EQ(validateSyncDaemonConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c.sync_maxlen = 65507;
  EXPECT_TRUE(validateSyncDaemonConfig(c).ok());
  c = master();
  c.mcast_group = *IpAddr::parse("198.18.0.1");
  absl::Status s = validateSyncDaemonConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("198.18.0.1"), std::string::npos) << s;
  c.mcast_group = *IpAddr::parse("2001:2::1");
  EXPECT_EQ(validateSyncDaemonConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c.mcast_group = *IpAddr::parse("ff05::51");
  EXPECT_TRUE(validateSyncDaemonConfig(c).ok());
}

TEST(SyncDaemonSet, OneMasterAndOneBackupAtOnceWithTheKernelsErrors) {
  SyncDaemonSet set;
  EXPECT_TRUE(set.list().empty());
  SyncDaemonConfig b = master("eth1");
  b.role = SyncDaemonRole::kBackup;
  ASSERT_TRUE(set.start(b).ok());
  ASSERT_TRUE(set.start(master()).ok());
  absl::Status again = set.start(master("eth2"));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "Daemon has already run");
  ASSERT_EQ(set.list().size(), 2u);
  EXPECT_EQ(set.list()[0].role, SyncDaemonRole::kMaster);  // master first, as the kernel dumps
  EXPECT_EQ(set.list()[1].mcast_ifn, "eth1");
  ASSERT_TRUE(set.stop(SyncDaemonRole::kMaster).ok());
  absl::Status none = set.stop(SyncDaemonRole::kMaster);
  EXPECT_EQ(none.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(none.message(), "No daemon is running");
  ASSERT_EQ(set.list().size(), 1u);
  EXPECT_EQ(set.list()[0].role, SyncDaemonRole::kBackup);
  SyncDaemonConfig bad = master();
  bad.syncid = 300;
  EXPECT_EQ(set.start(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(set.get(SyncDaemonRole::kMaster).has_value());
}

TEST(SyncDaemonConfig, RoleNames) {
  EXPECT_EQ(parseSyncDaemonRole("master"), SyncDaemonRole::kMaster);
  EXPECT_EQ(parseSyncDaemonRole("backup"), SyncDaemonRole::kBackup);
  EXPECT_EQ(parseSyncDaemonRole("both"), std::nullopt);
  EXPECT_STREQ(syncDaemonRoleName(SyncDaemonRole::kBackup), "backup");
}

}  // namespace
}  // namespace lb::lbd::sync
