// SPDX-License-Identifier: Apache-2.0
// IngressRedirect on a real veth and a real TUN device (label integration, needs root): two
// network namespaces, client (C) and balancer (B); frames crafted in C with AF_PACKET cross
// the veth into B, where the tc program either hands them to B's TUN device or leaves them to
// B's kernel. Without any route to the VIPs in B, a packet on the TUN fd can only have come
// through bpf_redirect.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
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
    requireRoot();
    if (IsSkipped() || HasFatalFailure())
      return;
    ASSERT_TRUE(net_.setUp()) << net_.error();
    IngressRedirectOptions o;
    o.attach = attachMode();
    auto r = IngressRedirect::create(net_.tunIfindex(), o);
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

  virtual IngressRedirectOptions::Attach attachMode() const {
    return IngressRedirectOptions::Attach::kAuto;
  }

  // Sends a VIP packet, then one to B's own socket: once that one arrived, the first was
  // handled; true when the VIP packet did not reach the TUN device (the kernel had it).
  bool vipPacketLeftToKernel() {
    int sock = net_.udpSocketInB(kBalancer, 7001);
    if (sock < 0)
      return false;
    bool sent = net_.sendFrame(PacketBuilder::udp(kClient, 2, kVip, 53).build()) &&
                net_.sendFrame(PacketBuilder::udp(kClient, 2, kBalancer, 7001).build());
    pollfd p{sock, POLLIN, 0};
    const bool arrived = sent && poll(&p, 1, 2000) == 1;
    close(sock);
    return arrived && !net_.readTun(std::chrono::milliseconds(0)).has_value();
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

// The legacy attachment (kernels before 6.6): a cls_bpf filter on a clsact qdisc.
class IngressRedirectTcFilterTest : public IngressRedirectTest {
 protected:
  IngressRedirectOptions::Attach attachMode() const override {
    return IngressRedirectOptions::Attach::kTcFilter;
  }
};

// On this kernel kAuto takes a tcx link: no qdisc, no filter, and detach really detaches.
TEST_F(IngressRedirectTest, TcxLinkNeedsNoQdiscAndDetaches) {
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip, 53).build());
  EXPECT_FALSE(net_.hasClsact()) << "a tcx link needs no clsact qdisc";
  EXPECT_FALSE(net_.hasOurFilter());
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  EXPECT_TRUE(vipPacketLeftToKernel());
}

// A tcx link belongs to its file descriptor: when lbd dies, even by SIGKILL, the kernel
// detaches the program and packets take the kernel path again.
TEST_F(IngressRedirectTest, TcxLinkDiesWithTheProcess) {
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    IngressRedirectOptions o;
    o.attach = IngressRedirectOptions::Attach::kTcx;
    auto r = IngressRedirect::create(net_.tunIfindex(), o);
    const bool ok =
        r.ok() && (*r)->setDsts({ip(kVip)}).ok() && (*r)->attach(net_.vethIfindex()).ok();
    const char c = ok ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    for (;;)
      pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  if (c != 'y') {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    FAIL() << "the child could not attach a tcx link";
  }
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip, 53).build());
  kill(child, SIGKILL);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  // The link is released with the dead process's files; give the kernel a moment.
  bool left = false;
  for (int i = 0; i < 20 && !left; ++i) {
    left = vipPacketLeftToKernel();
    if (!left)
      usleep(50'000);
  }
  EXPECT_TRUE(left) << "the program stayed attached after its process was killed";
}

TEST_F(IngressRedirectTcFilterTest, DetachStopsRedirectingAndRemovesOurQdisc) {
  expectRedirected(PacketBuilder::udp(kClient, 1, kVip, 53).build());
  ASSERT_TRUE(net_.hasClsact());
  ASSERT_TRUE(redirect_->detach(net_.vethIfindex()).ok());
  EXPECT_FALSE(net_.hasClsact()) << "attach created the clsact qdisc; detach removes it";
  EXPECT_EQ(redirect_->detach(net_.vethIfindex()).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(vipPacketLeftToKernel());
}

TEST_F(IngressRedirectTcFilterTest, DetachLeavesSomeoneElsesQdisc) {
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

TEST_F(IngressRedirectTest, SidecarModeTakesRepliesEvenForLocalSockets) {
  // local_sockets_first = false (sidecar: lbd's rules come before the local table): the RIP's
  // SYN-ACK to B's own connection is a reply for lbd and lands on the TUN device.
  redirect_.reset();
  IngressRedirectOptions o;
  o.local_sockets_first = false;
  auto r = IngressRedirect::create(net_.tunIfindex(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  redirect_ = std::move(*r);
  ASSERT_TRUE(redirect_->setReplies({{ip(kRip), L4Proto::kTcp, 80}}).ok());
  ASSERT_TRUE(redirect_->attach(net_.vethIfindex()).ok());
  EXPECT_FALSE(net_.tcpConnectFromB(kRip, 80));
  bool syn_ack = false;
  while (!syn_ack) {  // each read waits up to 2 s: a late SYN-ACK still counts
    auto p = net_.readTun(std::chrono::seconds(2));
    if (!p)
      break;
    syn_ack = p->size() >= 40 && (*p)[9] == 6 && ((*p)[33] & 0x12) == 0x12;
  }
  EXPECT_TRUE(syn_ack) << "the SYN-ACK from the RIP did not reach the TUN device";
}

// TCP bulk transfer C -> VIP, with the VIP local in B and this test acting as lbd: every
// packet read from the TUN fd is written back to it unchanged (virtio header included), so the
// kernel delivers it to B's socket. The stream must arrive intact, and at least one packet
// must have crossed as a GSO super-packet with a partial checksum (the skb's offload state
// survives bpf_redirect into a TUN with IFF_VNET_HDR and TSO on).
TEST_F(IngressRedirectTest, TcpBulkCrossesAsGsoSuperPackets) {
  ASSERT_TRUE(
      net_.run("ip addr add 198.18.91.1/32 dev lo && sysctl -qw net.ipv4.conf.all.rp_filter=0 "
               "net.ipv4.conf.lbdbpf0.rp_filter=0"));
  ASSERT_TRUE(net_.ipInC("route add 198.18.91.0/24 via 198.18.90.2"));
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(5001);
  inet_pton(AF_INET, kVip, &sa.sin_addr);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(listen(ls, 1), 0);
  int cs = net_.tcpSocketInC();
  ASSERT_GE(cs, 0);

  std::atomic<bool> stop{false};
  std::atomic<int> gso_tcp{0}, needs_csum{0}, packets{0};
  std::thread reflector([&] {
    std::vector<uint8_t> buf(70000);
    while (!stop.load()) {
      pollfd p{net_.tunFd(), POLLIN, 0};
      if (poll(&p, 1, 50) != 1)
        continue;
      ssize_t n = read(net_.tunFd(), buf.data(), buf.size());
      if (n < 10)
        continue;
      packets++;
      if ((buf[1] & 0x7f) == 1 && (buf[2] | buf[3] << 8) > 0)  // VIRTIO_NET_HDR_GSO_TCPV4
        gso_tcp++;
      if (buf[0] & 1)  // VIRTIO_NET_HDR_F_NEEDS_CSUM
        needs_csum++;
      (void)write(net_.tunFd(), buf.data(), static_cast<size_t>(n));
    }
  });
  constexpr size_t kBytes = 8 << 20;
  std::vector<uint8_t> sent(kBytes);
  for (size_t i = 0; i < kBytes; ++i)
    sent[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  std::thread client([&] {
    if (connect(cs, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
      return;
    size_t off = 0;
    while (off < kBytes) {
      ssize_t n = send(cs, sent.data() + off, kBytes - off, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      off += static_cast<size_t>(n);
    }
    shutdown(cs, SHUT_WR);
  });
  std::vector<uint8_t> got;
  pollfd lp{ls, POLLIN, 0};
  if (poll(&lp, 1, 5000) == 1) {
    int as = accept(ls, nullptr, nullptr);
    timeval tv{10, 0};
    setsockopt(as, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::vector<uint8_t> chunk(1 << 16);
    for (;;) {
      ssize_t n = recv(as, chunk.data(), chunk.size(), 0);
      if (n <= 0)
        break;
      got.insert(got.end(), chunk.begin(), chunk.begin() + n);
    }
    close(as);
  }
  stop = true;
  shutdown(cs, SHUT_RDWR);
  client.join();
  reflector.join();
  close(cs);
  close(ls);
  RecordProperty("tun_packets", packets.load());
  RecordProperty("gso_tcpv4_packets", gso_tcp.load());
  RecordProperty("needs_csum_packets", needs_csum.load());
  EXPECT_EQ(got.size(), kBytes);
  EXPECT_TRUE(got == sent) << "stream corrupted";
  EXPECT_GT(gso_tcp.load(), 0) << packets.load() << " packets, none GSO";
  EXPECT_GT(needs_csum.load(), 0);
  auto c = redirect_->counters();
  ASSERT_TRUE(c.ok());
  EXPECT_GE(c->redirected_dst, static_cast<uint64_t>(packets.load()));
}

}  // namespace
}  // namespace lb::io
