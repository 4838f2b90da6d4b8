// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/neigh_cache.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/base/log.h"

namespace lb::lbd {
namespace {

// The MAC and MTU of an Ethernet link; false for any other link type (loopback, TUN, IPIP...).
bool linkInfo(int ifindex, io::MacAddr& mac, uint32_t& mtu) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr)
    return false;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return false;
  ifreq ifr{};
  // name is NUL-terminated within IF_NAMESIZE (== IFNAMSIZ); ifr is zeroed.
  std::memcpy(ifr.ifr_name, name, std::min(std::strlen(name), size_t{IFNAMSIZ - 1}));
  bool ok = ioctl(s, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
  if (ok)
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  ok = ok && ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0;
  if (ok)
    mtu = static_cast<uint32_t>(ifr.ifr_mtu);
  close(s);
  return ok;
}

// A rule every namespace has: `from all lookup local|main|default` with no selector.
bool defaultRule(const io::RuleSpec& r) {
  return r.src_len == 0 && r.iif.empty() && r.ip_proto == 0 && r.sport == 0 && r.goto_pref == 0 &&
         (r.table == 253 || r.table == 254 || r.table == 255);
}

}  // namespace

NeighCache::NeighCache(io::Netlink& nl, int tun_ifindex, size_t workers, bool direct_egress)
    : nl_(nl), tun_ifindex_(tun_ifindex), direct_egress_(direct_egress) {
  for (size_t i = 0; i < workers; ++i)
    requests_.push_back(std::make_unique<NeighRequests>());
  map_.publish(std::make_shared<NeighMap>());
}

void NeighCache::setWanted(std::vector<IpAddr> addrs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (addrs == wanted_)
    return;
  wanted_ = std::move(addrs);
  wanted_changed_ = true;
  wanted_refresh_.store(true);
}

// Policy rules decide routes by more than the destination (source, mark, iif, ports): with any
// rule besides the defaults and lbd's own (protocol 245), a destination-only lookup could pick
// another route than the kernel's second pass would, so direct egress stays off.
bool NeighCache::foreignRules() {
  for (Af af : {Af::kInet, Af::kInet6}) {
    auto rules = nl_.listRules(af);
    if (!rules.ok())
      return true;
    for (const io::RuleSpec& r : *rules) {
      if (r.protocol != io::kLbdProto && !defaultRule(r))
        return true;
    }
  }
  return false;
}

bool NeighCache::resolve(const IpAddr& a, bool learned, NeighEntry& out) {
  out = NeighEntry{};
  auto route = nl_.getRoute(a);
  if (!route.ok() || route->first == 0) {
    if (!learned)
      LB_LOG_EVERY_N_SEC(kWarn, 10, "DR next hop %s: no route", a.toString());
    return learned;  // a learned destination without a route: negative
  }
  if (learned && route->first == tun_ifindex_)
    return true;  // routed into lbd's own device (a VIP, a local address): negative
  const IpAddr hop = route->second.isUnspecified() ? a : route->second;
  NeighEntry e;
  e.ifindex = route->first;
  if (!linkInfo(e.ifindex, e.src, e.mtu))
    return learned;  // not Ethernet (loopback for local addresses, tunnels): negative
  auto mac = nl_.getNeigh(e.ifindex, hop);
  if (!mac.ok() || !mac->has_value()) {
    (void)nl_.resolveNeigh(e.ifindex, hop);
    return false;
  }
  e.dst = **mac;
  out = e;
  return true;
}

void NeighCache::refresh(bool full, MonoTime now) {
  std::vector<IpAddr> wanted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wanted = wanted_;
    full = full || wanted_changed_;
    wanted_changed_ = false;
  }
  if (direct_egress_ && (full || !rules_checked_)) {
    rules_checked_ = true;
    const bool on = !foreignRules();
    if (on != egress_on_.load())
      LB_LOG(kInfo, "direct Ethernet egress %s", on ? "on" : "off (foreign policy rules)");
    egress_on_.store(on);
  }
  if (!egress_on_.load())
    learned_.clear();
  for (auto& r : requests_) {
    r->drain([&](const IpAddr& a) {
      if (egress_on_.load() && learned_.size() < kMaxLearned)
        learned_.try_emplace(a, Learned{now, false});
    });
  }
  if (full) {
    absl::erase_if(learned_,
                   [&](const auto& kv) { return now - kv.second.since >= millis(kLearnedTtlMs); });
  }

  std::shared_ptr<const NeighMap> cur = map_.get();
  auto next = std::make_shared<NeighMap>();
  size_t missing = 0;
  auto add = [&](const IpAddr& a, bool learned, MonoTime since) {
    if (next->contains(a))
      return;
    auto it = cur->find(a);
    if (!full && it != cur->end()) {
      next->emplace(a, it->second);
      return;
    }
    // A learned destination whose neighbour did not answer within its first second waits for
    // the next full refresh: a few thousand unreachable destinations must not cost netlink
    // round trips every tick.
    if (!full && learned && now - since >= millis(kLearnedRetryMs))
      return;
    NeighEntry e;
    if (resolve(a, learned, e)) {
      next->emplace(a, e);
      return;
    }
    ++missing;
    // Keep a previously known MAC while the kernel re-resolves (its entry may have been
    // garbage-collected since lbd's frames bypass the neighbour layer).
    if (it != cur->end())
      next->emplace(a, it->second);
  };
  for (const IpAddr& a : wanted)
    add(a, false, now);
  for (const auto& [a, l] : learned_)
    add(a, true, l.since);
  incomplete_ = missing != 0;

  bool changed = next->size() != cur->size();
  for (const auto& [a, e] : *next) {
    auto it = cur->find(a);
    if (it == cur->end() || it->second.ifindex != e.ifindex || it->second.dst != e.dst ||
        it->second.src != e.src || it->second.mtu != e.mtu) {
      changed = true;
    }
  }
  if (changed)
    map_.publish(std::move(next));
}

}  // namespace lb::lbd
