// SPDX-License-Identifier: Apache-2.0
// The two-namespace topology of bpf_ingress_redirect_test: client C and balancer B joined by
// a veth pair (vc in C, vb in B), a TUN device lbdbpf0 (IFF_TUN|IFF_NO_PI|IFF_VNET_HDR) in B.
// setUp() leaves the calling thread in B (tc attach and the TUN live there); tearDown() returns
// to the original namespace and deletes both namespaces (and with them every device).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lb::io {

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

 private:
  bool sh(const std::string& cmd);
  bool enter(const std::string& ns);

  std::string ns_c_, ns_b_, error_;
  int orig_ns_ = -1;
  int tun_fd_ = -1;
  int packet_fd_ = -1;
  int tun_ifindex_ = 0;
  int veth_ifindex_ = 0;
  int c_ifindex_ = 0;
  uint8_t b_mac_[6] = {};
  uint8_t c_mac_[6] = {};
  bool created_ = false;
};

}  // namespace lb::io
