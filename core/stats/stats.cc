// SPDX-License-Identifier: Apache-2.0
#include "core/stats/stats.h"

namespace lb {

WorkerStats::WorkerStats(size_t max_services, size_t max_dests)
    : svc_(max_services + 1),
      dest_(max_dests),
      max_services_(max_services),
      max_dests_(max_dests) {}

// Slot 0 is the total (ip_vs_stats tot_stats); service `s` lives at s + 1. Ids out of range
// (kNoService, kNoDest: bypass conns, unknown dests) only count towards the total.
void WorkerStats::addConn(ServiceId svc, DestId dest) noexcept {
  svc_[0].conns.add();
  if (svc < max_services_)
    svc_[svc + 1].conns.add();
  if (dest < max_dests_)
    dest_[dest].conns.add();
}

void WorkerStats::addIn(ServiceId svc, DestId dest, uint64_t bytes) noexcept {
  auto bump = [bytes](Slot& s) {
    s.inpkts.add();
    s.inbytes.add(bytes);
  };
  bump(svc_[0]);
  if (svc < max_services_)
    bump(svc_[svc + 1]);
  if (dest < max_dests_)
    bump(dest_[dest]);
}

void WorkerStats::addOut(ServiceId svc, DestId dest, uint64_t bytes) noexcept {
  auto bump = [bytes](Slot& s) {
    s.outpkts.add();
    s.outbytes.add(bytes);
  };
  bump(svc_[0]);
  if (svc < max_services_)
    bump(svc_[svc + 1]);
  if (dest < max_dests_)
    bump(dest_[dest]);
}

void WorkerStats::addTraffic(ServiceId svc, DestId dest, const StatsValues& v) noexcept {
  auto bump = [&v](Slot& s) {
    s.inpkts.add(v.inpkts);
    s.inbytes.add(v.inbytes);
    s.outpkts.add(v.outpkts);
    s.outbytes.add(v.outbytes);
  };
  bump(svc_[0]);
  if (svc < max_services_)
    bump(svc_[svc + 1]);
  if (dest < max_dests_)
    bump(dest_[dest]);
}

namespace {

StatsValues read(const Counter& conns,
                 const Counter& inpkts,
                 const Counter& outpkts,
                 const Counter& inbytes,
                 const Counter& outbytes) {
  StatsValues v;
  v.conns = conns.value();
  v.inpkts = inpkts.value();
  v.outpkts = outpkts.value();
  v.inbytes = inbytes.value();
  v.outbytes = outbytes.value();
  return v;
}

}  // namespace

StatsValues WorkerStats::service(ServiceId svc) const noexcept {
  size_t i = 0;
  if (svc != kNoService) {
    if (svc >= max_services_)
      return {};
    i = size_t{svc} + 1;
  }
  const Slot& s = svc_[i];
  return read(s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes);
}

StatsValues WorkerStats::dest(DestId dest) const noexcept {
  if (dest >= max_dests_)
    return {};
  const Slot& s = dest_[dest];
  return read(s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes);
}

// ip_vs_est.c (estimation_timer / ip_vs_chain_estimation): the deltas over the last 2 s are
// scaled (conns, pkts << 9 = x 2^10 / 2 s; bytes << 4 = x 2^5 / 2 s) and folded into an EWMA
// with W = 2^-2. The averages are signed so (rate - avg) >> 2 rounds toward -inf, as the
// kernel's s64 arithmetic does.
void RateEstimator::tick(const StatsValues& now) noexcept {
  auto fold = [](int64_t& avg, uint64_t cur, uint64_t last, int shift) {
    int64_t rate = static_cast<int64_t>((cur - last) << shift);
    avg += (rate - avg) >> 2;
  };
  fold(cps_, now.conns, last_.conns, 9);
  fold(inpps_, now.inpkts, last_.inpkts, 9);
  fold(outpps_, now.outpkts, last_.outpkts, 9);
  fold(inbps_, now.inbytes, last_.inbytes, 4);
  fold(outbps_, now.outbytes, last_.outbytes, 4);
  last_ = now;
}

// ip_vs_zero_estimator: rates to 0, the current counters become the new "last".
void RateEstimator::zero(const StatsValues& now) noexcept {
  last_ = now;
  cps_ = inpps_ = outpps_ = inbps_ = outbps_ = 0;
}

// ip_vs_read_estimator: round to nearest on the way out of the fixed-point scale.
RateValues RateEstimator::rates() const noexcept {
  auto pps = [](int64_t avg) { return static_cast<uint64_t>((avg + 0x1FF) >> 10); };
  auto bps = [](int64_t avg) { return static_cast<uint64_t>((avg + 0xF) >> 5); };
  RateValues r;
  r.cps = pps(cps_);
  r.inpps = pps(inpps_);
  r.outpps = pps(outpps_);
  r.inbps = bps(inbps_);
  r.outbps = bps(outbps_);
  return r;
}

}  // namespace lb
