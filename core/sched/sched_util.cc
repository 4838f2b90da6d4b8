// SPDX-License-Identifier: Apache-2.0
#include "core/sched/sched_util.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace lb::sched {

int gcdPositive(int a, int b) {
  while (b != 0) {
    const int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

absl::Status validateDests(absl::Span<const DestInfo> dests) {
  absl::flat_hash_set<DestId> seen;
  seen.reserve(dests.size());
  for (const DestInfo& d : dests) {
    if (d.id == kNoDest) {
      return absl::InvalidArgumentError(
          absl::StrCat("dest ", formatAddrPort(d.addr, d.port), " has no id"));
    }
    if (d.weight < 0 || d.last_weight < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dest ", formatAddrPort(d.addr, d.port), " has negative weight ", d.weight));
    }
    if (!seen.insert(d.id).second) {
      return absl::InvalidArgumentError(absl::StrCat("dest id ", d.id, " listed twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace lb::sched
