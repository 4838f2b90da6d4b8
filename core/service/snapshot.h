// SPDX-License-Identifier: Apache-2.0
// The immutable configuration the packet path reads: services, dests, timeouts, sysctls, fwmark
// rules. Built by ServiceTable on the control thread, swapped atomically into the workers
// (RCU in spirit). The lookup side of ip_vs_ctl.c (ip_vs_service_find, ip_vs_lookup_dest).
#ifndef LBD_CORE_SERVICE_SNAPSHOT_H_
#define LBD_CORE_SERVICE_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/base/addr.h"
#include "core/base/ids.h"
#include "core/proto/proto.h"
#include "core/sched/scheduler.h"
#include "core/service/config.h"

namespace lb {

class ServiceRuntime;
class LocalAddrPool;

// A real server as the packet path sees it.
struct SnapDest {
  DestId id = kNoDest;
  ServiceId svc = kNoService;
  DestConfig config;         // addr, port, fwd, weight, thresholds, tunnel
  bool available = false;    // false once removed (tombstoned until its conns are gone)
};

struct SnapService {
  ServiceId id = kNoService;
  ServiceConfig config;
  std::vector<DestId> dests;       // kernel list order (newest first)
  SchedulerPtr scheduler;          // shared across snapshots; nullptr for "none"
  LocalAddrPool* laddr_pool = nullptr;  // full NAT, owned by ServiceRuntime; may be null
  int netmask_prefix = 32;         // persistence granularity, prefix bits

  bool persistent() const { return (config.flags & kSvcPersistent) != 0; }
  bool onePacket() const { return (config.flags & kSvcOnePacket) != 0; }
};

class ServiceSnapshot {
 public:
  // Worker thread. Hot path. ip_vs_service_find's order: fwmark (when mark != 0), exact
  // <af, proto, vaddr, vport>, FTP data (<vaddr, 21> for TCP vport 20 / unprivileged ports),
  // then the port-zero service <af, proto, vaddr, 0>. nullptr when none.
  const SnapService* findService(Af af, L4Proto proto, const IpAddr& vaddr, uint16_t vport,
                                 uint32_t fwmark) const noexcept;
  // Worker thread. Hot path. The first fwmark rule matching the packet, or 0.
  uint32_t classify(Af af, L4Proto proto, const IpAddr& daddr, uint16_t dport) const noexcept;
  // Any dest id the table has handed out (removed ones included, available = false).
  const SnapDest* dest(DestId id) const noexcept;
  const SnapService* service(ServiceId id) const noexcept;
  // True when addr is some service's VIP (ICMP echo to a VIP is answered).
  bool isVip(const IpAddr& addr) const noexcept;
  // True when <proto, addr, port> is a NAT real server of some service (nat_icmp_send).
  bool isNatRealServer(L4Proto proto, const IpAddr& addr, uint16_t port) const noexcept;

  const ProtoTimeouts& timeouts() const { return timeouts_; }
  const Sysctls& sysctls() const { return sysctls_; }
  absl::Span<const SnapService> services() const { return services_; }
  ServiceRuntime* runtime() const { return runtime_; }
  uint64_t generation() const { return generation_; }

 private:
  friend class ServiceTable;
  std::vector<SnapService> services_;  // index = position, not id
  absl::flat_hash_map<ServiceId, uint32_t> by_id_;
  absl::flat_hash_map<ServiceKey, uint32_t> by_key_;
  bool has_port_zero_ = false;
  bool has_ftp_ = false;
  std::vector<SnapDest> dests_;  // indexed by DestId
  absl::flat_hash_map<IpAddr, bool> vips_;
  std::vector<FwmarkRule> rules_;
  ProtoTimeouts timeouts_{};
  Sysctls sysctls_;
  ServiceRuntime* runtime_ = nullptr;
  uint64_t generation_ = 0;
};

using SnapshotPtr = std::shared_ptr<const ServiceSnapshot>;

}  // namespace lb

#endif  // LBD_CORE_SERVICE_SNAPSHOT_H_
