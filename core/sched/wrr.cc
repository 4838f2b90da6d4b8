// SPDX-License-Identifier: Apache-2.0
#include "core/sched/wrr.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

constexpr int kHead = -1;  // the list head
constexpr int kNoStop = -2;

class WeightedRoundRobinScheduler final : public Scheduler {
 public:
  explicit WeightedRoundRobinScheduler(absl::Span<const DestInfo> dests)
      : dests_(dests.begin(), dests.end()) {
    // ip_vs_wrr_init_svc.
    absl::MutexLock lock(&mu_);
    recompute();
    cw_ = mw_;
  }

  // Scheduler
  std::optional<DestId> pick(const PickContext& /*ctx*/, const DestLoad& load) noexcept override {
    absl::MutexLock lock(&mu_);
    return pickLocked(load);
  }

  absl::Status update(absl::Span<const DestInfo> dests) override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    std::vector<DestInfo> next(dests.begin(), dests.end());
    absl::MutexLock lock(&mu_);
    dests_.swap(next);
    // ip_vs_wrr_dest_changed: back to the head, new di/mw, and cw kept in [1, mw] on the new
    // grid of multiples of di (plus one, since mw was lowered by di - 1).
    cl_ = kHead;
    recompute();
    if (cw_ > mw_ || cw_ == 0) {
      cw_ = mw_;
    } else if (di_ > 1) {
      cw_ = (cw_ / di_) * di_ + 1;
    }
    return absl::OkStatus();
  }

 private:
  void recompute() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int g = 0;
    int max_weight = 0;
    for (const DestInfo& d : dests_) {
      if (d.weight > 0)
        g = g > 0 ? gcdPositive(d.weight, g) : d.weight;
      max_weight = std::max(max_weight, d.weight);
    }
    di_ = g > 0 ? g : 1;
    mw_ = max_weight - (di_ - 1);
  }

  // ip_vs_wrr_schedule, with list positions as indices and kHead for the list head. The stop
  // logic guarantees that the last traversal checks every dest for weight >= 1 before giving up.
  std::optional<DestId> pickLocked(const DestLoad& load) noexcept
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mw_ == 0)
      return std::nullopt;  // no dest with weight > 0; cl stays
    const int n = static_cast<int>(dests_.size());
    const int last = cl_;
    int stop = kNoStop;
    bool last_pass = false;
    bool restarted = false;
    int i = cl_;
    while (true) {
      for (++i; i < n; ++i) {
        const DestInfo& d = dests_[static_cast<size_t>(i)];
        if (!load.overloaded(d.id) && d.weight >= cw_) {
          cl_ = i;
          return d.id;
        }
        if (i == stop) {
          cl_ = i;
          return std::nullopt;  // all destinations are overloaded
        }
      }
      i = kHead;
      cw_ -= di_;
      if (cw_ <= 0) {
        cw_ = mw_;
        if (last_pass || last == kHead) {
          cl_ = kHead;
          return std::nullopt;  // all destinations are overloaded
        }
        restarted = true;
      }
      last_pass = cw_ <= di_;
      if (last_pass && restarted && last != kHead)
        stop = last;
    }
  }

  absl::Mutex mu_;
  std::vector<DestInfo> dests_ ABSL_GUARDED_BY(mu_);
  int cl_ ABSL_GUARDED_BY(mu_) = kHead;  // current dest (index) or head
  int cw_ ABSL_GUARDED_BY(mu_) = 0;      // current weight
  int mw_ ABSL_GUARDED_BY(mu_) = 0;      // maximum weight, less di - 1
  int di_ ABSL_GUARDED_BY(mu_) = 1;      // decreasing interval: gcd of the weights
};

class WeightedRoundRobinFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return "wrr"; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& /*options*/) const override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    return SchedulerPtr(std::make_shared<WeightedRoundRobinScheduler>(dests));
  }
};

}  // namespace

const SchedulerFactory& wrrFactory() {
  static const WeightedRoundRobinFactory factory;
  return factory;
}

}  // namespace lb::sched
