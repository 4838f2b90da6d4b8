// SPDX-License-Identifier: Apache-2.0
#include "core/service/snapshot.h"

namespace lb {

namespace {

constexpr uint16_t kFtpPort = 21;
constexpr uint16_t kFtpDataPort = 20;
// inet_port_requires_bind_service(): ports below ip_unprivileged_port_start (1024).
constexpr uint16_t kUnprivilegedPortStart = 1024;

}  // namespace

// ip_vs_service_find (ip_vs_ctl.c). Every step is a flat_hash_map find: no allocation.
const SnapService* ServiceSnapshot::findService(
    Af af, L4Proto proto, const IpAddr& vaddr, uint16_t vport, uint32_t fwmark) const noexcept {
  ServiceKey key;
  key.af = af;
  // 1. The fwmark table when the packet carries a mark; a miss falls through.
  if (fwmark != 0) {
    key.proto = L4Proto::kTcp;
    key.fwmark = fwmark;
    if (auto it = by_key_.find(key); it != by_key_.end())
      return &services_[it->second];
    key.fwmark = 0;
  }
  // 2. Exact <af, proto, vaddr, vport>.
  key.proto = proto;
  key.vaddr = vaddr;
  key.vport = vport;
  if (auto it = by_key_.find(key); it != by_key_.end())
    return &services_[it->second];
  // 3. FTP data: TCP to vport 20 or an unprivileged port of a VIP with a port-21 service.
  if (has_ftp_ && proto == L4Proto::kTcp &&
      (vport == kFtpDataPort || vport >= kUnprivilegedPortStart)) {
    key.vport = kFtpPort;
    if (auto it = by_key_.find(key); it != by_key_.end())
      return &services_[it->second];
  }
  // 4. The port-zero ("catch-all", persistent) service of that VIP.
  if (has_port_zero_) {
    key.vport = 0;
    if (auto it = by_key_.find(key); it != by_key_.end())
      return &services_[it->second];
  }
  return nullptr;
}

uint32_t ServiceSnapshot::classify(Af af,
                                   L4Proto proto,
                                   const IpAddr& daddr,
                                   uint16_t dport) const noexcept {
  for (const FwmarkRule& r : rules_) {
    if (r.af != af)
      continue;
    if (r.proto != L4Proto::kNone && r.proto != proto)
      continue;
    if (dport < r.port_min || dport > r.port_max)
      continue;
    if (daddr.masked(r.prefix_len) != r.dst)
      continue;
    return r.mark;
  }
  return 0;
}

const SnapDest* ServiceSnapshot::dest(DestId id) const noexcept {
  if (id >= dests_.size() || dests_[id].id == kNoDest)
    return nullptr;
  return &dests_[id];
}

const SnapService* ServiceSnapshot::service(ServiceId id) const noexcept {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &services_[it->second];
}

bool ServiceSnapshot::isVip(const IpAddr& addr) const noexcept {
  return vips_.contains(addr);
}

bool ServiceSnapshot::isNatRealServer(L4Proto proto,
                                      const IpAddr& addr,
                                      uint16_t port) const noexcept {
  return real_servers_ != nullptr && real_servers_->contains(RealServerKey{proto, addr, port});
}

}  // namespace lb
