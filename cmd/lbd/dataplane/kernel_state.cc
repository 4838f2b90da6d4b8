// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/kernel_state.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ip.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

#include "core/base/log.h"
#include "io/netlink/netlink.h"

namespace lb::lbd {
namespace {

constexpr uint32_t kLocalTable = 255;
// lbd0's own address: link scope, from 169.254.0.0/16 (RFC 3927), 245 as everywhere in lbd.
const IpAddr kTunAddr = IpAddr::v4(0xa9fef5f5);  // 169.254.245.245

int fullPrefix(Af af) {
  return af == Af::kInet6 ? 128 : 32;
}

bool contains(const IpAddr& net, int prefix_len, const IpAddr& a) {
  return net.af() == a.af() && net.masked(prefix_len) == a.masked(prefix_len);
}

template <typename T>
bool has(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Hashes for the reconcile diff: with 10,000 VIPs, comparing vectors pairwise costs 10^8
// comparisons per commit.
struct RouteHash {
  size_t operator()(const io::RouteSpec& r) const {
    return absl::HashOf(r.dst, r.af, r.prefix_len, r.table, r.oif, r.protocol);
  }
};

struct RuleHash {
  size_t operator()(const io::RuleSpec& r) const {
    return absl::HashOf(r.af, r.pref, r.src, r.src_len, r.iif, r.ip_proto, r.sport, r.table,
                        r.goto_pref, r.protocol);
  }
};

using RouteSet = absl::flat_hash_set<io::RouteSpec, RouteHash>;
using RuleSet = absl::flat_hash_set<io::RuleSpec, RuleHash>;

std::string ifName(int ifindex) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr)
    return "";
  return name;
}

}  // namespace

KernelState::KernelState(
    io::Netlink& nl, Mode mode, std::string tun, int tun_ifindex, std::string journal)
    : nl_(nl),
      mode_(mode),
      tun_(std::move(tun)),
      tun_ifindex_(tun_ifindex),
      journal_(std::move(journal)) {}

std::string KernelState::journalPath(const std::string& run_dir, const std::string& tun) {
  if (run_dir.empty())
    return "";
  // SO_NETNS_COOKIE (Linux 5.14) is never reused; a namespace inode can be, after deletion.
  const std::string id = io::netnsId();
  if (id.empty())
    return "";
  return absl::StrCat(run_dir, "/sysctls-", id, "-", tun);
}

void KernelState::saveJournal() {
  if (journal_.empty())
    return;
  std::string text;
  for (const auto& [path, old] : sysctls_)
    absl::StrAppend(&text, "sysctl ", path, " ", old, "\n");
  for (const DevConf& d : devconfs_)
    absl::StrAppend(&text, "devconf ", d.ifindex, " ", d.id, " ", d.old, "\n");
  const std::string dir = journal_.substr(0, journal_.rfind('/'));
  mkdir(dir.c_str(), 0700);  // EEXIST is fine; other errors show at open
  const std::string tmp = journal_ + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    LB_LOG(kWarn, "sysctl journal %s: %s (a crash would leave sysctls changed)", tmp,
           strerror(errno));
    return;
  }
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), journal_.c_str()) != 0) {
    LB_LOG(kWarn, "sysctl journal %s: %s", journal_, strerror(errno));
    unlink(tmp.c_str());
  }
}

void KernelState::restoreJournal() {
  if (journal_.empty())
    return;
  std::string text;
  {
    const int fd = open(journal_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return;
    char buf[4096];
    ssize_t n = 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
      text.append(buf, static_cast<size_t>(n));
    close(fd);
  }
  // Newest first, as removeAll does.
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    std::vector<std::string> f = absl::StrSplit(*it, ' ');
    if (f.size() == 3 && f[0] == "sysctl") {
      LB_LOG(kInfo, "restoring leftover sysctl %s = %s", f[1], f[2]);
      if (absl::Status s = io::writeSysctl(f[1], f[2]).status(); !s.ok())
        LB_LOG(kWarn, "restore %s: %s", f[1], s.ToString());
      continue;
    }
    int ifindex = 0, id = 0;
    uint32_t old = 0;
    if (f.size() == 4 && f[0] == "devconf" && absl::SimpleAtoi(f[1], &ifindex) &&
        absl::SimpleAtoi(f[2], &id) && absl::SimpleAtoi(f[3], &old)) {
      LB_LOG(kInfo, "restoring leftover device setting %d on ifindex %d = %u", id, ifindex, old);
      (void)nl_.setIpv4DevConf(ifindex, id, old);  // the device may be gone
    }
  }
  unlink(journal_.c_str());
}

std::vector<IpAddr> KernelState::ownAddrs(const ServiceWithDests& sd) {
  std::vector<IpAddr> out;
  if (!sd.service.key.isFwmark())
    out.push_back(sd.service.key.vaddr);
  out.insert(out.end(), sd.service.local_addrs.begin(), sd.service.local_addrs.end());
  return out;
}

std::vector<KernelState::NatReply> KernelState::natReplies(const ServiceWithDests& sd,
                                                           const std::vector<uint16_t>& ftp_ports) {
  std::vector<NatReply> out;
  const ServiceKey& key = sd.service.key;
  const bool ftp = !key.isFwmark() && key.proto == L4Proto::kTcp &&
                   std::find(ftp_ports.begin(), ftp_ports.end(), key.vport) != ftp_ports.end();
  for (const DestConfig& d : sd.dests) {
    if (d.fwd != FwdMethod::kMasq)
      continue;
    if (ftp && d.port > 1)
      out.push_back(NatReply{d.addr, L4Proto::kTcp, static_cast<uint16_t>(d.port - 1)});
    for (L4Proto p : {L4Proto::kTcp, L4Proto::kUdp, L4Proto::kSctp}) {
      if (key.isFwmark() ? p == L4Proto::kSctp : p != key.proto)
        continue;
      out.push_back(NatReply{d.addr, p, d.port});
    }
  }
  return out;
}

bool KernelState::hasTunnelDests(const FullConfig& cfg) {
  for (const auto& s : cfg.services) {
    for (const auto& d : s.dests) {
      if (d.fwd == FwdMethod::kTunnel)
        return true;
    }
  }
  return false;
}

absl::Status KernelState::cleanupLeftovers() {
  restoreJournal();
  for (Af af : {Af::kInet, Af::kInet6}) {
    auto routes = nl_.listRoutes(af, io::kLbdProto);
    if (!routes.ok())
      return routes.status();
    for (const auto& r : *routes) {
      LB_LOG(kInfo, "removing leftover route %s/%d table %u", r.dst.toString(), r.prefix_len,
             r.table);
      (void)nl_.delRoute(r);
    }
    auto rules = nl_.listRules(af);
    if (!rules.ok())
      return rules.status();
    bool has_local0 = false;
    bool moved_local = false;
    for (const auto& r : *rules) {
      if (r.pref == 0 && r.table == kLocalTable)
        has_local0 = true;
      if (r.protocol == io::kLbdProto && r.table == kLocalTable)
        moved_local = true;
    }
    // A crashed sidecar run moved the local rule: put it back before deleting the copy.
    if (moved_local && !has_local0) {
      if (absl::Status s = nl_.addLocalRule(af, 0, 2 /* RTPROT_KERNEL */); !s.ok())
        return s;
    }
    for (const auto& r : *rules) {
      if (r.protocol != io::kLbdProto)
        continue;
      LB_LOG(kInfo, "removing leftover rule pref %u", r.pref);
      (void)nl_.delRule(r);
    }
    auto proxies = nl_.listProxyNeighs(af);
    if (!proxies.ok())
      return proxies.status();
    for (const auto& [addr, ifindex] : *proxies)
      (void)nl_.delProxyNeigh(addr, ifindex);
  }
  return absl::OkStatus();
}

namespace {

// IPV4_DEVCONF_* ids (<linux/ip.h>) of the per-device settings lbd may need, by /proc/sys name.
int ipv4DevConfId(absl::string_view name) {
  if (name == "forwarding")
    return IPV4_DEVCONF_FORWARDING;
  if (name == "rp_filter")
    return IPV4_DEVCONF_RP_FILTER;
  if (name == "accept_local")
    return IPV4_DEVCONF_ACCEPT_LOCAL;
  if (name == "proxy_arp")
    return IPV4_DEVCONF_PROXY_ARP;
  return 0;
}

std::vector<std::string> interfaceNames() {
  std::vector<std::string> out;
  if (struct if_nameindex* all = if_nameindex()) {
    for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
      if (std::string(i->if_name) != "lo")
        out.emplace_back(i->if_name);
    }
    if_freenameindex(all);
  }
  return out;
}

}  // namespace

absl::Status KernelState::setSysctlViaNetlink(const std::string& path,
                                              const std::string& value,
                                              const absl::Status& why) {
  const std::string hint =
      absl::StrCat(why.message(), "; in a container, pass --sysctl ",
                   absl::StrReplaceAll(path, {{"/", "."}}), "=", value, " to docker run");
  uint32_t v = 0;
  if (!absl::SimpleAtoi(value, &v))
    return absl::FailedPreconditionError(hint);
  std::vector<std::string> devs;
  std::string name;
  if (path == "net/ipv4/ip_forward") {
    // Forwarding is decided per input device (route.c ip_route_input_slow: IN_DEV_FORWARD),
    // so every device gets it, as writing ip_forward does (devinet.c inet_forward_change).
    devs = interfaceNames();
    name = "forwarding";
  } else if (absl::StartsWith(path, "net/ipv4/conf/")) {
    std::vector<std::string> parts = absl::StrSplit(path.substr(14), '/');
    if (parts.size() != 2 || parts[0] == "all" || parts[0] == "default")
      return absl::FailedPreconditionError(hint);
    devs = {parts[0]};
    name = parts[1];
  }
  const int id = ipv4DevConfId(name);
  if (devs.empty() || id == 0)
    return absl::FailedPreconditionError(hint);
  for (const std::string& dev : devs) {
    const int ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    if (ifindex == 0)
      continue;
    uint32_t old = 0;
    auto cur = io::readSysctl(absl::StrCat("net/ipv4/conf/", dev, "/", name));
    if (cur.ok() && absl::SimpleAtoi(*cur, &old) && old == v)
      continue;
    if (absl::Status s = nl_.setIpv4DevConf(ifindex, id, v); !s.ok())
      return absl::FailedPreconditionError(absl::StrCat(hint, " (netlink: ", s.message(), ")"));
    devconfs_.push_back({ifindex, id, old});
    saveJournal();
  }
  LB_LOG(kInfo, "%s: read-only /proc/sys, set through netlink instead", path);
  return absl::OkStatus();
}

absl::Status KernelState::setTunConf(const std::string& name, const std::string& value) {
  const std::string path = absl::StrCat("net/ipv4/conf/", tun_, "/", name);
  auto r = io::writeSysctl(path, value);
  if (r.ok() || !absl::IsFailedPrecondition(r.status()))
    return r.status();
  uint32_t v = 0;
  const int id = ipv4DevConfId(name);
  if (id == 0 || !absl::SimpleAtoi(value, &v))
    return r.status();
  // The TUN device's settings vanish with it: nothing to record.
  return nl_.setIpv4DevConf(tun_ifindex_, id, v);
}

absl::Status KernelState::setSysctl(const std::string& path, const std::string& value) {
  for (const auto& [p, old] : sysctls_) {
    if (p == path)
      return absl::OkStatus();  // already set by lbd; keep the first old value
  }
  auto old = io::writeSysctl(path, value);
  if (!old.ok() && absl::IsFailedPrecondition(old.status())) {
    auto cur = io::readSysctl(path);
    if (cur.ok() && *cur == value)
      return absl::OkStatus();  // read-only, but already what lbd needs
    return setSysctlViaNetlink(path, value, old.status());
  }
  if (!old.ok())
    return old.status();
  sysctls_.emplace_back(path, *old);
  saveJournal();
  return absl::OkStatus();
}

absl::Status KernelState::addRoute(const io::RouteSpec& r) {
  absl::Status s = nl_.addRoute(r);
  if (absl::IsAlreadyExists(s)) {
    // Someone else's route (not ours: ours are all recorded); leave it alone.
    LB_LOG(kWarn, "%s; not installing lbd's", s.ToString());
    return absl::OkStatus();
  }
  if (!s.ok())
    return s;
  routes_.push_back(r);
  return absl::OkStatus();
}

absl::Status KernelState::addRule(const io::RuleSpec& r, std::vector<io::RuleSpec>& into) {
  if (absl::Status s = nl_.addRule(r); !s.ok())
    return s;
  into.push_back(r);
  return absl::OkStatus();
}

absl::Status KernelState::installBase() {
  // The TUN device's own sysctls vanish with it; only global ones are recorded and restored.
  // Loose reverse-path filtering: NAT writes keep the client's source, routed elsewhere.
  // The kernel's reverse-path check gives up on a device without any IPv4 address
  // (fib_frontend.c __fib_validate_source: no_addr -> last_resort -> e_rpf when rp_filter is
  // on), which drops what lbd writes whenever the effective rp_filter is not 0. A link-scope
  // /32 is never picked as a source for other destinations (inet_select_addr) and vanishes
  // with the device.
  if (absl::Status s = nl_.addLinkScopeAddr(tun_ifindex_, kTunAddr, 32); !s.ok())
    return s;
  if (absl::Status s = setTunConf("rp_filter", "2"); !s.ok())
    return s;
  if (mode_ == Mode::kDecap)
    return absl::OkStatus();
  // A local source on what lbd writes is a martian without accept_local (fib_validate_source):
  // the app's own address in a sidecar, and in both modes the outer source of tunnel packets
  // (the route source towards the real server, as ip_vs_xmit.c picks it).
  if (absl::Status s = setTunConf("accept_local", "1"); !s.ok())
    return s;
  if (absl::Status s = setSysctl("net/ipv4/ip_forward", "1"); !s.ok())
    return s;
  if (mode_ == Mode::kSidecar) {
    // A reply to the app's own direct connection with a real server (not through a VIP)
    // matches a diversion rule too; early demux would attach the app's socket to it and
    // ip_forward() drops any skb with a socket, so the app could never reach a RIP:rport
    // directly. Without early demux it is forwarded into lbd0, found to be no conn
    // (kToHost) and written back for local delivery.
    for (const char* p : {"net/ipv4/tcp_early_demux", "net/ipv4/udp_early_demux"}) {
      absl::Status s = setSysctl(p, "0");
      if (absl::IsFailedPrecondition(s)) {
        // Only the app's direct connections to a real server's port suffer; VIP traffic works.
        LB_LOG(kWarn, "%s: the app's direct connections to real-server ports will fail",
               s.message());
      } else if (!s.ok()) {
        return s;
      }
    }
  }
  for (Af af : {Af::kInet, Af::kInet6}) {
    io::RouteSpec def;
    def.af = af;
    def.dst = IpAddr();
    def.prefix_len = 0;
    def.table = io::kLbdTable;
    def.oif = tun_ifindex_;
    absl::Status s = nl_.addRoute(def);
    if (!s.ok() && !(af == Af::kInet6 && absl::IsPermissionDenied(s)))
      return s;
    if (s.ok())
      base_routes_.push_back(def);
    io::RuleSpec after;
    after.af = af;
    after.pref = kPrefAfter;
    after.table = mode_ == Mode::kSidecar ? kLocalTable : io::kMainTable;
    if (s = addRule(after, base_rules_); !s.ok())
      return s;
    if (mode_ == Mode::kSidecar) {
      // Local delivery must come after the diversion rules: re-add the local rule at 150
      // first, then remove pref 0 (never a moment without one).
      auto has0 = nl_.hasLocalRule(af, 0);
      if (!has0.ok())
        return has0.status();
      if (*has0) {
        if (s = nl_.delLocalRule(af, 0); !s.ok())
          return s;
        local_moved_[af == Af::kInet6 ? 1 : 0] = true;
      }
    }
    io::RuleSpec iif;
    iif.af = af;
    iif.pref = kPrefIifTun;
    iif.iif = tun_;
    iif.goto_pref = kPrefAfter;
    if (s = addRule(iif, base_rules_); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::Status KernelState::reconcile(const FullConfig& cfg) {
  if (mode_ == Mode::kDecap)
    return absl::OkStatus();
  std::vector<io::RouteSpec> want_routes;  // in order, each once
  std::vector<io::RuleSpec> want_rules;
  RouteSet want_route_set;
  RuleSet want_rule_set;
  std::vector<IpAddr> proxied;
  bool any_v6 = false;
  auto route = [&](const IpAddr& a, int prefix_len) {
    io::RouteSpec r;
    r.af = a.af();
    r.dst = a.masked(prefix_len);
    r.prefix_len = prefix_len;
    r.oif = tun_ifindex_;
    if (want_route_set.insert(r).second)
      want_routes.push_back(r);
  };
  for (const auto& sd : cfg.services) {
    const ServiceKey& key = sd.service.key;
    if (key.af == Af::kInet6)
      any_v6 = true;
    for (const IpAddr& a : ownAddrs(sd)) {
      route(a, fullPrefix(a.af()));
      // A sidecar's VIPs are the app's alone: answering ARP/ND for them would draw its LAN's
      // traffic. A full-NAT local address is where the real servers reply, on the app's LAN:
      // in a sidecar too, without a proxy entry their ARP/ND for it goes unanswered and no
      // reply ever reaches lbd.
      const bool vip = !key.isFwmark() && a == key.vaddr;
      if (mode_ == Mode::kGateway || !vip)
        proxied.push_back(a);
    }
    std::vector<NatReply> replies = natReplies(sd, ftp_ports_);
    // The FTP helper's passive data conns answer from ports only the control conn names: a NAT
    // dest of a helper port has all its TCP diverted (what matches no conn is given back to
    // the kernel, see transmit()), as the kernel's IPVS sees all forwarded traffic.
    if (!key.isFwmark() && key.proto == L4Proto::kTcp &&
        std::find(ftp_ports_.begin(), ftp_ports_.end(), key.vport) != ftp_ports_.end()) {
      for (const DestConfig& d : sd.dests) {
        if (d.fwd == FwdMethod::kMasq)
          replies.push_back(NatReply{d.addr, L4Proto::kTcp, 0});
      }
    }
    for (const NatReply& nr : replies) {
      io::RuleSpec r;
      r.af = nr.addr.af();
      r.pref = kPrefDivert;
      r.src = nr.addr;
      r.src_len = fullPrefix(nr.addr.af());
      r.ip_proto = static_cast<uint8_t>(nr.proto);
      r.sport = nr.port;
      r.table = io::kLbdTable;
      if (want_rule_set.insert(r).second)
        want_rules.push_back(r);
    }
  }
  for (const FwmarkRule& fr : cfg.fwmark_rules)
    route(fr.dst, fr.prefix_len);

  if (any_v6) {
    if (absl::Status s = setSysctl("net/ipv6/conf/all/forwarding", "1"); !s.ok())
      return s;
  }
  std::erase_if(rules_, [&](const io::RuleSpec& r) {
    if (want_rule_set.contains(r))
      return false;
    if (absl::Status s = nl_.delRule(r); !s.ok())
      LB_LOG(kWarn, "%s", s.ToString());
    return true;
  });
  std::erase_if(routes_, [&](const io::RouteSpec& r) {
    if (want_route_set.contains(r))
      return false;
    if (absl::Status s = nl_.delRoute(r); !s.ok())
      LB_LOG(kWarn, "%s", s.ToString());
    return true;
  });
  const RouteSet have_routes(routes_.begin(), routes_.end());
  const RuleSet have_rules(rules_.begin(), rules_.end());
  for (const auto& r : want_routes) {
    if (have_routes.contains(r))
      continue;
    if (absl::Status s = addRoute(r); !s.ok())
      return s;
  }
  for (const auto& r : want_rules) {
    if (have_rules.contains(r))
      continue;
    if (absl::Status s = addRule(r, rules_); !s.ok())
      return s;
  }
  return ensureProxies(proxied);
}

absl::Status KernelState::ensureProxies(const std::vector<IpAddr>& wanted) {
  // Answer ARP/ND for a VIP or local address on every interface whose subnet holds it, so
  // clients on that LAN reach lbd without a route (arp.c arp_process: pneigh_lookup on a
  // forwarding device for a target routed out another device).
  std::vector<std::pair<IpAddr, int>> want;
  for (Af af : {Af::kInet, Af::kInet6}) {
    auto addrs = nl_.listAddrs(af);
    if (!addrs.ok())
      return addrs.status();
    for (const IpAddr& a : wanted) {
      if (a.af() != af)
        continue;
      for (const io::AddrInfo& ai : *addrs) {
        if (ai.ifindex == tun_ifindex_ || ai.addr == a)
          continue;
        if (ai.prefix_len == 0 || ai.prefix_len >= fullPrefix(af))
          continue;
        if (!contains(ai.addr, ai.prefix_len, a))
          continue;
        auto p = std::make_pair(a, ai.ifindex);
        if (!has(want, p))
          want.push_back(p);
      }
    }
  }
  for (auto it = proxies_.begin(); it != proxies_.end();) {
    if (has(want, *it)) {
      ++it;
      continue;
    }
    (void)nl_.delProxyNeigh(it->first, it->second);
    it = proxies_.erase(it);
  }
  for (const auto& p : want) {
    if (has(proxies_, p))
      continue;
    const std::string dev = ifName(p.second);
    if (dev.empty())
      continue;
    // Proxy replies are delayed by up to proxy_delay (0.8 s) unless it is 0.
    if (p.first.isV6()) {
      if (absl::Status s = setSysctl(absl::StrCat("net/ipv6/conf/", dev, "/proxy_ndp"), "1");
          !s.ok()) {
        return s;
      }
      (void)setSysctl(absl::StrCat("net/ipv6/neigh/", dev, "/proxy_delay"), "0");
    } else {
      (void)setSysctl(absl::StrCat("net/ipv4/neigh/", dev, "/proxy_delay"), "0");
    }
    if (absl::Status s = nl_.addProxyNeigh(p.first, p.second); !s.ok())
      return s;
    proxies_.push_back(p);
  }
  return absl::OkStatus();
}

namespace {

std::string addrText(const IpAddr& a) {
  return a.isUnspecified() ? std::string("-") : a.toString();
}

bool parseAddr(absl::string_view t, Af af, IpAddr& out) {
  if (t == "-") {
    out = IpAddr();
    return true;
  }
  std::optional<IpAddr> a = IpAddr::parse(t);
  if (!a.has_value() || a->af() != af)
    return false;
  out = *a;
  return true;
}

std::string routeText(absl::string_view kind, const io::RouteSpec& r) {
  return absl::StrCat(kind, " ", static_cast<int>(r.af), " ", addrText(r.dst), " ", r.prefix_len,
                      " ", r.table, " ", r.oif, " ", r.protocol, "\n");
}

std::string ruleText(absl::string_view kind, const io::RuleSpec& r) {
  return absl::StrCat(kind, " ", static_cast<int>(r.af), " ", r.pref, " ", addrText(r.src), " ",
                      r.src_len, " ", r.iif.empty() ? "-" : r.iif, " ", r.ip_proto, " ", r.sport,
                      " ", r.table, " ", r.goto_pref, " ", r.protocol, "\n");
}

Af afOf(int v) {
  return v == static_cast<int>(Af::kInet6) ? Af::kInet6 : Af::kInet;
}

}  // namespace

std::string KernelState::exportState() const {
  std::string out;
  for (const auto& [path, old] : sysctls_)
    absl::StrAppend(&out, "sysctl ", path, " ", old, "\n");
  for (const DevConf& d : devconfs_)
    absl::StrAppend(&out, "devconf ", d.ifindex, " ", d.id, " ", d.old, "\n");
  for (const auto& r : base_routes_)
    out += routeText("base_route", r);
  for (const auto& r : base_rules_)
    out += ruleText("base_rule", r);
  for (int i = 0; i < 2; ++i) {
    if (local_moved_[i])
      absl::StrAppend(&out, "local_moved ", i, "\n");
  }
  for (const auto& r : routes_)
    out += routeText("route", r);
  for (const auto& r : rules_)
    out += ruleText("rule", r);
  for (const auto& [addr, ifindex] : proxies_)
    absl::StrAppend(&out, "proxy ", addr.toString(), " ", ifindex, "\n");
  return out;
}

absl::Status KernelState::importState(const std::string& text) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++n;
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    bool ok = false;
    int a = 0, b = 0, c = 0, d = 0, e = 0, g = 0, h = 0;
    uint32_t u = 0, v = 0;
    if (f[0] == "sysctl" && f.size() == 3) {
      sysctls_.emplace_back(f[1], f[2]);
      ok = true;
    } else if (f[0] == "devconf" && f.size() == 4 && absl::SimpleAtoi(f[1], &a) &&
               absl::SimpleAtoi(f[2], &b) && absl::SimpleAtoi(f[3], &u)) {
      devconfs_.push_back({a, b, u});
      ok = true;
    } else if ((f[0] == "base_route" || f[0] == "route") && f.size() == 7) {
      io::RouteSpec r;
      ok = absl::SimpleAtoi(f[1], &a) && parseAddr(f[2], afOf(a), r.dst) &&
           absl::SimpleAtoi(f[3], &r.prefix_len) && absl::SimpleAtoi(f[4], &r.table) &&
           absl::SimpleAtoi(f[5], &r.oif) && absl::SimpleAtoi(f[6], &b);
      r.af = afOf(a);
      r.protocol = static_cast<uint8_t>(b);
      (f[0] == "route" ? routes_ : base_routes_).push_back(r);
    } else if ((f[0] == "base_rule" || f[0] == "rule") && f.size() == 11) {
      io::RuleSpec r;
      ok = absl::SimpleAtoi(f[1], &a) && absl::SimpleAtoi(f[2], &r.pref) &&
           parseAddr(f[3], afOf(a), r.src) && absl::SimpleAtoi(f[4], &r.src_len) &&
           absl::SimpleAtoi(f[6], &c) && absl::SimpleAtoi(f[7], &d) &&
           absl::SimpleAtoi(f[8], &r.table) && absl::SimpleAtoi(f[9], &v) &&
           absl::SimpleAtoi(f[10], &e);
      r.af = afOf(a);
      r.iif = f[5] == "-" ? "" : f[5];
      r.ip_proto = static_cast<uint8_t>(c);
      r.sport = static_cast<uint16_t>(d);
      r.goto_pref = v;
      r.protocol = static_cast<uint8_t>(e);
      (f[0] == "rule" ? rules_ : base_rules_).push_back(r);
    } else if (f[0] == "local_moved" && f.size() == 2 && absl::SimpleAtoi(f[1], &g) && g >= 0 &&
               g < 2) {
      local_moved_[g] = true;
      ok = true;
    } else if (f[0] == "proxy" && f.size() == 3 && absl::SimpleAtoi(f[2], &h)) {
      std::optional<IpAddr> addr = IpAddr::parse(f[1]);
      ok = addr.has_value();
      if (ok)
        proxies_.emplace_back(*addr, h);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("kernel state handed over, line ", n, ": '", line, "'"));
    }
  }
  saveJournal();
  return absl::OkStatus();
}

void KernelState::removeAll() {
  auto warn = [](const absl::Status& s) {
    if (!s.ok())
      LB_LOG(kWarn, "cleanup: %s", s.ToString());
  };
  for (const auto& [addr, ifindex] : proxies_)
    warn(nl_.delProxyNeigh(addr, ifindex));
  proxies_.clear();
  for (const auto& r : rules_)
    warn(nl_.delRule(r));
  rules_.clear();
  for (const auto& r : routes_)
    warn(nl_.delRoute(r));
  routes_.clear();
  for (Af af : {Af::kInet, Af::kInet6}) {
    if (local_moved_[af == Af::kInet6 ? 1 : 0]) {
      warn(nl_.addLocalRule(af, 0, 2 /* RTPROT_KERNEL */));
      local_moved_[af == Af::kInet6 ? 1 : 0] = false;
    }
  }
  for (auto it = base_rules_.rbegin(); it != base_rules_.rend(); ++it)
    warn(nl_.delRule(*it));
  base_rules_.clear();
  for (const auto& r : base_routes_) {
    absl::Status s = nl_.delRoute(r);
    if (!absl::IsNotFound(s))
      warn(s);  // gone with the device if it was closed first
  }
  base_routes_.clear();
  for (auto it = devconfs_.rbegin(); it != devconfs_.rend(); ++it)
    warn(nl_.setIpv4DevConf(it->ifindex, it->id, it->old));
  devconfs_.clear();
  for (auto it = sysctls_.rbegin(); it != sysctls_.rend(); ++it) {
    warn(io::writeSysctl(it->first, it->second).status());
  }
  sysctls_.clear();
  if (!journal_.empty())
    unlink(journal_.c_str());
}

}  // namespace lb::lbd
