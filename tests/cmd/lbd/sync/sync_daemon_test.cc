// SPDX-License-Identifier: Apache-2.0
// A master and a backup daemon on the loopback device of a private network namespace: what a
// worker queues arrives at the backup's apply callback, field for field, in one message.
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "cmd/lbd/sync/sync_backup_daemon.h"
#include "cmd/lbd/sync/sync_master_daemon.h"
#include "tests/cmd/lbd/sync/loopback_mcast6.h"
#include "tests/testlib/skip.h"

namespace lb::lbd::sync {
namespace {

bool privateLoopback() {
  if (unshare(CLONE_NEWNET) != 0)
    return false;
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST;
  const bool ok = s >= 0 && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  if (s >= 0)
    close(s);
  return ok;
}

SyncConn conn(uint16_t cport) {
  SyncConn c;
  c.af = Af::kInet;
  c.protocol = IPPROTO_TCP;
  c.flags = 0x0000;  // masquerading
  c.state = 1;       // ESTABLISHED
  c.cport = cport;
  c.vport = 80;
  c.dport = 8080;
  c.timeout_s = 900;
  c.caddr = *IpAddr::parse("198.18.0.10");
  c.vaddr = *IpAddr::parse("198.18.1.100");
  c.daddr = *IpAddr::parse("198.18.2.11");
  return c;
}

TEST(SyncDaemons, WorkerQueuesReachTheBackup) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c.syncid = 5;
  c = withDefaults(c, 1472);
  std::mutex mu;
  std::vector<SyncConn> got;
  c.role = SyncDaemonRole::kBackup;
  auto backup = SyncBackupDaemon::start(c, 0, [&](const SyncConn& sc) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(sc);
  });
  ASSERT_TRUE(backup.ok()) << backup.status();
  c.role = SyncDaemonRole::kMaster;
  auto master = SyncMasterDaemon::start(c, 2, 1, 0);
  ASSERT_TRUE(master.ok()) << master.status();
  const unsigned char one = 1;
  ASSERT_EQ(setsockopt((*master)->socketFd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)), 0);
  ASSERT_TRUE((*master)->queue(0).push(conn(40000)));
  ASSERT_TRUE((*master)->queue(1).push(conn(40001)));
  master->reset();                 // stopping sends the partly filled message at once
  for (int i = 0; i < 100; ++i) {  // up to 5 s
    {
      std::lock_guard<std::mutex> lock(mu);
      if (got.size() >= 2)
        break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].cport, 40000);
  EXPECT_EQ(got[1].cport, 40001);
  EXPECT_EQ(got[0].caddr, conn(0).caddr);
  EXPECT_EQ(got[0].daddr, conn(0).daddr);
  EXPECT_EQ(got[0].dport, 8080);
  EXPECT_EQ(got[0].timeout_s, 900u);
  EXPECT_EQ(got[0].state, 1);
  EXPECT_EQ((*backup)->counters().messages, 1u);
}

TEST(SyncDaemons, BackupFiltersAnotherSyncid) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c = withDefaults(c, 1472);
  std::atomic<int> applied{0};
  c.role = SyncDaemonRole::kBackup;
  c.syncid = 6;
  auto backup = SyncBackupDaemon::start(c, 0, [&](const SyncConn&) { applied.fetch_add(1); });
  ASSERT_TRUE(backup.ok()) << backup.status();
  c.role = SyncDaemonRole::kMaster;
  c.syncid = 5;
  auto master = SyncMasterDaemon::start(c, 1, 1, 0);
  ASSERT_TRUE(master.ok()) << master.status();
  const unsigned char one = 1;
  ASSERT_EQ(setsockopt((*master)->socketFd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)), 0);
  ASSERT_TRUE((*master)->queue(0).push(conn(40000)));
  master->reset();
  for (int i = 0; i < 100 && (*backup)->counters().messages == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ((*backup)->counters().messages, 1u);
  EXPECT_EQ((*backup)->counters().drop(SyncDropReason::kSyncId), 1u);
  EXPECT_EQ(applied.load(), 0);
}

// An IPv6 group (the daemons' sockets follow the group's family) on lo, the master with its own
// options (multicast loop off: lo carries IPv6 multicast back by itself): the message reaches
// the backup, which counts it, and its IPv6 entry arrives field for field.
TEST(SyncDaemons, Ipv6GroupReachesTheBackup) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  ASSERT_TRUE(addLocalMulticastRouteV6OnLo()) << std::strerror(errno);
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c.syncid = 9;
  c.mcast_group = *IpAddr::parse("ff02::81");
  c = withDefaults(c, 1452);  // the master's maxlen for an IPv6 group (1500 - 40 - 8)
  std::mutex mu;
  std::vector<SyncConn> got;
  c.role = SyncDaemonRole::kBackup;
  auto backup = SyncBackupDaemon::start(c, 0, [&](const SyncConn& sc) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(sc);
  });
  ASSERT_TRUE(backup.ok()) << backup.status();
  c.role = SyncDaemonRole::kMaster;
  auto master = SyncMasterDaemon::start(c, 1, 1, 0);
  ASSERT_TRUE(master.ok()) << master.status();
  SyncConn v6 = conn(40002);
  v6.af = Af::kInet6;
  v6.caddr = *IpAddr::parse("2001:2::10");
  v6.vaddr = *IpAddr::parse("2001:2:1::100");
  v6.daddr = *IpAddr::parse("2001:2:2::11");
  ASSERT_TRUE((*master)->queue(0).push(conn(40001)));
  ASSERT_TRUE((*master)->queue(0).push(v6));
  master->reset();  // stopping sends the partly filled message at once
  for (int i = 0; i < 100 && (*backup)->counters().messages == 0; ++i)  // up to 5 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const SyncDecodeCounters counted = (*backup)->counters();
  EXPECT_EQ(counted.messages, 1u);
  EXPECT_EQ(counted.conns, 2u);
  EXPECT_EQ(counted.drop(SyncDropReason::kSyncId), 0u);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].cport, 40001);
  EXPECT_EQ(got[0].caddr, conn(0).caddr);
  EXPECT_EQ(got[1].cport, 40002);
  EXPECT_EQ(got[1].af, Af::kInet6);
  EXPECT_EQ(got[1].caddr, v6.caddr);
  EXPECT_EQ(got[1].vaddr, v6.vaddr);
  EXPECT_EQ(got[1].daddr, v6.daddr);
  EXPECT_EQ(got[1].dport, 8080);
  EXPECT_EQ(got[1].timeout_s, 900u);
}

}  // namespace
}  // namespace lb::lbd::sync
