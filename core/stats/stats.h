// SPDX-License-Identifier: Apache-2.0
// Per-service and per-dest traffic counters and the kernel's rate estimator; the analogue of
// struct ip_vs_stats and ip_vs_est.c.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/counters.h"
#include "core/base/ids.h"
#include "core/base/page_provider.h"
#include "core/base/time.h"

namespace lb {

// One set of counters, summed or baselined (ip_vs_kstats).
struct StatsValues {
  uint64_t conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0;
  friend bool operator==(const StatsValues&, const StatsValues&) = default;

  StatsValues& operator+=(const StatsValues& o) {
    conns += o.conns;
    inpkts += o.inpkts;
    outpkts += o.outpkts;
    inbytes += o.inbytes;
    outbytes += o.outbytes;
    return *this;
  }

  // Counters minus a zero baseline (ip_vs_copy_stats: kstats - kstats0).
  StatsValues& operator-=(const StatsValues& o) {
    conns -= o.conns;
    inpkts -= o.inpkts;
    outpkts -= o.outpkts;
    inbytes -= o.inbytes;
    outbytes -= o.outbytes;
    return *this;
  }
};

// Rates as ipvsadm --rate shows them (ip_vs_stats_user's cps, inpps, outpps, inbps, outbps).
struct RateValues {
  uint64_t cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0;
  friend bool operator==(const RateValues&, const RateValues&) = default;
};

// Single-writer counters for one worker: slot 0 of the service array is the global total.
// Hot path for the add* methods (relaxed load+store, no RMW). Ids outside the arrays (kNoService,
// kNoDest) count towards the total only. The owning worker writes; any thread reads.
class WorkerStats {
 public:
  WorkerStats(size_t max_services, size_t max_dests);  // May allocate (only here).
  void addConn(ServiceId svc, DestId dest) noexcept;
  void addIn(ServiceId svc, DestId dest, uint64_t bytes) noexcept;
  void addOut(ServiceId svc, DestId dest, uint64_t bytes) noexcept;
  // Packets and bytes forwarded elsewhere (an offloaded conn's fast path): v's in/out packets
  // and bytes are added, v.conns is ignored.
  void addTraffic(ServiceId svc, DestId dest, const StatsValues& v) noexcept;
  // Any thread: current values for a service (kNoService => total) or a dest.
  StatsValues service(ServiceId svc) const noexcept;
  StatsValues dest(DestId dest) const noexcept;

 private:
  struct Slot {
    Counter conns, inpkts, outpkts, inbytes, outbytes;
  };

  // Sized for every id, in zeroed pages (page_provider.h): only the ids in use cost memory.
  ZeroedArray<Slot> svc_;
  ZeroedArray<Slot> dest_;
  size_t max_services_, max_dests_;
};

// The kernel's estimator for one stats object (ip_vs_est.c): every 2 s,
//   rate = delta << 9 (conns, pkts) or << 4 (bytes); avg += (rate - avg) >> 2;
//   reported = (avg + 0x1FF) >> 10 (cps, pps) or (avg + 0xF) >> 5 (bps).
class RateEstimator {
 public:
  // Control thread. Feed the current totals every 2 s.
  void tick(const StatsValues& now) noexcept;
  // Resets averages and takes `now` as the baseline (ip_vs_zero_estimator).
  void zero(const StatsValues& now) noexcept;
  RateValues rates() const noexcept;

 private:
  StatsValues last_{};
  int64_t cps_ = 0, inpps_ = 0, outpps_ = 0, inbps_ = 0, outbps_ = 0;
};

inline constexpr Duration kEstimatorPeriod = seconds(2);

}  // namespace lb
