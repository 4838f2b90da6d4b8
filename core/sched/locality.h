// SPDX-License-Identifier: Apache-2.0
// What lblc and lblcr share: the dest list with an id index, is_overloaded(), and the wlc pick
// over the whole service (__ip_vs_lblc_schedule / __ip_vs_lblcr_schedule).
#pragma once

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

#include "core/sched/sched_util.h"
#include "core/sched/weighted_least.h"

namespace lb::sched {

class LocalityDests {
 public:
  // Control thread. May allocate.
  void assign(absl::Span<const DestInfo> dests) {
    dests_.assign(dests.begin(), dests.end());
    index_.clear();
    for (size_t i = 0; i < dests_.size(); ++i)
      index_[dests_[i].id] = i;
  }

  // The dest with this id, or nullptr if it is no longer in the service (the kernel's
  // !IP_VS_DEST_CF_AVAILABLE). Hot path.
  const DestInfo* find(DestId id) const noexcept {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &dests_[it->second];
  }

  // is_overloaded(): more active conns than weight, while some dest is under half its weight.
  // Hot path.
  bool isOverloaded(const DestInfo& d, const DestLoad& load) const noexcept {
    if (load.active(d.id) <= d.weight)
      return false;
    for (const DestInfo& m : dests_) {
      if (int64_t{load.active(m.id)} * 2 < m.weight)
        return true;
    }
    return false;
  }

  // The wlc choice over the whole service. Hot path.
  const DestInfo* leastLoaded(const DestLoad& load) const noexcept {
    return weightedLeast(absl::MakeConstSpan(dests_), load,
                         [&load](DestId id) { return load.overhead(id); });
  }

 private:
  std::vector<DestInfo> dests_;
  absl::flat_hash_map<DestId, size_t> index_;
};

// Control thread. InvalidArgument for a negative expiration.
absl::Status validateExpiration(absl::string_view name, Duration expiration);

}  // namespace lb::sched
