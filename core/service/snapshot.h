// SPDX-License-Identifier: Apache-2.0
// The immutable configuration the packet path reads: services, dests, timeouts, sysctls, fwmark
// rules. Built by ServiceTable on the control thread, swapped atomically into the workers
// (RCU in spirit). The lookup side of ip_vs_ctl.c (ip_vs_service_find, ip_vs_lookup_dest).
#pragma once

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
  DestConfig config;       // addr, port, fwd, weight, thresholds, tunnel
  bool available = false;  // false once removed (tombstoned until its conns are gone)
};

// A live service as the packet path sees it.
struct SnapService {
  ServiceId id = kNoService;
  ServiceConfig config;
  std::vector<DestId> dests;            // kernel list order (newest first)
  SchedulerPtr scheduler;               // shared across snapshots; nullptr for "none"
  LocalAddrPool* laddr_pool = nullptr;  // full NAT, owned by ServiceRuntime; may be null
  int netmask_prefix = 32;              // persistence granularity, prefix bits

  bool persistent() const { return (config.flags & kSvcPersistent) != 0; }

  bool onePacket() const { return (config.flags & kSvcOnePacket) != 0; }

  bool synproxy() const { return (config.flags & kSvcSynproxy) != 0; }
};

// Immutable once published; shared by the workers through SnapshotPtr. Any thread may read.
class ServiceSnapshot {
 public:
  // Worker thread. Hot path. ip_vs_service_find's order: fwmark (when mark != 0), exact
  // <af, proto, vaddr, vport>, FTP data (<vaddr, 21> for TCP vport 20 / unprivileged ports),
  // then the port-zero service <af, proto, vaddr, 0>. nullptr when none.
  const SnapService* findService(
      Af af, L4Proto proto, const IpAddr& vaddr, uint16_t vport, uint32_t fwmark) const noexcept;
  // Worker thread. Hot path. The mark of the first fwmark rule matching the packet (af, dst
  // prefix, proto unless the rule's is kNone, dport within [port_min, port_max]), or 0.
  uint32_t classify(Af af, L4Proto proto, const IpAddr& daddr, uint16_t dport) const noexcept;
  // Worker thread. Hot path. Any dest id the table has handed out (removed ones included, with
  // available = false); nullptr for ids never handed out or already recycled.
  const SnapDest* dest(DestId id) const noexcept;
  // Worker thread. Hot path. A live service by id, or nullptr.
  const SnapService* service(ServiceId id) const noexcept;
  // Worker thread. Hot path. True when addr is some service's VIP (ICMP echo to a VIP is
  // answered).
  bool isVip(const IpAddr& addr) const noexcept;
  // Worker thread. Hot path. True when <proto, addr, port> is a NAT or full-NAT real server of
  // some service (ip_vs_has_real_service, for nat_icmp_send). Dests of fwmark services count for
  // TCP, UDP and SCTP.
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
  std::vector<SnapDest> dests_;  // indexed by DestId; unused ids have id == kNoDest
  absl::flat_hash_map<IpAddr, bool> vips_;

  // NAT and full-NAT real servers <proto, addr, port> (ip_vs_has_real_service).
  struct RealServerKey {
    L4Proto proto;
    IpAddr addr;
    uint16_t port;
    friend bool operator==(const RealServerKey&, const RealServerKey&) = default;

    template <typename H>
    friend H AbslHashValue(H h, const RealServerKey& k) {
      return H::combine(std::move(h), k.proto, k.addr, k.port);
    }
  };

  using RealServerSet = absl::flat_hash_map<RealServerKey, bool>;
  // Shared with the previous snapshot while the set is unchanged; never null once built by
  // ServiceTable.
  std::shared_ptr<const RealServerSet> real_servers_;
  std::vector<FwmarkRule> rules_;  // dst already masked to prefix_len
  ProtoTimeouts timeouts_{};
  Sysctls sysctls_;
  ServiceRuntime* runtime_ = nullptr;
  uint64_t generation_ = 0;
};

using SnapshotPtr = std::shared_ptr<const ServiceSnapshot>;

}  // namespace lb
