// SPDX-License-Identifier: Apache-2.0
// ServiceTable: the mutations (ip_vs_add_service, ip_vs_edit_service, ip_vs_del_service,
// ip_vs_add_dest, ip_vs_edit_dest, ip_vs_del_dest, ip_vs_flush, ip_vs_set_timeout) as edits of
// a copy of the model, validated whole and committed whole. Commit and snapshot building live
// in service_commit.cc.
#include "core/service/service_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "core/service/validate.h"

namespace lb {

namespace {

ServiceWithDests* findService(FullConfig& cfg, const ServiceKey& key) {
  for (ServiceWithDests& s : cfg.services) {
    if (s.service.key == key)
      return &s;
  }
  return nullptr;
}

absl::Status serviceNotFound(const ServiceKey& key) {
  return absl::NotFoundError(absl::StrCat("service ", key.toString(), " not found"));
}

std::vector<DestConfig>::iterator findDest(ServiceWithDests& s, const IpAddr& addr, uint16_t port) {
  return std::find_if(s.dests.begin(), s.dests.end(),
                      [&](const DestConfig& d) { return d.addr == addr && d.port == port; });
}

}  // namespace

absl::Status ServiceTable::addService(const ServiceConfig& svc) {
  ServiceConfig c = svc;
  normalizeService(c);
  if (findService(config_, c.key) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("service ", c.key.toString(), " already exists"));
  }
  FullConfig next = config_;
  next.services.push_back(ServiceWithDests{std::move(c), {}});
  return commit(std::move(next));
}

// ipvsadm -E: every attribute is replaced; dests stay, and so does the full-NAT pool, which is
// managed by add/deleteLocalAddr (DPVS -P/-Q).
absl::Status ServiceTable::editService(const ServiceConfig& svc) {
  ServiceConfig c = svc;
  normalizeService(c);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, c.key);
  if (s == nullptr)
    return serviceNotFound(c.key);
  c.local_addrs = s->service.local_addrs;
  s->service = std::move(c);
  return commit(std::move(next));
}

absl::Status ServiceTable::deleteService(const ServiceKey& key) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  auto it = std::find_if(next.services.begin(), next.services.end(),
                         [&](const ServiceWithDests& s) { return s.service.key == k; });
  if (it == next.services.end())
    return serviceNotFound(k);
  next.services.erase(it);
  return commit(std::move(next));
}

absl::Status ServiceTable::flush() {
  FullConfig next = config_;
  next.services.clear();
  return commit(std::move(next));
}

// New dests go to the head of the list (list_add_rcu in __ip_vs_update_dest).
absl::Status ServiceTable::addDest(const ServiceKey& key, const DestConfig& dest) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, k);
  if (s == nullptr)
    return serviceNotFound(k);
  if (findDest(*s, dest.addr, dest.port) != s->dests.end()) {
    return absl::AlreadyExistsError(absl::StrCat("dest ", formatAddrPort(dest.addr, dest.port),
                                                 " already exists in service ", k.toString()));
  }
  s->dests.insert(s->dests.begin(), dest);
  return commit(std::move(next));
}

absl::Status ServiceTable::editDest(const ServiceKey& key, const DestConfig& dest) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, k);
  if (s == nullptr)
    return serviceNotFound(k);
  auto it = findDest(*s, dest.addr, dest.port);
  if (it == s->dests.end()) {
    return absl::NotFoundError(absl::StrCat("dest ", formatAddrPort(dest.addr, dest.port),
                                            " not found in service ", k.toString()));
  }
  *it = dest;
  return commit(std::move(next));
}

absl::Status ServiceTable::deleteDest(const ServiceKey& key, const IpAddr& addr, uint16_t port) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, k);
  if (s == nullptr)
    return serviceNotFound(k);
  auto it = findDest(*s, addr, port);
  if (it == s->dests.end()) {
    return absl::NotFoundError(
        absl::StrCat("dest ", formatAddrPort(addr, port), " not found in service ", k.toString()));
  }
  s->dests.erase(it);
  return commit(std::move(next));
}

// ipvsadm --set tcp tcpfin udp: a zero keeps the current value (ip_vs_set_timeout).
absl::Status ServiceTable::setTimeouts(const Timeouts& t) {
  if (absl::Status s = validateTimeouts(t); !s.ok())
    return s;
  FullConfig next = config_;
  if (t.tcp != 0)
    next.timeouts.tcp = t.tcp;
  if (t.tcp_fin != 0)
    next.timeouts.tcp_fin = t.tcp_fin;
  if (t.udp != 0)
    next.timeouts.udp = t.udp;
  return commit(std::move(next));
}

absl::Status ServiceTable::setSysctls(const Sysctls& s) {
  FullConfig next = config_;
  next.sysctls = s;
  return commit(std::move(next));
}

absl::Status ServiceTable::addLocalAddr(const ServiceKey& key, const IpAddr& addr) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, k);
  if (s == nullptr)
    return serviceNotFound(k);
  std::vector<IpAddr>& pool = s->service.local_addrs;
  if (std::find(pool.begin(), pool.end(), addr) != pool.end()) {
    return absl::AlreadyExistsError(absl::StrCat("local address ", addr.toString(),
                                                 " already exists in service ", k.toString()));
  }
  pool.push_back(addr);
  return commit(std::move(next));
}

absl::Status ServiceTable::deleteLocalAddr(const ServiceKey& key, const IpAddr& addr) {
  const ServiceKey k = normalizeKey(key);
  FullConfig next = config_;
  ServiceWithDests* s = findService(next, k);
  if (s == nullptr)
    return serviceNotFound(k);
  std::vector<IpAddr>& pool = s->service.local_addrs;
  auto it = std::find(pool.begin(), pool.end(), addr);
  if (it == pool.end()) {
    return absl::NotFoundError(
        absl::StrCat("local address ", addr.toString(), " not found in service ", k.toString()));
  }
  pool.erase(it);
  return commit(std::move(next));
}

absl::Status ServiceTable::setFwmarkRules(const std::vector<FwmarkRule>& rules) {
  FullConfig next = config_;
  next.fwmark_rules = rules;
  return commit(std::move(next));
}

absl::Status ServiceTable::replace(const FullConfig& cfg) {
  FullConfig next = cfg;
  normalizeConfig(next);
  return commit(std::move(next));
}

absl::StatusOr<ServiceId> ServiceTable::serviceId(const ServiceKey& key) const {
  const ServiceKey k = normalizeKey(key);
  auto it = service_ids_.find(k);
  if (it == service_ids_.end())
    return serviceNotFound(k);
  return it->second;
}

absl::StatusOr<DestId> ServiceTable::destId(const ServiceKey& key,
                                            const IpAddr& addr,
                                            uint16_t port) const {
  const ServiceKey k = normalizeKey(key);
  if (!service_ids_.contains(k))
    return serviceNotFound(k);
  auto it = dest_index_.find(DestKey{k, addr, port});
  if (it == dest_index_.end() || !dest_slots_[it->second].live) {
    return absl::NotFoundError(
        absl::StrCat("dest ", formatAddrPort(addr, port), " not found in service ", k.toString()));
  }
  return it->second;
}

}  // namespace lb
