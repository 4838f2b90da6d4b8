// SPDX-License-Identifier: Apache-2.0
// The packet path: parse, service lookup, conn lookup/creation, state, transmit, count. The
// analogue of ip_vs_core.c (ip_vs_in, ip_vs_out, ip_vs_in_icmp, ip_vs_out_icmp, ip_vs_schedule,
// ip_vs_sched_persist, ip_vs_leave).
#ifndef LBD_CORE_PIPELINE_PIPELINE_H_
#define LBD_CORE_PIPELINE_PIPELINE_H_

#include <cstdint>

#include "absl/types/span.h"
#include "core/base/counters.h"
#include "core/base/time.h"
#include "core/base/verdict.h"
#include "core/conn/conn_table.h"
#include "core/packet/packet_buffer.h"
#include "core/service/snapshot.h"

namespace lb {

#define LB_PIPELINE_COUNTERS(C)                                                        \
  C(rx_packets) C(rx_bytes) C(tx_packets) C(tx_bytes) C(to_host) C(conns_created)        \
  C(conns_reused) C(icmp_sent) C(icmp_echo_replies) C(templates_created)

struct PipelineCounters {
  LB_PIPELINE_COUNTERS(LB_DECLARE_COUNTER)
  Counter drops[kDropReasonCount];
};

// Where the pipeline puts packets it originates (ICMP errors, echo replies): a worker-owned
// pool of spare buffers. Hot path.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // A free buffer to fill, or nullptr when none is left (the packet is then not sent and
  // counted). Filled buffers are sent after the batch, in order.
  virtual PacketBuffer* allocate() noexcept = 0;
};

// One per worker. Worker thread only (the conn table and runtime it uses are shared and
// thread-safe). No allocation after construction.
class Pipeline {
 public:
  // `worker` indexes ServiceRuntime::workerStats. `seed` seeds the worker's RNG (twos,
  // drop_packet). The table must outlive the pipeline.
  Pipeline(ConnTable& conns, size_t worker, uint64_t seed);

  // Hot path. Processes each packet in place and sets its verdict, drop_reason, tx and
  // next_hop (ip_vs_in for client->VIP packets, ip_vs_out for replies from real servers,
  // the ICMP handlers for related errors). Extra packets go to `sink`.
  void process(const ServiceSnapshot& snap, absl::Span<PacketBuffer* const> batch,
               PacketSink& sink, MonoTime now) noexcept;

  const PipelineCounters& counters() const { return counters_; }

  // The ConnEvents the ConnTable must be built with so that freed conns are unbound from
  // their dests, templates and full-NAT pools. Needs the current snapshot's runtime.
  static ConnEvents* connEvents(ServiceRuntime& runtime);

 private:
  ConnTable& conns_;
  size_t worker_;
  uint64_t rng_;
  PipelineCounters counters_;
};

}  // namespace lb

#endif  // LBD_CORE_PIPELINE_PIPELINE_H_
