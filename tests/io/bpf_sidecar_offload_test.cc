// SPDX-License-Identifier: Apache-2.0
// The sidecar's flow offload (IngressRedirectOptions::sidecar, attachSidecarEgress): B is the
// app's namespace, with the TUN device lbd would read (lbdbpf0) holding the route to the VIP
// and the app's own address kLip on vbs, towards the real server S. A socket of B's sends to
// the VIP: the egress program on the TUN device rewrites it (DNAT to RIP:rport), gives it an
// Ethernet header and sends it out of vbs, so S receives it from kLip; S's answer arrives on
// vbs, where the ingress program un-NATs it and hands it to the TUN device's ingress, and the
// app's socket receives it from VIP:vport. Neither direction reaches the TUN fd (lbd). Real
// namespaces (label integration, needs root), as bpf_flow_offload_test.cc.
#include "tests/io/bpf_flow_offload_fixture.h"

namespace lb::io::flow_offload_test {
namespace {

class SidecarOffloadTest : public FlowOffloadTest {
 protected:
  void SetUp() override {
    requireRoot();
    if (IsSkipped() || HasFatalFailure())
      return;
    ASSERT_TRUE(net_.setUp()) << net_.error();
    ASSERT_TRUE(net_.addServer()) << net_.error();
    IngressRedirectOptions o;
    o.sidecar = true;
    o.local_sockets_first = false;  // as lbd's sidecar mode
    auto r = IngressRedirect::create(net_.tunIfindex(), o);
    ASSERT_TRUE(r.ok()) << r.status();
    redirect_ = std::move(*r);
    ASSERT_TRUE(redirect_->attach(net_.serverVethIfindex()).ok());
    ASSERT_TRUE(redirect_->attachSidecarEgress().ok());
    // The app's routes to the VIPs go into the TUN device, as lbd's sidecar routes them.
    ASSERT_TRUE(net_.run("sysctl -qw net.ipv6.conf.lbdbpf0.disable_ipv6=0"));
    ASSERT_TRUE(net_.ipInB(absl::StrCat("route add ", kVip, "/32 dev lbdbpf0")));
    ASSERT_TRUE(net_.ipInB(absl::StrCat("-6 route add ", kVip6, "/128 dev lbdbpf0")));
    cap_s_ = net_.captureSocket(Ns::kServer);
    ASSERT_GE(cap_s_, 0);
  }

  // A socket of B's (the app's) bound to kLip(6).
  int appSocket(const IpAddr& addr, uint16_t* port) {
    int s = socket(addr.isV4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = 0;
    sockaddr_storage ss = sockAddr(addr, 0, &len);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      if (s >= 0)
        close(s);
      return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return s;
  }

  // The next packet on the TUN fd within `timeout` that `match` accepts. Others are skipped:
  // with IPv6 on, the device sends its own MLD reports and router solicitations.
  std::optional<Bytes> tunPacket(const std::function<bool(const Bytes&)>& match,
                                 std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return std::nullopt;
      auto p = net_.readTun(left);
      if (!p)
        return std::nullopt;
      if (p->size() >= l3Len(*p) + 4 && match(*p))
        return p;
    }
  }

  void roundTrip(bool v6);
};

void SidecarOffloadTest::roundTrip(bool v6) {
  const IpAddr app = ip(v6 ? kLip6 : kLip), vip = ip(v6 ? kVip6 : kVip),
               rip = ip(v6 ? kRip6 : kRip);
  const uint16_t vport = 53, rport = 5353;
  uint16_t aport = 0;
  const int a = appSocket(app, &aport);
  ASSERT_GE(a, 0);
  const int srv = net_.socketIn(Ns::kServer, v6 ? AF_INET6 : AF_INET, SOCK_DGRAM);
  ASSERT_GE(srv, 0);
  {
    socklen_t len = 0;
    sockaddr_storage ss = sockAddr(rip, rport, &len);
    ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
  }
  // The conn as lbd installs it: app:aport -> VIP:vport, real server rip:rport.
  FlowKey in, out;
  addNat(L4Proto::kUdp, app, aport, vip, vport, rip, rport, &in, &out, /*cookie=*/7);
  const IngressRedirectCounters before = counters();

  const std::string ping(1200, 'p');
  ASSERT_TRUE(sendDatagram(a, vip, vport, ping));
  auto got = recvDatagram(srv);
  ASSERT_TRUE(got.has_value()) << "the app's datagram did not reach the real server";
  EXPECT_EQ(got->payload, ping);
  EXPECT_EQ(got->from, app);  // NAT: the client's address stays
  EXPECT_EQ(got->port, aport);
  // As S received it: DNATed, TTL / hop limit one less than the app's default (64), checksums.
  auto pkt = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, rport));
  ASSERT_TRUE(pkt.has_value());
  EXPECT_EQ(dstAddr(*pkt), rip);
  EXPECT_EQ(ttl(*pkt), 63);

  const std::string pong(900, 'q');
  ASSERT_TRUE(sendDatagram(srv, app, aport, pong));
  auto back = recvDatagram(a);
  ASSERT_TRUE(back.has_value()) << "the real server's answer did not reach the app";
  EXPECT_EQ(back->payload, pong);
  EXPECT_EQ(back->from, vip);  // un-NATed: the app sees the VIP answer
  EXPECT_EQ(back->port, vport);

  // Neither went through lbd: the TUN fd has nothing, both entries forwarded one packet.
  EXPECT_FALSE(tunPacket(toPort(IPPROTO_UDP, vport), std::chrono::milliseconds(200)).has_value());
  const IngressRedirectCounters after = counters();
  EXPECT_EQ(after.flow_forwarded - before.flow_forwarded, 2u);
  EXPECT_EQ(after.flow_dropped, before.flow_dropped);
  const FlowState si = state(in), so = state(out);
  EXPECT_EQ(si.packets, 1u);
  EXPECT_EQ(si.bytes, ping.size() + 8 + (v6 ? 40 : 20));
  EXPECT_EQ(so.packets, 1u);
  EXPECT_EQ(so.bytes, pong.size() + 8 + (v6 ? 40 : 20));
  EXPECT_GT(si.last_ns, 0);

  // Without its entries the app's datagram takes the old path: the TUN device (lbd).
  ASSERT_TRUE(redirect_->removeFlow(in).ok());
  ASSERT_TRUE(redirect_->removeFlow(out).ok());
  ASSERT_TRUE(sendDatagram(a, vip, vport, ping));
  auto tun = tunPacket(toPort(IPPROTO_UDP, vport), kWait);
  ASSERT_TRUE(tun.has_value()) << "the app's datagram did not reach the TUN device";
  EXPECT_EQ(dstAddr(*tun), vip);
  EXPECT_EQ(sport(*tun), aport);
  close(a);
  close(srv);
}

TEST_F(SidecarOffloadTest, UdpBothWaysV4) {
  roundTrip(false);
}

TEST_F(SidecarOffloadTest, UdpBothWaysV6) {
  roundTrip(true);
}

// A TCP SYN without ACK from the app (a new conn on the tuple) closes both entries and goes to
// lbd, as at a gateway's ingress; the real server's segment then goes to lbd too (no
// forwarding of a closed entry).
TEST_F(SidecarOffloadTest, SynFromTheAppClosesTheConn) {
  const IpAddr app = ip(kLip), vip = ip(kVip), rip = ip(kRip);
  FlowKey in, out;
  addNat(L4Proto::kTcp, app, 40000, vip, 80, rip, 8080, &in, &out);
  const int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(t, 0);
  socklen_t len = 0;
  sockaddr_storage from = sockAddr(app, 40000, &len);
  ASSERT_EQ(bind(t, reinterpret_cast<sockaddr*>(&from), len), 0) << strerror(errno);
  sockaddr_storage to = sockAddr(vip, 80, &len);
  (void)connect(t, reinterpret_cast<sockaddr*>(&to), len);  // EINPROGRESS: the SYN is sent
  auto syn = tunPacket(toPort(IPPROTO_TCP, 80), kWait);
  ASSERT_TRUE(syn.has_value()) << "the SYN did not reach the TUN device";
  EXPECT_EQ(tcpFlags(*syn) & 0x12, 0x02);
  EXPECT_TRUE(state(in).closed);
  EXPECT_TRUE(state(out).closed);
  close(t);
}

}  // namespace
}  // namespace lb::io::flow_offload_test
