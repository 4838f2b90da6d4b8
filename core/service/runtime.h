// SPDX-License-Identifier: Apache-2.0
// Mutable state shared by all snapshots and workers: per-dest live counters (activeconns,
// inactconns, persistconns, overload), full-NAT local-address pools, per-worker stats and the
// estimators. Outlives every snapshot. The counters half of struct ip_vs_dest / ip_vs_service.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/base/ids.h"
#include "core/base/page_provider.h"
#include "core/sched/scheduler.h"
#include "core/service/config.h"
#include "core/stats/stats.h"

namespace lb {

// A full-NAT pool of local addresses (DPVS's laddr pool): hands out <laddr, lport> pairs unique
// among live conns of one protocol. Per (laddr, protocol) a bitmap of ports 1024..65535 with
// atomic test-and-set; preallocated, so acquire/release never allocate or lock. An address
// removed by setAddrs stops being handed out but keeps its bitmap, so ports still held by conns
// are released normally (and a re-added address gets its old bitmap back).
class LocalAddrPool {
 public:
  static constexpr uint16_t kPortMin = 1024;
  static constexpr size_t kPorts = 65536 - kPortMin;  // 64512 = 1008 words of 64 bits
  static constexpr size_t kMaxAddrs = 256;            // ServiceTable rejects more
  // May allocate. Control thread.
  explicit LocalAddrPool(std::vector<IpAddr> addrs);
  ~LocalAddrPool();
  LocalAddrPool(const LocalAddrPool&) = delete;
  LocalAddrPool& operator=(const LocalAddrPool&) = delete;
  // Any thread. Hot path. Picks a free pair for `proto` (TCP, UDP or SCTP), scanning from a
  // position derived from `hint` (a flow hash). False when exhausted or for other protocols
  // (the pipeline drops the packet).
  bool acquire(L4Proto proto, uint32_t hint, IpAddr* laddr, uint16_t* lport) noexcept;
  // Any thread. Hot path. Frees a pair from acquire(); unknown pairs are ignored.
  void release(L4Proto proto, const IpAddr& laddr, uint16_t lport) noexcept;
  // Any thread. Takes the given pair (a conn carried over from another process, see
  // core/conn/conn_snapshot.h): false when its address is not in the pool, the port is below
  // kPortMin or the pair is taken already.
  bool reserve(L4Proto proto, const IpAddr& laddr, uint16_t lport) noexcept;
  // Control thread. May allocate. At most kMaxAddrs distinct addresses ever (extra ignored).
  void setAddrs(const std::vector<IpAddr>& addrs);
  // Control thread. The addresses currently handed out, in the order first added.
  std::vector<IpAddr> addrs() const;
  // Any thread. Pairs in use, all protocols (a scan of the bitmaps; not for the hot path).
  size_t inUse() const noexcept;

  // One address's use, as DPVS's ipvsadm -G lists it: pairs in use (all protocols) and port
  // conflicts, the times a port acquire() had found free there was taken by another worker
  // before it (the bitmap never hands out a taken pair, so only races conflict).
  struct AddrUse {
    size_t conns = 0;
    uint64_t conflicts = 0;
  };

  // Any thread. Zeros for an address the pool never had. A scan; not for the hot path.
  AddrUse use(const IpAddr& addr) const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Owned by ServiceTable; outlives every snapshot. Thread rules per method.
class ServiceRuntime {
 public:
  // May allocate: every array is sized here (max_dests DestCounters, `workers` stats blocks).
  ServiceRuntime(size_t max_services, size_t max_dests, size_t workers);

  // Live per-dest counters, indexed by DestId. Any thread.
  absl::Span<DestCounters> destCounters() { return {dest_counters_.get(), max_dests_}; }

  DestLoad destLoad() const { return DestLoad({dest_counters_.get(), max_dests_}); }

  // The classic overload rule (ip_vs_conn.c ip_vs_bind_dest / ip_vs_unbind_dest): call after
  // every bind / unbind with the dest's thresholds. Any thread. Hot path.
  void updateOverloadOnBind(DestId d, uint32_t u_threshold) noexcept;
  void updateOverloadOnUnbind(DestId d, uint32_t u_threshold, uint32_t l_threshold) noexcept;

  static constexpr size_t kMaxWorkers = 256;
  // One thread at a time (lbd: the control thread at start; later the housekeeping thread once,
  // for offloaded traffic), before whoever writes a new block starts: ensures at least `n` stats
  // blocks (never shrinks; existing blocks stay where they are). Readers of the sums may run
  // concurrently: a block is published, zeroed, before the count that covers it. May allocate.
  void setWorkers(size_t n);

  // Worker `w`'s stats block (w < workers()). Hot path.
  WorkerStats& workerStats(size_t w) { return *worker_stats_[w]; }

  size_t workers() const { return worker_count_.load(std::memory_order_acquire); }

  // Control thread: sums over workers minus the zero baseline.
  StatsValues serviceStats(ServiceId svc) const;  // kNoService => totals
  StatsValues destStats(DestId d) const;
  RateValues serviceRates(ServiceId svc) const;
  RateValues destRates(DestId d) const;
  // -Z (ip_vs_zero_service / ip_vs_zero_all): the current sums become the baseline and the
  // estimators restart from 0. svc == kNoService zeroes the total, every service and every dest
  // (`dests` is then ignored). Control thread.
  void zeroService(ServiceId svc, absl::Span<const DestId> dests);
  // A dest id recycled or moved to another service starts from zero (__ip_vs_update_dest).
  // Control thread.
  void zeroDest(DestId d);
  // Every 2 s (ip_vs_est.c; lbd: the housekeeping thread, while the control thread reads the
  // rates and zeroes): the total plus the listed (live) ids. Estimators of ids not listed are
  // dropped; a newly listed id starts from its current counters.
  void tickEstimators(absl::Span<const ServiceId> services, absl::Span<const DestId> dests);

  // Full-NAT pool for a service: created on first use, else its address list is updated.
  // Control thread. May allocate. The pool lives until dropPool + collectRetiredPools.
  LocalAddrPool* poolFor(ServiceId svc, const std::vector<IpAddr>& addrs);
  // The service no longer has a pool. It is kept (old snapshots and live conns may still use
  // it) until collectRetiredPools finds it unused. Control thread.
  void dropPool(ServiceId svc);
  // Frees retired pools with no pair in use. Returns how many were freed. Control thread.
  size_t collectRetiredPools();

  size_t maxServices() const { return max_services_; }

  size_t maxDests() const { return max_dests_; }

 private:
  size_t max_services_, max_dests_;
  ZeroedArray<DestCounters> dest_counters_;  // zeroed pages: only the ids in use cost memory
  std::array<std::unique_ptr<WorkerStats>, kMaxWorkers> worker_stats_;
  std::atomic<size_t> worker_count_{0};
  absl::flat_hash_map<ServiceId, StatsValues> svc_zero_, dest_zero_;
  // The estimators: ticked by one thread, read and zeroed by another (lbd: housekeeping and
  // control). A std::mutex, which ThreadSanitizer sees (abseil's is not instrumented here).
  mutable std::mutex est_mu_;
  absl::flat_hash_map<ServiceId, RateEstimator> svc_est_;  // est_mu_
  absl::flat_hash_map<DestId, RateEstimator> dest_est_;    // est_mu_
  RateEstimator total_est_;                                // est_mu_
  StatsValues total_zero_;
  absl::flat_hash_map<ServiceId, std::unique_ptr<LocalAddrPool>> pools_;
  std::vector<std::unique_ptr<LocalAddrPool>> retired_pools_;

  StatsValues sumService(ServiceId svc) const;
  StatsValues sumDest(DestId d) const;
};

}  // namespace lb
