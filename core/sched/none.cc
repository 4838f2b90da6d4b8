// SPDX-License-Identifier: Apache-2.0
#include "core/sched/none.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct NoScheduler {
  static constexpr absl::string_view kName = "none";

  // No scheduler bound: ip_vs_schedule finds no sched and the packet leaves via ip_vs_leave.
  static std::optional<DestId> pick(absl::Span<const DestInfo> /*dests*/,
                                    const PickContext& /*ctx*/,
                                    const DestLoad& /*load*/) noexcept {
    return std::nullopt;
  }
};

}  // namespace

const SchedulerFactory& noneFactory() {
  static const ListSchedulerFactory<NoScheduler> factory;
  return factory;
}

}  // namespace lb::sched
