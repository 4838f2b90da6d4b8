// SPDX-License-Identifier: Apache-2.0
// The sync sysctls (lbd.v1 Sysctls fields 15-23, lbctl --sysctl sync_*): converted with the
// kernel's defaults and checks (sync_ports: a power of two), and applied to the
// daemons: a running master's workers take new send rules (sync_threshold / sync_period) from
// their next packet on, its rings the new sync_qlen_max; sync_version and sync_sock_size apply
// from a daemon's next start, as the kernel's.
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "cmd/lbd/control/api_convert.h"
#include "cmd/lbd/sync/sync_control.h"
#include "cmd/lbd/sync/sync_manager.h"
#include "core/proto/proto.h"
#include "tests/testlib/skip.h"

namespace lb::lbd::sync {
namespace {

namespace pb = ::lbd::v1;

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

MonoTime now() {
  return MonoTime::fromSeconds(1000);
}

SyncDaemonConfig daemon(SyncDaemonRole role) {
  SyncDaemonConfig c;
  c.role = role;
  c.mcast_ifn = "lo";
  return c;
}

uint64_t metric(const SyncManager& m, const std::string& name) {
  for (const auto& [n, v] : m.metrics()) {
    if (n == name)
      return v;
  }
  return UINT64_MAX;
}

// Polls (bounded) until the backup has counted `want` for `name`.
bool waitMetric(const SyncManager& m, const std::string& name, uint64_t want) {
  for (int i = 0; i < 100; ++i) {  // up to 5 s
    if (metric(m, name) == want)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return metric(m, name) == want;
}

TEST(SyncSysctls, UnsetFieldsAreTheKernelsDefaults) {
  absl::StatusOr<Sysctls> s = sysctlsFromProto(pb::Sysctls());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(syncSysctlsFrom(*s), SyncSysctls{});
  // What lbd reports (GetSysctls, the state file) reads back the same.
  absl::StatusOr<Sysctls> back = sysctlsFromProto(sysctlsToProto(*s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *s);
}

TEST(SyncSysctls, EveryFieldConverted) {
  pb::Sysctls p;
  p.set_sync_threshold(5);
  p.set_sync_period(100);
  p.mutable_sync_refresh_period()->set_seconds(30);
  p.set_sync_retries(2);
  p.set_sync_persist_mode(true);
  p.set_sync_version(0);
  p.set_sync_qlen_max(64);
  p.set_sync_sock_size(1 << 20);
  p.set_sync_ports(1);
  absl::StatusOr<Sysctls> s = sysctlsFromProto(p);
  ASSERT_TRUE(s.ok()) << s.status();
  const SyncSysctls y = syncSysctlsFrom(*s);
  EXPECT_EQ(y.sync_threshold, 5u);
  EXPECT_EQ(y.sync_period, 100u);
  EXPECT_EQ(y.sync_refresh_period_s, 30u);
  EXPECT_EQ(y.sync_retries, 2u);
  EXPECT_TRUE(y.sync_persist_mode);
  EXPECT_EQ(y.sync_version, 0u);
  EXPECT_EQ(y.sync_qlen_max, 64u);
  EXPECT_EQ(y.sync_sock_size, 1u << 20);
  EXPECT_EQ(y.sync_ports, 1u);
  absl::StatusOr<Sysctls> back = sysctlsFromProto(sysctlsToProto(*s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *s);
}

TEST(SyncSysctls, TheKernelsChecks) {
  auto refused = [](const pb::Sysctls& p) {
    absl::StatusOr<Sysctls> s = sysctlsFromProto(p);
    return s.ok() ? std::string("accepted") : std::string(s.status().message());
  };
  pb::Sysctls p;
  // proc_do_sync_ports: any power of two (a daemon clamps it to 64 when it starts).
  p.set_sync_ports(2);
  EXPECT_EQ(refused(p), "accepted");
  p.set_sync_ports(64);
  EXPECT_EQ(refused(p), "accepted");
  p.set_sync_ports(128);
  EXPECT_EQ(refused(p), "accepted");
  p.set_sync_ports(3);
  EXPECT_NE(refused(p).find("a power of two"), std::string::npos) << refused(p);
  p.set_sync_ports(0);
  EXPECT_NE(refused(p).find("a power of two"), std::string::npos) << refused(p);
  p.Clear();
  p.set_sync_threshold(50);  // proc_do_sync_threshold: threshold < period unless period is 0
  EXPECT_NE(refused(p).find("threshold must be below the period"), std::string::npos);
  p.set_sync_period(0);
  EXPECT_EQ(refused(p), "accepted");
  p.Clear();
  p.set_sync_retries(4);
  EXPECT_NE(refused(p).find("sync_retries 4"), std::string::npos) << refused(p);
  p.Clear();
  p.set_sync_version(2);
  EXPECT_NE(refused(p).find("sync_version 2"), std::string::npos) << refused(p);
  p.Clear();
  p.mutable_sync_refresh_period()->set_nanos(5);
  EXPECT_NE(refused(p).find("whole seconds"), std::string::npos) << refused(p);
}

TEST(SyncSysctls, QlenMaxLimitsAWorkersRing) {
  SyncWorkerQueue q;
  SyncConn c;
  c.af = Af::kInet;
  q.setLimit(2);
  EXPECT_TRUE(q.push(c));
  EXPECT_TRUE(q.push(c));
  EXPECT_FALSE(q.push(c));  // the kernel's sync_qlen_max drop
  EXPECT_EQ(q.full(), 1u);
  q.setLimit(0);  // the ring's own capacity
  EXPECT_TRUE(q.push(c));
  int n = 0;
  q.drain([&n](const SyncEvent&) { ++n; });
  EXPECT_EQ(n, 3);
}

// A running master: the workers' hooks take new send rules at once; the master's next start
// takes sync_version (the backup counts a version-0 message) and sync_sock_size (SO_SNDBUF).
TEST(SyncSysctls, AppliedToTheRunningDaemons) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncManager backup(SyncManager::Env{nullptr, nullptr, nullptr, 1, now, {}});
  ASSERT_TRUE(backup.start(daemon(SyncDaemonRole::kBackup)).ok());

  ConnTable table(ConnTable::Options{1024, 4, 1}, nullptr);
  SyncWorkerHook hook;
  SyncManager::Env menv{nullptr, nullptr, nullptr, 1, now, {}};
  menv.hooks = {&hook};
  SyncManager master(std::move(menv));
  auto startMaster = [&] {
    ASSERT_TRUE(master.start(daemon(SyncDaemonRole::kMaster)).ok());
    const unsigned char one = 1;
    ASSERT_EQ(
        setsockopt(master.master()->socketFd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)),
        0);
  };
  startMaster();
  ConnParams p;
  p.af = Af::kInet;
  p.daf = Af::kInet;
  p.proto = L4Proto::kTcp;
  p.caddr = *IpAddr::parse("198.18.0.7");
  p.cport = 40001;
  p.vaddr = *IpAddr::parse("198.18.100.1");
  p.vport = 80;
  p.daddr = *IpAddr::parse("198.19.0.2");
  p.dport = 8080;
  p.timeout = seconds(900);
  {
    ConnGuard g = table.create(p, now());
    ASSERT_TRUE(static_cast<bool>(g));
    g->state = kTcpEstablished;
    g->old_state = kTcpEstablished;
  }
  const ConnTuple t{Af::kInet, L4Proto::kTcp, p.caddr, p.vaddr, p.cport, p.vport};
  // One client packet with the conn's in_pkts at `pkts` through the worker's hook.
  auto packet = [&](uint32_t pkts) {
    ConnGuard g = table.findIn(t);
    ASSERT_TRUE(static_cast<bool>(g));
    g->in_pkts = pkts;
    hook.onClientPacket(table, g, now());
  };
  // The kernel's defaults, 3 of 50: of the 3rd, 5th and 15th packets only the 3rd is sent.
  packet(3);
  packet(5);
  packet(15);
  // sync_threshold 5 of period 10, to the running master: the 5th and 15th, not the 3rd.
  SyncSysctls s;
  s.sync_threshold = 5;
  s.sync_period = 10;
  master.setSysctls(s);
  packet(3);
  packet(5);
  packet(15);
  // sync_period 0: only the threshold packet itself.
  s.sync_period = 0;
  s.sync_threshold = 7;
  master.setSysctls(s);
  packet(17);
  packet(7);
  // 1 + 2 + 1 entries (with the defaults throughout it would be 2). stop() sends what is queued.
  ASSERT_TRUE(master.stop(SyncDaemonRole::kMaster).ok());
  EXPECT_TRUE(waitMetric(backup, "lb_sync_backup_conns_total", 4))
      << metric(backup, "lb_sync_backup_conns_total");
  EXPECT_EQ(metric(backup, "lb_sync_backup_messages_v0_total"), 0u);

  // sync_version and sync_sock_size: a running master keeps its own; the next start takes them.
  startMaster();
  int size = 0;
  socklen_t len = sizeof(size);
  ASSERT_EQ(getsockopt(master.master()->socketFd(), SOL_SOCKET, SO_SNDBUF, &size, &len), 0);
  const int default_size = size;
  ASSERT_NE(default_size, 2 * 65536);
  s.sync_version = 0;
  s.sync_sock_size = 65536;
  master.setSysctls(s);
  ASSERT_EQ(getsockopt(master.master()->socketFd(), SOL_SOCKET, SO_SNDBUF, &size, &len), 0);
  EXPECT_EQ(size, default_size);
  ASSERT_TRUE(master.stop(SyncDaemonRole::kMaster).ok());
  startMaster();
  ASSERT_EQ(getsockopt(master.master()->socketFd(), SOL_SOCKET, SO_SNDBUF, &size, &len), 0);
  EXPECT_EQ(size, 2 * 65536);  // the kernel doubles SO_SNDBUF
  packet(7);
  ASSERT_TRUE(master.stop(SyncDaemonRole::kMaster).ok());
  EXPECT_TRUE(waitMetric(backup, "lb_sync_backup_messages_v0_total", 1));
  EXPECT_TRUE(waitMetric(backup, "lb_sync_backup_conns_total", 5));
}

}  // namespace
}  // namespace lb::lbd::sync
