// SPDX-License-Identifier: Apache-2.0
#include "core/sched/lblc.h"

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

#include "core/sched/addr_cache.h"
#include "core/sched/locality.h"

namespace lb::sched {

absl::Status validateExpiration(absl::string_view name, Duration expiration) {
  if (expiration.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": negative expiration ", expiration.count(), " ns"));
  }
  return absl::OkStatus();
}

namespace {

class LblcScheduler final : public Scheduler {
 public:
  LblcScheduler(absl::Span<const DestInfo> dests, Duration expiration) : expiration_(expiration) {
    absl::MutexLock lock(&mu_);
    dests_.assign(dests);
  }

  // Scheduler
  std::optional<DestId> pick(const PickContext& ctx, const DestLoad& load) noexcept override {
    absl::MutexLock lock(&mu_);
    // ip_vs_lblc_schedule. An entry idle for the expiration counts as gone (the kernel's full
    // expiry check removes it).
    AddrCache<DestId>::Entry* en = cache_.find(ctx.daddr);
    if (en != nullptr && ctx.now - en->lastuse < expiration_) {
      en->lastuse = ctx.now;
      const DestInfo* cached = dests_.find(en->value);
      if (cached != nullptr && cached->weight > 0 && !dests_.isOverloaded(*cached, load)) {
        return cached->id;
      }
    }
    const DestInfo* dest = dests_.leastLoaded(load);
    if (dest == nullptr)
      return std::nullopt;
    // ip_vs_lblc_new: rebind the entry (a replaced entry is a new one, lastuse = now).
    if (en == nullptr)
      en = &cache_.insert(ctx.daddr, ctx.now);
    en->lastuse = ctx.now;
    en->value = dest->id;
    return dest->id;
  }

  absl::Status update(absl::Span<const DestInfo> dests) override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    LocalityDests next;
    next.assign(dests);
    absl::MutexLock lock(&mu_);
    std::swap(dests_, next);
    return absl::OkStatus();
  }

 private:
  const Duration expiration_;
  absl::Mutex mu_;
  LocalityDests dests_ ABSL_GUARDED_BY(mu_);
  AddrCache<DestId> cache_ ABSL_GUARDED_BY(mu_);
};

class LblcFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return "lblc"; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& options) const override {
    absl::Status st = validateDests(dests);
    if (st.ok())
      st = validateExpiration("lblc", options.lblc_expiration);
    if (!st.ok())
      return st;
    return SchedulerPtr(std::make_shared<LblcScheduler>(dests, options.lblc_expiration));
  }
};

}  // namespace

const SchedulerFactory& lblcFactory() {
  static const LblcFactory factory;
  return factory;
}

}  // namespace lb::sched
