// SPDX-License-Identifier: Apache-2.0
// SyncManager on the loopback device of a private network namespace: ipvsadm's start/stop
// rules and errors, the effective values ipvsadm -L --daemon shows, and an entry a worker
// queues on the master entering the backup's conn table bound to its real server.
#include "cmd/lbd/sync/sync_manager.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/pipeline/conn_events.h"
#include "core/proto/proto.h"
#include "core/service/service_table.h"
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

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

MonoTime now() {
  return MonoTime::fromSeconds(1000);
}

SyncDaemonConfig daemon(SyncDaemonRole role, const char* ifn = "lo") {
  SyncDaemonConfig c;
  c.role = role;
  c.mcast_ifn = ifn;
  return c;
}

TEST(SyncManager, StartStopAndListAsIpvsadm) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncManager m(SyncManager::Env{nullptr, nullptr, nullptr, 2, now, {}});
  EXPECT_EQ(m.start(daemon(SyncDaemonRole::kMaster, "nosuch0")).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kMaster)).ok());
  absl::Status again = m.start(daemon(SyncDaemonRole::kMaster));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "Daemon has already run");
  SyncDaemonConfig b = daemon(SyncDaemonRole::kBackup);
  b.syncid = 3;
  ASSERT_TRUE(m.start(b).ok());
  ASSERT_EQ(m.list().size(), 2u);
  // lo's MTU is 65536: the master caps it at 1500, the backup clamps it to 65535 (less 28).
  EXPECT_EQ(formatDaemonLine(m.list()[0]),
            "master sync daemon (mcast=lo, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, "
            "ttl=1)\n");
  EXPECT_EQ(formatDaemonLine(m.list()[1]),
            "backup sync daemon (mcast=lo, syncid=3, maxlen=65507, group=224.0.0.81, "
            "port=8848, ttl=1)\n");
  EXPECT_EQ(m.configured()[1], b);  // as given, for the state file
  EXPECT_NE(m.master(), nullptr);
  ASSERT_TRUE(m.stop(SyncDaemonRole::kMaster).ok());
  EXPECT_EQ(m.master(), nullptr);
  absl::Status none = m.stop(SyncDaemonRole::kMaster);
  EXPECT_EQ(none.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(none.message(), "No daemon is running");
  ASSERT_EQ(m.list().size(), 1u);
  EXPECT_EQ(m.list()[0].role, SyncDaemonRole::kBackup);
}

TEST(SyncManager, MasterEntryEntersTheBackupsTable) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  ServiceTable services;
  PipelineConnEvents& events = connEventsFor(services.runtime());
  ConnTable table(ConnTable::Options{1024, 4, 1}, &events);
  events.attachTable(&table);
  ServiceConfig svc;
  svc.key.af = Af::kInet;
  svc.key.proto = L4Proto::kTcp;
  svc.key.vaddr = ip("198.18.100.1");
  svc.key.vport = 80;
  svc.scheduler = "rr";
  ASSERT_TRUE(services.addService(svc).ok());
  DestConfig d;
  d.addr = ip("198.19.0.2");
  d.port = 8080;
  d.fwd = FwdMethod::kMasq;
  ASSERT_TRUE(services.addDest(svc.key, d).ok());

  SyncManager backup(SyncManager::Env{
      &table, [&services] { return services.snapshot(); }, &services.runtime(), 1, now, {}});
  ASSERT_TRUE(backup.start(daemon(SyncDaemonRole::kBackup)).ok());
  SyncManager master(SyncManager::Env{nullptr, nullptr, nullptr, 1, now, {}});
  ASSERT_TRUE(master.start(daemon(SyncDaemonRole::kMaster)).ok());
  const unsigned char one = 1;
  ASSERT_EQ(
      setsockopt(master.master()->socketFd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)), 0);
  SyncConn s;
  s.af = Af::kInet;
  s.protocol = IPPROTO_TCP;
  s.state = kTcpEstablished;
  s.caddr = ip("198.18.0.1");
  s.cport = 40000;
  s.vaddr = ip("198.18.100.1");
  s.vport = 80;
  s.daddr = ip("198.19.0.2");
  s.dport = 8080;
  s.timeout_s = 900;
  ASSERT_TRUE(master.master()->queue(0).push(s));          // what a worker's syncConnChain emits
  ASSERT_TRUE(master.stop(SyncDaemonRole::kMaster).ok());  // sends the partly filled message
  const ConnTuple t{Af::kInet, L4Proto::kTcp, s.caddr, s.vaddr, s.cport, s.vport};
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {  // up to 5 s
    found = static_cast<bool>(table.findIn(t));
    if (!found)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(found);
  ConnGuard g = table.findIn(t);
  EXPECT_NE(g->dest, kNoDest);
  EXPECT_EQ(g->state, kTcpEstablished);
  DestId id = *services.destId(svc.key, d.addr, 8080);
  EXPECT_EQ(services.runtime().destCounters()[id].active_conns.load(), 1u);
  bool created = false;
  for (const auto& [name, v] : backup.metrics()) {
    if (name == "lb_sync_backup_created_total")
      created = v == 1;
  }
  EXPECT_TRUE(created);
}

// The worker side: a conn's client packet through the worker's hook (what the pipeline calls
// after in_pkts++) reaches the backup's table while a master runs; once the master stops, the
// hook is detached, releases the conn and queues nothing.
TEST(SyncManager, WorkerHookFeedsTheMaster) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  ServiceTable services;
  PipelineConnEvents& events = connEventsFor(services.runtime());
  ConnTable backup_table(ConnTable::Options{1024, 4, 1}, &events);
  events.attachTable(&backup_table);
  ServiceConfig svc;
  svc.key.af = Af::kInet;
  svc.key.proto = L4Proto::kTcp;
  svc.key.vaddr = ip("198.18.100.1");
  svc.key.vport = 80;
  svc.scheduler = "rr";
  ASSERT_TRUE(services.addService(svc).ok());
  DestConfig d;
  d.addr = ip("198.19.0.2");
  d.port = 8080;
  d.fwd = FwdMethod::kMasq;
  ASSERT_TRUE(services.addDest(svc.key, d).ok());
  SyncManager backup(SyncManager::Env{
      &backup_table, [&services] { return services.snapshot(); }, &services.runtime(), 1, now, {}});
  ASSERT_TRUE(backup.start(daemon(SyncDaemonRole::kBackup)).ok());

  ConnTable master_table(ConnTable::Options{1024, 4, 1}, nullptr);
  SyncWorkerHook hook;
  SyncManager::Env menv{nullptr, nullptr, nullptr, 1, now, {}};
  menv.hooks = {&hook};
  SyncManager master(std::move(menv));
  ASSERT_TRUE(master.start(daemon(SyncDaemonRole::kMaster)).ok());
  const unsigned char one = 1;
  ASSERT_EQ(
      setsockopt(master.master()->socketFd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)), 0);
  ConnParams p;
  p.af = Af::kInet;
  p.daf = Af::kInet;
  p.proto = L4Proto::kTcp;
  p.flags = 0;  // masquerading
  p.caddr = ip("198.18.0.7");
  p.cport = 40001;
  p.vaddr = ip("198.18.100.1");
  p.vport = 80;
  p.daddr = ip("198.19.0.2");
  p.dport = 8080;
  p.timeout = seconds(900);
  {
    ConnGuard g = master_table.create(p, now());
    ASSERT_TRUE(static_cast<bool>(g));
    g->state = kTcpEstablished;
    g->in_pkts = 3;  // sync_threshold 3 of sync_period 50
    hook.onClientPacket(master_table, g, now());
    EXPECT_FALSE(static_cast<bool>(g));  // released by the hook
  }
  ASSERT_TRUE(master.stop(SyncDaemonRole::kMaster).ok());  // sends the partly filled message
  const ConnTuple t{Af::kInet, L4Proto::kTcp, p.caddr, p.vaddr, p.cport, p.vport};
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {  // up to 5 s
    found = static_cast<bool>(backup_table.findIn(t));
    if (!found)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(found);
  ConnGuard g = backup_table.findIn(t);
  EXPECT_EQ(g->state, kTcpEstablished);
  EXPECT_NE(g->dest, kNoDest);
  g.release();

  // Detached: the hook releases the conn and nothing is queued anywhere.
  ConnGuard g2 = master_table.findIn(t);
  ASSERT_TRUE(static_cast<bool>(g2));
  g2->in_pkts = 53;
  hook.onClientPacket(master_table, g2, now());
  EXPECT_FALSE(static_cast<bool>(g2));
}

}  // namespace
}  // namespace lb::lbd::sync
