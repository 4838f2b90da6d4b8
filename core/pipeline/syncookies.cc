// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/syncookies.h"

#include "core/pipeline/pipeline_internal.h"

namespace lb {

bool syncookieEligible(const ServiceSnapshot& snap, const SnapService& svc) noexcept {
  const ServiceKey& k = svc.config.key;
  if (k.isFwmark() || k.proto != L4Proto::kTcp || k.vport == 0)
    return false;
  bool any = false;
  for (DestId id : svc.dests) {
    const SnapDest* d = snap.dest(id);
    if (d == nullptr || !d->available)
      continue;
    if (!pipeline_internal::isNatMethod(d->config.fwd))
      return false;
    any = true;
  }
  return any;
}

bool syncookiesAccept(const Sysctls& sys,
                      bool active,
                      std::optional<MonoTime> last_sent,
                      MonoTime now) noexcept {
  if (sys.syncookies == 0)
    return false;
  if (syncookiesAnswer(sys, active))
    return true;
  return last_sent.has_value() && now >= *last_sent && now - *last_sent < kCookieAckWindow;
}

SyncookieGovernor::SyncookieGovernor(size_t max_services)
    : state_(max_services), active_ids_(max_services) {}

void SyncookieGovernor::tick(const Sample& s, MonoTime now) noexcept {
  ++tick_;
  if (!started_ || now < window_start_) {
    started_ = true;
    window_start_ = now;
    sent_at_start_ = s.cookies_sent;
    returned_at_start_ = s.cookies_returned;
  } else if (now - window_start_ >= kSyncookiesRateWindow) {
    const uint64_t sent = s.cookies_sent - sent_at_start_;
    const uint64_t returned = s.cookies_returned - returned_at_start_;
    const uint64_t unreturned = sent > returned ? sent - returned : 0;
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - window_start_).count();
    unreturned_rate_ = unreturned * 1000 / static_cast<uint64_t>(ms);
    window_start_ = now;
    sent_at_start_ = s.cookies_sent;
    returned_at_start_ = s.cookies_returned;
  }
}

SyncookieGovernor::Change SyncookieGovernor::update(
    const Sysctls& sys, ServiceId svc, size_t embryonic, Duration syn_recv, MonoTime now) noexcept {
  if (svc >= state_.size())
    return Change::kNone;
  State& st = state_[svc];
  st.seen = tick_;
  bool want = st.active;
  if (sys.syncookies != 1) {
    want = sys.syncookies == 2;
  } else if (!st.active) {
    want = embryonic > sys.syncookies_threshold;
    if (want)
      st.last_busy = now;
  } else {
    const uint64_t half = sys.syncookies_threshold / 2;
    const int64_t secs = std::chrono::duration_cast<std::chrono::seconds>(syn_recv).count();
    const uint64_t projected = unreturned_rate_ * static_cast<uint64_t>(secs > 0 ? secs : 1);
    if (embryonic > half || projected > half)
      st.last_busy = now;
    want = now - st.last_busy < kSyncookiesQuietPeriod;
  }
  if (want == st.active)
    return Change::kNone;
  st.active = want;
  if (want) {
    active_ids_[active_n_++] = svc;
  } else {
    for (size_t i = 0; i < active_n_; ++i) {
      if (active_ids_[i] == svc) {
        active_ids_[i] = active_ids_[--active_n_];
        break;
      }
    }
  }
  return want ? Change::kOn : Change::kOff;
}

}  // namespace lb
