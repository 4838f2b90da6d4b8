// SPDX-License-Identifier: Apache-2.0
// TunDevice's qdisc: a created device has a noqueue root qdisc (TunOptions::noqueue), or the
// kernel's default (mq) without it, and a datagram the kernel sends through the noqueue device
// reaches a queue's fd. Each case runs on a thread of its own in a fresh network namespace.
// Needs root (unshare, TUN); label integration.
#include "io/tun/tun_device.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "core/packet/checksum.h"
#include "io/raw/decap.h"
#include "io/tun/udp_tunnel_tap.h"
#include "tests/testlib/skip.h"

namespace lb::io {
namespace {

// Runs `body` on a new thread moved into a new network namespace (gone with the thread's last
// reference: the thread and the fds it made).
void inFreshNetns(const std::function<void()>& body) {
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << errno;
      return;
    }
    body();
  });
  t.join();
}

// Sets lo up through `fd` (any socket); returns its ifreq (for an MTU change).
ifreq loUp(int fd) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  EXPECT_EQ(::ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  EXPECT_EQ(::ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
  return ifr;
}

class TunDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      LB_SKIP_UNLESS_CI("needs root");
  }
};

TEST_F(TunDeviceTest, RootQdiscIsNoqueue) {
  inFreshNetns([] {
    TunOptions o;
    o.name = "lbdq0";
    o.queues = 2;
    auto dev = TunDevice::create(o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    auto kind = rootQdiscKind((*dev)->ifindex());
    ASSERT_TRUE(kind.ok()) << kind.status();
    EXPECT_EQ(*kind, "noqueue");
  });
}

TEST_F(TunDeviceTest, DefaultQdiscWithoutNoqueue) {
  inFreshNetns([] {
    TunOptions o;
    o.name = "lbdq0";
    o.queues = 2;
    o.noqueue = false;
    auto dev = TunDevice::create(o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    auto kind = rootQdiscKind((*dev)->ifindex());
    ASSERT_TRUE(kind.ok()) << kind.status();
    EXPECT_EQ(*kind, "mq");  // a multi-queue device's default
  });
}

TEST_F(TunDeviceTest, NoqueueDeviceCarriesPackets) {
  inFreshNetns([] {
    TunOptions o;
    o.name = "lbdq0";
    o.queues = 1;
    auto dev = TunDevice::create(o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    // A UDP socket bound to the device (no route needed: an oif makes the destination
    // on-link) with a source the namespace does not own (IP_FREEBIND).
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    ASSERT_EQ(::setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, o.name.c_str(),
                           static_cast<socklen_t>(o.name.size())),
              0);
    int one = 1;
    ASSERT_EQ(::setsockopt(s, SOL_IP, IP_FREEBIND, &one, sizeof(one)), 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_port = htons(4000);
    ::inet_pton(AF_INET, "198.18.99.2", &src.sin_addr);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&src), sizeof(src)), 0);
    sockaddr_in dst = src;
    dst.sin_port = htons(5000);
    ::inet_pton(AF_INET, "198.18.99.1", &dst.sin_addr);
    const char msg[] = "through noqueue";
    ASSERT_EQ(::sendto(s, msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)),
              static_cast<ssize_t>(sizeof(msg)));
    // The device also carries the kernel's own IPv6 traffic (router solicitations): skip it.
    bool found = false;
    PacketBuffer buf;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!found && std::chrono::steady_clock::now() < deadline) {
      pollfd p{(*dev)->fd(0), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      const ssize_t n = (*dev)->readPacket(0, buf);
      if (n < 28 || (buf.data()[0] >> 4) != 4 || buf.data()[9] != IPPROTO_UDP)
        continue;
      const std::string payload(reinterpret_cast<const char*>(buf.data() + 28),
                                static_cast<size_t>(n) - 28);
      found = payload == std::string(msg, sizeof(msg));
    }
    ::close(s);
    EXPECT_TRUE(found) << "the datagram never reached the TUN queue";
  });
}

// The start-up probe for GUE super-packets handed to the kernel whole: Linux 6.17+ takes a
// UDP-tunnel GSO packet from a TAP device, an older kernel does not (docs/tunnel-speed.md).
// The probe sends nothing: its scratch device stays down and is gone after it.
TEST_F(TunDeviceTest, UdpTunnelGsoProbeFollowsTheKernel) {
  utsname u{};
  ASSERT_EQ(::uname(&u), 0);
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2) << u.release;
  const bool want = major > 6 || (major == 6 && minor >= 17);
  inFreshNetns([want, &u] {
    EXPECT_EQ(kernelTakesUdpTunnelGso("lbdq0p"), want) << u.release;
    EXPECT_EQ(::if_nametoindex("lbdq0p"), 0U) << "the probe's device outlived it";
    if (!want)
      return;
    auto tap = UdpTunnelTap::create("lbdq0g", 2);
    ASSERT_TRUE(tap.ok()) << tap.status();
    EXPECT_NE((*tap)->ifindex(), 0);
    EXPECT_EQ((*tap)->name(), "lbdq0g");
  });
}

// The decap's GUE socket tells a datagram that came whole (a sending kernel's GSO super-packet,
// or anything larger than a link over lo) from one reassembled from fragments
// (DecapReceiver::lastUnwired, IP_RECVFRAGSIZE): only the first may skip the checksum check.
TEST_F(TunDeviceTest, DecapTellsWholeDatagramsFromReassembledOnes) {
  inFreshNetns([] {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    ifreq ifr = loUp(s);
    auto d = DecapReceiver::create(5555);
    ASSERT_TRUE(d.ok()) << d.status();
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(5555);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // GUE version 0 carrying IPv4, then an IPv4 header and zeros.
    auto send = [&](size_t n) {
      std::string b(n, '\0');
      b[1] = 4;
      b[4] = 0x45;
      ASSERT_EQ(::sendto(s, b.data(), n, 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)),
                static_cast<ssize_t>(n));
    };
    auto next = [&](PacketBuffer& p) {
      for (int i = 0; i < 20; ++i) {
        if ((*d)->receive(p, 100) == 1)
          return true;
      }
      return false;
    };
    PacketBuffer p;
    send(30000);  // lo's MTU is 65536: not fragmented
    ASSERT_TRUE(next(p));
    EXPECT_EQ(p.size(), 30000U - 4);
    EXPECT_TRUE((*d)->lastUnwired());
    send(1000);  // small enough for a wire
    ASSERT_TRUE(next(p));
    EXPECT_FALSE((*d)->lastUnwired());
    ifr.ifr_mtu = 1500;
    ASSERT_EQ(::ioctl(s, SIOCSIFMTU, &ifr), 0);
    send(30000);  // now fragmented and reassembled
    ASSERT_TRUE(next(p));
    EXPECT_EQ(p.size(), 30000U - 4);
    EXPECT_FALSE((*d)->lastUnwired());
    ::close(s);
  });
}

// GRE through the decap's raw sockets, IPv4 and IPv6 outer, over lo: a packet ip_gre would take
// comes out as its inner packet (a 30,000-byte one marked unwired: larger than any link, not
// reassembled); a failed checksum, GRE version 1 and a non-IP payload are read, dropped and
// counted (dropped(), and csumErrors() for the checksum).
TEST_F(TunDeviceTest, DecapReceivesGreAndCountsWhatItDrops) {
  inFreshNetns([] {
    const int s4 = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);
    const int s6 = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);
    ASSERT_GE(s4, 0);
    ASSERT_GE(s6, 0);
    loUp(s4);
    auto d = DecapReceiver::create(5555);
    ASSERT_TRUE(d.ok()) << d.status();
    // A GRE header (flags, protocol 0x0800 unless given; with the C bit the checksum over it
    // and the inner packet made valid, then `flip` XORed into the last byte) and an inner
    // IPv4 header followed by zeros, n bytes in all.
    auto gre = [](uint16_t flags, size_t n, uint16_t proto = 0x0800, uint8_t flip = 0) {
      std::vector<uint8_t> b((flags & 0x8000) != 0 ? 8 : 4, 0);
      b[0] = static_cast<uint8_t>(flags >> 8);
      b[1] = static_cast<uint8_t>(flags);
      b[2] = static_cast<uint8_t>(proto >> 8);
      b[3] = static_cast<uint8_t>(proto);
      const size_t at = b.size();
      b.resize(at + n);
      b[at] = 0x45;
      if ((flags & 0x8000) != 0) {
        const uint16_t c = csumFold(csumPartial({b.data(), b.size()}, 0));
        std::memcpy(&b[4], &c, 2);
      }
      b.back() ^= flip;
      return b;
    };
    auto send4 = [&](const std::vector<uint8_t>& b) {
      sockaddr_in dst{};
      dst.sin_family = AF_INET;
      dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(::sendto(s4, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)),
                static_cast<ssize_t>(b.size()));
    };
    PacketBuffer p;
    auto next = [&] {
      for (int i = 0; i < 20; ++i) {
        if ((*d)->receive(p, 100) == 1)
          return true;
      }
      return false;
    };
    send4(gre(0, 100));
    ASSERT_TRUE(next());
    EXPECT_EQ(p.size(), 100U);
    EXPECT_EQ(p.data()[0], 0x45);
    EXPECT_FALSE((*d)->lastUnwired());
    send4(gre(0x8000, 30000));  // lo's MTU is 65536: whole
    ASSERT_TRUE(next());
    EXPECT_EQ(p.size(), 30000U);
    EXPECT_TRUE((*d)->lastUnwired());
    sockaddr_in6 dst6{};
    dst6.sin6_family = AF_INET6;
    dst6.sin6_addr = in6addr_loopback;
    const std::vector<uint8_t> v6 = gre(0x8000, 60);
    ASSERT_EQ(
        ::sendto(s6, v6.data(), v6.size(), 0, reinterpret_cast<sockaddr*>(&dst6), sizeof(dst6)),
        static_cast<ssize_t>(v6.size()));
    ASSERT_TRUE(next()) << "GRE over IPv6";
    EXPECT_EQ(p.size(), 60U);
    EXPECT_EQ((*d)->received(), 3U);
    EXPECT_EQ((*d)->dropped(), 0U);

    send4(gre(0x8000, 100, 0x0800, 1));  // checksum off by one bit
    send4(gre(0x0001, 100));             // version 1
    send4(gre(0, 100, 0x6558));          // transparent Ethernet
    for (int i = 0; i < 20 && (*d)->dropped() < 3; ++i)
      EXPECT_EQ((*d)->receive(p, 100), 0);
    EXPECT_EQ((*d)->dropped(), 3U);
    EXPECT_EQ((*d)->csumErrors(), 1U);
    EXPECT_EQ((*d)->received(), 3U);
    ::close(s4);
    ::close(s6);
  });
}

}  // namespace
}  // namespace lb::io
