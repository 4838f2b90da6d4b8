// SPDX-License-Identifier: Apache-2.0
// The two-namespace topology of bpf_ingress_redirect_test: client C and balancer B joined by
// a veth pair (vc in C, vb in B), a TUN device lbdbpf0 (IFF_TUN|IFF_NO_PI|IFF_VNET_HDR) in B.
// setUp() leaves the calling thread in B (tc attach and the TUN live there) and pinned to one CPU
// (frames it sends are then handled in order: a marker sent after a packet proves the packet was
// handled); tearDown() returns to the original namespace and CPU set and deletes both
// namespaces (and with them every device).
// addServer() adds a third, server S, behind B (bpf_flow_offload_test).
#pragma once

#include <sched.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lb::io {

// For a fixture's SetUp(): skips the test when not root, and fails it under CI=true, where
// root is a given. SetUp() then returns when IsSkipped() or HasFatalFailure().
void requireRoot();

class BpfNetns {
 public:
  ~BpfNetns() { tearDown(); }

  bool setUp();
  void tearDown();

  const std::string& error() const { return error_; }

  int tunIfindex() const { return tun_ifindex_; }

  int vethIfindex() const { return veth_ifindex_; }

  // Sends `ip_pkt` from C as an Ethernet frame to B's MAC (or, with `otherhost`, to another
  // MAC), followed by `pad` bytes of 0xee (Ethernet padding).
  bool sendFrame(const std::vector<uint8_t>& ip_pkt, size_t pad = 0, bool otherhost = false);
  // The next packet from the TUN fd within `timeout`, without its virtio header (copied to
  // `vnet` when given, 10 bytes).
  std::optional<std::vector<uint8_t>> readTun(std::chrono::milliseconds timeout,
                                              uint8_t* vnet = nullptr);
  // A bound UDP socket in B; -1 on error.
  int udpSocketInB(const char* addr, uint16_t port);
  // Listens on addr:port in C and connects to it from B; true once established (2 s).
  bool tcpConnectFromB(const char* addr, uint16_t port);
  // A TCP socket made in C; -1 on error.
  int tcpSocketInC();
  // `ip ...` inside C (e.g. "route add ..."); true on exit status 0.
  bool ipInC(const std::string& args);

  int tunFd() const { return tun_fd_; }

  // `sh -c cmd` inside B; true on exit status 0.
  bool run(const std::string& cmd);
  bool hasClsact();
  bool hasOurFilter();

  const std::string& nsB() const { return ns_b_; }

  // Server S joined to B by a veth pair (vbs in B, vs in S): S 198.18.94.1/24 and
  // 2001:2:94::1/64, B .2 / ::2. C routes 198.18.91.0/24 and 2001:2:91::/64 (the VIPs) via B;
  // S routes C's subnets via B; B routes 198.18.93.0/24 and 2001:2:93::/64 via C, forwards,
  // and holds permanent neighbour entries for C's and S's addresses (bpf_fib_lookup does not
  // resolve). After setUp().
  bool addServer();

  int serverVethIfindex() const { return b_s_ifindex_; }

  enum class Ns { kClient, kServer };
  // A socket made in C or S; the calling thread stays in B. -1 on error.
  int socketIn(Ns ns, int domain, int type, int protocol = 0);
  // An AF_PACKET socket on C's vc or S's vs (every protocol, PACKET_AUXDATA on); -1 on error.
  int captureSocket(Ns ns);
  // The next IP packet `fd` received (not sent) within `timeout` that `match` accepts, without
  // its Ethernet header. `partial_csum`: the skb had CHECKSUM_PARTIAL (TP_STATUS_CSUMNOTREADY),
  // so the L4 checksum field holds the pseudo-header seed.
  static std::optional<std::vector<uint8_t>> nextCaptured(
      int fd,
      std::chrono::milliseconds timeout,
      const std::function<bool(const std::vector<uint8_t>&)>& match,
      bool* partial_csum = nullptr);
  // Sends `ip_pkt` from S as an Ethernet frame to B's vbs MAC.
  bool sendFrameFromServer(const std::vector<uint8_t>& ip_pkt);
  // `ip ...` inside B.
  bool ipInB(const std::string& args);

 private:
  bool sendOn(int fd,
              int ifindex,
              const uint8_t* dst_mac,
              const uint8_t* src_mac,
              const std::vector<uint8_t>& ip_pkt,
              size_t pad,
              bool otherhost);
  bool sh(const std::string& cmd);
  bool enter(const std::string& ns);

  std::string ns_c_, ns_b_, ns_s_, error_;
  int orig_ns_ = -1;
  int tun_fd_ = -1;
  int packet_fd_ = -1;
  int tun_ifindex_ = 0;
  int veth_ifindex_ = 0;
  int c_ifindex_ = 0;
  uint8_t b_mac_[6] = {};
  uint8_t c_mac_[6] = {};
  int s_packet_fd_ = -1;
  int s_ifindex_ = 0;    // vs in S
  int b_s_ifindex_ = 0;  // vbs in B
  uint8_t s_mac_[6] = {};
  uint8_t b_s_mac_[6] = {};
  bool created_ = false;
  cpu_set_t orig_affinity_{};
  bool pinned_ = false;
};

}  // namespace lb::io
