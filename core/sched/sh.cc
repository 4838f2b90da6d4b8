// SPDX-License-Identifier: Apache-2.0
#include "core/sched/sh.h"

#include "core/sched/table_scheduler.h"

namespace lb::sched {

absl::StatusOr<SourceHashing::Table> SourceHashing::build(absl::Span<const DestInfo> dests,
                                                          uint32_t /*flags*/) {
  // ip_vs_sh_reassign: stay on a dest until it has filled `weight` buckets; "++d_count >=
  // weight" also moves on after one bucket for weight 0.
  Table t;
  t.dests.assign(dests.begin(), dests.end());
  size_t p = 0;
  int32_t d_count = 0;
  for (int i = 0; i < kTabSize; ++i) {
    if (dests.empty()) {
      t.buckets[static_cast<size_t>(i)] = -1;
      continue;
    }
    t.buckets[static_cast<size_t>(i)] = static_cast<int32_t>(p);
    if (++d_count >= dests[p].weight) {
      p = (p + 1) % dests.size();
      d_count = 0;
    }
  }
  return t;
}

uint32_t SourceHashing::hashKey(const IpAddr& addr, uint16_t port, uint32_t offset) noexcept {
  return (offset + hash32(uint32_t{port} + addr.fold(), kTabBits)) & (kTabSize - 1);
}

std::optional<DestId> SourceHashing::pick(const Table& t,
                                          uint32_t flags,
                                          const PickContext& ctx,
                                          const DestLoad& load) noexcept {
  // ip_vs_sh_schedule: the port is used only with sh-port and a TCP/UDP/SCTP packet.
  const uint16_t port = (flags & kSchedFlag2) != 0 && ctx.has_ports ? ctx.sport : 0;
  const uint32_t ihash = hashKey(ctx.saddr, port, 0);
  int32_t idx = t.buckets[ihash];
  if (idx < 0)
    return std::nullopt;
  if (usable(t.dests[static_cast<size_t>(idx)], load))
    return t.dests[static_cast<size_t>(idx)].id;
  if ((flags & kSchedFlag1) == 0)
    return std::nullopt;
  // ip_vs_sh_get_fallback: rehash with offsets ihash, ihash + 1, ... (mod 256).
  for (uint32_t offset = 0; offset < kTabSize; ++offset) {
    const uint32_t roffset = (offset + ihash) % kTabSize;
    idx = t.buckets[hashKey(ctx.saddr, port, roffset)];
    if (idx < 0)
      break;
    if (usable(t.dests[static_cast<size_t>(idx)], load)) {
      return t.dests[static_cast<size_t>(idx)].id;
    }
  }
  return std::nullopt;
}

const SchedulerFactory& shFactory() {
  static const TableSchedulerFactory<SourceHashing> factory;
  return factory;
}

}  // namespace lb::sched
