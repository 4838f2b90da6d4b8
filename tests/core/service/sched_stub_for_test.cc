// SPDX-License-Identifier: Apache-2.0
// Stand-in for core/sched's registry while it is being written: every name is a round robin
// with the kernel's order (ip_vs_rr.c: start after the last pick, list order, skip weight 0 and
// overloaded). Linked only when the lb_core_sched target does not exist.
#include <array>
#include <mutex>
#include <vector>

#include "core/sched/scheduler.h"

namespace lb {
namespace {

class StubRr : public Scheduler {
 public:
  explicit StubRr(absl::Span<const DestInfo> d) : dests_(d.begin(), d.end()) {}

  std::optional<DestId> pick(const PickContext&, const DestLoad& load) noexcept override {
    std::lock_guard<std::mutex> l(mu_);
    const size_t n = dests_.size();
    for (size_t i = 1; i <= n; ++i) {
      size_t idx = (last_ + i) % (n + 1);
      if (idx == n)
        continue;  // the list head
      const DestInfo& d = dests_[idx];
      if (d.weight > 0 && !load.overloaded(d.id)) {
        last_ = idx;
        return d.id;
      }
    }
    return std::nullopt;
  }

  absl::Status update(absl::Span<const DestInfo> d) override {
    std::lock_guard<std::mutex> l(mu_);
    dests_.assign(d.begin(), d.end());
    last_ = dests_.size();
    return absl::OkStatus();
  }

 private:
  std::mutex mu_;
  std::vector<DestInfo> dests_;
  size_t last_ = dests_.size();  // the head
};

class StubFactory : public SchedulerFactory {
 public:
  explicit StubFactory(absl::string_view n) : name_(n) {}

  absl::string_view name() const override { return name_; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions&) const override {
    return SchedulerPtr(std::make_shared<StubRr>(dests));
  }

 private:
  absl::string_view name_;
};

const std::array<StubFactory, 14> kFactories = {
    StubFactory("rr"),  StubFactory("wrr"), StubFactory("lc"),   StubFactory("wlc"),
    StubFactory("sed"), StubFactory("nq"),  StubFactory("lblc"), StubFactory("lblcr"),
    StubFactory("dh"),  StubFactory("sh"),  StubFactory("mh"),   StubFactory("fo"),
    StubFactory("ovf"), StubFactory("twos")};

}  // namespace

const SchedulerFactory* findScheduler(absl::string_view name) {
  for (const StubFactory& f : kFactories) {
    if (f.name() == name)
      return &f;
  }
  return nullptr;
}

}  // namespace lb
