// SPDX-License-Identifier: Apache-2.0
// Established-flow offload. Once a NAT or full-NAT conn has settled (TCP ESTABLISHED, or UDP)
// the pipeline offers it to a fast path outside it; lbd's is the tc program's flow map
// (io/bpf), which then rewrites and forwards the conn's packets in the kernel. The pipeline
// keeps the conn: whoever takes the offer keeps its timer and stats current from the fast
// path's counters and gives the conn back (the fast path sends every later packet the slow
// way) when a SYN, FIN or RST shows up, or the conn or its dest goes away.
//
// The kernel's IPVS has no such split; the states, timeouts and stats an operator sees are the
// same, up to the taker's refresh period.
#pragma once

#include <cstdint>

#include "core/conn/conn.h"

namespace lb {

class FlowOffloader {
 public:
  virtual ~FlowOffloader() = default;
  // Worker thread, with the conn's shard lock held: must not call the ConnTable. Hot path.
  // `conn` is the conn as of this packet and `index` its slab index (ConnTable::get(index,
  // conn.generation) finds it later). True: taken; the pipeline sets kConnFOffloaded and never
  // offers the conn again. False: not now (a full queue); offered again with its next packet.
  virtual bool offer(const Conn& conn, uint32_t index) noexcept = 0;
};

// Whether the pipeline offers `c` after one of its packets: NAT or full NAT, one address
// family on both sides, TCP in ESTABLISHED or UDP, not a template or one-packet conn, not
// taken before, and at least `min_in_pkts` client packets seen (short conns are not worth an
// offload's set-up). Pure.
bool offloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept;

}  // namespace lb
