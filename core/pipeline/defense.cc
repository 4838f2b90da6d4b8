// SPDX-License-Identifier: Apache-2.0
// The defence strategies: update_defense_level, ip_vs_todrop and defense_work_handler of
// ip_vs_ctl.c, with the conn table's free slots standing in for free memory (pipeline.h).
#include <algorithm>

#include "core/pipeline/pipeline.h"

namespace lb {

namespace {

constexpr Duration kDefensePeriod = seconds(1);  // DEFENSE_TIMER_PERIOD

// Modes 1 and 2 are the automatic ones: on while under pressure.
bool modeActive(uint32_t mode, bool nomem) {
  return mode == 3 || ((mode == 1 || mode == 2) && nomem);
}

}  // namespace

DefenseLevel defenseLevel(const Sysctls& sys, size_t entries, size_t capacity) noexcept {
  DefenseLevel l;
  const size_t amemthresh = capacity / kDefenseThresholdDivisor;
  const size_t available = capacity > entries ? capacity - entries : 0;
  l.nomem = available < amemthresh;
  l.drop_entry = modeActive(sys.drop_entry, l.nomem);
  l.secure_tcp = modeActive(sys.secure_tcp, l.nomem);
  if (sys.drop_packet == 3) {
    l.drop_rate = sys.am_droprate;
  } else if (modeActive(sys.drop_packet, l.nomem)) {
    // amemthresh / (amemthresh - availmem), integer division: 1 (drop all) when the table is
    // full, growing as the table empties towards the threshold.
    size_t rate = amemthresh / (amemthresh - available);
    l.drop_rate = static_cast<uint32_t>(std::min<size_t>(rate, UINT32_MAX));
  }
  return l;
}

DefenseTickResult runDefenseTick(ConnTable& conns,
                                 const Sysctls& sys,
                                 MonoTime now,
                                 uint64_t rand) noexcept {
  DefenseTickResult r;
  ConnTableStats st = conns.stats();
  r.level = defenseLevel(sys, st.entries, st.capacity);
  if (r.level.drop_entry) {
    // ip_vs_random_dropentry: 1/32 of the table's buckets a second.
    size_t buckets = std::max<size_t>(conns.bucketCount() >> 5, 1);
    r.dropped = conns.dropEntries(now, rand, buckets);
  }
  return r;
}

// Once per batch: the level for the current fill, and ip_vs_todrop's counter. The kernel
// recomputes the level once a second and, in automatic mode, resets drop_counter to the rate
// every second while under pressure (so fewer than `rate` new conns a second are never
// dropped); mode 3 never resets it (the first new conn after start is dropped).
void Pipeline::updateDefense(const Sysctls& sys, MonoTime now) noexcept {
  if (sys.drop_packet == 0 && sys.secure_tcp == 0) {
    defense_ = DefenseLevel{};
    return;
  }
  ConnTableStats st = conns_.stats();
  DefenseLevel l = defenseLevel(sys, st.entries, st.capacity);
  if (l.drop_rate != 0 && sys.drop_packet != 3) {
    if (defense_.drop_rate == 0 || now >= drop_reset_at_) {
      drop_counter_ = l.drop_rate;
      drop_reset_at_ = now + kDefensePeriod;
    }
  }
  defense_ = l;
}

// ip_vs_todrop: true for every drop_rate-th call while drop_packet is in effect.
bool Pipeline::todrop() noexcept {
  if (defense_.drop_rate == 0)
    return false;
  if (--drop_counter_ > 0)
    return false;
  drop_counter_ = defense_.drop_rate;
  return true;
}

}  // namespace lb
