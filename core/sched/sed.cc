// SPDX-License-Identifier: Apache-2.0
#include "core/sched/sed.h"

#include "core/sched/sched_util.h"
#include "core/sched/weighted_least.h"

namespace lb::sched {
namespace {

struct ShortestExpectedDelay {
  static constexpr absl::string_view kName = "sed";

  // ip_vs_sed_schedule: overhead = activeconns + 1 (ip_vs_sed_dest_overhead).
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* least =
        weightedLeast(dests, load, [&load](DestId id) { return int64_t{load.active(id)} + 1; });
    if (least == nullptr)
      return std::nullopt;
    return least->id;
  }
};

}  // namespace

const SchedulerFactory& sedFactory() {
  static const ListSchedulerFactory<ShortestExpectedDelay> factory;
  return factory;
}

}  // namespace lb::sched
