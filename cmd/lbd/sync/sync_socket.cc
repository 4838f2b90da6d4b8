// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_socket.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"

namespace lb::lbd::sync {
namespace {

absl::Status errnoError(const std::string& what, const std::string& ifname) {
  return absl::InternalError(
      absl::StrFormat("sync socket on %s: %s: %s", ifname, what, std::strerror(errno)));
}

// The interface's first IPv4 address (the kernel's master binds to it: bind_mcastif_addr).
bool interfaceV4(const std::string& ifname, in_addr& out) {
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0)
    return false;
  bool found = false;
  for (ifaddrs* i = ifs; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && ifname == i->ifa_name) {
      out = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
      found = true;
    }
  }
  freeifaddrs(ifs);
  return found;
}

}  // namespace

SyncSocket::SyncSocket(int fd, bool v6, const uint8_t* group, uint16_t port, uint32_t ifindex)
    : fd_(fd), v6_(v6), port_(port), ifindex_(ifindex) {
  std::memcpy(group_, group, v6 ? 16 : 4);
}

SyncSocket::SyncSocket(SyncSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), v6_(o.v6_), port_(o.port_), ifindex_(o.ifindex_) {
  std::memcpy(group_, o.group_, sizeof(group_));
}

SyncSocket& SyncSocket::operator=(SyncSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0)
      close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    v6_ = o.v6_;
    port_ = o.port_;
    ifindex_ = o.ifindex_;
    std::memcpy(group_, o.group_, sizeof(group_));
  }
  return *this;
}

SyncSocket::~SyncSocket() {
  if (fd_ >= 0)
    close(fd_);
}

absl::StatusOr<uint32_t> SyncSocket::interfaceMtu(const std::string& ifname) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return errnoError("socket", ifname);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  const int r = ioctl(s, SIOCGIFMTU, &ifr);
  close(s);
  if (r != 0)
    return absl::InvalidArgumentError(absl::StrFormat("no interface `%s'", ifname));
  return static_cast<uint32_t>(ifr.ifr_mtu);
}

absl::StatusOr<SyncSocket> SyncSocket::openMaster(const SyncDaemonConfig& c,
                                                  uint32_t sock_size,
                                                  uint32_t id) {
  const unsigned ifindex = if_nametoindex(c.mcast_ifn.c_str());
  if (ifindex == 0)
    return absl::InvalidArgumentError(absl::StrFormat("no interface `%s'", c.mcast_ifn));
  const bool v6 = c.mcast_group.isV6();
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errnoError("socket", c.mcast_ifn);
  SyncSocket sock(fd, v6, c.mcast_group.data(), portFor(c, id), ifindex);
  const int loop = 0;
  const int ttl = c.mcast_ttl;
  if (sock_size != 0) {
    const int size = static_cast<int>(sock_size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0)
      return errnoError("SO_SNDBUF", c.mcast_ifn);
  }
  if (v6) {
    // The kernel's IPv6 master is not bound to an address (make_send_sock binds only an IPv4
    // one): the source is the one the route to the group on the interface picks.
    const int idx = static_cast<int>(ifindex);
    const int pmtu = IPV6_PMTUDISC_DONT;  // set_mcast_pmtudisc: may fragment if the MTU shrinks
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop)) != 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof(ttl)) != 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) != 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0) {
      return errnoError("IPv6 multicast options", c.mcast_ifn);
    }
    return sock;
  }
  const unsigned char ttl8 = static_cast<unsigned char>(ttl);
  const unsigned char loop8 = 0;
  const int pmtu = IP_PMTUDISC_DONT;
  ip_mreqn mreq{};
  mreq.imr_ifindex = static_cast<int>(ifindex);
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop8, sizeof(loop8)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl8, sizeof(ttl8)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0) {
    return errnoError("multicast options", c.mcast_ifn);
  }
  // The kernel binds the master to the interface's address (port 0) so that its messages
  // leave from it; without an IPv4 address the routing picks one.
  sockaddr_in local{};
  local.sin_family = AF_INET;
  if (interfaceV4(c.mcast_ifn, local.sin_addr) &&
      bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return errnoError("bind to the interface's address", c.mcast_ifn);
  }
  return sock;
}

absl::StatusOr<SyncSocket> SyncSocket::openBackup(const SyncDaemonConfig& c,
                                                  uint32_t sock_size,
                                                  uint32_t id) {
  const unsigned ifindex = if_nametoindex(c.mcast_ifn.c_str());
  if (ifindex == 0)
    return absl::InvalidArgumentError(absl::StrFormat("no interface `%s'", c.mcast_ifn));
  const bool v6 = c.mcast_group.isV6();
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errnoError("socket", c.mcast_ifn);
  SyncSocket sock(fd, v6, c.mcast_group.data(), portFor(c, id), ifindex);
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    return errnoError("SO_REUSEADDR", c.mcast_ifn);
  if (sock_size != 0) {
    const int size = static_cast<int>(sock_size);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
      return errnoError("SO_RCVBUF", c.mcast_ifn);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c.mcast_ifn.c_str(),
                 static_cast<socklen_t>(c.mcast_ifn.size())) != 0) {
    return errnoError("SO_BINDTODEVICE", c.mcast_ifn);
  }
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(portFor(c, id));
    std::memcpy(&a.sin6_addr, c.mcast_group.data(), 16);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
      return errnoError("bind to the group", c.mcast_ifn);
    ipv6_mreq m{};
    std::memcpy(&m.ipv6mr_multiaddr, c.mcast_group.data(), 16);
    m.ipv6mr_interface = ifindex;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)) != 0)
      return errnoError("IPV6_JOIN_GROUP", c.mcast_ifn);
    return sock;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(portFor(c, id));
  std::memcpy(&a.sin_addr, c.mcast_group.data(), 4);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return errnoError("bind to the group", c.mcast_ifn);
  ip_mreqn m{};
  std::memcpy(&m.imr_multiaddr, c.mcast_group.data(), 4);
  m.imr_ifindex = static_cast<int>(ifindex);
  if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) != 0)
    return errnoError("IP_ADD_MEMBERSHIP", c.mcast_ifn);
  return sock;
}

ssize_t SyncSocket::send(absl::Span<const uint8_t> msg) noexcept {
  if (v6_) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port_);
    std::memcpy(&a.sin6_addr, group_, 16);
    a.sin6_scope_id = ifindex_;
    return sendto(fd_, msg.data(), msg.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a),
                  sizeof(a));
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  std::memcpy(&a.sin_addr, group_, 4);
  return sendto(fd_, msg.data(), msg.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a),
                sizeof(a));
}

ssize_t SyncSocket::receive(absl::Span<uint8_t> buf, int timeout_ms) noexcept {
  pollfd p{fd_, POLLIN, 0};
  const int r = poll(&p, 1, timeout_ms);
  if (r <= 0)
    return r;
  return recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
}

}  // namespace lb::lbd::sync
