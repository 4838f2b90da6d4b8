// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/conn_events.h"

#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"

#include "core/pipeline/pipeline.h"

namespace lb {

PipelineConnEvents::PipelineConnEvents(ServiceRuntime& runtime)
    : runtime_(runtime),
      max_dests_(runtime.maxDests()),
      max_services_(runtime.maxServices()),
      thresholds_(runtime.maxDests()),
      pools_(runtime.maxServices()) {}

void PipelineConnEvents::noteDest(DestId d, uint32_t u_threshold, uint32_t l_threshold) noexcept {
  if (d >= runtime_.maxDests())
    return;
  thresholds_[d].upper.store(u_threshold, std::memory_order_relaxed);
  thresholds_[d].lower.store(l_threshold, std::memory_order_relaxed);
}

void PipelineConnEvents::notePool(ServiceId svc, LocalAddrPool* pool) noexcept {
  if (svc >= runtime_.maxServices())
    return;
  pools_[svc].store(pool, std::memory_order_release);
}

// ip_vs_conn_expire's unlink work: ip_vs_control_del, ip_vs_unbind_dest (ip_vs_conn.c), plus
// the full-NAT port.
void PipelineConnEvents::onConnFreed(const Conn& conn) noexcept {
  if (conn.control != kNoConn) {
    ConnTable* table = table_.load(std::memory_order_acquire);
    if (table != nullptr)
      table->nControl(conn.control).fetch_sub(1, std::memory_order_acq_rel);
  }
  if ((conn.flags & kConnFFullNat) != 0 && conn.lport != 0 && conn.svc < runtime_.maxServices()) {
    LocalAddrPool* pool = pools_[conn.svc].load(std::memory_order_acquire);
    if (pool != nullptr)
      pool->release(conn.proto, conn.laddr, conn.lport);
  }
  if (conn.dest >= runtime_.maxDests())
    return;
  DestCounters& dc = runtime_.destCounters()[conn.dest];
  if ((conn.flags & kConnFTemplate) != 0) {
    dc.persist_conns.fetch_sub(1, std::memory_order_relaxed);
  } else if ((conn.flags & kConnFInactive) != 0) {
    dc.inact_conns.fetch_sub(1, std::memory_order_relaxed);
  } else {
    dc.active_conns.fetch_sub(1, std::memory_order_relaxed);
  }
  const Thresholds& t = thresholds_[conn.dest];
  runtime_.updateOverloadOnUnbind(conn.dest, t.upper.load(std::memory_order_relaxed),
                                  t.lower.load(std::memory_order_relaxed));
}

PipelineConnEvents& connEventsFor(ServiceRuntime& runtime) {
  static std::mutex mu;
  // Never freed: a table built with an events object may outlive its runtime's registration
  // (a runtime destroyed and another allocated at the same address gets a fresh object).
  static auto* registry = new absl::flat_hash_map<ServiceRuntime*, PipelineConnEvents*>();
  std::lock_guard<std::mutex> lock(mu);
  PipelineConnEvents*& slot = (*registry)[&runtime];
  if (slot == nullptr || !slot->fits(runtime))
    slot = new PipelineConnEvents(runtime);
  return *slot;
}

ConnEvents* Pipeline::connEvents(ServiceRuntime& runtime) {
  return &connEventsFor(runtime);
}

void Pipeline::noteFullNatPool(ServiceRuntime& runtime, ServiceId svc, LocalAddrPool* pool) {
  connEventsFor(runtime).notePool(svc, pool);
}

}  // namespace lb
