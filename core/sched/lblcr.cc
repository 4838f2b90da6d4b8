// SPDX-License-Identifier: Apache-2.0
#include "core/sched/lblcr.h"

#include <array>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "core/sched/addr_cache.h"
#include "core/sched/locality.h"

namespace lb::sched {
namespace {

// struct ip_vs_dest_set, bounded: newest member first (list_add_rcu). When full, the oldest
// member is dropped to make room (the kernel's set is unbounded).
struct DestSet {
  static constexpr int kMax = 8;
  std::array<DestId, kMax> ids{};
  int size = 0;
  MonoTime lastmod;

  bool contains(DestId id) const {
    for (int i = 0; i < size; ++i) {
      if (ids[static_cast<size_t>(i)] == id)
        return true;
    }
    return false;
  }

  // ip_vs_dest_set_insert(check = true).
  void insert(DestId id, MonoTime now) {
    if (contains(id))
      return;
    if (size < kMax)
      ++size;
    for (int i = size - 1; i > 0; --i) {
      ids[static_cast<size_t>(i)] = ids[static_cast<size_t>(i - 1)];
    }
    ids[0] = id;
    lastmod = now;
  }

  // Removes `id` without touching lastmod (ip_vs_dest_set_erase sets it; callers decide).
  bool remove(DestId id) {
    for (int i = 0; i < size; ++i) {
      if (ids[static_cast<size_t>(i)] != id)
        continue;
      for (int j = i; j + 1 < size; ++j) {
        ids[static_cast<size_t>(j)] = ids[static_cast<size_t>(j + 1)];
      }
      --size;
      return true;
    }
    return false;
  }
};

class LblcrScheduler final : public Scheduler {
 public:
  LblcrScheduler(absl::Span<const DestInfo> dests, Duration expiration) : expiration_(expiration) {
    absl::MutexLock lock(&mu_);
    dests_.assign(dests);
  }

  // Scheduler
  std::optional<DestId> pick(const PickContext& ctx, const DestLoad& load) noexcept override {
    absl::MutexLock lock(&mu_);
    // ip_vs_lblcr_schedule. An entry idle for the expiration counts as gone.
    AddrCache<DestSet>::Entry* en = cache_.find(ctx.daddr);
    if (en != nullptr && !(ctx.now - en->lastuse < expiration_)) {
      cache_.erase(*en);
      en = nullptr;
    }
    if (en != nullptr) {
      en->lastuse = ctx.now;
      DestSet& set = en->value;
      const DestInfo* dest = setMin(set, load);
      // More than one member and unchanged for the expiration: shed the most loaded.
      if (set.size > 1 && ctx.now - set.lastmod > expiration_) {
        const DestInfo* most = setMax(set, load);
        if (most != nullptr && set.remove(most->id))
          set.lastmod = ctx.now;
      }
      if (dest != nullptr && !dests_.isOverloaded(*dest, load))
        return dest->id;
      dest = dests_.leastLoaded(load);
      if (dest == nullptr)
        return std::nullopt;
      set.insert(dest->id, ctx.now);
      return dest->id;
    }
    const DestInfo* dest = dests_.leastLoaded(load);
    if (dest == nullptr)
      return std::nullopt;
    AddrCache<DestSet>::Entry& fresh = cache_.insert(ctx.daddr, ctx.now);
    fresh.value.insert(dest->id, ctx.now);
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
    // Removed dests leave every set (the kernel keeps them, unavailable, until they are shed).
    cache_.forEach([this](AddrCache<DestSet>::Entry& e) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      DestSet& set = e.value;
      for (int i = set.size - 1; i >= 0; --i) {
        const DestId id = set.ids[static_cast<size_t>(i)];
        if (dests_.find(id) == nullptr)
          set.remove(id);
      }
      if (set.size == 0)
        cache_.erase(e);
    });
    return absl::OkStatus();
  }

 private:
  // ip_vs_dest_set_min: the weighted least-connection member; the first must be non-overloaded
  // with weight > 0, later ones only non-overloaded.
  const DestInfo* setMin(const DestSet& set, const DestLoad& load) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const DestInfo* least = nullptr;
    int64_t loh = 0;
    for (int i = 0; i < set.size; ++i) {
      const DestInfo* d = dests_.find(set.ids[static_cast<size_t>(i)]);
      if (d == nullptr || load.overloaded(d->id))
        continue;
      const int64_t doh = load.overhead(d->id);
      if (least == nullptr) {
        if (d->weight > 0) {
          least = d;
          loh = doh;
        }
      } else if (loh * d->weight > doh * least->weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }

  // ip_vs_dest_set_max: the weighted most-loaded member with weight > 0 (overload ignored).
  const DestInfo* setMax(const DestSet& set, const DestLoad& load) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const DestInfo* most = nullptr;
    int64_t moh = 0;
    for (int i = 0; i < set.size; ++i) {
      const DestInfo* d = dests_.find(set.ids[static_cast<size_t>(i)]);
      if (d == nullptr || d->weight <= 0)
        continue;
      const int64_t doh = load.overhead(d->id);
      if (most == nullptr || moh * d->weight < doh * most->weight) {
        most = d;
        moh = doh;
      }
    }
    return most;
  }

  const Duration expiration_;
  absl::Mutex mu_;
  LocalityDests dests_ ABSL_GUARDED_BY(mu_);
  AddrCache<DestSet> cache_ ABSL_GUARDED_BY(mu_);
};

class LblcrFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return "lblcr"; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& options) const override {
    absl::Status st = validateDests(dests);
    if (st.ok())
      st = validateExpiration("lblcr", options.lblc_expiration);
    if (!st.ok())
      return st;
    return SchedulerPtr(std::make_shared<LblcrScheduler>(dests, options.lblc_expiration));
  }
};

}  // namespace

const SchedulerFactory& lblcrFactory() {
  static const LblcrFactory factory;
  return factory;
}

}  // namespace lb::sched
