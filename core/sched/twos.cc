// SPDX-License-Identifier: Apache-2.0
#include "core/sched/twos.h"

#include "core/sched/sched_util.h"

namespace lb::sched {
namespace {

struct TwoChoices {
  static constexpr absl::string_view kName = "twos";

  // ip_vs_twos_schedule. r1 and r2 are uniform in [0, total] (total + 1 values); walking the
  // list subtracts each weight, and choice k is the first dest where r_k drops to <= 0.
  static std::optional<DestId> pick(absl::Span<const DestInfo> dests,
                                    const PickContext& ctx,
                                    const DestLoad& load) noexcept {
    int64_t total = 0;
    for (const DestInfo& d : dests) {
      if (usable(d, load))
        total += d.weight;
    }
    if (total == 0)
      return std::nullopt;
    total += 1;
    int64_t r1 =
        static_cast<int64_t>(static_cast<uint32_t>(ctx.random) % static_cast<uint64_t>(total));
    int64_t r2 = static_cast<int64_t>((ctx.random >> 32) % static_cast<uint64_t>(total));
    const DestInfo* choice1 = nullptr;
    const DestInfo* choice2 = nullptr;
    int64_t overhead1 = 0;
    int64_t overhead2 = 0;
    for (const DestInfo& d : dests) {
      if (!usable(d, load))
        continue;
      r1 -= d.weight;
      r2 -= d.weight;
      if (r1 <= 0 && choice1 == nullptr) {
        choice1 = &d;
        overhead1 = load.overhead(d.id);
      }
      if (r2 <= 0 && choice2 == nullptr) {
        choice2 = &d;
        overhead2 = load.overhead(d.id);
      }
      if (choice1 != nullptr && choice2 != nullptr)
        break;
    }
    // Both draws are <= total - 1 = the sum of usable weights, so both land on a dest.
    if (choice1 == nullptr || choice2 == nullptr)
      return std::nullopt;
    if (choice2->weight * overhead1 > choice1->weight * overhead2)
      return choice2->id;
    return choice1->id;
  }
};

}  // namespace

const SchedulerFactory& twosFactory() {
  static const ListSchedulerFactory<TwoChoices> factory;
  return factory;
}

}  // namespace lb::sched
