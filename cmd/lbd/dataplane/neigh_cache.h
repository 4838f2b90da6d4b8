// SPDX-License-Identifier: Apache-2.0
// Next-hop MACs for direct routing: for each DR real server, the output interface, its MAC
// and the neighbour's MAC, read from the kernel's neighbour table (resolution triggered with
// NTF_USE when missing) and published to the workers.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "cmd/lbd/dataplane/published.h"
#include "core/base/addr.h"
#include "io/netlink/netlink.h"

namespace lb::lbd {

struct NeighEntry {
  int ifindex = 0;
  io::MacAddr src{};
  io::MacAddr dst{};
};

using NeighMap = absl::flat_hash_map<IpAddr, NeighEntry>;

class NeighCache {
 public:
  explicit NeighCache(io::Netlink& nl) : nl_(nl) { map_.publish(std::make_shared<NeighMap>()); }

  // Control thread: the addresses that need a MAC (the DR dests).
  void setWanted(std::vector<IpAddr> addrs);
  // Housekeeping thread: looks up every wanted address not yet known (all of them when
  // `full`), starts resolution for the missing ones, publishes when something changed.
  void refresh(bool full);

  // Worker thread. Hot path: a missing MAC asks the housekeeping thread for a refresh.
  void requestRefresh() noexcept { wanted_refresh_.store(true, std::memory_order_relaxed); }

  bool refreshRequested() { return wanted_refresh_.exchange(false); }

  // Housekeeping thread: some wanted address has no MAC yet.
  bool incomplete() const { return incomplete_; }

  const Published<NeighMap>& map() const { return map_; }

 private:
  io::Netlink& nl_;
  std::mutex mu_;
  std::vector<IpAddr> wanted_;
  bool wanted_changed_ = false;
  std::atomic<bool> wanted_refresh_{false};
  bool incomplete_ = false;
  Published<NeighMap> map_;
};

}  // namespace lb::lbd
