// SPDX-License-Identifier: Apache-2.0
// Dense identifiers for services and real servers. Conns refer to dests by id, never by
// pointer; a removed dest's id is tombstoned until its conns are gone (ip_vs_ctl.c dest trash).
#pragma once

#include <cstdint>

namespace lb {

using DestId = uint32_t;
using ServiceId = uint32_t;
inline constexpr DestId kNoDest = 0xffffffffu;
inline constexpr ServiceId kNoService = 0xffffffffu;

}  // namespace lb
