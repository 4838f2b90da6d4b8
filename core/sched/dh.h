// SPDX-License-Identifier: Apache-2.0
// Destination hashing scheduler; the analogue of ip_vs_dh.c.
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

// "dh": 256 buckets filled round-robin over the dest list (weights ignored); the packet's
// destination address picks the bucket. No fallback: an unusable bucket dest means no dest.
struct DestinationHashing {
  static constexpr absl::string_view kName = "dh";
  static constexpr int kTabBits = 8;  // CONFIG_IP_VS_DH_TAB_BITS
  static constexpr int kTabSize = 1 << kTabBits;

  struct Table {
    std::vector<DestInfo> dests;
    std::array<int32_t, kTabSize> buckets{};  // index into dests, -1 = empty
  };

  // Control thread. May allocate.
  static absl::StatusOr<Table> build(absl::Span<const DestInfo> dests, uint32_t flags);
  // Bucket of an address: hash_32(fold(addr), 8). Any thread.
  static uint32_t bucketOf(const IpAddr& addr) noexcept;
  // Hot path.
  static std::optional<DestId> pick(const Table& t,
                                    uint32_t flags,
                                    const PickContext& ctx,
                                    const DestLoad& load) noexcept;
};

// Any thread.
const SchedulerFactory& dhFactory();

}  // namespace lb::sched
