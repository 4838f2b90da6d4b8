// SPDX-License-Identifier: Apache-2.0
#include "core/service/runtime.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"

#include "core/base/check.h"

namespace lb {

ServiceRuntime::ServiceRuntime(size_t max_services, size_t max_dests, size_t workers)
    : max_services_(max_services), max_dests_(max_dests), dest_counters_(max_dests) {
  setWorkers(std::max<size_t>(workers, 1));
}

void ServiceRuntime::setWorkers(size_t n) {
  LB_CHECK(n <= kMaxWorkers);
  size_t have = worker_count_.load(std::memory_order_relaxed);
  for (size_t w = have; w < n; ++w) {
    worker_stats_[w] = std::make_unique<WorkerStats>(max_services_, max_dests_);
  }
  if (n > have)
    worker_count_.store(n, std::memory_order_release);
}

// ip_vs_bind_dest (ip_vs_conn.c, classic rule): after a non-template conn is counted, the dest
// is overloaded once activeconns + inactconns reaches u_threshold.
void ServiceRuntime::updateOverloadOnBind(DestId d, uint32_t u_threshold) noexcept {
  if (d >= max_dests_ || u_threshold == 0)
    return;
  DestCounters& c = dest_counters_[d];
  int64_t total = int64_t{c.active_conns.load(std::memory_order_relaxed)} +
                  c.inact_conns.load(std::memory_order_relaxed);
  if (total >= int64_t{u_threshold})
    c.overloaded.store(true, std::memory_order_relaxed);
}

// ip_vs_unbind_dest: with a lower threshold, clear below it; without one, clear below 3/4 of
// the upper threshold; with neither, clear unconditionally.
void ServiceRuntime::updateOverloadOnUnbind(DestId d,
                                            uint32_t u_threshold,
                                            uint32_t l_threshold) noexcept {
  if (d >= max_dests_)
    return;
  DestCounters& c = dest_counters_[d];
  int64_t total = int64_t{c.active_conns.load(std::memory_order_relaxed)} +
                  c.inact_conns.load(std::memory_order_relaxed);
  bool clear;
  if (l_threshold != 0) {
    clear = total < int64_t{l_threshold};
  } else if (u_threshold != 0) {
    clear = total * 4 < int64_t{u_threshold} * 3;
  } else {
    clear = true;
  }
  if (clear)
    c.overloaded.store(false, std::memory_order_relaxed);
}

StatsValues ServiceRuntime::sumService(ServiceId svc) const {
  StatsValues sum;
  size_t n = workers();
  for (size_t w = 0; w < n; ++w)
    sum += worker_stats_[w]->service(svc);
  return sum;
}

StatsValues ServiceRuntime::sumDest(DestId d) const {
  StatsValues sum;
  size_t n = workers();
  for (size_t w = 0; w < n; ++w)
    sum += worker_stats_[w]->dest(d);
  return sum;
}

StatsValues ServiceRuntime::serviceStats(ServiceId svc) const {
  StatsValues v = sumService(svc);
  if (svc == kNoService) {
    v -= total_zero_;
  } else if (auto it = svc_zero_.find(svc); it != svc_zero_.end()) {
    v -= it->second;
  }
  return v;
}

StatsValues ServiceRuntime::destStats(DestId d) const {
  StatsValues v = sumDest(d);
  if (auto it = dest_zero_.find(d); it != dest_zero_.end())
    v -= it->second;
  return v;
}

RateValues ServiceRuntime::serviceRates(ServiceId svc) const {
  std::lock_guard<std::mutex> lock(est_mu_);
  if (svc == kNoService)
    return total_est_.rates();
  auto it = svc_est_.find(svc);
  return it == svc_est_.end() ? RateValues{} : it->second.rates();
}

RateValues ServiceRuntime::destRates(DestId d) const {
  std::lock_guard<std::mutex> lock(est_mu_);
  auto it = dest_est_.find(d);
  return it == dest_est_.end() ? RateValues{} : it->second.rates();
}

void ServiceRuntime::zeroDest(DestId d) {
  if (d >= max_dests_)
    return;
  StatsValues cur = sumDest(d);
  if (cur == StatsValues{}) {
    dest_zero_.erase(d);
  } else {
    dest_zero_[d] = cur;
  }
  std::lock_guard<std::mutex> lock(est_mu_);
  if (auto it = dest_est_.find(d); it != dest_est_.end())
    it->second.zero(cur);
}

void ServiceRuntime::zeroService(ServiceId svc, absl::Span<const DestId> dests) {
  auto zero_svc = [this](ServiceId s) {
    StatsValues cur = sumService(s);
    if (cur == StatsValues{}) {
      svc_zero_.erase(s);
    } else {
      svc_zero_[s] = cur;
    }
    std::lock_guard<std::mutex> lock(est_mu_);
    if (auto it = svc_est_.find(s); it != svc_est_.end())
      it->second.zero(cur);
  };
  if (svc != kNoService) {
    if (svc >= max_services_)
      return;
    zero_svc(svc);
    for (DestId d : dests)
      zeroDest(d);
    return;
  }
  // ip_vs_zero_all: every service, every dest and the total.
  total_zero_ = sumService(kNoService);
  {
    std::lock_guard<std::mutex> lock(est_mu_);
    total_est_.zero(total_zero_);
  }
  for (ServiceId s = 0; s < max_services_; ++s)
    zero_svc(s);
  for (DestId d = 0; d < max_dests_; ++d)
    zeroDest(d);
}

void ServiceRuntime::tickEstimators(absl::Span<const ServiceId> services,
                                    absl::Span<const DestId> dests) {
  std::lock_guard<std::mutex> lock(est_mu_);
  total_est_.tick(sumService(kNoService));
  absl::flat_hash_set<ServiceId> live_svcs(services.begin(), services.end());
  absl::erase_if(svc_est_, [&](const auto& kv) { return !live_svcs.contains(kv.first); });
  for (ServiceId s : services) {
    if (s >= max_services_)
      continue;
    StatsValues cur = sumService(s);
    auto [it, inserted] = svc_est_.try_emplace(s);
    if (inserted) {
      it->second.zero(cur);  // a new estimator starts from the current counters
    } else {
      it->second.tick(cur);
    }
  }
  absl::flat_hash_set<DestId> live_dests(dests.begin(), dests.end());
  absl::erase_if(dest_est_, [&](const auto& kv) { return !live_dests.contains(kv.first); });
  for (DestId d : dests) {
    if (d >= max_dests_)
      continue;
    StatsValues cur = sumDest(d);
    auto [it, inserted] = dest_est_.try_emplace(d);
    if (inserted) {
      it->second.zero(cur);
    } else {
      it->second.tick(cur);
    }
  }
}

LocalAddrPool* ServiceRuntime::poolFor(ServiceId svc, const std::vector<IpAddr>& addrs) {
  auto it = pools_.find(svc);
  if (it == pools_.end()) {
    it = pools_.emplace(svc, std::make_unique<LocalAddrPool>(addrs)).first;
  } else if (it->second->addrs() != addrs) {
    it->second->setAddrs(addrs);
  }
  return it->second.get();
}

void ServiceRuntime::dropPool(ServiceId svc) {
  auto it = pools_.find(svc);
  if (it == pools_.end())
    return;
  retired_pools_.push_back(std::move(it->second));
  pools_.erase(it);
}

size_t ServiceRuntime::collectRetiredPools() {
  size_t before = retired_pools_.size();
  std::erase_if(retired_pools_, [](const auto& p) { return p->inUse() == 0; });
  return before - retired_pools_.size();
}

}  // namespace lb
