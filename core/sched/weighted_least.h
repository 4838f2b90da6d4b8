// SPDX-License-Identifier: Apache-2.0
// The weighted least-overhead walk shared by wlc, sed and lblc/lblcr (ip_vs_wlc.c and the
// copies of its loop in ip_vs_sed.c, ip_vs_lblc.c, ip_vs_lblcr.c).
#pragma once

#include <cstdint>

#include "absl/types/span.h"

#include "core/sched/sched_util.h"

namespace lb::sched {

// The first usable dest is the initial least; every later non-overloaded dest replaces it when
// (s64)loh * w(dest) > (s64)doh * w(least). A later weight-0 dest can never win the test.
// `overhead(DestId)` gives each dest's overhead. nullptr when no dest is usable. Hot path.
template <typename Overhead>
const DestInfo* weightedLeast(absl::Span<const DestInfo> dests,
                              const DestLoad& load,
                              Overhead overhead) noexcept {
  size_t i = 0;
  while (i < dests.size() && !usable(dests[i], load))
    ++i;
  if (i == dests.size())
    return nullptr;
  const DestInfo* least = &dests[i];
  int64_t loh = overhead(least->id);
  for (++i; i < dests.size(); ++i) {
    const DestInfo& d = dests[i];
    if (load.overloaded(d.id))
      continue;
    const int64_t doh = overhead(d.id);
    if (loh * d.weight > doh * least->weight) {
      least = &d;
      loh = doh;
    }
  }
  return least;
}

}  // namespace lb::sched
