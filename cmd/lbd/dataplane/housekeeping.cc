// SPDX-License-Identifier: Apache-2.0
// The housekeeping thread: conn expiry, estimators, neighbour refresh, the defense timer, the
// flow offload's ticks and attaching the fast path to new devices.
#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "cmd/lbd/dataplane/dataplane_impl.h"

namespace lb::lbd::dataplane_internal {

void DataplaneImpl::housekeepingLoop() {
  MonoTime last_est = monoNow();
  MonoTime last_neigh_full = last_est;
  MonoTime last_defense = last_est;
  MonoTime last_sweep = last_est;
  SnapshotPtr last_snap;
  neigh_.refresh(true, last_est);  // the rules check: direct egress from the first packets on
  MonoTime last_tick = last_est;
  std::unique_lock<std::mutex> lock(hk_mu_);
  while (running_.load()) {
    hk_cv_.wait_for(lock, std::chrono::milliseconds(offload_ != nullptr ? kOffloadTickMs
                                                                        : kHousekeepingTickMs));
    if (!running_.load())
      break;
    lock.unlock();
    const MonoTime now = monoNow();
#ifdef LB_HAVE_BPF
    if (now - last_tick < millis(kHousekeepingTickMs - kOffloadTickMs / 2) &&
        !hk_poked_.exchange(false)) {
      // A flow-offload-only tick.
      if (std::shared_ptr<const WorkerConfig> cfg = config_.get(); cfg && cfg->snap)
        runFlowOffload(*cfg->snap, false);
      lock.lock();
      continue;
    }
#endif
    last_tick = now;
    hk_poked_.store(false);
    conns_->expire(now);
    const bool full = now - last_neigh_full >= millis(kEstimatorPeriodMs);
    if (full)
      last_neigh_full = now;
    if (full || neigh_.refreshRequested() || neigh_.incomplete())
      neigh_.refresh(full, now);
#ifdef LB_HAVE_BPF
    if (full) {
      std::lock_guard<std::mutex> klock(kernel_mu_);
      if (!stopped_)
        attachFastPath();
    }
#endif
    if (now - last_est >= millis(kEstimatorPeriodMs)) {
      last_est = now;
      tickEstimators();
    }
    config_.collect();
    neigh_.collect();
    std::shared_ptr<const WorkerConfig> cfg = config_.get();
    if (cfg != nullptr && cfg->snap != nullptr) {
      if (cfg->snap != last_snap) {
        last_snap = cfg->snap;
        expireNodestConns(*cfg->snap);
      }
#ifdef LB_HAVE_BPF
      const bool sweep = now - last_sweep >= millis(kOffloadSweepMs);
      if (sweep)
        last_sweep = now;
      runFlowOffload(*cfg->snap, sweep);
#endif
      runSyncookies(*cfg->snap, now);
      if (now - last_defense >= millis(kDefensePeriodMs)) {
        last_defense = now;
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(r)))
          r = static_cast<uint64_t>(now.ns) * 0x9e3779b97f4a7c15ull;
        hk_counters_.defense_dropped.add(
            runDefenseTick(*conns_, cfg->snap->sysctls(), now, r).dropped);
      }
    }
    lock.lock();
  }
}

// Housekeeping thread, every full tick (kHousekeepingTickMs): feeds the SYN-cookie governor
// the cookies sent (the pipelines' and the tc program's) and returned, then each eligible
// service's own embryonic TCP conns; on a change publishes that service's state to the
// pipelines (through the conn table) and, once per tick with any change, gives the tc program
// the services it now answers SYNs for (updateSynproxyFastPath). A cookie the program sent also
// opens syncookiesAccept's window (ConnTable::noteCookieSent).
void DataplaneImpl::runSyncookies(const ServiceSnapshot& snap, MonoTime now) {
  SyncookieGovernor::Sample s;
  for (const auto& w : workers_) {
    s.cookies_sent += w->pipeline->counters().synproxy_syn_answered.value();
    s.cookies_returned += w->pipeline->counters().synproxy_conns_opened.value();
  }
#ifdef LB_HAVE_BPF
  uint64_t bpf = bpf_cookies_seen_;
  {
    std::lock_guard<std::mutex> klock(kernel_mu_);
    if (redirect_ != nullptr) {
      if (auto c = redirect_->synproxyCounters(); c.ok())
        bpf = c->synack;
    }
  }
  if (bpf != bpf_cookies_seen_) {
    bpf_cookies_seen_ = bpf;
    conns_->noteCookieSent(now);
  }
  s.cookies_sent += bpf;
#endif
  syncookies_.tick(s, now);
  const Sysctls& sys = snap.sysctls();
  const Duration syn_recv = snap.timeouts().tcp[kTcpSynRecv];
  const auto& ftp = options_.ftp_ports;
  bool changed = false;
  for (const SnapService& sv : snap.services()) {
    if (sv.synproxy() || !syncookieEligible(snap, sv) ||
        std::find(ftp.begin(), ftp.end(), sv.config.key.vport) != ftp.end()) {
      continue;
    }
    const size_t embryonic = conns_->embryonicTcp(sv.id);
    const SyncookieGovernor::Change c = syncookies_.update(sys, sv.id, embryonic, syn_recv, now);
    if (c == SyncookieGovernor::Change::kNone)
      continue;
    changed = true;
    const bool on = c == SyncookieGovernor::Change::kOn;
    conns_->setSyncookiesActive(sv.id, on);
    const std::string name = sv.config.key.toString();
    if (on) {
      LB_LOG_EVERY_N_SEC(kWarn, 5,
                         "SYN cookies on for %s (syncookies=%u): %u embryonic TCP conns, "
                         "threshold %u",
                         name, sys.syncookies, embryonic, sys.syncookies_threshold);
    } else {
      LB_LOG_EVERY_N_SEC(kInfo, 5, "SYN cookies off for %s (syncookies=%u): %u embryonic TCP conns",
                         name, sys.syncookies, embryonic);
    }
  }
  syncookies_.sweep([&](ServiceId id) {
    changed = true;
    conns_->setSyncookiesActive(id, false);
    LB_LOG_EVERY_N_SEC(kInfo, 5, "SYN cookies off for service id %u (removed or not eligible)", id);
  });
  if (!changed)
    return;
#ifdef LB_HAVE_BPF
  std::lock_guard<std::mutex> klock(kernel_mu_);
  if (redirect_ != nullptr && !stopped_) {
    if (absl::Status st = updateSynproxyFastPath(*redirect_); !st.ok())
      LB_LOG_EVERY_N_SEC(kWarn, 60, "tc program's SYN cookie services: %s", st.ToString());
  }
#endif
}

// Housekeeping thread, once per new snapshot. With expire_nodest_conn=1 the kernel flushes
// the conns of removed dests when they are removed (ip_vs_ctl.c expire_nodest_conn_work ->
// ip_vs_expire_nodest_conn_flush) rather than waiting for their next packet.
void DataplaneImpl::expireNodestConns(const ServiceSnapshot& snap) {
  if (!snap.sysctls().expire_nodest_conn)
    return;
  const size_t n = conns_->expireIf([&snap](const Conn& c) {
    if (c.dest == kNoDest)
      return false;
    const SnapDest* d = snap.dest(c.dest);
    return d != nullptr && !d->available;
  });
  hk_counters_.nodest_expired.add(n);
}

void DataplaneImpl::tickEstimators() {
  std::shared_ptr<const WorkerConfig> cfg = config_.get();
  if (cfg == nullptr || cfg->snap == nullptr)
    return;
  std::vector<ServiceId> svcs;
  std::vector<DestId> dests;
  for (const SnapService& s : cfg->snap->services()) {
    svcs.push_back(s.id);
    dests.insert(dests.end(), s.dests.begin(), s.dests.end());
  }
  table_.runtime().tickEstimators(svcs, dests);
}

}  // namespace lb::lbd::dataplane_internal
