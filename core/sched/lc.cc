// SPDX-License-Identifier: Apache-2.0
#include "core/sched/lc.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct LeastConnection {
  static constexpr absl::string_view kName = "lc";

  // ip_vs_lc_schedule: strict "<" keeps the first of equal overheads.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& load) noexcept {
    const DestInfo* least = nullptr;
    int64_t loh = 0;
    for (const DestInfo& d : dests) {
      if (!usable(d, load))
        continue;
      const int64_t doh = load.overhead(d.id);
      if (least == nullptr || doh < loh) {
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

const SchedulerFactory& lcFactory() {
  static const ListSchedulerFactory<LeastConnection> factory;
  return factory;
}

}  // namespace lb::sched
