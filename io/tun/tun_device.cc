// SPDX-License-Identifier: Apache-2.0
#include "io/tun/tun_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "core/base/log.h"
#include "io/tun/tun_node.h"
#include "io/tun/vnet_hdr.h"

namespace lb::io {
namespace {

absl::Status errnoStatus(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  if (err == EPERM || err == EACCES)
    return absl::PermissionDeniedError(msg);
  if (err == ENOENT || err == ENODEV)
    return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

// Brings the link up and sets txqueuelen through the classic ioctls (the device exists only
// while lbd holds it, so there is nothing to undo on stop).
absl::Status linkSetup(const std::string& name, uint32_t txqueuelen) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return errnoStatus("socket for link ioctls", errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_qlen = static_cast<int>(txqueuelen);
  if (ioctl(s, SIOCSIFTXQLEN, &ifr) != 0) {
    int e = errno;
    close(s);
    return errnoStatus(absl::StrCat("SIOCSIFTXQLEN ", name), e);
  }
  std::memset(&ifr, 0, sizeof(ifr));
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP), ioctl(s, SIOCSIFFLAGS, &ifr)) !=
          0) {
    int e = errno;
    close(s);
    return errnoStatus(absl::StrCat("set ", name, " up"), e);
  }
  close(s);
  return absl::OkStatus();
}

// One rtnetlink request on a fresh socket; `on_msg` sees each answer message of a dump (or
// the lone ack). Control thread (setup) and tests.
template <typename F>
absl::Status rtnlTalk(const nlmsghdr* req, F on_msg) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0)
    return errnoStatus("rtnetlink socket", errno);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(s, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    int e = errno;
    close(s);
    return errnoStatus("rtnetlink send", e);
  }
  alignas(nlmsghdr) char buf[16384];
  absl::Status st = absl::OkStatus();
  for (bool done = false; !done;) {
    ssize_t n = recv(s, buf, sizeof(buf), 0);
    if (n < 0) {
      st = errnoStatus("rtnetlink recv", errno);
      break;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (err->error != 0)
          st = errnoStatus("rtnetlink", -err->error);
        done = true;
        break;
      }
      on_msg(h);
    }
  }
  close(s);
  return st;
}

// `tc qdisc replace dev <ifindex> root noqueue`.
absl::Status setNoqueue(int ifindex) {
  struct {
    nlmsghdr nh;
    tcmsg tc;
    char attrs[RTA_SPACE(sizeof("noqueue"))];
  } req{};

  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.nh.nlmsg_type = RTM_NEWQDISC;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  req.tc.tcm_parent = TC_H_ROOT;
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + req.nh.nlmsg_len);
  rta->rta_type = TCA_KIND;
  rta->rta_len = RTA_LENGTH(sizeof("noqueue"));
  std::memcpy(RTA_DATA(rta), "noqueue", sizeof("noqueue"));
  req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
  return rtnlTalk(&req.nh, [](const nlmsghdr*) {});
}

}  // namespace

absl::StatusOr<std::string> rootQdiscKind(int ifindex) {
  struct {
    nlmsghdr nh;
    tcmsg tc;
  } req{};

  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.nh.nlmsg_type = RTM_GETQDISC;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  std::string kind;
  absl::Status st = rtnlTalk(&req.nh, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWQDISC)
      return;
    const auto* tc = static_cast<const tcmsg*>(NLMSG_DATA(h));
    if (tc->tcm_ifindex != ifindex || tc->tcm_parent != TC_H_ROOT)
      return;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(tcmsg)));
    for (const auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(tc) +
                                                         NLMSG_ALIGN(sizeof(tcmsg)));
         RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == TCA_KIND)
        kind.assign(static_cast<const char*>(RTA_DATA(a)));
    }
  });
  if (!st.ok())
    return st;
  if (kind.empty())
    return absl::NotFoundError(absl::StrCat("no root qdisc on ifindex ", ifindex));
  return kind;
}

absl::StatusOr<std::unique_ptr<TunDevice>> TunDevice::create(const TunOptions& options) {
  if (options.name.empty() || options.name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("--tun=", options.name, ": bad device name"));
  }
  if (options.queues == 0 || options.queues > 256) {
    return absl::InvalidArgumentError(absl::StrCat("TUN queues ", options.queues, ": 1..256"));
  }
  // A Kubernetes pod has no /dev/net/tun unless something added it: make the node (10:200).
  bool created = false;
  if (absl::Status s = ensureTunNode(std::string(kTunNodePath), &created); !s.ok())
    return s;
  if (created)
    LB_LOG(kInfo, "%s was missing: created it (character device 10:200)", kTunNodePath);
  std::unique_ptr<TunDevice> dev(new TunDevice());
  for (size_t q = 0; q < options.queues; ++q) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      return errnoStatus("open /dev/net/tun", errno);
    dev->fds_.push_back(fd);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, options.name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    if (q == 0 && options.exclusive)
      ifr.ifr_flags |= IFF_TUN_EXCL;  // tun.c tun_set_iff: EBUSY if the device exists
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
      if (errno == EBUSY && q == 0 && options.exclusive) {
        return absl::FailedPreconditionError(
            absl::StrCat("TUN device ", options.name,
                         " exists already: another lbd (or another program) owns "
                         "it; lbd does not share its device"));
      }
      return errnoStatus(absl::StrCat("TUNSETIFF ", options.name, " queue ", q), errno);
    }
    if (q == 0)
      dev->name_ = ifr.ifr_name;
  }
  if (absl::Status s = dev->setup(options); !s.ok())
    return s;
  return dev;
}

absl::StatusOr<std::unique_ptr<TunDevice>> TunDevice::adopt(std::vector<int> fds,
                                                            const TunOptions& options) {
  std::unique_ptr<TunDevice> dev(new TunDevice());
  dev->fds_ = std::move(fds);
  if (dev->fds_.empty())
    return absl::InvalidArgumentError("TUN adopt: no queue fds");
  ifreq ifr{};
  if (ioctl(dev->fds_[0], TUNGETIFF, &ifr) != 0)
    return errnoStatus("TUNGETIFF on a handed-over fd", errno);
  dev->name_ = ifr.ifr_name;
  for (int fd : dev->fds_) {
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
      return errnoStatus("TUN adopt: O_NONBLOCK", errno);
  }
  if (absl::Status s = dev->setup(options); !s.ok())
    return s;
  return dev;
}

absl::Status TunDevice::setup(const TunOptions& options) {
  TunDevice* dev = this;
  int hdr_len = static_cast<int>(kVnetHdrLen);
  if (ioctl(dev->fds_[0], TUNSETVNETHDRSZ, &hdr_len) != 0) {
    return errnoStatus("TUNSETVNETHDRSZ 12", errno);
  }
  // Probe: TSO first (needs CSUM), then USO on top; unknown bits fail with EINVAL.
  if (options.offloads) {
    uint32_t base = kTunFCsum | kTunFTso4 | kTunFTso6;
    if (ioctl(dev->fds_[0], TUNSETOFFLOAD, static_cast<unsigned long>(base)) != 0) {
      return errnoStatus("TUNSETOFFLOAD csum|tso4|tso6", errno);
    }
    dev->offloads_ = base;
    uint32_t with_uso = base | kTunFUso4 | kTunFUso6;
    if (ioctl(dev->fds_[0], TUNSETOFFLOAD, static_cast<unsigned long>(with_uso)) == 0) {
      dev->offloads_ = with_uso;
    }
  } else if (ioctl(dev->fds_[0], TUNSETOFFLOAD, 0UL) != 0) {
    return errnoStatus("TUNSETOFFLOAD 0", errno);
  }
  dev->full_offloads_ = dev->offloads_;
  dev->ifindex_ = static_cast<int>(if_nametoindex(dev->name_.c_str()));
  if (dev->ifindex_ == 0)
    return errnoStatus(absl::StrCat("if_nametoindex ", dev->name_), errno);
  if (absl::Status s = linkSetup(dev->name_, options.txqueuelen); !s.ok())
    return s;
  if (options.noqueue) {
    if (absl::Status s = setNoqueue(dev->ifindex_); !s.ok()) {
      LB_LOG(kWarn, "%s: keeping the default qdisc (noqueue refused: %s)", dev->name_,
             s.ToString());
    }
  }
  return absl::OkStatus();
}

TunDevice::~TunDevice() {
  for (int fd : fds_)
    close(fd);
}

absl::Status TunDevice::setOffloads(uint32_t flags) {
  if (flags == offloads_)
    return absl::OkStatus();
  if (ioctl(fds_[0], TUNSETOFFLOAD, static_cast<unsigned long>(flags)) != 0) {
    return errnoStatus(absl::StrCat("TUNSETOFFLOAD ", flags), errno);
  }
  offloads_ = flags;
  return absl::OkStatus();
}

ssize_t TunDevice::readPacket(size_t queue, PacketBuffer& buf) noexcept {
  buf.reset();
  // Read the header into the headroom just before data(), so the packet needs no move.
  uint8_t* pkt = buf.data();
  iovec iov[2];
  uint8_t hdr[kVnetHdrLen];
  iov[0] = {hdr, sizeof(hdr)};
  iov[1] = {pkt, buf.tailroom()};
  ssize_t n = readv(fds_[queue], iov, 2);
  if (n < 0)
    return -1;
  if (static_cast<size_t>(n) < kVnetHdrLen)
    return 0;
  size_t len = static_cast<size_t>(n) - kVnetHdrLen;
  buf.setSize(len);
  if (!decodeVnetHdr(hdr, buf.offload))
    return 0;
  return static_cast<ssize_t>(len);
}

ssize_t TunDevice::writePacket(size_t queue, const PacketBuffer& buf) noexcept {
  uint8_t hdr[kVnetHdrLen] = {};
  encodeVnetHdr(buf.offload, buf.data(), buf.size(), hdr);
  iovec iov[2];
  iov[0] = {hdr, sizeof(hdr)};
  iov[1] = {const_cast<uint8_t*>(buf.data()), buf.size()};
  return writev(fds_[queue], iov, 2);
}

}  // namespace lb::io
