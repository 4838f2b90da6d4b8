// SPDX-License-Identifier: Apache-2.0
// The master's and the backup's sockets, on the loopback device of a private network
// namespace (unshare(CLONE_NEWNET): each gtest case runs in its own process under ctest).
#include "cmd/lbd/sync/sync_socket.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "tests/cmd/lbd/sync/loopback_mcast6.h"
#include "tests/testlib/skip.h"

namespace lb::lbd::sync {
namespace {

// A private network namespace whose lo is up and multicast-capable. False without the
// capability to make one.
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

void roundTrip(const char* group) {
  if (!privateLoopback())  // a unit test runs anywhere: without the capability it skips
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c.mcast_group = *IpAddr::parse(group);
  if (c.mcast_group.isV6()) {
    ASSERT_TRUE(addLocalMulticastRouteV6OnLo()) << std::strerror(errno);
  }
  c = withDefaults(c, 1472);
  absl::StatusOr<uint32_t> mtu = SyncSocket::interfaceMtu("lo");
  ASSERT_TRUE(mtu.ok()) << mtu.status();
  EXPECT_GT(*mtu, 1500u);
  c.role = SyncDaemonRole::kBackup;
  absl::StatusOr<SyncSocket> backup = SyncSocket::openBackup(c, 1 << 20);
  ASSERT_TRUE(backup.ok()) << backup.status();
  c.role = SyncDaemonRole::kMaster;
  absl::StatusOr<SyncSocket> master = SyncSocket::openMaster(c, 1 << 20);
  ASSERT_TRUE(master.ok()) << master.status();
  // The master turns multicast loop off (the kernel's set_mcast_loop(sk, 0)); on one host the
  // IPv4 test needs it on to hear itself. IPv6 multicast on lo goes out through lo and back in
  // (loopback_mcast6.h): the master is used as it is.
  const unsigned char one8 = 1;
  if (!c.mcast_group.isV6()) {
    ASSERT_EQ(setsockopt(master->fd(), IPPROTO_IP, IP_MULTICAST_LOOP, &one8, sizeof(one8)), 0);
  }
  const std::vector<uint8_t> msg = {0, 7, 0, 8, 0, 1, 0, 0};
  ASSERT_EQ(master->send(msg), static_cast<ssize_t>(msg.size())) << std::strerror(errno);
  std::vector<uint8_t> buf(2048);
  const ssize_t n = backup->receive(absl::MakeSpan(buf), 5000);
  ASSERT_EQ(n, static_cast<ssize_t>(msg.size())) << std::strerror(errno);
  buf.resize(static_cast<size_t>(n));
  EXPECT_EQ(buf, msg);
  EXPECT_EQ(backup->receive(absl::MakeSpan(buf), 0), 0);  // nothing more
}

TEST(SyncSocket, MulticastRoundTripV4) {
  roundTrip("224.0.0.81");
}

TEST(SyncSocket, MulticastRoundTripV6) {
  roundTrip("ff02::81");
}

TEST(SyncSocket, MulticastRoundTripV6SiteScope) {
  roundTrip("ff05::51");
}

// The IPv6 master's options, as make_send_sock sets them: loop off, hops = TTL, the
// interface, path MTU discovery off; an IPv6 socket.
TEST(SyncSocket, MasterOptionsV6) {
  if (!privateLoopback())
    LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)");
  SyncDaemonConfig c;
  c.mcast_ifn = "lo";
  c.mcast_group = *IpAddr::parse("ff02::81");
  c.mcast_ttl = 3;
  c = withDefaults(c, 1452);
  absl::StatusOr<SyncSocket> master = SyncSocket::openMaster(c, 0);
  ASSERT_TRUE(master.ok()) << master.status();
  auto get = [&](int level, int name) {
    int v = -1;
    socklen_t len = sizeof(v);
    EXPECT_EQ(getsockopt(master->fd(), level, name, &v, &len), 0) << std::strerror(errno);
    return v;
  };
  EXPECT_EQ(get(SOL_SOCKET, SO_DOMAIN), AF_INET6);
  EXPECT_EQ(get(IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);
  EXPECT_EQ(get(IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 3);
  EXPECT_EQ(get(IPPROTO_IPV6, IPV6_MULTICAST_IF), static_cast<int>(if_nametoindex("lo")));
  EXPECT_EQ(get(IPPROTO_IPV6, IPV6_MTU_DISCOVER), IPV6_PMTUDISC_DONT);
}

TEST(SyncSocket, NoSuchInterface) {
  SyncDaemonConfig c;
  c.mcast_ifn = "nosuch0";
  c = withDefaults(c, 1472);
  absl::StatusOr<SyncSocket> s = SyncSocket::openMaster(c, 0);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("nosuch0"), std::string::npos);
  EXPECT_EQ(SyncSocket::interfaceMtu("nosuch0").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lb::lbd::sync
