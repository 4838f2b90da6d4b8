// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/neigh_cache.h"

#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/base/log.h"

namespace lb::lbd {
namespace {

bool linkMac(int ifindex, io::MacAddr& mac) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr)
    return false;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return false;
  ifreq ifr{};
  // name is NUL-terminated within IF_NAMESIZE (== IFNAMSIZ); ifr is zeroed.
  std::memcpy(ifr.ifr_name, name, std::min(std::strlen(name), size_t{IFNAMSIZ - 1}));
  bool ok = ioctl(s, SIOCGIFHWADDR, &ifr) == 0;
  close(s);
  if (ok)
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  return ok;
}

}  // namespace

void NeighCache::setWanted(std::vector<IpAddr> addrs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (addrs == wanted_)
    return;
  wanted_ = std::move(addrs);
  wanted_changed_ = true;
  wanted_refresh_.store(true);
}

void NeighCache::refresh(bool full) {
  std::vector<IpAddr> wanted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wanted = wanted_;
    full = full || wanted_changed_;
    wanted_changed_ = false;
  }
  std::shared_ptr<const NeighMap> cur = map_.get();
  auto next = std::make_shared<NeighMap>();
  bool changed = false;
  for (const IpAddr& a : wanted) {
    auto it = cur->find(a);
    if (!full && it != cur->end()) {
      next->emplace(a, it->second);
      continue;
    }
    auto route = nl_.getRoute(a);
    if (!route.ok() || route->first == 0) {
      LB_LOG_EVERY_N_SEC(kWarn, 10, "DR next hop %s: no route", a.toString());
      continue;
    }
    const IpAddr hop = route->second.isUnspecified() ? a : route->second;
    NeighEntry e;
    e.ifindex = route->first;
    auto mac = nl_.getNeigh(e.ifindex, hop);
    if (!mac.ok() || !mac->has_value() || !linkMac(e.ifindex, e.src)) {
      (void)nl_.resolveNeigh(e.ifindex, hop);
      // Keep a previously known MAC while the kernel re-resolves (its entry may have been
      // garbage-collected since lbd's frames bypass the neighbour layer).
      if (it != cur->end())
        next->emplace(a, it->second);
      continue;
    }
    e.dst = **mac;
    next->emplace(a, e);
  }
  incomplete_ = next->size() < wanted.size();
  if (next->size() != cur->size())
    changed = true;
  for (const auto& [a, e] : *next) {
    auto it = cur->find(a);
    if (it == cur->end() || it->second.ifindex != e.ifindex || it->second.dst != e.dst ||
        it->second.src != e.src) {
      changed = true;
    }
  }
  if (changed)
    map_.publish(std::move(next));
}

}  // namespace lb::lbd
