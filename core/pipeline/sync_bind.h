// SPDX-License-Identifier: Apache-2.0
// Binding a synced conn to its real server: ip_vs_find_dest (ip_vs_ctl.c) and ip_vs_bind_dest /
// ip_vs_try_bind_dest (ip_vs_conn.c) for conns that connection sync (core/sync) created. Here,
// not in core/sync, because the pipeline binds a conn the backup created unbound when its first
// packet arrives (after a failover) and core/sync already depends on core/pipeline.
#pragma once

#include <cstdint>

#include "core/conn/conn_table.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"

namespace lb {

class PipelineConnEvents;

// ip_vs_find_dest: the service by fwmark or <af, protocol, vaddr, vport>, then the available
// dest in it by daddr and dport; a fwmark service's non-NAT conns look for port 0 first, then
// for dport. `*svc_out` is the service found (or null). Any thread.
const SnapDest* findSyncDest(const ServiceSnapshot& snap,
                             Af af,
                             L4Proto proto,
                             const IpAddr& vaddr,
                             uint16_t vport,
                             uint32_t fwmark,
                             const IpAddr& daddr,
                             uint16_t dport,
                             uint32_t flags,
                             const SnapService** svc_out) noexcept;

// ip_vs_bind_dest's counters for a synced entry: templates in persistconns, conns in
// activeconns or inactconns by their INACTIVE bit; then the upper-threshold check. `runtime`
// may be null (nothing counted). `events`: runtime's (connEventsFor, which locks a registry:
// the workers pass their own pointer), or null to look it up.
void countSyncBind(ServiceRuntime* runtime,
                   PipelineConnEvents* events,
                   const SnapDest& d,
                   uint32_t flags) noexcept;

// ip_vs_try_bind_dest for a synced conn (or template) left unbound: binds it and counts it
// when its real server exists in `snap` now. True when bound. Worker or control thread, with
// the conn's guard. Hot path (with `events` given): no allocation or lock.
bool bindSyncedConn(Conn& conn,
                    const ServiceSnapshot& snap,
                    ServiceRuntime* runtime,
                    PipelineConnEvents* events = nullptr) noexcept;

}  // namespace lb
