// SPDX-License-Identifier: Apache-2.0
#include "core/sched/ovf.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct WeightedOverflow {
  static constexpr absl::string_view kName = "ovf";

  // ip_vs_ovf_schedule: a dest is eligible while activeconns <= weight (UDP conns are never
  // active, so UDP dests always are); the highest weight wins, the first of equals.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* best = nullptr;
    int32_t hw = 0;
    for (const DestInfo& d : dests) {
      if (load.overloaded(d.id) || load.active(d.id) > d.weight || d.weight == 0)
        continue;
      if (best == nullptr || d.weight > hw) {
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

const SchedulerFactory& ovfFactory() {
  static const ListSchedulerFactory<WeightedOverflow> factory;
  return factory;
}

}  // namespace lb::sched
