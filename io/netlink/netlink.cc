// SPDX-License-Identifier: Apache-2.0
#include "io/netlink/netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lb::io {
namespace {

// Kept on the stack of each request: MNL_SOCKET_BUFFER_SIZE is 8 KB.
constexpr size_t kBufSize = 8192;

absl::Status errnoStatus(const std::string& what, int err) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  if (err == EEXIST)
    return absl::AlreadyExistsError(msg);
  if (err == ENOENT || err == ESRCH || err == ENODEV)
    return absl::NotFoundError(msg);
  if (err == EPERM || err == EACCES)
    return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

int familyOf(Af af) {
  return af == Af::kInet6 ? AF_INET6 : AF_INET;
}

size_t addrLen(Af af) {
  return af == Af::kInet6 ? 16 : 4;
}

std::string describe(const RouteSpec& r) {
  return absl::StrCat(r.dst.isUnspecified() && r.prefix_len == 0 ? "default" : r.dst.toString(),
                      "/", r.prefix_len, " dev ", r.oif, " table ", r.table);
}

std::string describe(const RuleSpec& r) {
  std::string s = absl::StrCat("rule pref ", r.pref);
  if (!r.src.isUnspecified())
    absl::StrAppend(&s, " from ", r.src.toString(), "/", r.src_len);
  if (!r.iif.empty())
    absl::StrAppend(&s, " iif ", r.iif);
  if (r.ip_proto != 0)
    absl::StrAppend(&s, " ipproto ", r.ip_proto);
  if (r.sport != 0)
    absl::StrAppend(&s, " sport ", r.sport);
  if (r.goto_pref != 0) {
    absl::StrAppend(&s, " goto ", r.goto_pref);
  } else {
    absl::StrAppend(&s, " lookup ", r.table);
  }
  return s;
}

nlmsghdr* newMsg(void* buf, uint16_t type, uint16_t flags, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  nlh->nlmsg_seq = seq;
  return nlh;
}

// Collects the attributes of one message into tb (indexed by type, up to max).
struct AttrTable {
  const nlattr* tb[64] = {};
};

int collectAttr(const nlattr* attr, void* data) {
  auto* t = static_cast<AttrTable*>(data);
  uint16_t type = mnl_attr_get_type(attr);
  if (type < 64)
    t->tb[type] = attr;
  return MNL_CB_OK;
}

IpAddr addrFromAttr(Af af, const nlattr* a) {
  if (a == nullptr || mnl_attr_get_payload_len(a) < addrLen(af))
    return IpAddr();
  return IpAddr::fromBytes(af, static_cast<const uint8_t*>(mnl_attr_get_payload(a)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Netlink>> Netlink::open() {
  std::unique_ptr<Netlink> nl(new Netlink());
  nl->nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl->nl_ == nullptr)
    return errnoStatus("netlink socket", errno);
  if (mnl_socket_bind(nl->nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return errnoStatus("netlink bind", errno);
  }
  // Extended acks give the reason for EINVAL-type failures in the kernel log; errno suffices.
  nl->portid_ = mnl_socket_get_portid(nl->nl_);
  nl->seq_ = static_cast<uint32_t>(time(nullptr));
  return nl;
}

Netlink::~Netlink() {
  if (nl_ != nullptr)
    mnl_socket_close(nl_);
}

absl::Status Netlink::request(void* buf, const std::string& what) {
  auto* nlh = static_cast<nlmsghdr*>(buf);
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0)
    return errnoStatus(what, errno);
  char rbuf[kBufSize];
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, rbuf, sizeof(rbuf));
    if (n < 0)
      return errnoStatus(what, errno);
    int ret = mnl_cb_run(rbuf, static_cast<size_t>(n), nlh->nlmsg_seq, portid_, nullptr, nullptr);
    if (ret < 0)
      return errnoStatus(what, errno);
    if (ret == MNL_CB_STOP)
      return absl::OkStatus();
  }
}

absl::Status Netlink::dump(void* buf,
                           int (*cb)(const nlmsghdr*, void*),
                           void* data,
                           const std::string& what) {
  auto* nlh = static_cast<nlmsghdr*>(buf);
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0)
    return errnoStatus(what, errno);
  std::vector<char> rbuf(1 << 16);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
    if (n < 0)
      return errnoStatus(what, errno);
    int ret = mnl_cb_run(rbuf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, portid_, cb, data);
    if (ret < 0)
      return errnoStatus(what, errno);
    if (ret == MNL_CB_STOP)
      return absl::OkStatus();
  }
}

// ---- routes ----

absl::Status Netlink::route(const RouteSpec& r, uint16_t type, uint16_t flags) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, type, flags, seq_++);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(familyOf(r.af));
  rtm->rtm_dst_len = static_cast<uint8_t>(r.prefix_len);
  // Scope universe, not link: lbd0's link-scope address must never become the source the
  // kernel picks for a connection to a VIP (fib_result_prefsrc -> inet_select_addr).
  rtm->rtm_table = r.table < 256 ? static_cast<uint8_t>(r.table) : uint8_t{RT_TABLE_UNSPEC};
  rtm->rtm_protocol = r.protocol;
  rtm->rtm_scope =
      static_cast<uint8_t>(type == RTM_DELROUTE ? RT_SCOPE_NOWHERE : RT_SCOPE_UNIVERSE);
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32(nlh, RTA_TABLE, r.table);
  if (r.prefix_len > 0)
    mnl_attr_put(nlh, RTA_DST, addrLen(r.af), r.dst.data());
  if (r.oif != 0)
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(r.oif));
  return request(buf,
                 absl::StrCat(type == RTM_NEWROUTE ? "add route " : "delete route ", describe(r)));
}

absl::Status Netlink::addRoute(const RouteSpec& r) {
  return route(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
}

absl::Status Netlink::delRoute(const RouteSpec& r) {
  return route(r, RTM_DELROUTE, 0);
}

absl::StatusOr<std::vector<RouteSpec>> Netlink::listRoutes(Af af, uint8_t protocol) {
  struct Ctx {
    Af af;
    uint8_t protocol;
    std::vector<RouteSpec> out;
  } ctx{af, protocol, {}};

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETROUTE, NLM_F_DUMP, seq_++);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(familyOf(af));
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m));
    if (rt->rtm_protocol != c->protocol)
      return MNL_CB_OK;
    AttrTable t;
    mnl_attr_parse(m, sizeof(*rt), collectAttr, &t);
    RouteSpec r;
    r.af = c->af;
    r.prefix_len = rt->rtm_dst_len;
    r.dst = t.tb[RTA_DST] != nullptr ? addrFromAttr(c->af, t.tb[RTA_DST]) : IpAddr();
    r.table = t.tb[RTA_TABLE] != nullptr ? mnl_attr_get_u32(t.tb[RTA_TABLE]) : rt->rtm_table;
    r.oif = t.tb[RTA_OIF] != nullptr ? static_cast<int>(mnl_attr_get_u32(t.tb[RTA_OIF])) : 0;
    r.protocol = rt->rtm_protocol;
    c->out.push_back(r);
    return MNL_CB_OK;
  };
  if (absl::Status s = dump(buf, cb, &ctx, "dump routes"); !s.ok())
    return s;
  return ctx.out;
}

absl::StatusOr<std::pair<int, IpAddr>> Netlink::getRoute(const IpAddr& dst) {
  struct Ctx {
    Af af;
    int oif = 0;
    IpAddr gw;
  } ctx{dst.af(), 0, IpAddr()};

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETROUTE, 0, seq_++);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(familyOf(dst.af()));
  rtm->rtm_dst_len = static_cast<uint8_t>(addrLen(dst.af()) * 8);
  mnl_attr_put(nlh, RTA_DST, addrLen(dst.af()), dst.data());
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    AttrTable t;
    mnl_attr_parse(m, sizeof(rtmsg), collectAttr, &t);
    if (t.tb[RTA_OIF] != nullptr)
      c->oif = static_cast<int>(mnl_attr_get_u32(t.tb[RTA_OIF]));
    if (t.tb[RTA_GATEWAY] != nullptr)
      c->gw = addrFromAttr(c->af, t.tb[RTA_GATEWAY]);
    return MNL_CB_STOP;
  };
  if (absl::Status s = dump(buf, cb, &ctx, absl::StrCat("route get ", dst.toString())); !s.ok()) {
    return s;
  }
  return std::make_pair(ctx.oif, ctx.gw);
}

// ---- rules ----

absl::Status Netlink::rule(const RuleSpec& r, uint16_t type, uint16_t flags) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, type, flags, seq_++);
  auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
  frh->family = static_cast<uint8_t>(familyOf(r.af));
  frh->src_len = static_cast<uint8_t>(r.src.isUnspecified() ? 0 : r.src_len);
  frh->action = r.goto_pref != 0 ? FR_ACT_GOTO : FR_ACT_TO_TBL;
  frh->table = r.table < 256 ? static_cast<uint8_t>(r.table) : uint8_t{RT_TABLE_UNSPEC};
  mnl_attr_put_u32(nlh, FRA_PRIORITY, r.pref);
  if (r.goto_pref != 0) {
    mnl_attr_put_u32(nlh, FRA_GOTO, r.goto_pref);
  } else {
    mnl_attr_put_u32(nlh, FRA_TABLE, r.table);
  }
  if (frh->src_len != 0)
    mnl_attr_put(nlh, FRA_SRC, addrLen(r.af), r.src.data());
  if (!r.iif.empty())
    mnl_attr_put_strz(nlh, FRA_IIFNAME, r.iif.c_str());
  if (r.ip_proto != 0)
    mnl_attr_put_u8(nlh, FRA_IP_PROTO, r.ip_proto);
  if (r.sport != 0) {
    fib_rule_port_range range{r.sport, r.sport};
    mnl_attr_put(nlh, FRA_SPORT_RANGE, sizeof(range), &range);
  }
  if (type == RTM_NEWRULE)
    mnl_attr_put_u8(nlh, FRA_PROTOCOL, r.protocol);
  return request(buf, absl::StrCat(type == RTM_NEWRULE ? "add " : "delete ", describe(r)));
}

absl::Status Netlink::addRule(const RuleSpec& r) {
  return rule(r, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
}

absl::Status Netlink::delRule(const RuleSpec& r) {
  return rule(r, RTM_DELRULE, 0);
}

absl::StatusOr<std::vector<RuleSpec>> Netlink::listRules(Af af) {
  struct Ctx {
    Af af;
    std::vector<RuleSpec> out;
  } ctx{af, {}};

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETRULE, NLM_F_DUMP, seq_++);
  auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
  frh->family = static_cast<uint8_t>(familyOf(af));
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    auto* h = static_cast<const fib_rule_hdr*>(mnl_nlmsg_get_payload(m));
    AttrTable t;
    mnl_attr_parse(m, sizeof(*h), collectAttr, &t);
    RuleSpec r;
    r.af = c->af;
    r.src_len = h->src_len;
    if (t.tb[FRA_SRC] != nullptr)
      r.src = addrFromAttr(c->af, t.tb[FRA_SRC]);
    if (t.tb[FRA_PRIORITY] != nullptr)
      r.pref = mnl_attr_get_u32(t.tb[FRA_PRIORITY]);
    r.table = t.tb[FRA_TABLE] != nullptr ? mnl_attr_get_u32(t.tb[FRA_TABLE]) : h->table;
    if (h->action == FR_ACT_GOTO && t.tb[FRA_GOTO] != nullptr) {
      r.goto_pref = mnl_attr_get_u32(t.tb[FRA_GOTO]);
    }
    if (t.tb[FRA_IIFNAME] != nullptr)
      r.iif = mnl_attr_get_str(t.tb[FRA_IIFNAME]);
    if (t.tb[FRA_IP_PROTO] != nullptr)
      r.ip_proto = mnl_attr_get_u8(t.tb[FRA_IP_PROTO]);
    if (t.tb[FRA_SPORT_RANGE] != nullptr) {
      auto* range =
          static_cast<const fib_rule_port_range*>(mnl_attr_get_payload(t.tb[FRA_SPORT_RANGE]));
      r.sport = range->start;
    }
    r.protocol = t.tb[FRA_PROTOCOL] != nullptr ? mnl_attr_get_u8(t.tb[FRA_PROTOCOL]) : 0;
    c->out.push_back(r);
    return MNL_CB_OK;
  };
  if (absl::Status s = dump(buf, cb, &ctx, "dump rules"); !s.ok())
    return s;
  return ctx.out;
}

absl::Status Netlink::addLocalRule(Af af, uint32_t pref, uint8_t protocol) {
  RuleSpec r;
  r.af = af;
  r.pref = pref;
  r.table = RT_TABLE_LOCAL;
  r.protocol = protocol;
  return addRule(r);
}

absl::Status Netlink::delLocalRule(Af af, uint32_t pref) {
  RuleSpec r;
  r.af = af;
  r.pref = pref;
  r.table = RT_TABLE_LOCAL;
  return delRule(r);
}

absl::StatusOr<bool> Netlink::hasLocalRule(Af af, uint32_t pref) {
  auto rules = listRules(af);
  if (!rules.ok())
    return rules.status();
  for (const RuleSpec& r : *rules) {
    if (r.pref == pref && r.goto_pref == 0 && r.table == RT_TABLE_LOCAL)
      return true;
  }
  return false;
}

// ---- neighbours ----

absl::Status Netlink::proxyNeigh(const IpAddr& addr, int ifindex, uint16_t type, uint16_t flags) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, type, flags, seq_++);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = static_cast<uint8_t>(familyOf(addr.af()));
  ndm->ndm_ifindex = ifindex;
  ndm->ndm_flags = NTF_PROXY;
  ndm->ndm_state = NUD_PERMANENT;
  mnl_attr_put(nlh, NDA_DST, addrLen(addr.af()), addr.data());
  if (type == RTM_NEWNEIGH)
    mnl_attr_put_u8(nlh, NDA_PROTOCOL, kLbdProto);
  return request(buf, absl::StrCat(type == RTM_NEWNEIGH ? "add" : "delete", " proxy ",
                                   addr.toString(), " dev ", ifindex));
}

absl::Status Netlink::addProxyNeigh(const IpAddr& addr, int ifindex) {
  return proxyNeigh(addr, ifindex, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
}

absl::Status Netlink::delProxyNeigh(const IpAddr& addr, int ifindex) {
  return proxyNeigh(addr, ifindex, RTM_DELNEIGH, 0);
}

absl::StatusOr<std::vector<std::pair<IpAddr, int>>> Netlink::listProxyNeighs(Af af) {
  struct Ctx {
    Af af;
    std::vector<std::pair<IpAddr, int>> out;
  } ctx{af, {}};

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETNEIGH, NLM_F_DUMP, seq_++);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = static_cast<uint8_t>(familyOf(af));
  ndm->ndm_flags = NTF_PROXY;
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(m));
    if ((n->ndm_flags & NTF_PROXY) == 0)
      return MNL_CB_OK;
    AttrTable t;
    mnl_attr_parse(m, sizeof(*n), collectAttr, &t);
    if (t.tb[NDA_PROTOCOL] == nullptr || mnl_attr_get_u8(t.tb[NDA_PROTOCOL]) != kLbdProto) {
      return MNL_CB_OK;
    }
    c->out.emplace_back(addrFromAttr(c->af, t.tb[NDA_DST]), n->ndm_ifindex);
    return MNL_CB_OK;
  };
  if (absl::Status s = dump(buf, cb, &ctx, "dump proxy neighbours"); !s.ok())
    return s;
  return ctx.out;
}

absl::StatusOr<std::optional<MacAddr>> Netlink::getNeigh(int ifindex, const IpAddr& addr) {
  struct Ctx {
    std::optional<MacAddr> mac;
  } ctx;

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETNEIGH, 0, seq_++);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = static_cast<uint8_t>(familyOf(addr.af()));
  ndm->ndm_ifindex = ifindex;
  mnl_attr_put(nlh, NDA_DST, addrLen(addr.af()), addr.data());
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(m));
    constexpr uint16_t kUsable =
        NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
    if ((n->ndm_state & kUsable) == 0)
      return MNL_CB_STOP;
    AttrTable t;
    mnl_attr_parse(m, sizeof(*n), collectAttr, &t);
    if (t.tb[NDA_LLADDR] != nullptr && mnl_attr_get_payload_len(t.tb[NDA_LLADDR]) == 6) {
      MacAddr mac;
      std::memcpy(mac.data(), mnl_attr_get_payload(t.tb[NDA_LLADDR]), 6);
      c->mac = mac;
    }
    return MNL_CB_STOP;
  };
  absl::Status s = dump(buf, cb, &ctx, absl::StrCat("neigh get ", addr.toString()));
  if (absl::IsNotFound(s))
    return std::optional<MacAddr>();
  if (!s.ok())
    return s;
  return ctx.mac;
}

absl::Status Netlink::resolveNeigh(int ifindex, const IpAddr& addr) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_NEWNEIGH, NLM_F_CREATE, seq_++);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = static_cast<uint8_t>(familyOf(addr.af()));
  ndm->ndm_ifindex = ifindex;
  ndm->ndm_flags = NTF_USE;
  ndm->ndm_state = NUD_NONE;
  mnl_attr_put(nlh, NDA_DST, addrLen(addr.af()), addr.data());
  return request(buf, absl::StrCat("resolve neighbour ", addr.toString()));
}

// ---- addresses ----

absl::StatusOr<std::vector<AddrInfo>> Netlink::listAddrs(Af af) {
  struct Ctx {
    Af af;
    std::vector<AddrInfo> out;
  } ctx{af, {}};

  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_GETADDR, NLM_F_DUMP, seq_++);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(familyOf(af));
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
    AttrTable t;
    mnl_attr_parse(m, sizeof(*a), collectAttr, &t);
    const nlattr* addr = t.tb[IFA_LOCAL] != nullptr ? t.tb[IFA_LOCAL] : t.tb[IFA_ADDRESS];
    if (addr == nullptr)
      return MNL_CB_OK;
    c->out.push_back({static_cast<int>(a->ifa_index), addrFromAttr(c->af, addr), a->ifa_prefixlen});
    return MNL_CB_OK;
  };
  if (absl::Status s = dump(buf, cb, &ctx, "dump addresses"); !s.ok())
    return s;
  return ctx.out;
}

absl::Status Netlink::addLinkScopeAddr(int ifindex, const IpAddr& addr, int prefix_len) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq_++);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(familyOf(addr.af()));
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  ifa->ifa_scope = RT_SCOPE_LINK;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  mnl_attr_put(nlh, IFA_LOCAL, addrLen(addr.af()), addr.data());
  mnl_attr_put(nlh, IFA_ADDRESS, addrLen(addr.af()), addr.data());
  return request(buf,
                 absl::StrCat("add address ", addr.toString(), "/", prefix_len, " dev ", ifindex));
}

absl::Status Netlink::setIpv4DevConf(int ifindex, int conf_id, uint32_t value) {
  char buf[kBufSize];
  std::lock_guard<std::mutex> lock(mu_);
  nlmsghdr* nlh = newMsg(buf, RTM_SETLINK, 0, seq_++);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  nlattr* spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
  nlattr* inet = mnl_attr_nest_start(nlh, AF_INET);
  nlattr* conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
  mnl_attr_put_u32(nlh, static_cast<uint16_t>(conf_id), value);
  mnl_attr_nest_end(nlh, conf);
  mnl_attr_nest_end(nlh, inet);
  mnl_attr_nest_end(nlh, spec);
  return request(buf, absl::StrCat("set ipv4 devconf ", conf_id, "=", value, " dev ", ifindex));
}

// ---- sysctls ----

absl::StatusOr<std::string> readSysctl(const std::string& path) {
  std::ifstream in(absl::StrCat("/proc/sys/", path));
  if (!in)
    return absl::NotFoundError(absl::StrCat("sysctl ", path, ": cannot read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
}

absl::StatusOr<std::string> writeSysctl(const std::string& path, const std::string& value) {
  auto old = readSysctl(path);
  if (!old.ok())
    return old.status();
  const std::string file = absl::StrCat("/proc/sys/", path);
  int fd = open(file.c_str(), O_WRONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    const std::string line = value + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      err = errno;
    close(fd);
  }
  if (err == EROFS || err == EACCES || err == EPERM) {
    // Docker mounts /proc/sys read-only; callers fall back to netlink or explain.
    return absl::FailedPreconditionError(absl::StrCat(
        "sysctl ", path, "=", value, ": /proc/sys is read-only here (", strerror(err), ")"));
  }
  if (err != 0) {
    return absl::InternalError(
        absl::StrCat("sysctl ", path, "=", value, ": write failed: ", strerror(err)));
  }
  return old;
}

std::string netnsId() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    const bool ok = getsockopt(fd, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, &cookie, &len) == 0;
    close(fd);
    if (ok)
      return absl::StrCat("c", cookie);
  }

  struct stat st {};

  if (stat("/proc/self/ns/net", &st) == 0)
    return absl::StrCat("i", st.st_ino);
  return "";
}

}  // namespace lb::io
