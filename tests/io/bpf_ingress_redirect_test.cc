// SPDX-License-Identifier: Apache-2.0
// IngressRedirect on a real veth and a real TUN device (label integration, needs root): two
// network namespaces, client (C) and balancer (B); frames crafted in C with AF_PACKET cross
// the veth into B, where the tc program either hands them to B's TUN device or leaves them to
// B's kernel. Without any route to the VIPs in B, a packet on the TUN fd can only have come
// through bpf_redirect.
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "io/bpf/ingress_redirect.h"
#include "tests/io/bpf_netns.h"
#include "tests/testlib/packet_builder.h"

namespace lb::io {
namespace {

using ::lb::testing::hexDump;
using ::lb::testing::ip;
using ::lb::testing::PacketBuilder;
using Bytes = std::vector<uint8_t>;

constexpr const char* kVip = "198.18.91.1";
constexpr const char* kVip2 = "198.18.91.2";
constexpr const char* kVip3 = "198.18.91.3";
constexpr const char* kVip6 = "2001:2:91::1";
constexpr const char* kClient = "198.18.90.1";
constexpr const char* kBalancer = "198.18.90.2";
constexpr const char* kRip = "198.18.92.5";
constexpr const char* kRip6 = "2001:2:92::5";
constexpr const char* kClient6 = "2001:2:90::1";
constexpr const char* kFarClient = "198.18.93.7";

// Sets the IPv4 fragment field and recomputes the header checksum.
Bytes fragment(Bytes p, uint16_t offset_units, bool more) {
  uint16_t v = static_cast<uint16_t>(offset_units | (more ? 0x2000 : 0));
  p[6] = static_cast<uint8_t>(v >> 8);
  p[7] = static_cast<uint8_t>(v);
  p[10] = p[11] = 0;
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<uint8_t>(~sum >> 8);
  p[11] = static_cast<uint8_t>(~sum);
  return p;
}

class IngressRedirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      if (const char* ci = getenv("CI"); ci != nullptr && std::string(ci) == "true")
        FAIL() << "needs root (CI=true)";
      GTEST_SKIP() << "needs root";
    }
    ASSERT_TRUE(net_.setUp()) << net_.error();
    auto r = IngressRedirect::create(net_.tunIfindex());
    ASSERT_TRUE(r.ok()) << r.status();
    redirect_ = std::move(*r);
    ASSERT_TRUE(redirect_->setDsts({ip(kVip), ip(kVip6)}).ok());
    ASSERT_TRUE(redirect_
                    ->setReplies({{ip(kRip), L4Proto::kUdp, 8080},
                                  {ip(kRip), L4Proto::kTcp, 80},
                                  {ip(kRip6), L4Proto::kTcp, 443}})
                    .ok());
    ASSERT_TRUE(redirect_->attach(net_.vethIfindex()).ok());
  }

  void TearDown() override {
    redirect_.reset();  // detaches inside B
    net_.tearDown();
  }

  // The next packet on the TUN fd (IP bytes after the virtio header), within 2 s.
  Bytes nextTun(uint8_t* vnet = nullptr) {
    auto got = net_.readTun(std::chrono::seconds(2), vnet);
    EXPECT_TRUE(got.has_value()) << "nothing arrived on the TUN device";
    return got.value_or(Bytes{});
  }

  void expectRedirected(const Bytes& pkt) {
    ASSERT_TRUE(net_.sendFrame(pkt));
    Bytes got = nextTun();
    EXPECT_EQ(got, pkt) << "sent " << hexDump(pkt.data(), pkt.size()) << "\ngot "
                        << hexDump(got.data(), got.size());
  }

  // Sends `pkt`, then a marker that is redirected: the marker must be the next packet on the
  // TUN fd (one veth queue, one CPU backlog: frames stay in order), so `pkt` was not.
  void expectPassed(const Bytes& pkt, const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(net_.sendFrame(pkt));
    Bytes marker =
        PacketBuilder::udp(kClient, 5000, marker_vip_, 53).payload("marker " + what).build();
    ASSERT_TRUE(net_.sendFrame(marker));
    Bytes got = nextTun();
    EXPECT_EQ(got, marker) << "got " << hexDump(got.data(), got.size());
  }

  BpfNetns net_;
  const char* marker_vip_ = kVip;  // in the dsts set
  std::unique_ptr<IngressRedirect> redirect_;
};

TEST_F(IngressRedirectTest, RedirectsDestinationsByteExact) {
  expectRedirected(PacketBuilder::udp(kClient, 40000, kVip, 53).payload("vip udp").build());
  expectRedirected(PacketBuilder::tcp(kClient, 40001, kVip, 80, 0x02).build());  // SYN
  expectRedirected(PacketBuilder::sctp(kClient, 40002, kVip, 80, 1).build());    // INIT
  expectRedirected(PacketBuilder::icmpEcho(kClient, kVip, 8, 7).payload("ping").build());
  expectRedirected(PacketBuilder::udp(kClient6, 40003, kVip6, 53).payload("vip6").build());
  expectRedirected(PacketBuilder::tcp(kClient6, 40004, kVip6, 443, 0x02).build());
  auto c = redirect_->counters();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redirected_dst, 6u);
  EXPECT_EQ(c->redirected_reply, 0u);
}

TEST_F(IngressRedirectTest, RedirectsNatRepliesByteExact) {
  expectRedirected(PacketBuilder::udp(kRip, 8080, kFarClient, 40000).payload("reply").build());
  expectRedirected(PacketBuilder::tcp(kRip, 80, kFarClient, 40001, 0x12).build());  // SYN-ACK
  expectRedirected(PacketBuilder::tcp(kRip6, 443, kClient6, 40002, 0x10).payload("x").build());
  auto c = redirect_->counters();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redirected_reply, 3u);
}

TEST_F(IngressRedirectTest, LeavesEverythingElseToTheKernel) {
  // Kernel way, observable: B's own UDP socket receives the datagram.
  int sock = net_.udpSocketInB(kBalancer, 7000);
  ASSERT_GE(sock, 0);
  expectPassed(PacketBuilder::udp(kClient, 40000, kBalancer, 7000).payload("local").build(),
               "udp to B's own address");
  char buf[64];
  EXPECT_EQ(recv(sock, buf, sizeof(buf), MSG_DONTWAIT), 5) << "B's socket did not get it";
  close(sock);

  expectPassed(PacketBuilder::tcp(kRip, 8080, kFarClient, 1, 0x12).build(),
               "tcp from a udp-only real server port");
  expectPassed(PacketBuilder::udp(kRip, 9999, kFarClient, 1).build(), "udp from another port");
  expectPassed(PacketBuilder::udp(kClient, 1, kVip2, 53).build(), "udp to another address");
  expectPassed(PacketBuilder::udp(kClient, 1, kVip, 53).ttl(1).build(), "ttl 1 to the vip");
  Bytes bad = PacketBuilder::udp(kClient, 1, kVip, 53).build();
  bad[10] ^= 0xff;
  expectPassed(bad, "bad ipv4 header checksum");
  // A non-first fragment of a datagram from the RIP: its first bytes look like port 8080.
  Bytes frag = PacketBuilder::udp(kRip, 8080, kFarClient, 8080).payloadSize(32).build();
  expectPassed(fragment(frag, 100, false), "non-first fragment from the rip");
  // Unicast neighbour solicitation for the VIP: proxy NDP's, not lbd's.
  expectPassed(PacketBuilder::icmpEcho(kClient6, kVip6, 135, 0).build(), "ndp ns to the vip");
  // Not addressed to B's MAC (PACKET_OTHERHOST): ip_rcv would drop it.
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kClient, 1, kVip, 53).build(), 0, true));
  expectPassed(PacketBuilder::udp(kClient, 2, kVip2, 53).build(), "after otherhost");

  auto c = redirect_->counters();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GE(c->passed, 10u);
}

TEST_F(IngressRedirectTest, FragmentsToTheVipAndPaddingTrimmed) {
  Bytes dgram = PacketBuilder::udp(kClient, 40000, kVip, 53).payloadSize(64).build();
  expectRedirected(fragment(dgram, 0, true));     // first fragment
  expectRedirected(fragment(dgram, 185, false));  // non-first fragment: destination rule only
  // A 28-byte datagram padded to Ethernet's minimum (and more): TUN gets tot_len bytes.
  Bytes small = PacketBuilder::udp(kClient, 40001, kVip, 53).build();
  ASSERT_EQ(small.size(), 28u);
  ASSERT_TRUE(net_.sendFrame(small, 40));
  EXPECT_EQ(nextTun(), small);
}

TEST_F(IngressRedirectTest, SetDstsReplacesTheSet) {
  ASSERT_TRUE(redirect_->setDsts({ip(kVip2), ip(kVip3), ip(kVip3)}).ok());
  marker_vip_ = kVip2;
  expectPassed(PacketBuilder::udp(kClient, 1, kVip, 53).build(), "removed vip");
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip2, 53).build());
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip3, 53).build());
  ASSERT_TRUE(redirect_->setReplies({}).ok());
  ASSERT_TRUE(redirect_->setDsts({ip(kVip)}).ok());
  marker_vip_ = kVip;
  expectPassed(PacketBuilder::udp(kRip, 8080, kFarClient, 1).build(), "removed reply");
  EXPECT_EQ(redirect_->setReplies({{ip(kRip), L4Proto::kIcmp, 0}}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(IngressRedirectTest, DetachStopsRedirectingAndRemovesOurQdisc) {
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip, 53).build());
  ASSERT_TRUE(net_.hasClsact());
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  EXPECT_FALSE(net_.hasClsact()) << "attach created the clsact qdisc; detach removes it";
  EXPECT_EQ(redirect_->detach(net_.vethIfindex()).code(), absl::StatusCode::kNotFound);

  // The VIP packet, then one to B's own socket: once that arrived, the first was handled.
  int sock = net_.udpSocketInB(kBalancer, 7001);
  ASSERT_GE(sock, 0);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kClient, 2, kVip, 53).build()));
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kClient, 2, kBalancer, 7001).build()));
  pollfd p{sock, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 2000), 1);
  close(sock);
  EXPECT_FALSE(net_.readTun(std::chrono::milliseconds(0)).has_value());
}

TEST_F(IngressRedirectTest, DetachLeavesSomeoneElsesQdisc) {
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  ASSERT_TRUE(net_.run("tc qdisc add dev vb clsact"));
  ASSERT_TRUE(redirect_->attach(net_.vethIfindex()).ok());
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip, 53).build());
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  EXPECT_TRUE(net_.hasClsact());
  EXPECT_FALSE(net_.hasOurFilter());
}

TEST_F(IngressRedirectTest, BalancersOwnConnectionToARealServerIsNotStolen) {
  // B connects to the RIP's port 80 (a `replies` tuple): its SYN-ACK belongs to B's socket.
  ASSERT_TRUE(net_.tcpConnectFromB(kRip, 80)) << net_.error();
}

}  // namespace
}  // namespace lb::io
