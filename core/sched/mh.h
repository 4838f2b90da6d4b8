// SPDX-License-Identifier: Apache-2.0
// Maglev hashing scheduler; the analogue of ip_vs_mh.c (Maglev paper, NSDI'16, §3.4).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/sched/hsiphash.h"
#include "core/sched/scheduler.h"

namespace lb::sched {

// "mh": a 4093-slot Maglev table (CONFIG_IP_VS_MH_TAB_INDEX = 12) filled from per-dest
// permutations of hsiphash with the kernel's fixed keys, so the table is the kernel's for the
// same dest list. Slots are shared by last_weight (a weight-0 dest keeps its slots and is only
// skipped at lookup). mh-fallback = kSchedFlag1, mh-port = kSchedFlag2, as for sh.
struct MaglevHashing {
  static constexpr absl::string_view kName = "mh";
  static constexpr int kTabSize = 4093;    // primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]
  static constexpr int kTabBits = 12 / 2;  // IP_VS_MH_TAB_BITS
  static constexpr HsipKey kHash1{2654435761u, 2654435761u};
  static constexpr HsipKey kHash2{2654446892u, 2654446892u};

  struct Table {
    std::vector<DestInfo> dests;
    std::vector<int32_t> slots;  // kTabSize entries: index into dests, -1 = empty
  };

  // Control thread. May allocate. InvalidArgument with more than kTabSize dests.
  static absl::StatusOr<Table> build(absl::Span<const DestInfo> dests, uint32_t flags);
  // ip_vs_mh_hashkey: hsiphash(offset + port + fold(addr)). Any thread.
  static uint32_t hashKey(const IpAddr& addr,
                          uint16_t port,
                          const HsipKey& key,
                          uint32_t offset) noexcept;
  // Hot path.
  static std::optional<DestId> pick(const Table& t,
                                    uint32_t flags,
                                    const PickContext& ctx,
                                    const DestLoad& load) noexcept;
};

// Any thread.
const SchedulerFactory& mhFactory();

}  // namespace lb::sched
