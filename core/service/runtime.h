// SPDX-License-Identifier: Apache-2.0
// Mutable state shared by all snapshots and workers: per-dest live counters (activeconns,
// inactconns, persistconns, overload), full-NAT local-address pools, per-worker stats and the
// estimators. Outlives every snapshot. The counters half of struct ip_vs_dest / ip_vs_service.
#ifndef LBD_CORE_SERVICE_RUNTIME_H_
#define LBD_CORE_SERVICE_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/base/addr.h"
#include "core/base/ids.h"
#include "core/sched/scheduler.h"
#include "core/service/config.h"
#include "core/stats/stats.h"

namespace lb {

// A full-NAT pool of local addresses; hands out <laddr, lport> pairs unique among live conns
// of one protocol. Lock-free bitmaps, preallocated. Any thread. Hot path for acquire/release.
class LocalAddrPool {
 public:
  static constexpr uint16_t kPortMin = 1024;
  // May allocate. The address list may change later (control thread) via setAddrs.
  explicit LocalAddrPool(std::vector<IpAddr> addrs);
  ~LocalAddrPool();
  // Picks a free pair for `proto`, starting from a position derived from `hint` (a flow hash).
  // nullopt when exhausted (drop kNoLocalAddr).
  bool acquire(L4Proto proto, uint32_t hint, IpAddr* laddr, uint16_t* lport) noexcept;
  void release(L4Proto proto, const IpAddr& laddr, uint16_t lport) noexcept;
  // Control thread.
  void setAddrs(const std::vector<IpAddr>& addrs);
  std::vector<IpAddr> addrs() const;
  // Pairs in use, all protocols.
  size_t inUse() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ServiceRuntime {
 public:
  ServiceRuntime(size_t max_services, size_t max_dests, size_t workers);

  // Live per-dest counters, indexed by DestId. Any thread.
  absl::Span<DestCounters> destCounters() { return {dest_counters_.get(), max_dests_}; }
  DestLoad destLoad() const { return DestLoad({dest_counters_.get(), max_dests_}); }
  // The classic overload rule (ip_vs_conn.c ip_vs_bind_dest / ip_vs_unbind_dest): call after
  // every bind / unbind with the dest's thresholds. Any thread. Hot path.
  void updateOverloadOnBind(DestId d, uint32_t u_threshold) noexcept;
  void updateOverloadOnUnbind(DestId d, uint32_t u_threshold, uint32_t l_threshold) noexcept;

  // Worker `w`'s stats block. Hot path.
  WorkerStats& workerStats(size_t w) { return *worker_stats_[w]; }
  size_t workers() const { return worker_stats_.size(); }
  // Control thread: sums over workers minus the zero baseline.
  StatsValues serviceStats(ServiceId svc) const;  // kNoService => totals
  StatsValues destStats(DestId d) const;
  RateValues serviceRates(ServiceId svc) const;
  RateValues destRates(DestId d) const;
  // -Z: svc == kNoService zeroes everything.
  void zeroService(ServiceId svc, absl::Span<const DestId> dests);
  // Every 2 s from the control thread (ip_vs_est.c).
  void tickEstimators(absl::Span<const ServiceId> services, absl::Span<const DestId> dests);

  // Full-NAT pool for a service (created on first use). Control thread.
  LocalAddrPool* poolFor(ServiceId svc, const std::vector<IpAddr>& addrs);
  void dropPool(ServiceId svc);

  size_t maxServices() const { return max_services_; }
  size_t maxDests() const { return max_dests_; }

 private:
  size_t max_services_, max_dests_;
  std::unique_ptr<DestCounters[]> dest_counters_;
  std::vector<std::unique_ptr<WorkerStats>> worker_stats_;
  absl::flat_hash_map<ServiceId, StatsValues> svc_zero_, dest_zero_;
  absl::flat_hash_map<ServiceId, RateEstimator> svc_est_;
  absl::flat_hash_map<DestId, RateEstimator> dest_est_;
  RateEstimator total_est_;
  StatsValues total_zero_;
  absl::flat_hash_map<ServiceId, std::unique_ptr<LocalAddrPool>> pools_;
};

}  // namespace lb

#endif  // LBD_CORE_SERVICE_RUNTIME_H_
