// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_model.h"

#include <arpa/inet.h>

#include <bitset>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lb::health {
namespace {

namespace pb = ::lbd::v1;

constexpr size_t kMaxGroupServices = 4096;

// The canonical text of an address (as lbd lists it), so keys and dests compare equal.
std::string canon(const std::string& a) {
  in6_addr v6{};
  in_addr v4{};
  char buf[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1)
    return inet_ntop(AF_INET, &v4, buf, sizeof(buf));
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1)
    return inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
  return a;
}

absl::Status errorAt(const std::string& file, int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", why));
}

pb::Protocol protocolOf(const std::string& p) {
  if (p == "UDP")
    return pb::PROTOCOL_UDP;
  if (p == "SCTP")
    return pb::PROTOCOL_SCTP;
  return pb::PROTOCOL_TCP;
}

pb::ForwardMethod methodOf(LvsMethod m) {
  switch (m) {
    case LvsMethod::kDr:
      return pb::FORWARD_METHOD_DIRECT_ROUTE;
    case LvsMethod::kTun:
      return pb::FORWARD_METHOD_TUNNEL;
    default:
      return pb::FORWARD_METHOD_MASQ;
  }
}

// "255.255.255.0" → 24; "24" → 24. 0 when it is not a contiguous mask.
uint32_t prefixOf(const std::string& g) {
  uint32_t n = 0;
  if (absl::SimpleAtoi(g, &n))
    return n;
  in_addr a{};
  if (inet_pton(AF_INET, g.c_str(), &a) != 1)
    return 0;
  const uint32_t m = ntohl(a.s_addr);
  const uint32_t len = static_cast<uint32_t>(std::bitset<32>(m).count());
  if (len != 32 && (m << len) != 0)
    return 0;
  return len;
}

pb::ServiceKey addressKey(const std::string& addr, uint16_t port, const std::string& proto) {
  pb::ServiceKey k;
  pb::VirtualAddress* a = k.mutable_address();
  a->set_protocol(protocolOf(proto));
  a->set_address(canon(addr));
  a->set_port(port);
  return k;
}

pb::ServiceKey fwmarkKey(uint32_t mark, bool inet6) {
  pb::ServiceKey k;
  k.mutable_fwmark()->set_mark(mark);
  k.mutable_fwmark()->set_family(inet6 ? pb::ADDRESS_FAMILY_INET6 : pb::ADDRESS_FAMILY_INET);
  return k;
}

std::string fifoName(const pb::ServiceKey& k, const std::string& proto) {
  if (k.has_fwmark())
    return absl::StrCat("FWM ", k.fwmark().mark());
  std::string p = proto;
  for (char& c : p)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return absl::StrCat("[", k.address().address(), "]:", p, ":", k.address().port());
}

// Expands "198.18.0.3-10" (last octet) or "2001:2::10-1f" (last hextet).
absl::StatusOr<std::vector<std::string>> expandRange(const GroupEntry& e) {
  if (e.range_end == 0)
    return std::vector<std::string>{e.address};
  std::vector<std::string> out;
  if (!e.inet6) {
    in_addr a{};
    inet_pton(AF_INET, e.address.c_str(), &a);
    uint32_t h = ntohl(a.s_addr);
    for (uint32_t v = h & 0xff; v <= e.range_end; ++v) {
      in_addr x{htonl((h & 0xffffff00u) | v)};
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &x, buf, sizeof(buf));
      out.emplace_back(buf);
    }
    return out;
  }
  in6_addr a{};
  inet_pton(AF_INET6, e.address.c_str(), &a);
  const uint32_t first = static_cast<uint32_t>(a.s6_addr[14]) << 8 | a.s6_addr[15];
  for (uint32_t v = first; v <= e.range_end; ++v) {
    a.s6_addr[14] = static_cast<uint8_t>(v >> 8);
    a.s6_addr[15] = static_cast<uint8_t>(v & 0xff);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    out.emplace_back(buf);
    if (out.size() > kMaxGroupServices)
      break;
  }
  return out;
}

}  // namespace

std::string keyId(const pb::ServiceKey& k) {
  if (k.has_fwmark())
    return absl::StrCat("f|", k.fwmark().mark(), "|", static_cast<int>(k.fwmark().family()));
  return absl::StrCat("a|", static_cast<int>(k.address().protocol()), "|", k.address().address(),
                      "|", k.address().port());
}

std::string keyName(const pb::ServiceKey& k) {
  if (k.has_fwmark())
    return absl::StrCat("FWM ", k.fwmark().mark());
  const char* p = k.address().protocol() == pb::PROTOCOL_UDP    ? "UDP"
                  : k.address().protocol() == pb::PROTOCOL_SCTP ? "SCTP"
                                                                : "TCP";
  const std::string& a = k.address().address();
  if (a.find(':') != std::string::npos)
    return absl::StrCat(p, " [", a, "]:", k.address().port());
  return absl::StrCat(p, " ", a, ":", k.address().port());
}

std::string destId(const std::string& address, uint32_t port) {
  return absl::StrCat(address, "|", port);
}

std::string destId(const pb::Dest& d) {
  return destId(d.address(), d.port());
}

absl::StatusOr<std::vector<VsPlan>> planVirtualServers(const KeepalivedConfig& cfg) {
  std::vector<VsPlan> out;
  std::map<std::string, std::string> seen;  // keyId → where
  for (const VirtualServer& vs : cfg.virtual_servers) {
    VsPlan plan;
    if (vs.kind == VirtualServer::Kind::kAddress) {
      plan.keys.push_back(addressKey(vs.address, vs.port, vs.protocol));
    } else if (vs.kind == VirtualServer::Kind::kFwmark) {
      plan.keys.push_back(fwmarkKey(vs.fwmark, vs.inet6));
    } else {
      for (const VirtualServerGroup& g : cfg.groups) {
        if (g.name != vs.group)
          continue;
        for (const GroupEntry& e : g.entries) {
          if (e.fwmark != 0) {
            plan.keys.push_back(fwmarkKey(e.fwmark, e.inet6));
            continue;
          }
          absl::StatusOr<std::vector<std::string>> addrs = expandRange(e);
          if (!addrs.ok())
            return addrs.status();
          for (const std::string& a : *addrs)
            plan.keys.push_back(addressKey(a, e.port, vs.protocol));
        }
      }
      if (plan.keys.size() > kMaxGroupServices) {
        return errorAt(
            vs.file, vs.line,
            absl::StrCat("virtual_server group ", vs.group, ": more than 4096 services"));
      }
    }
    for (const pb::ServiceKey& k : plan.keys) {
      const std::string id = keyId(k);
      auto [it, fresh] = seen.emplace(id, absl::StrCat(vs.file, ":", vs.line));
      if (!fresh) {
        return errorAt(
            vs.file, vs.line,
            absl::StrCat("virtual_server ", keyName(k), ": already defined at ", it->second));
      }
      if (k.has_address() && k.address().port() == 0 && !vs.persistence_timeout) {
        return errorAt(vs.file, vs.line,
                       absl::StrCat(keyName(k), ": port 0 needs persistence_timeout"));
      }
      plan.fifo_names.push_back(
          vs.kind == VirtualServer::Kind::kGroup
              ? absl::StrCat("[", vs.group, "]:", k.has_address() ? k.address().port() : 0)
              : fifoName(k, vs.protocol));
    }
    pb::Service& s = plan.service;
    s.set_scheduler(vs.scheduler);
    if (vs.scheduler == "sh" && (vs.flag1 || vs.flag2) && !vs.flag3) {
      s.mutable_sh()->set_fallback(vs.flag1);
      s.mutable_sh()->set_port(vs.flag2);
    } else if (vs.scheduler == "mh" && (vs.flag1 || vs.flag2) && !vs.flag3) {
      s.mutable_mh()->set_fallback(vs.flag1);
      s.mutable_mh()->set_port(vs.flag2);
    } else if (vs.flag1 || vs.flag2 || vs.flag3) {
      s.mutable_flags()->set_flag_1(vs.flag1);
      s.mutable_flags()->set_flag_2(vs.flag2);
      s.mutable_flags()->set_flag_3(vs.flag3);
    }
    if (vs.persistence_timeout) {
      pb::Persistence* p = s.mutable_persistence();
      p->mutable_timeout()->set_seconds(*vs.persistence_timeout);
      if (!vs.persistence_granularity.empty()) {
        const uint32_t len = prefixOf(vs.persistence_granularity);
        if (len == 0) {
          return errorAt(vs.file, vs.line,
                         absl::StrCat("persistence_granularity ", vs.persistence_granularity,
                                      ": not a netmask"));
        }
        p->set_netmask_prefix(len);
      }
      p->set_engine(vs.persistence_engine);
    }
    s.set_one_packet(vs.ops);
    const bool fwmark = vs.kind == VirtualServer::Kind::kFwmark;
    auto makeDest = [&](const std::string& addr, uint16_t port, LvsMethod m) {
      pb::Dest d;
      d.set_address(canon(addr));
      const pb::ForwardMethod fm = methodOf(m == LvsMethod::kUnset ? vs.method : m);
      d.set_forward_method(fm);
      if (port == 0 && !fwmark)
        port = vs.port;
      // ipvsadm's rule: direct routing and tunnels keep the service's port.
      if (fm != pb::FORWARD_METHOD_MASQ && vs.kind == VirtualServer::Kind::kAddress)
        port = vs.port;
      d.set_port(port);
      if (fm == pb::FORWARD_METHOD_TUNNEL)
        d.mutable_tunnel()->set_type(pb::TUNNEL_TYPE_IPIP);
      return d;
    };
    std::map<std::string, int> rs_seen;
    for (const RealServer& rs : vs.real_servers) {
      pb::Dest d = makeDest(rs.address, rs.port, rs.method);
      d.set_weight(rs.weight.value_or(vs.default_weight));
      d.set_upper_threshold(rs.uthreshold);
      d.set_lower_threshold(rs.lthreshold);
      if (!rs_seen.emplace(destId(d), rs.line).second) {
        return errorAt(rs.file, rs.line,
                       absl::StrCat("real_server ", rs.address, " ", d.port(), ": defined twice"));
      }
      plan.dests.push_back(std::move(d));
    }
    if (!vs.sorry_address.empty()) {
      pb::Dest d = makeDest(vs.sorry_address, vs.sorry_port,
                            vs.sorry_method == LvsMethod::kUnset ? vs.method : vs.sorry_method);
      d.set_weight(1);
      if (rs_seen.contains(destId(d))) {
        return errorAt(vs.file, vs.line,
                       absl::StrCat("sorry_server ", vs.sorry_address, " is also a real_server"));
      }
      plan.sorry = std::move(d);
    }
    out.push_back(std::move(plan));
  }
  return out;
}

pb::ApplyBatchRequest diffPools(const Pool& from, const Pool& to) {
  pb::ApplyBatchRequest req;
  for (const auto& [id, s] : from) {
    if (!to.contains(id))
      *req.add_operations()->mutable_delete_service()->mutable_key() = s.key;
  }
  for (const auto& [id, s] : to) {
    auto it = from.find(id);
    if (it == from.end()) {
      pb::Service* svc = req.add_operations()->mutable_create_service()->mutable_service();
      *svc = s.service;
      *svc->mutable_key() = s.key;
      for (const auto& [did, d] : s.dests) {
        pb::CreateDestRequest* c = req.add_operations()->mutable_create_dest();
        *c->mutable_key() = s.key;
        *c->mutable_dest() = d;
      }
      continue;
    }
    const PoolService& old = it->second;
    if (old.service.SerializeAsString() != s.service.SerializeAsString()) {
      pb::Service* svc = req.add_operations()->mutable_update_service()->mutable_service();
      *svc = s.service;
      *svc->mutable_key() = s.key;
    }
    for (const auto& [did, d] : old.dests) {
      if (!s.dests.contains(did)) {
        pb::DeleteDestRequest* del = req.add_operations()->mutable_delete_dest();
        *del->mutable_key() = s.key;
        del->set_address(d.address());
        del->set_port(d.port());
      }
    }
    for (const auto& [did, d] : s.dests) {
      auto od = old.dests.find(did);
      if (od == old.dests.end()) {
        pb::CreateDestRequest* c = req.add_operations()->mutable_create_dest();
        *c->mutable_key() = s.key;
        *c->mutable_dest() = d;
      } else if (od->second.SerializeAsString() != d.SerializeAsString()) {
        pb::UpdateDestRequest* u = req.add_operations()->mutable_update_dest();
        *u->mutable_key() = s.key;
        *u->mutable_dest() = d;
      }
    }
  }
  return req;
}

}  // namespace lb::health
