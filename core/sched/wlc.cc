// SPDX-License-Identifier: Apache-2.0
#include "core/sched/wlc.h"

#include "core/sched/sched_util.h"
#include "core/sched/weighted_least.h"

namespace lb::sched {
namespace {

struct WeightedLeastConnection {
  static constexpr absl::string_view kName = "wlc";

  // ip_vs_wlc_schedule.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* least =
        weightedLeast(dests, load, [&load](DestId id) { return load.overhead(id); });
    if (least == nullptr)
      return std::nullopt;
    return least->id;
  }
};

}  // namespace

const SchedulerFactory& wlcFactory() {
  static const ListSchedulerFactory<WeightedLeastConnection> factory;
  return factory;
}

}  // namespace lb::sched
