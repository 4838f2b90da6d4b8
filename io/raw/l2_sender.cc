// SPDX-License-Identifier: Apache-2.0
#include "io/raw/l2_sender.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "io/tun/vnet_hdr.h"

namespace lb::io {
namespace {

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

absl::Status errnoStatus(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  if (err == EPERM || err == EACCES)
    return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<std::unique_ptr<L2Sender>> L2Sender::create() {
  std::unique_ptr<L2Sender> s(new L2Sender());
  // Protocol 0: the socket receives nothing; it only sends.
  s->fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (s->fd_ < 0)
    return errnoStatus("AF_PACKET socket", errno);
  int one = 1;
  if (setsockopt(s->fd_, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) != 0) {
    return errnoStatus("PACKET_VNET_HDR", errno);
  }
  // Skips the qdisc (and the copy to other packet taps), pktgen-style (commit d346a3fae3ff).
  if (setsockopt(s->fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0) {
    return errnoStatus("PACKET_QDISC_BYPASS", errno);
  }
  return s;
}

L2Sender::~L2Sender() {
  if (fd_ >= 0)
    close(fd_);
}

ssize_t L2Sender::send(int ifindex,
                       const std::array<uint8_t, 6>& src,
                       const std::array<uint8_t, 6>& dst,
                       PacketBuffer& pkt) noexcept {
  if (pkt.size() == 0) {
    errno = EINVAL;
    return -1;
  }
  const uint16_t ethertype = (pkt.data()[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IP;
  uint8_t* eth = pkt.push(ETH_HLEN);
  if (eth == nullptr) {
    errno = ENOBUFS;
    return -1;
  }
  std::memcpy(eth, dst.data(), 6);
  std::memcpy(eth + 6, src.data(), 6);
  eth[12] = static_cast<uint8_t>(ethertype >> 8);
  eth[13] = static_cast<uint8_t>(ethertype);
  uint8_t hdr[kVnetHdrLegacyLen];
  encodeVnetHdr(pkt.offload, pkt.data(), pkt.size(), hdr);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_protocol = htons(ethertype);
  sll.sll_halen = 6;
  std::memcpy(sll.sll_addr, dst.data(), 6);
  iovec iov[2] = {{hdr, sizeof(hdr)}, {pkt.data(), pkt.size()}};
  msghdr msg{};
  msg.msg_name = &sll;
  msg.msg_namelen = sizeof(sll);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  return sendmsg(fd_, &msg, MSG_DONTWAIT);
}

}  // namespace lb::io
