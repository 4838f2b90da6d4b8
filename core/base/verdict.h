// SPDX-License-Identifier: Apache-2.0
// What the pipeline decides for a packet (NF_ACCEPT / NF_DROP / NF_STOLEN in ip_vs_core.c terms).
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace lb {

// Every drop has a reason and each reason has its own counter
// (lb_pipeline_drops_total{reason="..."}). Append only; the names are exported.
#define LB_DROP_REASONS(X)                                                                \
  X(kNone, "none")                                                                        \
  X(kMalformed, "malformed") /* bad header, length, or offset */                          \
  X(kBadChecksum, "bad_checksum")                                                         \
  X(kUnsupported, "unsupported") /* protocol or option lbd does not handle */             \
  X(kFragment, "fragment")       /* non-first fragment with no conn */                    \
  X(kNoService, "no_service")                                                             \
  X(kNoDest, "no_dest")                   /* scheduler found no real server */            \
  X(kDestUnavailable, "dest_unavailable") /* conn's dest removed, expire_nodest_conn=0 */ \
  X(kConnTableFull, "conn_table_full")                                                    \
  X(kTtlExceeded, "ttl_exceeded")                                                         \
  X(kFragNeeded, "frag_needed")    /* DF set and larger than the path MTU */              \
  X(kNoLocalAddr, "no_local_addr") /* full-NAT pool exhausted */                          \
  X(kDefense, "defense")           /* drop_packet / secure_tcp defence */                 \
  X(kNotNewConn, "not_new_conn")   /* no conn, and not a SYN/INIT */                      \
  X(kIcmpUnrelated, "icmp_unrelated")                                                     \
  X(kNoRoom, "no_room") /* buffer headroom/tailroom too small */                          \
  X(kOnePacket, "one_packet")                                                             \
  X(kSynproxy, "synproxy") /* SYN proxy: bad cookie, or no conn to the real server yet */ \
  X(kPeData, "pe_data")    /* --pe sip: not UDP, or no Call-ID (ip_vs_sip_fill_param) */

// GCC 12's -Wshadow flags scoped enumerators that share a name with a namespace-scope
// constant (DropReason::kNoDest vs lb::kNoDest in ids.h) although they cannot collide.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
enum class DropReason : uint8_t {
#define LB_DROP_ENUM(name, str) name,
  LB_DROP_REASONS(LB_DROP_ENUM)
#undef LB_DROP_ENUM
      kCount
};
#pragma GCC diagnostic pop

inline constexpr int kDropReasonCount = static_cast<int>(DropReason::kCount);

absl::string_view dropReasonName(DropReason r);

// kForward: send the output packet(s). kDrop: count and discard. kToHost: not ours; hand the
// packet back to the host stack unchanged (NF_ACCEPT for traffic IPVS does not claim).
enum class Verdict : uint8_t { kForward, kDrop, kToHost };

}  // namespace lb
