// SPDX-License-Identifier: Apache-2.0
// What happens when the conn table frees a conn: ip_vs_unbind_dest (dest counters, overload),
// ip_vs_control_del (the template's n_control) and, for full NAT, the local address:port going
// back to its pool. Internal to core/pipeline.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/base/page_provider.h"
#include "core/conn/conn_table.h"
#include "core/service/runtime.h"

namespace lb {

// One per ServiceRuntime (Pipeline::connEvents). onConnFreed runs on whichever thread expires
// the conn, with its shard lock held, so it reads no snapshot: the workers record what it needs
// when they bind a conn (the dest's thresholds, the service's full-NAT pool) in arrays indexed
// by DestId / ServiceId. Thresholds edited after the last bind are picked up at the next bind.
class PipelineConnEvents final : public ConnEvents {
 public:
  explicit PipelineConnEvents(ServiceRuntime& runtime);  // May allocate.

  // The table whose templates conns refer to (Conn::control). Worker thread, before it creates
  // any conn. Hot path.
  void attachTable(ConnTable* table) noexcept { table_.store(table, std::memory_order_release); }

  // Worker thread. Hot path.
  void noteDest(DestId d, uint32_t u_threshold, uint32_t l_threshold) noexcept;
  void notePool(ServiceId svc, LocalAddrPool* pool) noexcept;

  // Whether this object was sized for `runtime`'s limits.
  bool fits(const ServiceRuntime& runtime) const {
    return max_dests_ == runtime.maxDests() && max_services_ == runtime.maxServices();
  }

  // ConnEvents
  void onConnFreed(const Conn& conn) noexcept override;

 private:
  struct Thresholds {
    std::atomic<uint32_t> upper{0}, lower{0};
  };

  ServiceRuntime& runtime_;
  size_t max_dests_, max_services_;
  std::atomic<ConnTable*> table_{nullptr};
  // Zeroed pages (page_provider.h): only the ids in use cost memory.
  ZeroedArray<Thresholds> thresholds_;              // by DestId
  ZeroedArray<std::atomic<LocalAddrPool*>> pools_;  // by ServiceId
};

// The events object for `runtime`, created on first use. Any thread; locks and may allocate
// on first use only per runtime.
PipelineConnEvents& connEventsFor(ServiceRuntime& runtime);

}  // namespace lb
