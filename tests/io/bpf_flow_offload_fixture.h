// SPDX-License-Identifier: Apache-2.0
// The fixture of the established-flow fast path tests of IngressRedirect (flows map), in three
// real namespaces (label integration, needs root): client C -- balancer B (program on both
// veths, TUN device) -- server S. Flow entries are installed by hand with addFlow (or a
// FlowWriter), as lbd would for a NAT or full-NAT connection (TCP: right after the client's
// SYN); B's kernel has no route or NAT that could deliver these packets rewritten, so a
// rewritten packet in C or S can only come from the program, and a packet on the TUN fd took
// the old path. Tests: bpf_flow_offload_test.cc (forwarding, the old path, the map and its
// writer), bpf_flow_offload_tcp_test.cc (the TCP state the program records and finishes).
#pragma once

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

namespace lb::io::flow_offload_test {

using ::lb::testing::checksumsValid;
using ::lb::testing::hexDump;
using ::lb::testing::ip;
using ::lb::testing::PacketBuilder;
using Bytes = std::vector<uint8_t>;
using Ns = BpfNetns::Ns;

inline constexpr const char* kVip = "198.18.91.1";
inline constexpr const char* kVip6 = "2001:2:91::1";
inline constexpr const char* kClient = "198.18.90.1";
inline constexpr const char* kClient6 = "2001:2:90::1";
inline constexpr const char* kFarClient = "198.18.93.7";  // routed by B via C; S has no route back
inline constexpr const char* kFarClient6 = "2001:2:93::7";
inline constexpr const char* kRip = "198.18.94.1";  // S
inline constexpr const char* kRip6 = "2001:2:94::1";
inline constexpr const char* kLip = "198.18.94.2";  // B's own address on vbs: the full-NAT source
inline constexpr const char* kLip6 = "2001:2:94::2";
inline constexpr auto kWait = std::chrono::seconds(2);

inline int64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Field accessors on an IP packet (IPv4 without options or IPv6 with the L4 header next).
inline bool isV6(const Bytes& p) {
  return !p.empty() && (p[0] >> 4) == 6;
}

inline size_t l3Len(const Bytes& p) {
  return isV6(p) ? 40 : 20;
}

inline uint8_t l4Proto(const Bytes& p) {
  return isV6(p) ? p[6] : p[9];
}

inline uint8_t ttl(const Bytes& p) {
  return isV6(p) ? p[7] : p[8];
}

inline IpAddr srcAddr(const Bytes& p) {
  return isV6(p) ? IpAddr::fromBytes(Af::kInet6, &p[8]) : IpAddr::fromBytes(Af::kInet, &p[12]);
}

inline IpAddr dstAddr(const Bytes& p) {
  return isV6(p) ? IpAddr::fromBytes(Af::kInet6, &p[24]) : IpAddr::fromBytes(Af::kInet, &p[16]);
}

inline uint16_t be16(const Bytes& p, size_t off) {
  return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

inline uint16_t sport(const Bytes& p) {
  return be16(p, l3Len(p));
}

inline uint16_t dport(const Bytes& p) {
  return be16(p, l3Len(p) + 2);
}

inline uint8_t tcpFlags(const Bytes& p) {
  return p[l3Len(p) + 13];
}

// A matcher for BpfNetns::nextCaptured: protocol and destination port.
inline std::function<bool(const Bytes&)> toPort(uint8_t proto, uint16_t port) {
  return [proto, port](const Bytes& p) {
    return p.size() >= l3Len(p) + 4 && l4Proto(p) == proto && dport(p) == port;
  };
}

// The L4 checksum: complete and valid, or (CHECKSUM_PARTIAL, as a veth hands a socket's
// packet on) the pseudo-header seed of the packet's own addresses, as tcp_v4_send_check /
// udp6_hwcsum leave it for the device.
inline bool l4ChecksumOk(const Bytes& p, bool partial) {
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

inline sockaddr_storage sockAddr(const IpAddr& a, uint16_t port, socklen_t* len) {
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

inline std::optional<Datagram> recvDatagram(int fd) {
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

  BpfNetns net_;
  std::unique_ptr<IngressRedirect> redirect_;
  int cap_s_ = -1, cap_c_ = -1;
};

}  // namespace lb::io::flow_offload_test
