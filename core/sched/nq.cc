// SPDX-License-Identifier: Apache-2.0
#include "core/sched/nq.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct NeverQueue {
  static constexpr absl::string_view kName = "nq";

  // ip_vs_nq_schedule: an idle dest is returned at once; otherwise the weighted minimum of
  // activeconns + 1, first wins on a tie.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* least = nullptr;
    int64_t loh = 0;
    for (const DestInfo& d : dests) {
      if (!usable(d, load))
        continue;
      const int32_t active = load.active(d.id);
      if (active == 0)
        return d.id;
      const int64_t doh = int64_t{active} + 1;
      if (least == nullptr || loh * d.weight > doh * least->weight) {
        least = &d;
        loh = doh;
      }
    }
    if (least == nullptr)
      return std::nullopt;
    return least->id;
  }
};

}  // namespace

const SchedulerFactory& nqFactory() {
  static const ListSchedulerFactory<NeverQueue> factory;
  return factory;
}

}  // namespace lb::sched
