// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/sync_bind.h"

#include <atomic>

#include "core/pipeline/conn_events.h"

namespace lb {

const SnapDest* findSyncDest(const ServiceSnapshot& snap,
                             Af af,
                             L4Proto proto,
                             const IpAddr& vaddr,
                             uint16_t vport,
                             uint32_t fwmark,
                             const IpAddr& daddr,
                             uint16_t dport,
                             uint32_t flags,
                             const SnapService** svc_out) noexcept {
  const SnapService* svc = snap.findService(af, proto, vaddr, vport, fwmark);
  *svc_out = svc;
  if (svc == nullptr)
    return nullptr;
  uint16_t port = dport;
  if (fwmark != 0 && (flags & kConnFFwdMask) != 0)  // IP_VS_CONN_F_MASQ is 0
    port = 0;
  const uint16_t ports[2] = {port, static_cast<uint16_t>(port ^ dport)};
  for (uint16_t want : ports) {
    // ip_vs_lookup_dest: the service's live dests (not the trash).
    for (DestId id : svc->dests) {
      const SnapDest* d = snap.dest(id);
      if (d != nullptr && d->available && d->config.addr == daddr && d->config.port == want)
        return d;
    }
  }
  return nullptr;
}

void countSyncBind(ServiceRuntime* runtime,
                   PipelineConnEvents* events,
                   const SnapDest& d,
                   uint32_t flags) noexcept {
  if (runtime == nullptr || d.id >= runtime->maxDests())
    return;
  (events != nullptr ? *events : connEventsFor(*runtime))
      .noteDest(d.id, d.config.u_threshold, d.config.l_threshold);
  DestCounters& dc = runtime->destCounters()[d.id];
  if ((flags & kConnFTemplate) != 0)
    dc.persist_conns.fetch_add(1, std::memory_order_relaxed);
  else if ((flags & kConnFInactive) != 0)
    dc.inact_conns.fetch_add(1, std::memory_order_relaxed);
  else
    dc.active_conns.fetch_add(1, std::memory_order_relaxed);
  runtime->updateOverloadOnBind(d.id, d.config.u_threshold);
}

bool bindSyncedConn(Conn& conn,
                    const ServiceSnapshot& snap,
                    ServiceRuntime* runtime,
                    PipelineConnEvents* events) noexcept {
  if (conn.dest != kNoDest)
    return false;
  const SnapService* svc = nullptr;
  const SnapDest* d = findSyncDest(snap, conn.af, conn.proto, conn.vaddr, conn.vport, conn.fwmark,
                                   conn.daddr, conn.dport, conn.flags, &svc);
  if (d == nullptr)
    return false;
  conn.svc = d->svc;
  conn.dest = d->id;
  countSyncBind(runtime, events, *d, conn.flags);
  return true;
}

}  // namespace lb
