// SPDX-License-Identifier: Apache-2.0
#include "core/sched/rr.h"

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

constexpr int kHead = -1;  // the list head: the cursor before the first pick

class RoundRobinScheduler final : public Scheduler {
 public:
  explicit RoundRobinScheduler(absl::Span<const DestInfo> dests)
      : dests_(dests.begin(), dests.end()) {}

  // Scheduler
  std::optional<DestId> pick(const PickContext& /*ctx*/, const DestLoad& load) noexcept override {
    absl::MutexLock lock(&mu_);
    const int n = static_cast<int>(dests_.size());
    // ip_vs_rr_schedule: scan from the entry after the cursor to the end, then (if the cursor
    // was not the head) from the first entry up to and including the cursor: n entries either way.
    for (int k = 1; k <= n; ++k) {
      const int i = (cursor_ + k) % n;
      if (usable(dests_[static_cast<size_t>(i)], load)) {
        cursor_ = i;
        return dests_[static_cast<size_t>(i)].id;
      }
    }
    return std::nullopt;
  }

  absl::Status update(absl::Span<const DestInfo> dests) override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    std::vector<DestInfo> next(dests.begin(), dests.end());
    absl::MutexLock lock(&mu_);
    cursor_ = carryCursor(next);
    dests_.swap(next);
    return absl::OkStatus();
  }

 private:
  // Where the cursor lands in `next`. If its dest survives it stays on it (added dests go to the
  // head and do not move it). If its dest was removed it steps back to the nearest surviving
  // predecessor, or the head: ip_vs_rr_del_dest sets sched_data to p->next->prev.
  int carryCursor(const std::vector<DestInfo>& next) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (int i = cursor_; i != kHead; --i) {
      const DestId id = dests_[static_cast<size_t>(i)].id;
      for (size_t j = 0; j < next.size(); ++j) {
        if (next[j].id == id)
          return static_cast<int>(j);
      }
    }
    return kHead;
  }

  absl::Mutex mu_;
  std::vector<DestInfo> dests_ ABSL_GUARDED_BY(mu_);
  int cursor_ ABSL_GUARDED_BY(mu_) = kHead;
};

class RoundRobinFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return "rr"; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& /*options*/) const override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    return SchedulerPtr(std::make_shared<RoundRobinScheduler>(dests));
  }
};

}  // namespace

const SchedulerFactory& rrFactory() {
  static const RoundRobinFactory factory;
  return factory;
}

}  // namespace lb::sched
