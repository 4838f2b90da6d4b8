// SPDX-License-Identifier: Apache-2.0
// Source hashing scheduler; the analogue of ip_vs_sh.c.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/sched/scheduler.h"

namespace lb::sched {

// "sh": 256 buckets; walking the dest list, each dest takes `weight` consecutive buckets (a
// weight-0 dest takes one), wrapping until all are filled. The client address (plus its source
// port with sh-port = kSchedFlag2) picks the bucket. With sh-fallback = kSchedFlag1 an unusable
// bucket dest is replaced by probing offsets from the original bucket.
struct SourceHashing {
  static constexpr absl::string_view kName = "sh";
  static constexpr int kTabBits = 8;  // CONFIG_IP_VS_SH_TAB_BITS
  static constexpr int kTabSize = 1 << kTabBits;

  struct Table {
    std::vector<DestInfo> dests;
    std::array<int32_t, kTabSize> buckets{};  // index into dests, -1 = empty
  };

  // Control thread. May allocate.
  static absl::StatusOr<Table> build(absl::Span<const DestInfo> dests, uint32_t flags);
  // ip_vs_sh_hashkey: (offset + hash_32(port + fold(addr), 8)) & 255. Any thread.
  static uint32_t hashKey(const IpAddr& addr, uint16_t port, uint32_t offset) noexcept;
  // Hot path.
  static std::optional<DestId> pick(const Table& t,
                                    uint32_t flags,
                                    const PickContext& ctx,
                                    const DestLoad& load) noexcept;
};

// Any thread.
const SchedulerFactory& shFactory();

}  // namespace lb::sched
