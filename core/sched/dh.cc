// SPDX-License-Identifier: Apache-2.0
#include "core/sched/dh.h"

#include "core/sched/table_scheduler.h"

namespace lb::sched {

absl::StatusOr<DestinationHashing::Table> DestinationHashing::build(
    absl::Span<const DestInfo> dests, uint32_t /*flags*/) {
  // ip_vs_dh_reassign: bucket i gets dest i mod n, in list order.
  Table t;
  t.dests.assign(dests.begin(), dests.end());
  for (int i = 0; i < kTabSize; ++i) {
    t.buckets[static_cast<size_t>(i)] =
        dests.empty() ? -1 : static_cast<int32_t>(static_cast<size_t>(i) % dests.size());
  }
  return t;
}

uint32_t DestinationHashing::bucketOf(const IpAddr& addr) noexcept {
  return hash32(addr.fold(), kTabBits);
}

std::optional<DestId> DestinationHashing::pick(const Table& t,
                                               uint32_t /*flags*/,
                                               const PickContext& ctx,
                                               const DestLoad& load) noexcept {
  // ip_vs_dh_schedule: keyed on the packet's destination address.
  const int32_t idx = t.buckets[bucketOf(ctx.daddr)];
  if (idx < 0)
    return std::nullopt;
  const DestInfo& d = t.dests[static_cast<size_t>(idx)];
  if (!usable(d, load))
    return std::nullopt;
  return d.id;
}

const SchedulerFactory& dhFactory() {
  static const TableSchedulerFactory<DestinationHashing> factory;
  return factory;
}

}  // namespace lb::sched
