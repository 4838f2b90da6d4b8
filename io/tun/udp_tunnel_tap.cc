// SPDX-License-Identifier: Apache-2.0
#include "io/tun/udp_tunnel_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lb::io {
namespace {

// include/uapi/linux/virtio_net.h
constexpr uint8_t kNeedsCsum = 1;
constexpr uint8_t kGsoTcpv4 = 1;
constexpr uint8_t kGsoTcpv6 = 4;
constexpr uint8_t kGsoUdpTunnelIpv4 = 0x20;
constexpr uint8_t kGsoUdpTunnelIpv6 = 0x40;

absl::Status errnoStatus(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  if (err == EPERM || err == EACCES)
    return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

void put16le(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

int openTap(const std::string& name, bool multi_queue, std::string* actual) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return -1;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi_queue ? IFF_MULTI_QUEUE : 0);
  int sz = static_cast<int>(kVnetHdrTunnelLen);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0 || ioctl(fd, TUNSETVNETHDRSZ, &sz) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (actual != nullptr)
    *actual = ifr.ifr_name;
  return fd;
}

}  // namespace

void encodeUdpTunnelVnetHdr(const UdpTunnelGso& g, size_t l2_len, uint8_t* hdr) noexcept {
  std::memset(hdr, 0, kVnetHdrTunnelLen);
  hdr[0] = kNeedsCsum;
  hdr[1] = static_cast<uint8_t>((g.inner_v6 ? kGsoTcpv6 : kGsoTcpv4) |
                                (g.outer_v6 ? kGsoUdpTunnelIpv6 : kGsoUdpTunnelIpv4));
  put16le(hdr + 2, l2_len + g.inner_hdrs);  // hdr_len
  put16le(hdr + 4, g.gso_size);
  put16le(hdr + 6, l2_len + g.inner_l4);  // csum_start
  put16le(hdr + 8, 16);                   // csum_offset: struct tcphdr, check
  // hdr + 10: num_buffers; + 12: hash report (value, type, padding): zero
  put16le(hdr + 20, l2_len + g.outer_l4);  // outer_th_offset
  put16le(hdr + 22, l2_len + g.inner_l3);  // inner_nh_offset
}

bool kernelTakesUdpTunnelGso(const std::string& name) {
  int fd = openTap(name, false, nullptr);
  if (fd < 0)
    return false;
  // Ethernet + IPv4 + UDP + GUE + IPv4 + TCP + two 100-byte segments; only the header and the
  // offsets matter (the write fails before the packet is looked at further).
  uint8_t buf[kVnetHdrTunnelLen + 14 + 20 + 8 + 4 + 20 + 20 + 200] = {};
  uint8_t* eth = buf + kVnetHdrTunnelLen;
  std::memset(eth, 0xff, 6);
  eth[12] = 0x08;
  uint8_t* ip = eth + 14;
  ip[0] = 0x45;
  const size_t tot = sizeof(buf) - kVnetHdrTunnelLen - 14;
  ip[2] = static_cast<uint8_t>(tot >> 8);
  ip[3] = static_cast<uint8_t>(tot);
  ip[8] = 64;
  ip[9] = 17;
  uint8_t* inner = ip + 20 + 8 + 4;
  inner[0] = 0x45;
  inner[9] = 6;
  inner[20 + 12] = 5 << 4;
  UdpTunnelGso g;
  g.outer_l4 = 20;
  g.inner_l3 = 32;
  g.inner_l4 = 52;
  g.inner_hdrs = 72;
  g.gso_size = 100;
  encodeUdpTunnelVnetHdr(g, 14, buf);
  const ssize_t n = ::write(fd, buf, sizeof(buf));
  const int e = errno;
  close(fd);
  return n < 0 && e == EIO;
}

absl::StatusOr<std::unique_ptr<UdpTunnelTap>> UdpTunnelTap::create(const std::string& name,
                                                                   size_t queues) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return absl::InvalidArgumentError(absl::StrCat(name, ": bad device name"));
  std::unique_ptr<UdpTunnelTap> t(new UdpTunnelTap());
  for (size_t q = 0; q < (queues == 0 ? 1 : queues); ++q) {
    std::string actual;
    int fd = openTap(name, true, &actual);
    if (fd < 0)
      return errnoStatus(absl::StrCat("TAP ", name, " queue ", q), errno);
    t->fds_.push_back(fd);
    if (q == 0)
      t->name_ = actual;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return errnoStatus("socket", errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, t->name_.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) {
    const int e = errno;
    close(s);
    return errnoStatus(absl::StrCat("SIOCGIFHWADDR ", t->name_), e);
  }
  std::memcpy(t->mac_.data(), ifr.ifr_hwaddr.sa_data, 6);
  // No IPv6 link-local address (addr_gen_mode 1 = none, before the link comes up): the device
  // only takes what lbd writes, so nothing of the kernel's own (DAD, router solicitations, MLD)
  // should queue towards it. IPv6 forwarding through it does not need an address. Best effort:
  // /proc/sys may be read-only.
  if (FILE* f = std::fopen(
          absl::StrCat("/proc/sys/net/ipv6/conf/", t->name_, "/addr_gen_mode").c_str(), "w")) {
    std::fputs("1", f);
    std::fclose(f);
  }
  ifr.ifr_flags = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP), ioctl(s, SIOCSIFFLAGS, &ifr)) !=
          0) {
    const int e = errno;
    close(s);
    return errnoStatus(absl::StrCat("link up ", t->name_), e);
  }
  close(s);
  t->ifindex_ = static_cast<int>(if_nametoindex(t->name_.c_str()));
  if (t->ifindex_ == 0)
    return errnoStatus(absl::StrCat("if_nametoindex ", t->name_), errno);
  return t;
}

UdpTunnelTap::~UdpTunnelTap() {
  for (int fd : fds_)
    close(fd);
}

ssize_t UdpTunnelTap::write(size_t queue, PacketBuffer& p, const UdpTunnelGso& g) noexcept {
  uint8_t* eth = p.push(ETH_HLEN);
  if (eth == nullptr) {
    errno = ENOBUFS;
    return -1;
  }
  std::memcpy(eth, mac_.data(), 6);
  std::memcpy(eth + 6, mac_.data(), 6);
  eth[6] ^= 0x02;  // a source that is not the device's own address
  const uint16_t type = g.outer_v6 ? ETH_P_IPV6 : ETH_P_IP;
  eth[12] = static_cast<uint8_t>(type >> 8);
  eth[13] = static_cast<uint8_t>(type);
  uint8_t hdr[kVnetHdrTunnelLen];
  encodeUdpTunnelVnetHdr(g, ETH_HLEN, hdr);
  iovec iov[2] = {{hdr, sizeof(hdr)}, {p.data(), p.size()}};
  const ssize_t n = ::writev(fds_[queue % fds_.size()], iov, 2);
  if (n < 0) {
    const int e = errno;
    p.pull(ETH_HLEN);  // p as it came, for the caller's fallback
    errno = e;
  }
  return n;
}

}  // namespace lb::io
