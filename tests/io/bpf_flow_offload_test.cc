// SPDX-License-Identifier: Apache-2.0
// The established-flow fast path of IngressRedirect (flows map) in three real namespaces
// (label integration, needs root): client C -- balancer B (program on both veths, TUN device)
// -- server S. Flow entries are installed by hand with addFlow (or a FlowWriter), as lbd would
// for a NAT or full-NAT connection (TCP: right after the client's SYN); B's kernel has no route or
// NAT that could deliver these packets rewritten, so a rewritten packet in C or S can only come
// from the program, and a packet on the TUN fd took the old path.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "io/bpf/ingress_redirect.h"
#include "io/bpf/redirect_abi.h"
#include "tests/io/bpf_netns.h"
#include "tests/testlib/packet_builder.h"

namespace lb::io {
namespace {

using ::lb::testing::checksumsValid;
using ::lb::testing::hexDump;
using ::lb::testing::ip;
using ::lb::testing::PacketBuilder;
using Bytes = std::vector<uint8_t>;
using Ns = BpfNetns::Ns;

constexpr const char* kVip = "198.18.91.1";
constexpr const char* kVip6 = "2001:2:91::1";
constexpr const char* kClient = "198.18.90.1";
constexpr const char* kClient6 = "2001:2:90::1";
constexpr const char* kFarClient = "198.18.93.7";  // routed by B via C; S has no route back
constexpr const char* kFarClient6 = "2001:2:93::7";
constexpr const char* kRip = "198.18.94.1";  // S
constexpr const char* kRip6 = "2001:2:94::1";
constexpr const char* kLip = "198.18.94.2";  // B's own address on vbs: the full-NAT source
constexpr const char* kLip6 = "2001:2:94::2";
constexpr auto kWait = std::chrono::seconds(2);

int64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Field accessors on an IP packet (IPv4 without options or IPv6 with the L4 header next).
bool isV6(const Bytes& p) {
  return !p.empty() && (p[0] >> 4) == 6;
}

size_t l3Len(const Bytes& p) {
  return isV6(p) ? 40 : 20;
}

uint8_t l4Proto(const Bytes& p) {
  return isV6(p) ? p[6] : p[9];
}

uint8_t ttl(const Bytes& p) {
  return isV6(p) ? p[7] : p[8];
}

IpAddr srcAddr(const Bytes& p) {
  return isV6(p) ? IpAddr::fromBytes(Af::kInet6, &p[8]) : IpAddr::fromBytes(Af::kInet, &p[12]);
}

IpAddr dstAddr(const Bytes& p) {
  return isV6(p) ? IpAddr::fromBytes(Af::kInet6, &p[24]) : IpAddr::fromBytes(Af::kInet, &p[16]);
}

uint16_t be16(const Bytes& p, size_t off) {
  return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

uint16_t sport(const Bytes& p) {
  return be16(p, l3Len(p));
}

uint16_t dport(const Bytes& p) {
  return be16(p, l3Len(p) + 2);
}

uint8_t tcpFlags(const Bytes& p) {
  return p[l3Len(p) + 13];
}

// A matcher for BpfNetns::nextCaptured: protocol and destination port.
std::function<bool(const Bytes&)> toPort(uint8_t proto, uint16_t port) {
  return [proto, port](const Bytes& p) {
    return p.size() >= l3Len(p) + 4 && l4Proto(p) == proto && dport(p) == port;
  };
}

// The L4 checksum: complete and valid, or (CHECKSUM_PARTIAL, as a veth hands a socket's
// packet on) the pseudo-header seed of the packet's own addresses, as tcp_v4_send_check /
// udp6_hwcsum leave it for the device.
bool l4ChecksumOk(const Bytes& p, bool partial) {
  if (!partial)
    return checksumsValid(p);
  const size_t l3 = l3Len(p), alen = isV6(p) ? 16 : 4;
  const size_t l4_len = p.size() - l3;
  uint32_t sum = l4Proto(p) + static_cast<uint32_t>(l4_len);
  const size_t src_off = isV6(p) ? 8 : 12;
  for (size_t i = 0; i < 2 * alen; i += 2)
    sum += be16(p, src_off + i);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  const size_t csum_off = l3 + (l4Proto(p) == IPPROTO_TCP ? 16 : 6);
  return be16(p, csum_off) == sum;
}

sockaddr_storage sockAddr(const IpAddr& a, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  if (a.isV4()) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    std::memcpy(&sa->sin_addr, a.data(), 4);
    *len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, a.data(), 16);
    *len = sizeof(*sa);
  }
  return ss;
}

struct Datagram {
  IpAddr from;
  uint16_t port = 0;
  std::string payload;
};

std::optional<Datagram> recvDatagram(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kWait).count())) != 1)
    return std::nullopt;
  char buf[2048];
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0)
    return std::nullopt;
  Datagram d;
  d.payload.assign(buf, static_cast<size_t>(n));
  if (ss.ss_family == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
    d.from = IpAddr::fromBytes(Af::kInet, reinterpret_cast<const uint8_t*>(&sa->sin_addr));
    d.port = ntohs(sa->sin_port);
  } else {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
    d.from = IpAddr::fromBytes(Af::kInet6, reinterpret_cast<const uint8_t*>(&sa->sin6_addr));
    d.port = ntohs(sa->sin6_port);
  }
  return d;
}

class FlowOffloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requireRoot();
    if (IsSkipped() || HasFatalFailure())
      return;
    ASSERT_TRUE(net_.setUp()) << net_.error();
    ASSERT_TRUE(net_.addServer()) << net_.error();
    auto r = IngressRedirect::create(net_.tunIfindex());
    ASSERT_TRUE(r.ok()) << r.status();
    redirect_ = std::move(*r);
    ASSERT_TRUE(redirect_->setDsts({ip(kVip), ip(kVip6), ip(kLip), ip(kLip6)}).ok());
    ASSERT_TRUE(redirect_->attach(net_.vethIfindex()).ok());
    ASSERT_TRUE(redirect_->attach(net_.serverVethIfindex()).ok());
    cap_s_ = net_.captureSocket(Ns::kServer);
    cap_c_ = net_.captureSocket(Ns::kClient);
    ASSERT_GE(cap_s_, 0);
    ASSERT_GE(cap_c_, 0);
  }

  void TearDown() override {
    for (int fd : {cap_s_, cap_c_}) {
      if (fd >= 0)
        close(fd);
    }
    redirect_.reset();
    net_.tearDown();
  }

  // Installs both directions of a connection (`out` with reply = true), as lbd does.
  void addConnection(const FlowKey& in,
                     const FlowRewrite& in_rw,
                     const FlowKey& out,
                     const FlowRewrite& out_rw,
                     uint64_t cookie = 0) {
    ASSERT_TRUE(redirect_->addFlow(in, in_rw, out, cookie, false).ok());
    ASSERT_TRUE(redirect_->addFlow(out, out_rw, in, cookie, true).ok());
  }

  // A NAT connection kFarClient(6):cport -> VIP:vport, real server rip:rport.
  void addNat(L4Proto proto,
              const IpAddr& client,
              uint16_t cport,
              const IpAddr& vip,
              uint16_t vport,
              const IpAddr& rip,
              uint16_t rport,
              FlowKey* in_out = nullptr,
              FlowKey* out_out = nullptr,
              uint64_t cookie = 0) {
    const FlowKey in{proto, client, vip, cport, vport};
    const FlowKey out{proto, rip, client, rport, cport};
    addConnection(in, {client, rip, cport, rport}, out, {vip, client, vport, cport}, cookie);
    if (in_out != nullptr)
      *in_out = in;
    if (out_out != nullptr)
      *out_out = out;
  }

  int udpSocket(Ns ns, const IpAddr& addr, uint16_t* port) {
    int s = net_.socketIn(ns, addr.isV4() ? AF_INET : AF_INET6, SOCK_DGRAM);
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

  static bool sendDatagram(int fd, const IpAddr& to, uint16_t port, const std::string& data) {
    socklen_t len = 0;
    sockaddr_storage ss = sockAddr(to, port, &len);
    return sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) ==
           static_cast<ssize_t>(data.size());
  }

  // Sends `pkt` from C: it must arrive unchanged on the TUN device (the old path).
  void expectOldPath(const Bytes& pkt) {
    ASSERT_TRUE(net_.sendFrame(pkt));
    auto got = net_.readTun(kWait);
    ASSERT_TRUE(got.has_value()) << "nothing arrived on the TUN device";
    EXPECT_EQ(*got, pkt) << "got " << hexDump(got->data(), got->size());
  }

  IngressRedirectCounters counters() {
    auto c = redirect_->counters();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.value_or(IngressRedirectCounters{});
  }

  FlowState state(const FlowKey& k) {
    auto s = redirect_->flowState(k);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.value_or(FlowState{});
  }

  bool gone(const FlowKey& k) {
    return redirect_->flowState(k).status().code() == absl::StatusCode::kNotFound;
  }

  // Every record the program pushed since the last call.
  std::vector<FlowDone> done() {
    std::vector<FlowDone> out;
    const size_t n = redirect_->consumeDone([&](const FlowDone& d) { out.push_back(d); });
    EXPECT_EQ(n, out.size());
    return out;
  }

  // A crafted TCP segment of the conn kFarClient(6):cport -> VIP:80, real server rip:8080.
  static Bytes segment(bool v6, bool from_server, uint16_t cport, uint8_t flags) {
    const char* client = v6 ? kFarClient6 : kFarClient;
    const char* vip = v6 ? kVip6 : kVip;
    const char* rip = v6 ? kRip6 : kRip;
    return from_server ? PacketBuilder::tcp(rip, 8080, client, cport, flags).payload("s").build()
                       : PacketBuilder::tcp(client, cport, vip, 80, flags).payload("c").build();
  }

  // Sends segment() and expects it forwarded (rewritten) to the other side.
  void forwardSeg(bool v6, bool from_server, uint16_t cport, uint8_t flags) {
    SCOPED_TRACE(absl::StrCat(from_server ? "server " : "client ", "flags 0x", absl::Hex(flags)));
    const Bytes seg = segment(v6, from_server, cport, flags);
    auto p = from_server ? forwardTcp(true, seg, 80, cport) : forwardTcp(false, seg, cport, 8080);
    ASSERT_TRUE(p.has_value()) << "not forwarded";
    EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());
  }

  // Sends the crafted TCP segment `seg` from C (or S) and returns it as S (or C) received it,
  // identified by its (rewritten) ports and its flags; nullopt when it did not arrive.
  std::optional<Bytes> forwardTcp(bool from_server,
                                  const Bytes& seg,
                                  uint16_t new_sport,
                                  uint16_t new_dport) {
    if (!(from_server ? net_.sendFrameFromServer(seg) : net_.sendFrame(seg)))
      return std::nullopt;
    const uint8_t flags = tcpFlags(seg);
    return BpfNetns::nextCaptured(from_server ? cap_c_ : cap_s_, kWait, [&](const Bytes& p) {
      return toPort(IPPROTO_TCP, new_dport)(p) && sport(p) == new_sport && tcpFlags(p) == flags;
    });
  }

  // Reads the TUN device up to two markers, sent now: one from C to the VIP and one from S to
  // the LIP, both lbd's by the dsts rule (no flow entry matches them). Frames from one sender
  // stay in order (one veth queue, one CPU backlog: BpfNetns pins this thread to one CPU), so
  // once both markers were read, every packet sent before them was handled: a packet that had
  // taken the old path would have come first. Returns the packets read before the markers that
  // `unwanted` accepts; fails the test when a marker does not arrive within kWait.
  std::vector<Bytes> tunBeforeMarkers(const std::function<bool(const Bytes&)>& unwanted) {
    static uint32_t seq = 0;
    const std::string tag = absl::StrCat("marker ", ++seq);
    const Bytes from_c = PacketBuilder::udp(kClient, 5000, kVip, 53).payload(tag).build();
    const Bytes from_s = PacketBuilder::udp(kRip, 5000, kLip, 53).payload(tag).build();
    std::vector<Bytes> seen;
    if (!net_.sendFrame(from_c) || !net_.sendFrameFromServer(from_s)) {
      ADD_FAILURE() << "could not send the markers";
      return seen;
    }
    bool got_c = false, got_s = false;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!(got_c && got_s)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      std::optional<Bytes> p;
      if (left.count() <= 0 || !(p = net_.readTun(left))) {
        ADD_FAILURE() << "marker " << (got_c ? "from S" : "from C")
                      << " did not reach the TUN device";
        return seen;
      }
      if (*p == from_c) {
        got_c = true;
      } else if (*p == from_s) {
        got_s = true;
      } else if (unwanted(*p)) {
        seen.push_back(*p);
      }
    }
    return seen;
  }

  // Whether a TCP segment took the old path (reached the TUN device) before the markers. Other
  // packets are skipped: C answers the segments to kFarClient, which it cannot route, with ICMP
  // errors to the VIP, and those reach the TUN device the old way.
  bool tcpOnTun() {
    const std::vector<Bytes> tcp = tunBeforeMarkers(
        [](const Bytes& p) { return p.size() >= l3Len(p) && l4Proto(p) == IPPROTO_TCP; });
    for (const Bytes& p : tcp)
      ADD_FAILURE() << "on the TUN device: " << hexDump(p.data(), p.size());
    return !tcp.empty();
  }

  void udpRoundTrip(bool v6, bool full_nat);
  void tcpCrafted(bool v6);
  void tcpLifecycle(bool v6);
  void tcpFinished(bool v6);

  BpfNetns net_;
  std::unique_ptr<IngressRedirect> redirect_;
  int cap_s_ = -1, cap_c_ = -1;
};

// Real UDP sockets in C and S; the datagrams carry CHECKSUM_PARTIAL from the sender's veth.
void FlowOffloadTest::udpRoundTrip(bool v6, bool full_nat) {
  const IpAddr client = ip(v6 ? kClient6 : kClient), vip = ip(v6 ? kVip6 : kVip);
  const IpAddr rip = ip(v6 ? kRip6 : kRip), lip = ip(v6 ? kLip6 : kLip);
  uint16_t cport = 0, rport = 0;
  const uint16_t vport = 8053, lport = 40123;
  int cs = udpSocket(Ns::kClient, client, &cport);
  int ss = udpSocket(Ns::kServer, rip, &rport);
  ASSERT_GE(cs, 0);
  ASSERT_GE(ss, 0);
  const IpAddr src = full_nat ? lip : client;  // what S sees
  const uint16_t src_port = full_nat ? lport : cport;
  const FlowKey in{L4Proto::kUdp, client, vip, cport, vport};
  const FlowKey out{L4Proto::kUdp, rip, src, rport, src_port};
  addConnection(in, {src, rip, src_port, rport}, out, {vip, client, vport, cport});
  const int64_t before = monoNs();

  ASSERT_TRUE(sendDatagram(cs, vip, vport, "request"));
  auto d = recvDatagram(ss);
  ASSERT_TRUE(d.has_value()) << "the server got nothing";
  EXPECT_EQ(d->payload, "request");
  EXPECT_EQ(d->from, src) << d->from.toString();
  EXPECT_EQ(d->port, src_port);
  bool partial = false;
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, rport), &partial);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(ttl(*p), 63) << "TTL / hop limit decremented once";
  EXPECT_EQ(srcAddr(*p), src);
  EXPECT_EQ(dstAddr(*p), rip);
  EXPECT_TRUE(l4ChecksumOk(*p, partial))
      << (partial ? "partial " : "") << hexDump(p->data(), p->size());
  RecordProperty("server_saw_partial_csum", partial ? 1 : 0);

  ASSERT_TRUE(sendDatagram(ss, src, src_port, "reply"));
  auto r = recvDatagram(cs);
  ASSERT_TRUE(r.has_value()) << "the client got no reply";
  EXPECT_EQ(r->payload, "reply");
  EXPECT_EQ(r->from, vip) << r->from.toString();
  EXPECT_EQ(r->port, vport);
  auto q = BpfNetns::nextCaptured(cap_c_, kWait, toPort(IPPROTO_UDP, cport), &partial);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(ttl(*q), 63);
  EXPECT_TRUE(l4ChecksumOk(*q, partial)) << hexDump(q->data(), q->size());

  const uint64_t hdrs = (v6 ? 40 : 20) + 8;
  FlowState a = state(in), b = state(out);
  EXPECT_EQ(a.packets, 1u);
  EXPECT_EQ(a.bytes, hdrs + 7);
  EXPECT_GE(a.last_ns, before);
  EXPECT_LE(a.last_ns, monoNs());
  EXPECT_FALSE(a.closed);
  EXPECT_EQ(b.packets, 1u);
  EXPECT_EQ(b.bytes, hdrs + 5);
  EXPECT_GE(b.last_ns, a.last_ns);
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, 2u);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_dropped, 0u);
  EXPECT_EQ(c.flow_done, 0u) << "UDP is never finished by the program";
  EXPECT_TRUE(done().empty());
  for (const Bytes& stray : tunBeforeMarkers([](const Bytes&) { return true; }))
    ADD_FAILURE() << "on the TUN device: " << hexDump(stray.data(), stray.size());
  close(cs);
  close(ss);
}

TEST_F(FlowOffloadTest, UdpNatV4RoundTrip) {
  udpRoundTrip(false, false);
}

TEST_F(FlowOffloadTest, UdpFullNatV4RoundTrip) {
  udpRoundTrip(false, true);
}

TEST_F(FlowOffloadTest, UdpNatV6RoundTrip) {
  udpRoundTrip(true, false);
}

TEST_F(FlowOffloadTest, UdpFullNatV6RoundTrip) {
  udpRoundTrip(true, true);
}

// Crafted TCP segments with complete checksums: the program's incremental update must leave
// a checksum that verifies from scratch.
void FlowOffloadTest::tcpCrafted(bool v6) {
  const char* client = v6 ? kFarClient6 : kFarClient;
  const char* vip = v6 ? kVip6 : kVip;
  const char* rip = v6 ? kRip6 : kRip;
  addNat(L4Proto::kTcp, ip(client), 40000, ip(vip), 80, ip(rip), 8080);
  Bytes seg = PacketBuilder::tcp(client, 40000, vip, 80, 0x18).payload("segment").build();
  ASSERT_TRUE(net_.sendFrame(seg));
  bool partial = true;
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_TCP, 8080), &partial);
  ASSERT_TRUE(p.has_value()) << "the server side saw nothing";
  EXPECT_FALSE(partial);
  EXPECT_EQ(srcAddr(*p), ip(client));
  EXPECT_EQ(dstAddr(*p), ip(rip));
  EXPECT_EQ(sport(*p), 40000);
  EXPECT_EQ(dport(*p), 8080);
  EXPECT_EQ(ttl(*p), 63);
  EXPECT_EQ(p->size(), seg.size());
  EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());

  Bytes ans = PacketBuilder::tcp(rip, 8080, client, 40000, 0x10).payload("answer").build();
  ASSERT_TRUE(net_.sendFrameFromServer(ans));
  auto q = BpfNetns::nextCaptured(cap_c_, kWait, toPort(IPPROTO_TCP, 40000), &partial);
  ASSERT_TRUE(q.has_value()) << "the client side saw nothing";
  EXPECT_EQ(srcAddr(*q), ip(vip));
  EXPECT_EQ(dstAddr(*q), ip(client));
  EXPECT_EQ(sport(*q), 80);
  EXPECT_EQ(ttl(*q), 63);
  EXPECT_TRUE(checksumsValid(*q)) << hexDump(q->data(), q->size());
  EXPECT_EQ(counters().flow_forwarded, 2u);
}

TEST_F(FlowOffloadTest, TcpV4RewrittenWithValidChecksum) {
  tcpCrafted(false);
}

TEST_F(FlowOffloadTest, TcpV6RewrittenWithValidChecksum) {
  tcpCrafted(true);
}

// A conn installed right after the client's SYN, as lbd does (a worker's FlowWriter, a cookie,
// the reply flag): the whole rest of the handshake and the teardown is forwarded by the
// program, which records ACK and FIN per direction; the last ACK after both FINs finishes the
// conn: one `done` record with both entries' final state, both entries deleted.
void FlowOffloadTest::tcpLifecycle(bool v6) {
  const char* client = v6 ? kFarClient6 : kFarClient;
  const char* vip = v6 ? kVip6 : kVip;
  const char* rip = v6 ? kRip6 : kRip;
  const uint64_t cookie = 0xc00c1e0000000000ull | (v6 ? 6 : 4);
  const FlowKey in{L4Proto::kTcp, ip(client), ip(vip), 40100, 80};
  const FlowKey out{L4Proto::kTcp, ip(rip), ip(client), 8080, 40100};
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->add(in, {ip(client), ip(rip), 40100, 8080}, out, cookie, false), 0);
  ASSERT_EQ(w->add(out, {ip(vip), ip(client), 80, 40100}, in, cookie, true), 0);
  const int64_t before = monoNs();

  const struct {
    bool from_server;
    uint8_t flags;
    const char* name;
  } steps[] = {{true, 0x12, "SYN-ACK"},  {false, 0x10, "ACK"},    {false, 0x18, "request"},
               {true, 0x18, "response"}, {true, 0x11, "FIN-ACK"}, {false, 0x11, "FIN-ACK"},
               {true, 0x10, "last ACK"}};

  uint64_t bytes[2] = {};  // in, out
  for (const auto& st : steps) {
    SCOPED_TRACE(absl::StrCat(st.from_server ? "server " : "client ", st.name));
    Bytes seg = segment(v6, st.from_server, 40100, st.flags);
    bytes[st.from_server ? 1 : 0] += seg.size();
    auto p =
        st.from_server ? forwardTcp(true, seg, 80, 40100) : forwardTcp(false, seg, 40100, 8080);
    ASSERT_TRUE(p.has_value()) << "not forwarded";
    EXPECT_EQ(srcAddr(*p), ip(st.from_server ? vip : client));
    EXPECT_EQ(dstAddr(*p), ip(st.from_server ? client : rip));
    EXPECT_EQ(ttl(*p), 63);
    EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());
    if (st.flags == 0x12) {  // the SYN-ACK records nothing
      FlowState o = state(out);
      EXPECT_EQ(o.packets, 1u);
      EXPECT_FALSE(o.ack || o.fin || o.rst || o.closed);
    }
    if (st.flags != 0x10 || st.name != std::string("last ACK")) {
      EXPECT_TRUE(redirect_->flowState(in).ok() && redirect_->flowState(out).ok())
          << "only the last ACK finishes the conn";
      EXPECT_TRUE(done().empty());
    }
  }
  EXPECT_TRUE(gone(in)) << "the last ACK deleted the client's entry";
  EXPECT_TRUE(gone(out)) << "and the server's";
  std::vector<FlowDone> d = done();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cookie, cookie);
  const FlowState& a = d[0].in;
  const FlowState& b = d[0].out;
  EXPECT_EQ(a.packets, 3u);
  EXPECT_EQ(b.packets, 4u);
  EXPECT_EQ(a.bytes, bytes[0]);
  EXPECT_EQ(b.bytes, bytes[1]);
  EXPECT_GE(a.last_ns, before);
  EXPECT_GE(b.last_ns, a.last_ns) << "the server's last ACK came last";
  EXPECT_LE(b.last_ns, monoNs());
  EXPECT_TRUE(a.ack && a.fin && b.ack && b.fin);
  EXPECT_FALSE(a.rst || b.rst || a.closed || b.closed);
  EXPECT_TRUE(done().empty()) << "consumed once";
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, 7u);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_done, 1u);
  EXPECT_FALSE(tcpOnTun());
  // A retransmitted FIN after that is lbd's again (the old path: the VIP is in dsts). ICMP
  // errors from C (see tcpOnTun) may come first.
  const Bytes fin = segment(v6, false, 40100, 0x11);
  ASSERT_TRUE(net_.sendFrame(fin));
  std::optional<Bytes> got;
  while ((got = net_.readTun(kWait)) && l4Proto(*got) != IPPROTO_TCP) {
  }
  ASSERT_TRUE(got.has_value()) << "the retransmitted FIN did not reach the TUN device";
  EXPECT_EQ(*got, fin);
  EXPECT_TRUE(done().empty());
}

TEST_F(FlowOffloadTest, TcpV4HandshakeToTeardownForwarded) {
  tcpLifecycle(false);
}

TEST_F(FlowOffloadTest, TcpV6HandshakeToTeardownForwarded) {
  tcpLifecycle(true);
}

// Each forwarded segment ORs exactly its bits into the entry it matched: ACK iff ACK without
// SYN, FIN. The entry stays open and keeps forwarding (an RST finishes the conn: below).
TEST_F(FlowOffloadTest, ForwardedTcpFlagsAreRecordedPerEntry) {
  const struct {
    bool from_server;
    uint8_t flags;
    bool ack, fin, rst;
    const char* name;
  } cases[] = {
      {true, 0x12, false, false, false, "SYN-ACK"}, {false, 0x10, true, false, false, "ACK"},
      {false, 0x18, true, false, false, "PSH-ACK"}, {false, 0x01, false, true, false, "FIN"},
      {true, 0x11, true, true, false, "FIN-ACK"},
  };

  uint16_t cport = 41000;
  uint64_t forwarded = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(absl::StrCat(tc.from_server ? "server " : "client ", tc.name));
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out);
    auto build = [&](uint8_t flags) {
      return tc.from_server ? PacketBuilder::tcp(kRip, 8080, kFarClient, cport, flags).build()
                            : PacketBuilder::tcp(kFarClient, cport, kVip, 80, flags).build();
    };
    const uint16_t new_sport = tc.from_server ? 80 : cport;
    const uint16_t new_dport = tc.from_server ? cport : 8080;
    auto p = forwardTcp(tc.from_server, build(tc.flags), new_sport, new_dport);
    ASSERT_TRUE(p.has_value()) << "not forwarded";
    EXPECT_EQ(srcAddr(*p), ip(tc.from_server ? kVip : kFarClient));
    EXPECT_EQ(dstAddr(*p), ip(tc.from_server ? kFarClient : kRip));
    EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());
    const FlowKey& hit = tc.from_server ? out : in;
    const FlowKey& other = tc.from_server ? in : out;
    FlowState h = state(hit), o = state(other);
    EXPECT_EQ(h.packets, 1u);
    EXPECT_EQ(h.ack, tc.ack);
    EXPECT_EQ(h.fin, tc.fin);
    EXPECT_EQ(h.rst, tc.rst);
    EXPECT_FALSE(h.closed);
    EXPECT_EQ(o.packets, 0u);
    EXPECT_FALSE(o.ack || o.fin || o.rst || o.closed) << "the reverse entry is untouched";
    // Still open: a plain ACK after it is forwarded too and adds only ACK.
    ASSERT_TRUE(forwardTcp(tc.from_server, build(0x10), new_sport, new_dport).has_value());
    h = state(hit);
    EXPECT_EQ(h.packets, 2u);
    EXPECT_TRUE(h.ack);
    EXPECT_EQ(h.fin, tc.fin);
    EXPECT_EQ(h.rst, tc.rst);
    forwarded += 2;
  }
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, forwarded);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_done, 0u);
  EXPECT_TRUE(done().empty());
  EXPECT_FALSE(tcpOnTun());
}

// An RST from either side, with or without ACK, in any state, is forwarded and finishes the
// conn at once: its record carries the RST on the direction that sent it, entries are gone.
TEST_F(FlowOffloadTest, RstIsForwardedAndFinishesTheConn) {
  const struct {
    bool from_server;
    uint8_t flags;
    bool data_first;  // established with data both ways first; else right after the SYN
    const char* name;
  } cases[] = {
      {false, 0x04, false, "client RST after the SYN"},
      {true, 0x14, false, "server RST-ACK refusing the SYN"},
      {false, 0x14, true, "client RST-ACK mid-conn"},
      {true, 0x04, true, "server RST mid-conn"},
  };

  uint16_t cport = 44000;
  uint64_t n = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    FlowKey in, out;
    const uint64_t cookie = 1000 + n;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out, cookie);
    uint64_t in_pkts = 0, out_pkts = 0;
    if (tc.data_first) {
      forwardSeg(false, true, cport, 0x12);
      forwardSeg(false, false, cport, 0x18);
      forwardSeg(false, true, cport, 0x18);
      in_pkts = 1;
      out_pkts = 2;
    }
    forwardSeg(false, tc.from_server, cport, tc.flags);
    (tc.from_server ? out_pkts : in_pkts) += 1;
    ++n;
    EXPECT_TRUE(gone(in));
    EXPECT_TRUE(gone(out));
    std::vector<FlowDone> d = done();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].cookie, cookie);
    const FlowState& rst_side = tc.from_server ? d[0].out : d[0].in;
    const FlowState& other = tc.from_server ? d[0].in : d[0].out;
    EXPECT_TRUE(rst_side.rst);
    EXPECT_FALSE(other.rst);
    EXPECT_FALSE(rst_side.fin || other.fin || rst_side.closed || other.closed);
    EXPECT_EQ(d[0].in.packets, in_pkts);
    EXPECT_EQ(d[0].out.packets, out_pkts);
    EXPECT_EQ(counters().flow_done, n);
  }
  EXPECT_EQ(counters().flow_slow, 0u);
  EXPECT_FALSE(tcpOnTun());
}

// A full ring: the program forwards the RST but leaves the entries (with their RST) for lbd's
// periodic reads, pushing nothing. Once lbd consumed the ring, conns finish again.
TEST_F(FlowOffloadTest, FullDoneRingLeavesTheEntries) {
  constexpr uint32_t kRecord = 8 + sizeof(lb_bpf_flow_done);  // ring header + record
  constexpr uint32_t kFits = LB_BPF_DONE_BYTES / kRecord;
  constexpr uint32_t kConns = kFits + 50;
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  auto keys = [](uint32_t i) {
    const uint16_t cport = static_cast<uint16_t>(10000 + i);
    return std::pair<FlowKey, FlowKey>{{L4Proto::kTcp, ip(kFarClient), ip(kVip), cport, 80},
                                       {L4Proto::kTcp, ip(kRip), ip(kFarClient), 8080, cport}};
  };
  for (uint32_t i = 0; i < kConns; ++i) {
    auto [in, out] = keys(i);
    ASSERT_EQ(w->add(in, {in.saddr, ip(kRip), in.sport, 8080}, out, i, false), 0);
    ASSERT_EQ(w->add(out, {ip(kVip), in.saddr, 80, in.sport}, in, i, true), 0);
  }
  for (uint32_t i = 0; i < kConns; ++i) {
    ASSERT_TRUE(net_.sendFrame(
        PacketBuilder::tcp(kFarClient, keys(i).first.sport, kVip, 80, 0x04).build()));
  }
  for (int t = 0; t < 500 && counters().flow_forwarded < kConns; ++t)
    usleep(10'000);
  IngressRedirectCounters c = counters();
  ASSERT_EQ(c.flow_forwarded, kConns) << "every RST is forwarded, ring full or not";
  EXPECT_EQ(c.flow_done, kFits);
  uint32_t left = 0, last_left = 0;
  for (uint32_t i = 0; i < kConns; ++i) {
    auto [in, out] = keys(i);
    auto s = redirect_->flowState(in);
    if (s.ok()) {
      EXPECT_TRUE(s->rst);
      EXPECT_TRUE(redirect_->flowState(out).ok());
      ++left;
      last_left = i;
    } else {
      EXPECT_TRUE(gone(out));
    }
  }
  EXPECT_EQ(left, kConns - kFits);
  std::vector<FlowDone> d = done();
  EXPECT_EQ(d.size(), kFits);
  // Room again: the next RST of a conn left behind finishes it.
  ASSERT_TRUE(net_.sendFrame(
      PacketBuilder::tcp(kFarClient, keys(last_left).first.sport, kVip, 80, 0x04).build()));
  for (int t = 0; t < 200 && counters().flow_done == kFits; ++t)
    usleep(10'000);
  d = done();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cookie, last_left);
  EXPECT_EQ(d[0].in.packets, 2u);
  EXPECT_TRUE(gone(keys(last_left).first));
}

// Closes the program does not finish: the entries stay (flags recorded) for lbd's periodic
// reads, and no record is pushed. The last ACK must come from a direction that sent its FIN,
// after the other direction's FIN, and carry neither FIN nor SYN.
TEST_F(FlowOffloadTest, CloseWithoutASeparateLastAckLeavesTheEntries) {
  const struct {
    std::vector<std::pair<bool, uint8_t>> segs;  // (from_server, flags)
    const char* name;
  } cases[] = {
      // Both FINs; the final ACK is never sent (or takes another path).
      {{{true, 0x18}, {false, 0x11}, {true, 0x11}}, "both FINs, no last ACK"},
      // One side closed; the other keeps ACKing and sending data.
      {{{false, 0x11}, {true, 0x10}, {true, 0x18}, {false, 0x10}}, "half-closed"},
      // A side ACKs after its own FIN, but the other side's FIN has not come.
      {{{true, 0x11}, {true, 0x10}, {false, 0x10}}, "ACK after own FIN only"},
      // The second FIN carries the ACK (FIN-ACK is not the last ACK).
      {{{false, 0x11}, {true, 0x11}, {false, 0x11}}, "FIN-ACK retransmitted"},
  };

  uint16_t cport = 45000;
  uint64_t fwd = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out, 7);
    for (const auto& [from_server, flags] : tc.segs) {
      forwardSeg(false, from_server, cport, flags);
      ++fwd;
    }
    FlowState a = state(in), b = state(out);
    EXPECT_EQ(a.packets + b.packets, tc.segs.size());
    EXPECT_FALSE(a.rst || b.rst || a.closed || b.closed);
    EXPECT_TRUE(done().empty());
  }
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, fwd);
  EXPECT_EQ(c.flow_done, 0u);
  EXPECT_FALSE(tcpOnTun());
}

// A SYN without ACK (a new connection on the tuple, or the client retransmitting its SYN)
// closes both directions and takes the old path, as do later packets of either direction.
TEST_F(FlowOffloadTest, SynWithoutAckClosesBothDirections) {
  uint16_t cport = 42000;
  uint64_t slow = 0;
  for (bool after_data : {false, true}) {
    SCOPED_TRACE(after_data ? "after data" : "retransmitted SYN");
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out);
    uint64_t fwd = 0;
    if (after_data) {
      ASSERT_TRUE(
          forwardTcp(false,
                     PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x18).payload("a").build(),
                     cport, 8080)
              .has_value());
      fwd = 1;
    }
    EXPECT_FALSE(state(in).closed);
    expectOldPath(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x02).build());
    FlowState a = state(in), b = state(out);
    EXPECT_TRUE(a.closed);
    EXPECT_TRUE(b.closed) << "the reverse entry closes with it";
    EXPECT_FALSE(a.fin || a.rst || b.ack || b.fin || b.rst) << "the SYN records nothing else";
    EXPECT_EQ(a.ack, after_data);
    expectOldPath(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x10).payload("b").build());
    // The server's SYN-ACK is not the program's either (no dsts/replies match here: the kernel).
    ASSERT_TRUE(
        net_.sendFrameFromServer(PacketBuilder::tcp(kRip, 8080, kFarClient, cport, 0x12).build()));
    slow += 3;
    for (int i = 0; i < 100 && counters().flow_slow < slow; ++i)
      usleep(10'000);
    EXPECT_EQ(counters().flow_slow, slow);
    EXPECT_EQ(state(in).packets, fwd);
    EXPECT_EQ(state(out).packets, 0u);
    EXPECT_FALSE(state(out).ack);
  }
}

// A segment that takes the slow path (here: no neighbour for the real server) records nothing:
// lbd sees it itself.
TEST_F(FlowOffloadTest, SlowPathSegmentsRecordNoFlags) {
  FlowKey in;
  addNat(L4Proto::kTcp, ip(kFarClient), 43000, ip(kVip), 80, ip("198.18.94.99"), 8080, &in);
  expectOldPath(PacketBuilder::tcp(kFarClient, 43000, kVip, 80, 0x11).build());
  expectOldPath(PacketBuilder::tcp(kFarClient, 43000, kVip, 80, 0x14).build());
  FlowState s = state(in);
  EXPECT_EQ(s.packets, 0u);
  EXPECT_FALSE(s.ack || s.fin || s.rst || s.closed);
  EXPECT_EQ(counters().flow_slow, 2u);
  EXPECT_EQ(counters().flow_done, 0u) << "an RST that was not forwarded finishes nothing";
  EXPECT_TRUE(done().empty());
}

// A flow the FIB cannot forward right now takes the old path and stays open.
TEST_F(FlowOffloadTest, NoNeighbourUnroutableAndTooBigTakeTheOldPath) {
  FlowKey no_neigh, unroutable, big;
  addNat(L4Proto::kUdp, ip(kFarClient), 1001, ip(kVip), 53, ip("198.18.94.99"), 53, &no_neigh);
  addNat(L4Proto::kUdp, ip(kFarClient), 1002, ip(kVip), 53, ip("198.18.99.1"), 53, &unroutable);
  addNat(L4Proto::kUdp, ip(kFarClient), 1003, ip(kVip), 53, ip(kRip), 5353, &big);
  expectOldPath(PacketBuilder::udp(kFarClient, 1001, kVip, 53).payload("no neighbour").build());
  expectOldPath(PacketBuilder::udp(kFarClient, 1002, kVip, 53).payload("no route").build());
  // Egress MTU 1000: a 1200-byte datagram (no GSO) is the kernel's to fragment or refuse.
  ASSERT_TRUE(net_.ipInB("link set vbs mtu 1000"));
  expectOldPath(PacketBuilder::udp(kFarClient, 1003, kVip, 53).payloadSize(1172).build());
  EXPECT_EQ(counters().flow_slow, 3u);
  for (const FlowKey& k : {no_neigh, unroutable, big}) {
    FlowState s = state(k);
    EXPECT_FALSE(s.closed);
    EXPECT_EQ(s.packets, 0u);
  }
  // The same flow still forwards what fits.
  ASSERT_TRUE(
      net_.sendFrame(PacketBuilder::udp(kFarClient, 1003, kVip, 53).payloadSize(900).build()));
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->size(), 928u);
  EXPECT_TRUE(checksumsValid(*p));
  EXPECT_EQ(state(big).packets, 1u);
  EXPECT_EQ(state(big).bytes, 928u);
  EXPECT_EQ(counters().flow_forwarded, 1u);
}

TEST_F(FlowOffloadTest, RemovedFlowTakesTheOldPath) {
  FlowKey in, out;
  addNat(L4Proto::kUdp, ip(kFarClient6), 2000, ip(kVip6), 53, ip(kRip6), 5353, &in, &out);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient6, 2000, kVip6, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  ASSERT_TRUE(redirect_->removeFlow(in).ok());
  expectOldPath(PacketBuilder::udp(kFarClient6, 2000, kVip6, 53).build());
  EXPECT_EQ(redirect_->flowState(in).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(redirect_->removeFlow(in).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(redirect_->flowState(out).ok());
  EXPECT_EQ(counters().flow_slow, 0u) << "a miss is not a slow flow";
}

TEST_F(FlowOffloadTest, AddFlowRejectsMixedFamiliesAndOtherProtocols) {
  const FlowKey v4{L4Proto::kUdp, ip(kClient), ip(kVip), 1, 2};
  const FlowKey mixed{L4Proto::kUdp, ip(kClient), ip(kVip6), 1, 2};
  const FlowKey icmp{L4Proto::kIcmp, ip(kClient), ip(kVip), 1, 2};
  const FlowRewrite rw4{ip(kClient), ip(kRip), 1, 2};
  const FlowRewrite rw6{ip(kClient6), ip(kRip6), 1, 2};
  EXPECT_EQ(redirect_->addFlow(mixed, rw4, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(v4, rw6, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(icmp, rw4, v4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redirect_->addFlow(v4, rw4, mixed).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(redirect_->addFlow(v4, rw4, v4).ok());
  EXPECT_TRUE(redirect_->addFlow(v4, rw4, v4).ok()) << "replaces";
}

// A worker's writer: BPF_NOEXIST, errnos, no Status.
TEST_F(FlowOffloadTest, FlowWriterAddsOnlyAbsentKeys) {
  FlowWriter none;
  EXPECT_FALSE(none.valid());
  const FlowKey in{L4Proto::kUdp, ip(kFarClient), ip(kVip), 3000, 53};
  const FlowKey out{L4Proto::kUdp, ip(kRip), ip(kFarClient), 5353, 3000};
  const FlowRewrite rw{ip(kFarClient), ip(kRip), 3000, 5353};
  EXPECT_EQ(none.add(in, rw, out), EBADF);
  EXPECT_EQ(none.remove(in), EBADF);

  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(w->valid());
  ASSERT_EQ(w->add(in, rw, out), 0);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient, 3000, kVip, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  EXPECT_EQ(state(in).packets, 1u);

  // Another rewrite for the same key: refused, the entry (rewrite and counters) unchanged.
  const FlowRewrite other{ip(kFarClient), ip(kRip), 3000, 5454};
  EXPECT_EQ(w->add(in, other, out), EEXIST);
  EXPECT_EQ(state(in).packets, 1u);
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kFarClient, 3000, kVip, 53).build()));
  ASSERT_TRUE(BpfNetns::nextCaptured(cap_s_, kWait, toPort(IPPROTO_UDP, 5353)).has_value());
  EXPECT_EQ(state(in).packets, 2u);

  // Moving hands the fd over.
  FlowWriter moved = std::move(*w);
  EXPECT_FALSE(w->valid());
  EXPECT_TRUE(moved.valid());
  EXPECT_EQ(moved.remove(in), 0);
  EXPECT_EQ(moved.remove(in), ENOENT);
  EXPECT_EQ(redirect_->flowState(in).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(moved.add(in, other, out), 0);
  EXPECT_EQ(state(in).packets, 0u);
}

TEST_F(FlowOffloadTest, FlowWriterReportsAFullMap) {
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  const FlowRewrite rw{ip(kFarClient6), ip(kRip6), 1, 2};
  FlowKey k{L4Proto::kUdp, ip(kFarClient6), ip(kVip6), 0, 53};
  int err = 0;
  uint32_t added = 0;
  for (uint32_t i = 0; i < 200'000 && err == 0; ++i) {
    k.sport = static_cast<uint16_t>(i);
    k.dport = static_cast<uint16_t>(53 + (i >> 16));
    err = w->add(k, rw, k);
    added += err == 0 ? 1 : 0;
  }
  EXPECT_TRUE(err == E2BIG || err == ENOMEM) << strerror(err);
  EXPECT_EQ(added, 131072u) << "LB_BPF_MAX_FLOWS";
}

// The writer's fd keeps the map alive: after the IngressRedirect is gone its writes go to an
// orphaned map, harmlessly.
TEST_F(FlowOffloadTest, FlowWriterOutlivesIngressRedirect) {
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  redirect_.reset();
  const FlowKey k{L4Proto::kTcp, ip(kFarClient), ip(kVip), 4000, 80};
  EXPECT_EQ(w->add(k, {ip(kFarClient), ip(kRip), 4000, 8080}, k), 0);
  EXPECT_EQ(w->add(k, {ip(kFarClient), ip(kRip), 4000, 8080}, k), EEXIST);
  EXPECT_EQ(w->remove(k), 0);
  // Nothing is attached any more: a packet of the flow takes the kernel path (B has no route to
  // the VIP: dropped). A marker to S's own address after it, which B's kernel forwards, is the
  // next packet S receives of the two: the segment was not forwarded behind it (the same veth
  // queue and CPU backlog keep them in order).
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::tcp(kFarClient, 4000, kVip, 80, 0x10).build()));
  ASSERT_TRUE(net_.sendFrame(PacketBuilder::udp(kClient, 5000, kRip, 5000).build()));
  auto p = BpfNetns::nextCaptured(cap_s_, kWait, [](const Bytes& q) {
    return toPort(IPPROTO_TCP, 8080)(q) || toPort(IPPROTO_UDP, 5000)(q);
  });
  ASSERT_TRUE(p.has_value()) << "the marker did not reach S";
  EXPECT_EQ(l4Proto(*p), IPPROTO_UDP) << "forwarded: " << hexDump(p->data(), p->size());
}

}  // namespace
}  // namespace lb::io
