// SPDX-License-Identifier: Apache-2.0
#include "core/sched/fo.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct WeightedFailover {
  static constexpr absl::string_view kName = "fo";

  // ip_vs_fo_schedule: strict ">" over hw starting at 0, so weight 0 never wins and the first
  // of equal weights does.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* best = nullptr;
    int32_t hw = 0;
    for (const DestInfo& d : dests) {
      if (!load.overloaded(d.id) && d.weight > hw) {
        best = &d;
        hw = d.weight;
      }
    }
    if (best == nullptr)
      return std::nullopt;
    return best->id;
  }
};

}  // namespace

const SchedulerFactory& foFactory() {
  static const ListSchedulerFactory<WeightedFailover> factory;
  return factory;
}

}  // namespace lb::sched
