// SPDX-License-Identifier: Apache-2.0
#include "tests/io/bpf_netns.h"

#include <arpa/inet.h>
#include <errno.h>
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

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/testlib/skip.h"

namespace lb::io {

void requireRoot() {
  if (geteuid() != 0)
    LB_SKIP_UNLESS_CI("needs root");
}

namespace {

bool readMac(const char* ifname, uint8_t* mac) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return false;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  bool ok = ioctl(s, SIOCGIFHWADDR, &ifr) == 0;
  if (ok)
    std::memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  close(s);
  return ok;
}

std::string macText(const uint8_t* m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

}  // namespace

bool BpfNetns::sh(const std::string& cmd) {
  if (std::system(cmd.c_str()) == 0)
    return true;
  error_ = absl::StrCat("failed: ", cmd);
  return false;
}

bool BpfNetns::run(const std::string& cmd) {
  return sh(absl::StrCat("ip netns exec ", ns_b_, " sh -c '", cmd, "'"));
}

bool BpfNetns::enter(const std::string& ns) {
  int fd = open(absl::StrCat("/var/run/netns/", ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    error_ = absl::StrCat("setns ", ns, ": ", strerror(errno));
    if (fd >= 0)
      close(fd);
    return false;
  }
  close(fd);
  return true;
}

bool BpfNetns::setUp() {
  // Frames this thread sends are queued to the backlog of the CPU it runs on; pinned, they are
  // handled in the order sent, which the tests' markers rely on.
  if (sched_getaffinity(0, sizeof(orig_affinity_), &orig_affinity_) == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    const int cpu = sched_getcpu();
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
  }
  // A test process that died without its destructors (a crash, a sanitizer's halt_on_error) left
  // its namespaces behind; their names end in a pid that no longer runs. Sweep them first.
  (void)std::system(
      "for n in $(ip netns list 2>/dev/null | awk '/^lbdbpf-/{print $1}'); do "
      "p=${n##*-}; kill -0 \"$p\" 2>/dev/null || ip netns del \"$n\" 2>/dev/null; done");
  std::string id = std::to_string(getpid());
  ns_c_ = "lbdbpf-c-" + id;
  ns_b_ = "lbdbpf-b-" + id;
  orig_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ns_ < 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
    error_ = "no /proc/self/ns/net or /dev/net/tun";
    return false;
  }
  created_ = true;
  const std::string c = "ip -n " + ns_c_ + " ", b = "ip -n " + ns_b_ + " ";
  if (!sh("ip netns add " + ns_c_) || !sh("ip netns add " + ns_b_) ||
      !sh(c + "link add vc type veth peer name vb netns " + ns_b_) ||
      !sh(c + "addr add 198.18.90.1/24 dev vc") ||
      !sh(c + "addr add 2001:2:90::1/64 dev vc nodad") ||
      !sh(c + "addr add 198.18.92.5/32 dev lo") || !sh(c + "link set lo up") ||
      !sh(c + "link set vc up") || !sh(b + "addr add 198.18.90.2/24 dev vb") ||
      !sh(b + "addr add 2001:2:90::2/64 dev vb nodad") || !sh(b + "link set lo up") ||
      !sh(b + "link set vb up") || !sh(b + "route add 198.18.92.0/24 via 198.18.90.1"))
    return false;

  // C: the AF_PACKET sender. Sockets keep the namespace they were made in.
  if (!enter(ns_c_))
    return false;
  c_ifindex_ = static_cast<int>(if_nametoindex("vc"));
  packet_fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (c_ifindex_ == 0 || packet_fd_ < 0 || !readMac("vc", c_mac_)) {
    error_ = "AF_PACKET socket on vc";
    return false;
  }
  // B: the TUN device; the thread stays here.
  if (!enter(ns_b_))
    return false;
  veth_ifindex_ = static_cast<int>(if_nametoindex("vb"));
  if (veth_ifindex_ == 0 || !readMac("vb", b_mac_)) {
    error_ = "vb in B";
    return false;
  }
  tun_fd_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "lbdbpf0");
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  if (tun_fd_ < 0 || ioctl(tun_fd_, TUNSETIFF, &ifr) != 0) {
    error_ = absl::StrCat("TUNSETIFF: ", strerror(errno));
    return false;
  }
  // Offloads on, as lbd asks: GSO and partial checksums may cross into the reader.
  unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (ioctl(tun_fd_, TUNSETOFFLOAD, offloads) != 0) {
    error_ = absl::StrCat("TUNSETOFFLOAD: ", strerror(errno));
    return false;
  }
  tun_ifindex_ = static_cast<int>(if_nametoindex("lbdbpf0"));
  // No IPv6 on the TUN device: its router solicitations and MLD reports would land on the fd.
  return tun_ifindex_ != 0 &&
         sh("ip netns exec " + ns_b_ + " sysctl -qw net.ipv6.conf.lbdbpf0.disable_ipv6=1") &&
         sh(b + "link set lbdbpf0 up");
}

void BpfNetns::tearDown() {
  if (pinned_) {
    (void)sched_setaffinity(0, sizeof(orig_affinity_), &orig_affinity_);
    pinned_ = false;
  }
  for (int* fd : {&tun_fd_, &packet_fd_, &s_packet_fd_}) {
    if (*fd >= 0)
      close(*fd);
    *fd = -1;
  }
  if (orig_ns_ >= 0) {
    (void)setns(orig_ns_, CLONE_NEWNET);
    close(orig_ns_);
    orig_ns_ = -1;
  }
  if (created_) {
    created_ = false;
    for (const std::string& ns : {ns_c_, ns_b_, ns_s_}) {
      if (ns.empty())
        continue;
      // Whatever still runs in it first (nothing should), then the namespace.
      std::string cmd =
          absl::StrCat("pids=$(ip netns pids ", ns, " 2>/dev/null); [ -z \"$pids\" ] ",
                       "|| kill $pids; ip netns del ", ns, " 2>/dev/null");
      (void)std::system(cmd.c_str());
    }
  }
}

bool BpfNetns::sendFrame(const std::vector<uint8_t>& ip_pkt, size_t pad, bool otherhost) {
  return sendOn(packet_fd_, c_ifindex_, b_mac_, c_mac_, ip_pkt, pad, otherhost);
}

bool BpfNetns::sendFrameFromServer(const std::vector<uint8_t>& ip_pkt) {
  return sendOn(s_packet_fd_, s_ifindex_, b_s_mac_, s_mac_, ip_pkt, 0, false);
}

bool BpfNetns::sendOn(int fd,
                      int ifindex,
                      const uint8_t* dst_mac,
                      const uint8_t* src_mac,
                      const std::vector<uint8_t>& ip_pkt,
                      size_t pad,
                      bool otherhost) {
  std::vector<uint8_t> frame(14);
  std::memcpy(frame.data(), dst_mac, 6);
  if (otherhost)
    frame[5] ^= 0x55;
  std::memcpy(frame.data() + 6, src_mac, 6);
  uint16_t type = (ip_pkt[0] >> 4) == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IP;
  frame[12] = static_cast<uint8_t>(type >> 8);
  frame[13] = static_cast<uint8_t>(type);
  frame.insert(frame.end(), ip_pkt.begin(), ip_pkt.end());
  frame.insert(frame.end(), pad, 0xee);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  ssize_t n =
      sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  return n == static_cast<ssize_t>(frame.size());
}

std::optional<std::vector<uint8_t>> BpfNetns::readTun(std::chrono::milliseconds timeout,
                                                      uint8_t* vnet) {
  pollfd p{tun_fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1)
    return std::nullopt;
  std::vector<uint8_t> buf(70000);
  ssize_t n = read(tun_fd_, buf.data(), buf.size());
  constexpr size_t kVnet = 10;  // sizeof(struct virtio_net_hdr), TUN's default
  if (n < static_cast<ssize_t>(kVnet))
    return std::nullopt;
  if (vnet != nullptr)
    std::memcpy(vnet, buf.data(), kVnet);
  return std::vector<uint8_t>(buf.begin() + kVnet, buf.begin() + n);
}

int BpfNetns::udpSocketInB(const char* addr, uint16_t port) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (s >= 0)
      close(s);
    return -1;
  }
  return s;
}

bool BpfNetns::tcpConnectFromB(const char* addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (!enter(ns_c_))
    return false;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  bool listening =
      ls >= 0 && bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 && listen(ls, 4) == 0;
  if (!enter(ns_b_) || !listening) {
    error_ = "listen in C";
    if (ls >= 0)
      close(ls);
    return false;
  }
  int cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bool ok = false;
  if (cs >= 0 &&
      (connect(cs, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 || errno == EINPROGRESS)) {
    pollfd p{cs, POLLOUT, 0};
    int err = -1;
    socklen_t len = sizeof(err);
    ok =
        poll(&p, 1, 2000) == 1 && getsockopt(cs, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    if (!ok)
      error_ = absl::StrCat("connect from B: ", err < 0 ? "timeout" : strerror(err));
  }
  if (cs >= 0)
    close(cs);
  close(ls);
  return ok;
}

int BpfNetns::tcpSocketInC() {
  if (!enter(ns_c_))
    return -1;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!enter(ns_b_)) {
    if (s >= 0)
      close(s);
    return -1;
  }
  return s;
}

bool BpfNetns::ipInC(const std::string& args) {
  return sh("ip -n " + ns_c_ + " " + args);
}

bool BpfNetns::addServer() {
  ns_s_ = "lbdbpf-s-" + std::to_string(getpid());
  const std::string s = "ip -n " + ns_s_ + " ", b = "ip -n " + ns_b_ + " ",
                    c = "ip -n " + ns_c_ + " ";
  if (!sh("ip netns add " + ns_s_) ||
      !sh(s + "link add vs address 02:00:c6:12:5e:01 type veth peer name vbs netns " + ns_b_) ||
      !sh(s + "addr add 198.18.94.1/24 dev vs") ||
      !sh(s + "addr add 2001:2:94::1/64 dev vs nodad") || !sh(s + "link set lo up") ||
      !sh(s + "link set vs up") || !sh(b + "addr add 198.18.94.2/24 dev vbs") ||
      !sh(b + "addr add 2001:2:94::2/64 dev vbs nodad") || !sh(b + "link set vbs up") ||
      !sh(s + "route add 198.18.90.0/24 via 198.18.94.2") ||
      !sh(s + "-6 route add 2001:2:90::/64 via 2001:2:94::2") ||
      !sh(c + "route add 198.18.91.0/24 via 198.18.90.2") ||
      !sh(c + "-6 route add 2001:2:91::/64 via 2001:2:90::2") ||
      !sh(b + "route add 198.18.93.0/24 via 198.18.90.1") ||
      !sh(b + "-6 route add 2001:2:93::/64 via 2001:2:90::1") ||
      !sh("ip netns exec " + ns_b_ +
          " sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"))
    return false;
  const std::string cm = macText(c_mac_), sm = "02:00:c6:12:5e:01";
  if (!sh(b + "neigh replace 198.18.90.1 lladdr " + cm + " dev vb nud permanent") ||
      !sh(b + "neigh replace 2001:2:90::1 lladdr " + cm + " dev vb nud permanent") ||
      !sh(b + "neigh replace 198.18.94.1 lladdr " + sm + " dev vbs nud permanent") ||
      !sh(b + "neigh replace 2001:2:94::1 lladdr " + sm + " dev vbs nud permanent"))
    return false;
  b_s_ifindex_ = static_cast<int>(if_nametoindex("vbs"));
  if (b_s_ifindex_ == 0 || !readMac("vbs", b_s_mac_) || !enter(ns_s_)) {
    error_ = "vbs in B";
    return false;
  }
  s_ifindex_ = static_cast<int>(if_nametoindex("vs"));
  s_packet_fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  const bool ok = s_ifindex_ != 0 && s_packet_fd_ >= 0 && readMac("vs", s_mac_);
  if (!enter(ns_b_) || !ok) {
    error_ = "AF_PACKET socket on vs";
    return false;
  }
  return true;
}

int BpfNetns::socketIn(Ns ns, int domain, int type, int protocol) {
  if (!enter(ns == Ns::kClient ? ns_c_ : ns_s_))
    return -1;
  int s = socket(domain, type | SOCK_CLOEXEC, protocol);
  if (!enter(ns_b_)) {
    if (s >= 0)
      close(s);
    return -1;
  }
  return s;
}

int BpfNetns::captureSocket(Ns ns) {
  if (!enter(ns == Ns::kClient ? ns_c_ : ns_s_))
    return -1;
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_protocol = htons(ETH_P_ALL);
  sa.sll_ifindex = static_cast<int>(if_nametoindex(ns == Ns::kClient ? "vc" : "vs"));
  int one = 1;
  bool ok = s >= 0 && sa.sll_ifindex != 0 &&
            bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
            setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) == 0;
  if (!enter(ns_b_) || !ok) {
    if (s >= 0)
      close(s);
    return -1;
  }
  return s;
}

std::optional<std::vector<uint8_t>> BpfNetns::nextCaptured(
    int fd,
    std::chrono::milliseconds timeout,
    const std::function<bool(const std::vector<uint8_t>&)>& match,
    bool* partial_csum) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<uint8_t> buf(70000);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() < 0 || poll(&p, 1, static_cast<int>(left.count())) != 1)
      return std::nullopt;
    sockaddr_ll from{};
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n <= 14 || from.sll_pkttype == PACKET_OUTGOING)
      continue;
    const uint16_t type = static_cast<uint16_t>(buf[12] << 8 | buf[13]);
    if (type != ETHERTYPE_IP && type != ETHERTYPE_IPV6)
      continue;
    std::vector<uint8_t> pkt(buf.begin() + 14, buf.begin() + n);
    if (!match(pkt))
      continue;
    if (partial_csum != nullptr) {
      *partial_csum = false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
          tpacket_auxdata aux;
          std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
          *partial_csum = (aux.tp_status & TP_STATUS_CSUMNOTREADY) != 0;
        }
      }
    }
    return pkt;
  }
}

bool BpfNetns::ipInB(const std::string& args) {
  return sh("ip -n " + ns_b_ + " " + args);
}

bool BpfNetns::hasClsact() {
  return std::system(
             absl::StrCat("tc -n ", ns_b_, " qdisc show dev vb | grep -q clsact").c_str()) == 0;
}

bool BpfNetns::hasOurFilter() {
  return std::system(absl::StrCat("tc -n ", ns_b_,
                                  " filter show dev vb ingress | grep -q lb_ingress_redirect")
                         .c_str()) == 0;
}

}  // namespace lb::io
