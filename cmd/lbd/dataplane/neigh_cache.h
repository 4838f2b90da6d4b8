// SPDX-License-Identifier: Apache-2.0
// Next hops for lbd's Ethernet egress, published to the workers:
//  - direct routing: for each DR real server, the output interface, its MAC and the
//    neighbour's MAC, read from the kernel's neighbour table (resolution triggered with
//    NTF_USE when missing);
//  - direct egress (NAT, full NAT, tunnels): the same for any destination a worker forwards
//    to, learned on demand. A worker that finds no entry writes the packet to the TUN device
//    as before (the kernel routes it) and asks for the destination; the housekeeping thread
//    resolves it (RTM_GETROUTE, then the neighbour) and publishes. Later packets leave through
//    an AF_PACKET socket on the egress interface and skip the kernel's second pass
//    (ip_rcv -> FIB -> ip_forward -> neighbour). A destination routed through lbd's own device,
//    to a local address or over a non-Ethernet link gets a negative entry (TUN stays the way).
//    Direct egress switches itself off while the namespace has policy-routing rules other than
//    the defaults and lbd's own, because the lookup here is by destination only.
//    The link MTU is read with the entry, so for up to one full refresh (2 s) after an MTU
//    change GSO packets are checked against the old value (AF_PACKET itself checks only
//    non-GSO packets).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "cmd/lbd/dataplane/published.h"
#include "cmd/lbd/dataplane/spsc_ring.h"
#include "core/base/addr.h"
#include "core/base/time.h"
#include "io/netlink/netlink.h"

namespace lb::lbd {

struct NeighEntry {
  int ifindex = 0;  // 0: a negative entry (direct egress: use the TUN device)
  uint32_t mtu = 0;
  io::MacAddr src{};
  io::MacAddr dst{};
};

using NeighMap = absl::flat_hash_map<IpAddr, NeighEntry>;

// One worker's requests for destinations it found no entry for. A full ring loses the request;
// the next packet repeats it.
using NeighRequests = SpscRing<IpAddr, 256>;

class NeighCache {
 public:
  // Learned destinations kept at most (beyond: the TUN device) and how long one lives before it
  // must be asked for again.
  static constexpr size_t kMaxLearned = 4096;
  static constexpr int64_t kLearnedTtlMs = 60'000;
  // How long a new learned destination is retried every tick while its neighbour resolves.
  static constexpr int64_t kLearnedRetryMs = 1'000;

  // `tun_ifindex`: lbd's own device (routes through it get negative entries). `workers`: one
  // request ring each. `direct_egress`: learn destinations on demand at all.
  NeighCache(io::Netlink& nl, int tun_ifindex, size_t workers, bool direct_egress);

  // Control thread: the addresses that need a MAC (the DR dests).
  void setWanted(std::vector<IpAddr> addrs);
  // Housekeeping thread: takes the workers' requests, looks up every wanted or requested
  // address not yet known (all of them when `full`, which also re-reads the policy rules and
  // forgets learned destinations older than kLearnedTtlMs), starts resolution for the missing
  // ones, publishes when something changed.
  void refresh(bool full, MonoTime now);

  // Worker thread. Hot path: a missing DR MAC asks the housekeeping thread for a refresh.
  void requestRefresh() noexcept { wanted_refresh_.store(true, std::memory_order_relaxed); }

  // Worker thread. Hot path: direct egress found no entry for `dst`.
  void request(size_t worker, const IpAddr& dst) noexcept {
    if (!egress_on_.load(std::memory_order_relaxed) || worker >= requests_.size())
      return;
    requests_[worker]->push([&dst](IpAddr& slot) { slot = dst; });
    wanted_refresh_.store(true, std::memory_order_relaxed);
  }

  // Worker thread: whether learned entries may be used (the rules check passed).
  bool directEgress() const noexcept { return egress_on_.load(std::memory_order_relaxed); }

  bool refreshRequested() { return wanted_refresh_.exchange(false); }

  // Housekeeping thread: some wanted address has no MAC yet.
  bool incomplete() const { return incomplete_; }

  const Published<NeighMap>& map() const { return map_; }

  // Housekeeping thread: frees the maps no worker uses any more.
  void collect() { map_.collect(); }

 private:
  struct Learned {
    MonoTime since;
    bool resolved = false;
  };

  // Resolves one address into `out`; false when its neighbour is not known yet.
  bool resolve(const IpAddr& a, bool learned, NeighEntry& out);
  bool foreignRules();

  io::Netlink& nl_;
  const int tun_ifindex_;
  const bool direct_egress_;
  std::mutex mu_;
  std::vector<IpAddr> wanted_;
  bool wanted_changed_ = false;
  std::atomic<bool> wanted_refresh_{false};
  std::atomic<bool> egress_on_{false};
  bool incomplete_ = false;
  bool rules_checked_ = false;
  std::vector<std::unique_ptr<NeighRequests>> requests_;
  absl::flat_hash_map<IpAddr, Learned> learned_;  // housekeeping thread only
  Published<NeighMap> map_;
};

}  // namespace lb::lbd
