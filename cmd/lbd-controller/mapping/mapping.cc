// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/mapping/mapping.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lbd::controller::mapping {

namespace pb = lbd::v1;

namespace {

enum class Family { kV4, kV6 };

absl::string_view familyName(Family f) {
  return f == Family::kV4 ? "IPv4" : "IPv6";
}

std::optional<Family> familyOf(absl::string_view canonical) {
  if (canonical.empty())
    return std::nullopt;
  return canonical.find(':') == absl::string_view::npos ? Family::kV4 : Family::kV6;
}

std::optional<Family> familyFromApi(absl::string_view s) {
  if (s == "IPv4")
    return Family::kV4;
  if (s == "IPv6")
    return Family::kV6;
  return std::nullopt;
}

std::optional<pb::Protocol> protocolFromApi(absl::string_view s) {
  if (s == "TCP")
    return pb::PROTOCOL_TCP;
  if (s == "UDP")
    return pb::PROTOCOL_UDP;
  if (s == "SCTP")
    return pb::PROTOCOL_SCTP;
  return std::nullopt;
}

// What a Service's lbd.io/ annotations ask for.
struct Annotations {
  std::string scheduler = "rr";
  pb::ForwardMethod forward = pb::FORWARD_METHOD_MASQ;
  std::optional<uint32_t> netmask;
  std::vector<std::string> local_addresses;  // canonical
  bool drain = true;
};

constexpr absl::string_view kSchedulers[] = {"rr",    "wrr", "lc", "wlc", "sed", "nq",  "lblc",
                                             "lblcr", "dh",  "sh", "mh",  "fo",  "ovf", "twos"};

std::optional<pb::ForwardMethod> forwardFromAnnotation(absl::string_view v) {
  if (v == "nat")
    return pb::FORWARD_METHOD_MASQ;
  if (v == "fullnat")
    return pb::FORWARD_METHOD_FULL_NAT;
  if (v == "dr")
    return pb::FORWARD_METHOD_DIRECT_ROUTE;
  if (v == "tunnel")
    return pb::FORWARD_METHOD_TUNNEL;
  return std::nullopt;
}

Problem badAnnotation(absl::string_view key, absl::string_view value, absl::string_view want) {
  return Problem{std::string(kReasonBadAnnotation),
                 absl::StrCat("annotation ", key, "=\"", value, "\": want ", want), true};
}

// Reads the lbd.io/ annotations; the first bad value is a blocking Problem.
std::optional<Problem> readAnnotations(const model::Service& svc, Annotations& a) {
  auto get = [&](absl::string_view key) -> const std::string* {
    auto it = svc.annotations.find(std::string(key));
    return it == svc.annotations.end() ? nullptr : &it->second;
  };
  if (const std::string* v = get(kSchedulerAnnotation)) {
    if (std::find(std::begin(kSchedulers), std::end(kSchedulers), *v) == std::end(kSchedulers))
      return badAnnotation(kSchedulerAnnotation, *v, absl::StrJoin(kSchedulers, ", "));
    a.scheduler = *v;
  }
  if (const std::string* v = get(kForwardMethodAnnotation)) {
    std::optional<pb::ForwardMethod> f = forwardFromAnnotation(*v);
    if (!f.has_value())
      return badAnnotation(kForwardMethodAnnotation, *v, "nat, fullnat, dr or tunnel");
    a.forward = *f;
  }
  if (const std::string* v = get(kPersistenceNetmaskAnnotation)) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(*v, &n) || n < 1 || n > 128)
      return badAnnotation(kPersistenceNetmaskAnnotation, *v, "a prefix length 1..128");
    a.netmask = n;
  }
  if (const std::string* v = get(kLocalAddressesAnnotation)) {
    for (absl::string_view part : absl::StrSplit(*v, ',', absl::SkipWhitespace())) {
      std::optional<std::string> c = canonicalAddress(absl::StripAsciiWhitespace(part));
      if (!c.has_value())
        return badAnnotation(kLocalAddressesAnnotation, *v, "comma-separated IP addresses");
      a.local_addresses.push_back(*c);
    }
  }
  if (const std::string* v = get(kDrainAnnotation)) {
    if (*v != "true" && *v != "false")
      return badAnnotation(kDrainAnnotation, *v, "true or false");
    a.drain = *v == "true";
  }
  return std::nullopt;
}

// One endpoint of one Service port in one family, after merging the slices.
struct Ep {
  std::string address;  // canonical
  uint32_t port = 0;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;
  std::vector<std::string> hint_zones;
  std::vector<std::string> hint_nodes;
};

bool has(const std::vector<std::string>& v, absl::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// One Service port's endpoints in one family, and where each (address, port) is in the list.
struct PortEndpoints {
  std::vector<Ep> list;
  std::map<std::pair<std::string, uint32_t>, size_t> index;
};

// (port name, protocol, family) -> endpoints, as endpointslicecache.go keys them.
using PortKey = std::tuple<std::string, std::string, Family>;
using EndpointsByPort = std::map<PortKey, PortEndpoints>;

void addEndpoint(PortEndpoints& eps, Ep ep) {
  auto [it, fresh] = eps.index.emplace(std::make_pair(ep.address, ep.port), eps.list.size());
  if (fresh) {
    eps.list.push_back(std::move(ep));
    return;
  }
  // The same endpoint in two slices (moving between them): prefer the non-terminating entry.
  Ep& e = eps.list[it->second];
  if (e.terminating && !ep.terminating)
    e = std::move(ep);
}

Ep endpointFrom(const model::Endpoint& e, const std::string& address, uint32_t port) {
  Ep ep;
  ep.address = address;
  ep.port = port;
  // endpointslicecache.go: ready nil = true, serving nil = true, terminating nil = false.
  ep.ready = e.conditions.ready.value_or(true);
  ep.serving = e.conditions.serving.value_or(true);
  ep.terminating = e.conditions.terminating.value_or(false);
  ep.node_name = e.node_name;
  ep.hint_zones = e.hint_zones;
  ep.hint_nodes = e.hint_nodes;
  return ep;
}

void addProblem(std::vector<Problem>& problems, absl::string_view reason, std::string message) {
  for (const Problem& p : problems) {
    if (p.message == message)
      return;
  }
  problems.push_back(Problem{std::string(reason), std::move(message), false});
}

void collectSlice(const model::EndpointSlice& slice,
                  EndpointsByPort& out,
                  std::vector<Problem>& problems) {
  std::optional<Family> family = familyFromApi(slice.address_type);
  if (!family.has_value()) {
    addProblem(problems, kReasonFqdnSlice,
               absl::StrCat("EndpointSlice ", slice.name, ": addressType ", slice.address_type,
                            " ignored (only IPv4 and IPv6 slices are served)"));
    return;
  }
  for (const model::EndpointPort& p : slice.ports) {
    // kube-proxy skips nil names and nil or 0 ports ("all ports" is not supported).
    if (!p.name.has_value() || !p.port.has_value() || *p.port <= 0)
      continue;
    PortEndpoints& eps = out[PortKey{*p.name, p.protocol, *family}];
    for (const model::Endpoint& e : slice.endpoints) {
      if (e.addresses.empty())
        continue;
      std::optional<std::string> addr = canonicalAddress(e.addresses[0]);
      if (!addr.has_value() || familyOf(*addr) != family) {
        addProblem(problems, kReasonBadEndpoint,
                   absl::StrCat("EndpointSlice ", slice.name, ": address ", e.addresses[0],
                                " is not an ", familyName(*family), " address; ignored"));
        continue;
      }
      addEndpoint(eps, endpointFrom(e, *addr, static_cast<uint32_t>(*p.port)));
    }
  }
}

// kube-proxy's topologyModeFromHints: "node", "zone" or "" (no topology).
std::string topologyMode(const std::vector<Ep>& eps,
                         const std::string& node,
                         const std::string& zone) {
  bool any_ready = false;
  bool all_node_hints = true;
  bool all_zone_hints = true;
  bool for_node = false;
  bool for_zone = false;
  for (const Ep& e : eps) {
    if (!e.ready)
      continue;
    any_ready = true;
    if (e.hint_nodes.empty())
      all_node_hints = false;
    else if (!node.empty() && has(e.hint_nodes, node))
      for_node = true;
    if (e.hint_zones.empty())
      all_zone_hints = false;
    else if (!zone.empty() && has(e.hint_zones, zone))
      for_zone = true;
  }
  if (!any_ready)
    return "";
  if (all_node_hints && for_node)
    return "node";
  if (all_zone_hints && for_zone)
    return "zone";
  return "";
}

// kube-proxy's CategorizeEndpoints: which endpoints take new connections.
struct Selection {
  std::vector<bool> cluster;
  std::vector<bool> local;
  bool local_any = false;
};

Selection categorize(const std::vector<Ep>& eps, const std::string& node, const std::string& zone) {
  Selection s;
  s.cluster.assign(eps.size(), false);
  s.local.assign(eps.size(), false);
  const std::string mode = topologyMode(eps, node, zone);
  bool cluster_any = false;
  for (size_t i = 0; i < eps.size(); ++i) {
    const Ep& e = eps[i];
    bool topo = mode.empty() || (mode == "node" && has(e.hint_nodes, node)) ||
                (mode == "zone" && has(e.hint_zones, zone));
    s.cluster[i] = e.ready && topo;
    cluster_any = cluster_any || s.cluster[i];
  }
  if (!cluster_any) {  // no ready endpoint anywhere: serving && terminating ones instead
    for (size_t i = 0; i < eps.size(); ++i)
      s.cluster[i] = eps[i].serving && eps[i].terminating;
  }
  auto isLocal = [&](const Ep& e) { return !node.empty() && e.node_name == node; };
  for (size_t i = 0; i < eps.size(); ++i) {
    s.local[i] = isLocal(eps[i]) && eps[i].ready;
    s.local_any = s.local_any || s.local[i];
  }
  if (!s.local_any) {
    for (size_t i = 0; i < eps.size(); ++i) {
      s.local[i] = isLocal(eps[i]) && eps[i].serving && eps[i].terminating;
      s.local_any = s.local_any || s.local[i];
    }
  }
  return s;
}

// A Service's VS addresses in one family.
struct VsAddress {
  std::string address;  // canonical
  bool external = false;
  bool node_port = false;
};

// Everything needed to map one Service, checked.
struct ServicePlan {
  std::vector<std::pair<Family, std::string>> cluster_ips;  // canonical, by ipFamilies order
  std::vector<pb::Protocol> protocols;                      // per spec.ports[i]
  Annotations annotations;
  std::optional<uint32_t> affinity_timeout;  // ClientIP affinity
};

std::optional<Problem> blocking(absl::string_view reason, std::string message) {
  return Problem{std::string(reason), std::move(message), true};
}

std::optional<Problem> checkClusterIps(const model::Service& svc, ServicePlan& plan) {
  for (size_t i = 0; i < svc.cluster_ips.size(); ++i) {
    std::optional<std::string> c = canonicalAddress(svc.cluster_ips[i]);
    if (!c.has_value())
      return blocking(kReasonBadAddress,
                      absl::StrCat("spec.clusterIPs[", i, "] ", svc.cluster_ips[i], " is no IP"));
    Family f = *familyOf(*c);
    if (i < svc.ip_families.size() && familyFromApi(svc.ip_families[i]) != f) {
      return blocking(
          kReasonInvalidSpec,
          absl::StrCat("spec.clusterIPs[", i, "] ", svc.cluster_ips[i],
                       " does not match spec.ipFamilies[", i, "] ", svc.ip_families[i]));
    }
    plan.cluster_ips.emplace_back(f, *c);
  }
  return std::nullopt;
}

std::optional<Problem> checkService(const model::Service& svc, ServicePlan& plan) {
  if (svc.type == "ExternalName")
    return blocking(kReasonExternalName, "type ExternalName: no virtual service (DNS only)");
  if (svc.cluster_ip == "None" || svc.cluster_ip.empty())
    return blocking(kReasonHeadless, absl::StrCat("headless (clusterIP \"", svc.cluster_ip,
                                                  "\"): no virtual service"));
  for (size_t i = 0; i < svc.ports.size(); ++i) {
    std::optional<pb::Protocol> p = protocolFromApi(svc.ports[i].protocol);
    if (!p.has_value())
      return blocking(kReasonUnsupportedProtocol,
                      absl::StrCat("spec.ports[", i, "].protocol ", svc.ports[i].protocol,
                                   ": lbd serves TCP, UDP and SCTP"));
    plan.protocols.push_back(*p);
  }
  if (std::optional<Problem> p = checkClusterIps(svc, plan))
    return p;
  if (std::optional<Problem> p = readAnnotations(svc, plan.annotations))
    return p;
  if (svc.session_affinity == "ClientIP") {
    int64_t t = svc.affinity_timeout_seconds.value_or(10800);
    if (t < 1 || t > 86400)
      return blocking(kReasonInvalidSpec,
                      absl::StrCat("spec.sessionAffinityConfig.clientIP.timeoutSeconds ", t,
                                   ": want 1..86400"));
    plan.affinity_timeout = static_cast<uint32_t>(t);
  }
  return std::nullopt;
}

std::vector<VsAddress> vsAddresses(const model::Service& svc,
                                   const ServicePlan& plan,
                                   Family family,
                                   const MapOptions& options,
                                   std::vector<Problem>& problems) {
  std::vector<VsAddress> out;
  for (const auto& [f, ip] : plan.cluster_ips) {
    if (f == family)
      out.push_back({ip, false, false});
  }
  auto addExternal = [&](const std::string& raw, absl::string_view field, bool node_port) {
    std::optional<std::string> c = canonicalAddress(raw);
    if (!c.has_value()) {
      addProblem(problems, kReasonBadAddress, absl::StrCat(field, " ", raw, " is no IP; ignored"));
      return;
    }
    if (familyOf(*c) == family)
      out.push_back({*c, true, node_port});
  };
  for (const std::string& ip : svc.external_ips)
    addExternal(ip, "spec.externalIPs", false);
  for (const model::LoadBalancerIngress& in : svc.lb_ingress) {
    // Hostname-only and ipMode Proxy entries are not ours (kube-proxy's IsVIPMode).
    if (in.ip.empty() || !(in.ip_mode.empty() || in.ip_mode == "VIP"))
      continue;
    addExternal(in.ip, "status.loadBalancer.ingress.ip", false);
  }
  if (svc.type == "NodePort" || svc.type == "LoadBalancer") {
    for (const std::string& ip : options.node_addresses)
      addExternal(ip, "node address", true);
  }
  return out;
}

bool hasFamily(const ServicePlan& plan, Family family) {
  for (const auto& [f, ip] : plan.cluster_ips) {
    if (f == family)
      return true;
  }
  return false;
}

// The lbd.v1.Service of one VS, dests included.
pb::Service makeVs(const VsAddress& addr,
                   uint32_t port,
                   pb::Protocol protocol,
                   Family family,
                   const ServicePlan& plan,
                   const std::vector<Ep>& eps,
                   const std::vector<bool>& selected,
                   const MapOptions& options) {
  pb::Service s;
  pb::VirtualAddress* va = s.mutable_key()->mutable_address();
  va->set_protocol(protocol);
  va->set_address(addr.address);
  va->set_port(port);
  s.set_scheduler(plan.annotations.scheduler);
  s.set_owner(options.owner);
  if (plan.affinity_timeout.has_value()) {
    pb::Persistence* p = s.mutable_persistence();
    p->mutable_timeout()->set_seconds(*plan.affinity_timeout);
    uint32_t max = family == Family::kV4 ? 32 : 128;
    p->set_netmask_prefix(std::min(plan.annotations.netmask.value_or(max), max));
  }
  for (const std::string& la : plan.annotations.local_addresses) {
    if (familyOf(la) == family)
      s.add_local_addresses(la);
  }
  const pb::ForwardMethod fwd = plan.annotations.forward;
  // ipvsadm forces a DR or tunnel real server onto the service port (no port rewrite there).
  const bool keep_port = fwd == pb::FORWARD_METHOD_MASQ || fwd == pb::FORWARD_METHOD_FULL_NAT;
  std::map<std::pair<std::string, uint32_t>, uint32_t> dests;  // sorted, merged
  for (size_t i = 0; i < eps.size(); ++i) {
    uint32_t& w = dests[{eps[i].address, keep_port ? eps[i].port : port}];
    w = std::max<uint32_t>(w, selected[i] ? 1 : 0);
  }
  for (const auto& [ap, weight] : dests) {
    pb::Dest* d = s.add_dests();
    d->set_address(ap.first);
    d->set_port(ap.second);
    d->set_forward_method(fwd);
    d->set_weight(weight);
  }
  return s;
}

const std::vector<bool>& chooseSet(const model::Service& svc,
                                   const VsAddress& addr,
                                   const Selection& sel,
                                   const MapOptions& options) {
  if (!addr.external)
    return svc.internal_traffic_policy == "Local" ? sel.local : sel.cluster;
  if (svc.external_traffic_policy != "Local")
    return sel.cluster;
  // No local endpoint: drop (default) or fall back to the cluster set (MapOptions).
  if (!sel.local_any && options.external_local_fallback)
    return sel.cluster;
  return sel.local;
}

struct Mapped {
  std::vector<DesiredService> services;
  std::vector<Problem> problems;
};

Mapped mapService(const model::Service& svc,
                  const std::vector<const model::EndpointSlice*>& slices,
                  const std::optional<model::Node>& node,
                  const MapOptions& options) {
  Mapped m;
  ServicePlan plan;
  if (std::optional<Problem> p = checkService(svc, plan)) {
    m.problems.push_back(std::move(*p));
    return m;
  }
  EndpointsByPort eps;
  for (const model::EndpointSlice* slice : slices)
    collectSlice(*slice, eps, m.problems);
  const std::string zone = node.has_value() ? node->zone : "";
  for (Family family : {Family::kV4, Family::kV6}) {
    if (!hasFamily(plan, family))
      continue;
    std::vector<VsAddress> addrs = vsAddresses(svc, plan, family, options, m.problems);
    if (plan.annotations.forward == pb::FORWARD_METHOD_FULL_NAT) {
      bool pool = std::any_of(plan.annotations.local_addresses.begin(),
                              plan.annotations.local_addresses.end(),
                              [&](const std::string& a) { return familyOf(a) == family; });
      if (!pool) {
        m.services.clear();
        m.problems.push_back(*blocking(
            kReasonBadAnnotation,
            absl::StrCat("annotation ", kForwardMethodAnnotation, "=fullnat needs ",
                         kLocalAddressesAnnotation, " with an ", familyName(family), " address")));
        return m;
      }
    }
    for (size_t i = 0; i < svc.ports.size(); ++i) {
      const model::ServicePort& sp = svc.ports[i];
      const std::vector<Ep>& list = eps[PortKey{sp.name, sp.protocol, family}].list;
      Selection sel = categorize(list, options.node_name, zone);
      for (const VsAddress& a : addrs) {
        uint32_t port = a.node_port ? sp.node_port : sp.port;
        if (port == 0)
          continue;
        m.services.push_back(DesiredService{makeVs(a, port, plan.protocols[i], family, plan, list,
                                                   chooseSet(svc, a, sel, options), options),
                                            svc.key(), plan.annotations.drain});
      }
    }
  }
  return m;
}

}  // namespace

Desired mapCluster(const model::Store<model::Service>& services,
                   const model::Store<model::EndpointSlice>& slices,
                   const std::optional<model::Node>& node,
                   const MapOptions& options) {
  std::map<std::string, std::vector<const model::EndpointSlice*>> by_service;
  for (const auto& [key, slice] : slices) {
    std::string svc = slice.serviceKey();
    if (!svc.empty())
      by_service[svc].push_back(&slice);
  }
  static const std::vector<const model::EndpointSlice*> kNone;
  Desired out;
  std::map<std::string, std::string> claimed;  // VS key -> the Service that has it
  for (const auto& [key, svc] : services) {
    auto it = by_service.find(key);
    Mapped m = mapService(svc, it == by_service.end() ? kNone : it->second, node, options);
    // A VS another Service already has: this whole Service is refused, the first keeps it.
    std::set<std::string> mine;
    std::vector<DesiredService> kept;
    for (DesiredService& ds : m.services) {
      std::string vs = serviceKeyString(ds.service.key());
      auto c = claimed.find(vs);
      if (c != claimed.end()) {
        m.problems.push_back(*blocking(
            kReasonAddressConflict,
            absl::StrCat("virtual service ", vs, " is already Service ", c->second, "'s")));
        kept.clear();
        break;
      }
      if (mine.insert(vs).second)  // a VS twice in one Service (externalIP = clusterIP): once
        kept.push_back(std::move(ds));
    }
    for (DesiredService& ds : kept) {
      claimed.emplace(serviceKeyString(ds.service.key()), key);
      out.services.push_back(std::move(ds));
    }
    if (!m.problems.empty())
      out.problems[key] = std::move(m.problems);
  }
  std::sort(out.services.begin(), out.services.end(),
            [](const DesiredService& a, const DesiredService& b) {
              return serviceKeyString(a.service.key()) < serviceKeyString(b.service.key());
            });
  return out;
}

std::string serviceKeyString(const pb::ServiceKey& key) {
  if (key.has_fwmark())
    return absl::StrCat("FWM/", key.fwmark().mark(),
                        key.fwmark().family() == pb::ADDRESS_FAMILY_INET6 ? "/6" : "");
  const pb::VirtualAddress& a = key.address();
  absl::string_view proto = a.protocol() == pb::PROTOCOL_TCP    ? "TCP"
                            : a.protocol() == pb::PROTOCOL_UDP  ? "UDP"
                            : a.protocol() == pb::PROTOCOL_SCTP ? "SCTP"
                                                                : "?";
  return absl::StrCat(proto, "/", destKeyString(a.address(), a.port()));
}

std::string destKeyString(absl::string_view address, uint32_t port) {
  if (address.find(':') != absl::string_view::npos)
    return absl::StrCat("[", address, "]:", port);
  return absl::StrCat(address, ":", port);
}

std::optional<std::string> canonicalAddress(absl::string_view address) {
  std::string s(address);
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    if (inet_ntop(AF_INET, buf, text, sizeof(text)) != nullptr)
      return std::string(text);
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    if (inet_ntop(AF_INET6, buf, text, sizeof(text)) != nullptr)
      return std::string(text);
  }
  return std::nullopt;
}

}  // namespace lbd::controller::mapping
