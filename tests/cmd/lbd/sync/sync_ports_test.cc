// SPDX-License-Identifier: Apache-2.0
// sync_ports > 1 as the kernel's ip_vs_sync.c runs it: the master's entries spread over
// sync_ports sockets sending to mcast_port + id, each conn (and each template, by its own
// address) on the thread select_master_thread_id picks; the backup listens on all the ports
// and counts what arrives on each; the count is read when a daemon starts while none runs.
// On the loopback device of a private network namespace.
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cmd/lbd/sync/sync_backup_daemon.h"
#include "cmd/lbd/sync/sync_manager.h"
#include "cmd/lbd/sync/sync_master_daemon.h"
#include "cmd/lbd/sync/sync_worker_hook.h"
#include "core/proto/proto.h"
#include "core/sync/sync_master.h"
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

IpAddr ip(const std::string& s) {
  return *IpAddr::parse(s);
}

MonoTime now() {
  return MonoTime::fromSeconds(1000);
}

// The kernel's select_master_thread_id, written out again here (not lbd's function):
//   ((long) cp >> (1 + ilog2(sizeof(*cp)))) & ipvs->threads_mask
uint32_t kernelThreadId(const void* cp, size_t conn_size, uint32_t threads_mask) {
  int ilog2 = 0;
  for (size_t n = conn_size; n > 1; n >>= 1)
    ++ilog2;
  const long v = reinterpret_cast<long>(cp);
  return static_cast<uint32_t>((v >> (1 + ilog2)) & threads_mask);
}

TEST(SyncPorts, ThreadIdIsTheKernelsRule) {
  const uint32_t masks[] = {0, 1, 3, 7, 63};
  uint64_t x = 0x7f3a12345678ull;
  for (int i = 0; i < 10000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const auto addr = static_cast<uintptr_t>(x >> 16) & ~uintptr_t{7};
    const auto* cp = reinterpret_cast<const Conn*>(addr);  // only its value is used
    for (uint32_t m : masks)
      ASSERT_EQ(syncMasterThreadId(cp, m), kernelThreadId(cp, sizeof(Conn), m)) << addr;
  }
  // start_sync_thread: clamp(sync_ports, 1, IPVS_SYNC_PORTS_MAX = 64).
  EXPECT_EQ(syncThreadCount(0), 1u);
  EXPECT_EQ(syncThreadCount(1), 1u);
  EXPECT_EQ(syncThreadCount(4), 4u);
  EXPECT_EQ(syncThreadCount(64), 64u);
  EXPECT_EQ(syncThreadCount(128), 64u);
}

// One IPv4 socket of the test's own bound to 224.0.0.81:`port` on lo (beside the backup's:
// multicast goes to every socket bound there).
int listenOn(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  const int one = 1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0xe0000051);
  ip_mreqn m{};
  m.imr_multiaddr.s_addr = htonl(0xe0000051);
  m.imr_ifindex = static_cast<int>(if_nametoindex("lo"));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// What identifies an entry here: template or not, client address and port.
std::string key(const SyncConn& c) {
  return ((c.flags & kConnFTemplate) != 0 ? "T " : "C ") + c.caddr.toString() + ":" +
         std::to_string(c.cport);
}

// sync_ports = 4: 16 persistence templates with 3 conns each go through lbd's worker hook;
// each conn and each template lands on port 8848 + the kernel's thread id of its own address
// (checked on the wire by the test's own sockets), all four ports carry entries, and the
// backup, listening on the four, counts every entry, per port as the wire had them.
TEST(SyncPorts, MasterSpreadsOverFourPortsAndTheBackupHearsAll) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  constexpr uint32_t kThreads = 4;
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c.syncid = 7;
  c = withDefaults(c, 1472);
  std::atomic<uint64_t> applied{0};
  c.role = SyncDaemonRole::kBackup;
  auto backup = SyncBackupDaemon::start(
      c, 0, [&](const SyncConn&) { applied.fetch_add(1); }, kThreads);
  ASSERT_TRUE(backup.ok()) << backup.status();
  ASSERT_EQ((*backup)->threads(), kThreads);
  int mine[kThreads];
  for (uint32_t id = 0; id < kThreads; ++id) {
    mine[id] = listenOn(static_cast<uint16_t>(8848 + id));
    ASSERT_GE(mine[id], 0) << std::strerror(errno);
  }
  c.role = SyncDaemonRole::kMaster;
  auto master = SyncMasterDaemon::start(c, 1, 1, 0, kThreads);
  ASSERT_TRUE(master.ok()) << master.status();
  ASSERT_EQ((*master)->threads(), kThreads);
  const unsigned char one = 1;
  for (uint32_t id = 0; id < kThreads; ++id) {
    ASSERT_EQ(setsockopt((*master)->socketFd(id), IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)),
              0);
  }
  SyncSysctls sys;  // threshold 3, period 50
  SyncWorkerHook hook;
  hook.attach(&(*master)->queue(0), &sys);

  ConnTable table(ConnTable::Options{1024, 4, 1}, nullptr);
  std::map<std::string, uint32_t> port_of;  // entry -> expected thread id
  uint64_t expected_per_port[kThreads] = {};
  uint64_t total = 0;
  for (int ti = 0; ti < 16; ++ti) {
    ConnParams t;
    t.af = Af::kInet;
    t.daf = Af::kInet;
    t.proto = L4Proto::kTcp;
    t.flags = kConnFTemplate | kConnFInactive;
    t.caddr = ip("198.18.0." + std::to_string(ti + 1));
    t.vaddr = ip("198.18.100.1");
    t.vport = 80;
    t.daddr = ip("198.19.0.2");
    t.dport = 8080;
    t.timeout = seconds(360);
    ConnGuard tg = table.create(t, now());
    ASSERT_TRUE(static_cast<bool>(tg));
    tg->n_control.fetch_add(1, std::memory_order_relaxed);
    const uint32_t tindex = tg.index();
    const uint32_t tid = kernelThreadId(&*tg, sizeof(Conn), kThreads - 1);
    port_of["T " + t.caddr.toString() + ":0"] = tid;
    tg.release();
    for (int k = 0; k < 3; ++k) {
      ConnParams p = t;
      p.flags = 0;  // masquerading
      p.caddr = ip("198.18.1." + std::to_string(ti * 3 + k + 1));
      p.cport = static_cast<uint16_t>(40000 + ti * 3 + k);
      p.timeout = seconds(900);
      p.control = tindex;
      ConnGuard g = table.create(p, now());
      ASSERT_TRUE(static_cast<bool>(g));
      g->state = kTcpEstablished;
      g->old_state = kTcpEstablished;
      g->in_pkts = 3;  // sync_threshold 3 of sync_period 50: the conn is sent
      const uint32_t id = kernelThreadId(&*g, sizeof(Conn), kThreads - 1);
      port_of["C " + p.caddr.toString() + ":" + std::to_string(p.cport)] = id;
      ++expected_per_port[id];   // the conn
      ++expected_per_port[tid];  // its template (templates skip the packet test)
      total += 2;
      hook.onClientPacket(table, g, now());
      ASSERT_FALSE(static_cast<bool>(g));
    }
  }
  for (uint32_t id = 0; id < kThreads; ++id)
    ASSERT_GT(expected_per_port[id], 0u) << "the conns' addresses do not cover port " << id;
  hook.detach();
  master->reset();  // stopping sends the partly filled messages at once

  // The test's own sockets: which entries came in on which port.
  std::map<std::string, std::vector<uint32_t>> seen;  // entry -> ports it came in on
  uint64_t seen_total = 0;
  uint64_t messages_on[kThreads] = {};
  std::vector<uint8_t> buf(65536);
  for (int i = 0; i < 100 && seen_total < total; ++i) {  // up to 5 s
    pollfd fds[kThreads];
    for (uint32_t id = 0; id < kThreads; ++id)
      fds[id] = pollfd{mine[id], POLLIN, 0};
    if (poll(fds, kThreads, 50) <= 0)
      continue;
    for (uint32_t id = 0; id < kThreads; ++id) {
      if ((fds[id].revents & POLLIN) == 0)
        continue;
      const ssize_t n = recv(mine[id], buf.data(), buf.size(), MSG_DONTWAIT);
      ASSERT_GT(n, 0);
      ++messages_on[id];
      SyncDecodeCounters dc;
      decodeSyncMessage(
          absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)), 0,
          [&](const SyncConn& e) {
            seen[key(e)].push_back(id);
            ++seen_total;
          },
          dc);
    }
  }
  for (int fd : mine)
    close(fd);
  ASSERT_EQ(seen_total, total);
  ASSERT_EQ(seen.size(), port_of.size());
  for (const auto& [k, ports] : seen) {
    ASSERT_EQ(port_of.count(k), 1u) << k;
    for (uint32_t id : ports)
      EXPECT_EQ(id, port_of[k]) << k;
  }

  for (int i = 0; i < 100 && applied.load() < total; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(applied.load(), total);
  EXPECT_EQ((*backup)->counters().conns, total);
  for (uint32_t id = 0; id < kThreads; ++id) {
    EXPECT_EQ((*backup)->threadConns(id), expected_per_port[id]) << "port " << 8848 + id;
    EXPECT_GE((*backup)->threadMessages(id), 1u) << "port " << 8848 + id;
    EXPECT_EQ((*backup)->threadMessages(id), messages_on[id]) << "port " << 8848 + id;
  }
}

SyncDaemonConfig daemon(SyncDaemonRole role) {
  SyncDaemonConfig c;
  c.role = role;
  c.mcast_ifn = "lo";
  return c;
}

// start_sync_thread: sync_ports is read when a daemon starts while none runs; one started
// beside a running daemon takes its count; a change applies from the next first start.
TEST(SyncPorts, ReadWhenTheFirstDaemonStarts) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncManager m(SyncManager::Env{nullptr, nullptr, nullptr, 1, now, {}});
  EXPECT_EQ(m.threads(), 0u);
  SyncSysctls s;
  s.sync_ports = 4;
  m.setSysctls(s);
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kBackup)).ok());
  EXPECT_EQ(m.threads(), 4u);
  s.sync_ports = 2;
  m.setSysctls(s);
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kMaster)).ok());
  ASSERT_NE(m.master(), nullptr);
  EXPECT_EQ(m.master()->threads(), 4u);  // the backup's count
  ASSERT_TRUE(m.stop(SyncDaemonRole::kBackup).ok());
  EXPECT_EQ(m.threads(), 4u);  // the master still runs
  ASSERT_TRUE(m.stop(SyncDaemonRole::kMaster).ok());
  EXPECT_EQ(m.threads(), 0u);
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kMaster)).ok());
  EXPECT_EQ(m.master()->threads(), 2u);
  EXPECT_EQ(m.threads(), 2u);
  ASSERT_TRUE(m.stop(SyncDaemonRole::kMaster).ok());
  s.sync_ports = 128;  // a power of two the sysctl takes; a daemon runs at most 64
  m.setSysctls(s);
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kBackup)).ok());
  EXPECT_EQ(m.threads(), 64u);
}

// sync_ports = 1 (the default): one socket on 8848, as before.
TEST(SyncPorts, OnePortByDefault) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncManager m(SyncManager::Env{nullptr, nullptr, nullptr, 1, now, {}});
  ASSERT_TRUE(m.start(daemon(SyncDaemonRole::kMaster)).ok());
  EXPECT_EQ(m.master()->threads(), 1u);
  EXPECT_EQ(m.threads(), 1u);
  // Every entry goes to thread 0 (port 8848) whatever thread id is asked for.
  EXPECT_EQ(m.master()->queue(0).threadsMask(), 0u);
}

}  // namespace
}  // namespace lb::lbd::sync
