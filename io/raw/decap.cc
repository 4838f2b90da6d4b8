// SPDX-License-Identifier: Apache-2.0
#include "io/raw/decap.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "core/packet/checksum.h"

namespace lb::io {
namespace {

constexpr int kRawV4 = 0;  // IP-in-IP; an IPv4 raw socket delivers the outer header too
constexpr int kRawV6 = 1;
constexpr int kGue = 2;
constexpr int kGreV4 = 3;
constexpr int kGreV6 = 4;

// GRE flags and version word (include/net/gre.h, RFC 2784 / 2890).
constexpr uint16_t kGreCsum = 0x8000;
constexpr uint16_t kGreRouting = 0x4000;
constexpr uint16_t kGreKey = 0x2000;
constexpr uint16_t kGreSeq = 0x1000;
constexpr uint16_t kGreVersion = 0x0007;
constexpr uint16_t kEthPIp = 0x0800;
constexpr uint16_t kEthPIpv6 = 0x86dd;

absl::Status errnoStatus(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

bool innerIsIp(const PacketBuffer& pkt) {
  if (pkt.size() < 20)
    return false;
  uint8_t v = pkt.data()[0] >> 4;
  return v == 4 || (v == 6 && pkt.size() >= 40);
}

}  // namespace

bool stripGue(PacketBuffer& pkt) noexcept {
  if (pkt.size() < 4)
    return false;
  const uint8_t* p = pkt.data();
  const uint8_t version = p[0] >> 6;
  if (version == 1)
    return innerIsIp(pkt);  // direct IP encapsulation
  if (version != 0)
    return false;
  const bool control = (p[0] & 0x20) != 0;
  const size_t hlen = static_cast<size_t>(p[0] & 0x1f) * 4;
  const uint8_t proto = p[1];
  if (control || (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6))
    return false;
  if (!pkt.pull(4 + hlen))
    return false;
  return innerIsIp(pkt);
}

GreResult stripGre(PacketBuffer& pkt) noexcept {
  if (pkt.size() < 4)
    return GreResult::kMalformed;
  const uint8_t* p = pkt.data();
  const auto flags = static_cast<uint16_t>(p[0] << 8 | p[1]);
  const auto proto = static_cast<uint16_t>(p[2] << 8 | p[3]);
  // gre_parse_header: a version other than 0 (1 is PPTP, not ip_gre's) or a routing header is
  // refused; the strict-route and recursion bits are ignored.
  if ((flags & (kGreVersion | kGreRouting)) != 0)
    return GreResult::kMalformed;
  const size_t hlen = 4 + ((flags & kGreCsum) != 0 ? 4 : 0) + ((flags & kGreKey) != 0 ? 4 : 0) +
                      ((flags & kGreSeq) != 0 ? 4 : 0);  // gre_calc_hlen
  if (pkt.size() < hlen)
    return GreResult::kMalformed;
  // The checksum covers the GRE header and the payload (skb_checksum_simple_validate from the
  // GRE header on): their sum including the field is 0xffff.
  if ((flags & kGreCsum) != 0 && csumFold(csumPartial({p, pkt.size()}, 0)) != 0)
    return GreResult::kBadChecksum;
  const int version = proto == kEthPIp ? 4 : proto == kEthPIpv6 ? 6 : 0;
  if (version == 0 || !pkt.pull(hlen) || !innerIsIp(pkt) || (pkt.data()[0] >> 4) != version)
    return GreResult::kMalformed;
  return GreResult::kOk;
}

absl::StatusOr<std::unique_ptr<DecapReceiver>> DecapReceiver::create(uint16_t gue_port) {
  std::unique_ptr<DecapReceiver> d(new DecapReceiver());

  const struct {
    int af, proto, kind;
  } raws[] = {{AF_INET, IPPROTO_IPIP, kRawV4},  {AF_INET, IPPROTO_IPV6, kRawV4},
              {AF_INET6, IPPROTO_IPIP, kRawV6}, {AF_INET6, IPPROTO_IPV6, kRawV6},
              {AF_INET, IPPROTO_GRE, kGreV4},   {AF_INET6, IPPROTO_GRE, kGreV6}};

  for (const auto& r : raws) {
    int fd = socket(r.af, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, r.proto);
    if (fd < 0)
      return errnoStatus(absl::StrCat("raw socket af ", r.af, " proto ", r.proto), errno);
    d->fds_.push_back(fd);
    d->kinds_.push_back(r.kind);
    growReceiveBuffer(fd);
    // As for GUE below: an LB's tc program encapsulates a GSO skb whole (SKB_GSO_IPXIP4 or
    // SKB_GSO_GRE), and a veth carries it whole, so an IPIP or GRE packet larger than any wire
    // reaches this socket.
    int one = 1;
    if (r.af == AF_INET)
      setsockopt(fd, IPPROTO_IP, IP_RECVFRAGSIZE, &one, sizeof(one));
    else
      setsockopt(fd, IPPROTO_IPV6, IPV6_RECVFRAGSIZE, &one, sizeof(one));
  }
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return errnoStatus("GUE socket", errno);
  d->fds_.push_back(fd);
  d->kinds_.push_back(kGue);
  growReceiveBuffer(fd);
  int zero = 0;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  // The size of the largest fragment of a reassembled datagram (ip_cmsg_recv_fragsize): what
  // came whole without it was never on a wire as one piece (lastUnwired). IPv4-mapped
  // datagrams report through the IPv4 option.
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_RECVFRAGSIZE, &one, sizeof(one));
  setsockopt(fd, IPPROTO_IPV6, IPV6_RECVFRAGSIZE, &one, sizeof(one));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(gue_port);
  sa.sin6_addr = in6addr_any;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return errnoStatus(absl::StrCat("bind GUE port ", gue_port), errno);
  }
  return d;
}

// A TCP sender's burst (a 64 KB super-packet the LB splits is ~45 wire packets back to back)
// overflowed the default ~208 KB receive buffer: the dropped segments were retransmitted and
// a bulk transfer through a tunnel ran at 0.2 Gbit/s. SO_RCVBUFFORCE (CAP_NET_ADMIN) passes
// net.core.rmem_max; without the capability SO_RCVBUF gets what rmem_max allows.
void DecapReceiver::growReceiveBuffer(int fd) noexcept {
  int bytes = kReceiveBuffer;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

DecapReceiver::~DecapReceiver() {
  for (int fd : fds_)
    close(fd);
}

int DecapReceiver::readOne(int fd, int kind, PacketBuffer& pkt) noexcept {
  pkt.reset();
  last_unwired_ = false;
  // Every socket reports a reassembled datagram's largest fragment (IP_RECVFRAGSIZE /
  // IPV6_RECVFRAGSIZE, ip_cmsg_recv_fragsize; raw sockets too): a large packet without it came
  // whole from the sending kernel.
  iovec iov{pkt.data(), pkt.tailroom()};
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int)) * 2];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
  if (n <= 0)
    return 0;
  bool reassembled = (m.msg_flags & MSG_CTRUNC) != 0;  // unknown: take it as reassembled
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVFRAGSIZE) ||
        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVFRAGSIZE))
      reassembled = true;
  }
  pkt.setSize(static_cast<size_t>(n));
  bool ok = true;
  if (kind == kRawV4 || kind == kGreV4) {
    // IPv4 raw sockets deliver the outer header too.
    size_t ihl = static_cast<size_t>(pkt.data()[0] & 0x0f) * 4;
    ok = ihl >= 20 && pkt.pull(ihl);
  }
  if (ok && (kind == kGreV4 || kind == kGreV6)) {
    const GreResult g = stripGre(pkt);
    csum_errors_ += g == GreResult::kBadChecksum ? 1 : 0;
    ok = g == GreResult::kOk;
  } else if (ok) {
    ok = kind == kGue ? stripGue(pkt) : innerIsIp(pkt);
  }
  if (!ok) {
    ++dropped_;
    return 0;
  }
  // The inner packet's size: an IPv4 raw socket's outer header was pulled above.
  last_unwired_ = !reassembled && pkt.size() > kWholeMin;
  ++received_;
  return 1;
}

int DecapReceiver::receive(PacketBuffer& pkt, int timeout_ms) noexcept {
  size_t n = fds_.size() < 8 ? fds_.size() : 8;
  // Under load a packet is usually waiting: try each socket before paying for a poll().
  for (size_t i = 0; i < n; ++i) {
    size_t k = (next_ + i) % n;
    if (readOne(fds_[k], kinds_[k], pkt) == 1) {
      next_ = k;
      return 1;
    }
  }
  pollfd pfds[8];
  for (size_t i = 0; i < n; ++i)
    pfds[i] = {fds_[i], POLLIN, 0};
  if (poll(pfds, n, timeout_ms) <= 0)
    return 0;
  for (size_t i = 0; i < n; ++i) {
    if ((pfds[i].revents & POLLIN) != 0 && readOne(fds_[i], kinds_[i], pkt) == 1)
      return 1;
  }
  return 0;
}

}  // namespace lb::io
