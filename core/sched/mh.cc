// SPDX-License-Identifier: Apache-2.0
#include "core/sched/mh.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"

#include "core/sched/table_scheduler.h"

namespace lb::sched {
namespace {

// The weight that owns slots: the latest non-zero weight. The kernel keeps last_weight equal to
// weight whenever weight > 0, so a caller that leaves last_weight unset loses nothing.
int32_t slotWeight(const DestInfo& d) {
  return d.weight > 0 ? d.weight : d.last_weight;
}

struct DestSetup {
  uint32_t skip = 0;
  uint32_t perm = 0;
  int32_t turns = 0;
};

// ip_vs_mh_permutate.
std::vector<DestSetup> permutate(absl::Span<const DestInfo> dests, int32_t gcd, int rshift) {
  std::vector<DestSetup> setup(dests.size());
  constexpr uint32_t m = MaglevHashing::kTabSize;
  for (size_t i = 0; i < dests.size(); ++i) {
    const DestInfo& d = dests[i];
    DestSetup& ds = setup[i];
    ds.perm = MaglevHashing::hashKey(d.addr, d.port, MaglevHashing::kHash1, 0) % m;
    ds.skip = MaglevHashing::hashKey(d.addr, d.port, MaglevHashing::kHash2, 0) % (m - 1) + 1;
    const int32_t lw = slotWeight(d);
    const int32_t turns = (lw / gcd) >> rshift;
    ds.turns = turns != 0 ? turns : (lw != 0 ? 1 : 0);
  }
  return setup;
}

// ip_vs_mh_populate: rounds over the list; each dest with turns >= 1 claims `turns` slots per
// round, each its next free preferred slot.
void populate(std::vector<DestSetup>& setup, std::vector<int32_t>& slots) {
  constexpr uint32_t m = MaglevHashing::kTabSize;
  std::vector<bool> taken(m, false);
  int n = 0;
  while (true) {
    for (size_t i = 0; i < setup.size(); ++i) {
      DestSetup& ds = setup[i];
      for (int32_t turn = 0; turn < ds.turns; ++turn) {
        while (taken[ds.perm]) {
          ds.perm += ds.skip;
          if (ds.perm >= m)
            ds.perm -= m;
        }
        taken[ds.perm] = true;
        slots[ds.perm] = static_cast<int32_t>(i);
        if (++n == static_cast<int>(m))
          return;
      }
    }
  }
}

}  // namespace

uint32_t MaglevHashing::hashKey(const IpAddr& addr,
                                uint16_t port,
                                const HsipKey& key,
                                uint32_t offset) noexcept {
  return hsiphashU32(offset + uint32_t{port} + addr.fold(), key);
}

absl::StatusOr<MaglevHashing::Table> MaglevHashing::build(absl::Span<const DestInfo> dests,
                                                          uint32_t /*flags*/) {
  if (dests.size() > static_cast<size_t>(kTabSize)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mh: ", dests.size(), " dests exceed the table size ", kTabSize));
  }
  Table t;
  t.dests.assign(dests.begin(), dests.end());
  t.slots.assign(kTabSize, -1);
  // ip_vs_mh_gcd_weight and ip_vs_mh_shift_weight over last_weight.
  int32_t gcd = 0;
  int32_t max_weight = 0;
  for (const DestInfo& d : dests) {
    const int32_t lw = slotWeight(d);
    if (lw > 0)
      gcd = gcd > 0 ? gcdPositive(lw, gcd) : lw;
    max_weight = std::max(max_weight, lw);
  }
  if (gcd < 1)
    return t;  // no dest with a weight: every slot empty (ip_vs_mh_reset)
  const int fls = static_cast<int>(std::bit_width(static_cast<uint32_t>(max_weight / gcd)));
  const int rshift = std::max(0, fls - kTabBits);
  std::vector<DestSetup> setup = permutate(dests, gcd, rshift);
  populate(setup, t.slots);
  return t;
}

std::optional<DestId> MaglevHashing::pick(const Table& t,
                                          uint32_t flags,
                                          const PickContext& ctx,
                                          const DestLoad& load) noexcept {
  const uint16_t port = (flags & kSchedFlag2) != 0 && ctx.has_ports ? ctx.sport : 0;
  const uint32_t ihash = hashKey(ctx.saddr, port, kHash1, 0) % kTabSize;
  int32_t idx = t.slots[ihash];
  if (idx < 0)
    return std::nullopt;
  if (usable(t.dests[static_cast<size_t>(idx)], load))
    return t.dests[static_cast<size_t>(idx)].id;
  if ((flags & kSchedFlag1) == 0)
    return std::nullopt;
  // ip_vs_mh_get_fallback: rehash with offsets ihash, ihash + 1, ... (mod M).
  for (uint32_t offset = 0; offset < kTabSize; ++offset) {
    const uint32_t roffset = (offset + ihash) % kTabSize;
    idx = t.slots[hashKey(ctx.saddr, port, kHash1, roffset) % kTabSize];
    if (idx < 0)
      break;
    if (usable(t.dests[static_cast<size_t>(idx)], load)) {
      return t.dests[static_cast<size_t>(idx)].id;
    }
  }
  return std::nullopt;
}

const SchedulerFactory& mhFactory() {
  static const TableSchedulerFactory<MaglevHashing> factory;
  return factory;
}

}  // namespace lb::sched
