// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/model/model.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::model {

using nlohmann::json;

namespace {

// Reads fields of one object, remembering the first error. Absent and null fields keep the
// caller's default (the API omits empty fields). Every accessor checks the type first, so
// nothing throws.
class Reader {
 public:
  explicit Reader(std::string what) : what_(std::move(what)) {}

  const absl::Status& status() const { return status_; }

  bool ok() const { return status_.ok(); }

  // The member `key` of `obj` or nullptr (absent, null, or obj not an object).
  static const json* member(const json& obj, const char* key) {
    if (!obj.is_object())
      return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null())
      return nullptr;
    return &*it;
  }

  void fail(absl::string_view path, absl::string_view want, const json& got) {
    if (!status_.ok())
      return;
    std::string shown = got.dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 64)
      shown = shown.substr(0, 61) + "...";
    status_ = absl::InvalidArgumentError(
        absl::StrCat(what_, ": ", path, ": want ", want, ", got ", shown));
  }

  void failMissing(absl::string_view path) {
    if (status_.ok())
      status_ = absl::InvalidArgumentError(absl::StrCat(what_, ": ", path, ": missing"));
  }

  void setWhat(std::string what) { what_ = std::move(what); }

  void str(const json& obj, const char* key, const std::string& path, std::string& out) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return;
    if (!v->is_string()) {
      fail(path, "a string", *v);
      return;
    }
    out = v->get_ref<const std::string&>();
  }

  void optStr(const json& obj,
              const char* key,
              const std::string& path,
              std::optional<std::string>& out) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return;
    if (!v->is_string()) {
      fail(path, "a string", *v);
      return;
    }
    out = v->get_ref<const std::string&>();
  }

  void optBool(const json& obj,
               const char* key,
               const std::string& path,
               std::optional<bool>& out) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return;
    if (!v->is_boolean()) {
      fail(path, "a boolean", *v);
      return;
    }
    out = v->get<bool>();
  }

  // An integer in [lo, hi].
  std::optional<int64_t> integer(
      const json& obj, const char* key, const std::string& path, int64_t lo, int64_t hi) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return std::nullopt;
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) {
        fail(path, absl::StrCat("an integer in ", lo, "..", hi), *v);
        return std::nullopt;
      }
      return static_cast<int64_t>(u);
    }
    if (!v->is_number_integer()) {
      fail(path, "an integer", *v);
      return std::nullopt;
    }
    int64_t i = v->get<int64_t>();
    if (i < lo || i > hi) {
      fail(path, absl::StrCat("an integer in ", lo, "..", hi), *v);
      return std::nullopt;
    }
    return i;
  }

  void strings(const json& obj,
               const char* key,
               const std::string& path,
               std::vector<std::string>& out) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return;
    if (!v->is_array()) {
      fail(path, "an array of strings", *v);
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string()) {
        fail(absl::StrCat(path, "[", i, "]"), "a string", e);
        return;
      }
      out.push_back(e.get_ref<const std::string&>());
    }
  }

  void stringMap(const json& obj,
                 const char* key,
                 const std::string& path,
                 std::map<std::string, std::string>& out) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return;
    if (!v->is_object()) {
      fail(path, "an object of strings", *v);
      return;
    }
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_string()) {
        fail(absl::StrCat(path, "[\"", it.key(), "\"]"), "a string", it.value());
        return;
      }
      out.emplace(it.key(), it.value().get_ref<const std::string&>());
    }
  }

  // An array member as a list of its elements (empty when absent); an error if not an array.
  const json* array(const json& obj, const char* key, const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return nullptr;
    if (!v->is_array()) {
      fail(path, "an array", *v);
      return nullptr;
    }
    return v;
  }

  // An object member; nullptr when absent; an error if not an object.
  const json* object(const json& obj, const char* key, const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr)
      return nullptr;
    if (!v->is_object()) {
      fail(path, "an object", *v);
      return nullptr;
    }
    return v;
  }

 private:
  std::string what_;
  absl::Status status_;
};

struct Meta {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// metadata: name is required; the Reader's prefix becomes "Kind ns/name".
Meta readMeta(Reader& r, const json& object, absl::string_view kind) {
  Meta m;
  if (!object.is_object()) {
    r.fail("object", "a JSON object", object);
    return m;
  }
  const json* meta = r.object(object, "metadata", "metadata");
  if (meta == nullptr) {
    r.failMissing("metadata");
    return m;
  }
  r.str(*meta, "namespace", "metadata.namespace", m.ns);
  r.str(*meta, "name", "metadata.name", m.name);
  if (r.ok() && m.name.empty())
    r.failMissing("metadata.name");
  r.setWhat(absl::StrCat(kind, " ", objectKey(m.ns, m.name)));
  r.str(*meta, "uid", "metadata.uid", m.uid);
  r.str(*meta, "resourceVersion", "metadata.resourceVersion", m.resource_version);
  r.stringMap(*meta, "labels", "metadata.labels", m.labels);
  r.stringMap(*meta, "annotations", "metadata.annotations", m.annotations);
  return m;
}

void readServicePorts(Reader& r, const json& spec, Service& s) {
  const json* ports = r.array(spec, "ports", "spec.ports");
  if (ports == nullptr)
    return;
  for (size_t i = 0; i < ports->size() && r.ok(); ++i) {
    const json& p = (*ports)[i];
    std::string path = absl::StrCat("spec.ports[", i, "]");
    if (!p.is_object()) {
      r.fail(path, "an object", p);
      return;
    }
    ServicePort sp;
    sp.protocol = "TCP";
    r.str(p, "name", path + ".name", sp.name);
    r.str(p, "protocol", path + ".protocol", sp.protocol);
    std::optional<int64_t> port = r.integer(p, "port", path + ".port", 1, 65535);
    if (r.ok() && !port.has_value())
      r.failMissing(path + ".port");
    sp.port = static_cast<uint32_t>(port.value_or(0));
    sp.node_port =
        static_cast<uint32_t>(r.integer(p, "nodePort", path + ".nodePort", 0, 65535).value_or(0));
    s.ports.push_back(std::move(sp));
  }
}

void readServiceSpec(Reader& r, const json& spec, Service& s) {
  r.str(spec, "type", "spec.type", s.type);
  r.str(spec, "clusterIP", "spec.clusterIP", s.cluster_ip);
  r.strings(spec, "clusterIPs", "spec.clusterIPs", s.cluster_ips);
  if (s.cluster_ips.empty() && !s.cluster_ip.empty())
    s.cluster_ips.push_back(s.cluster_ip);
  r.strings(spec, "ipFamilies", "spec.ipFamilies", s.ip_families);
  readServicePorts(r, spec, s);
  r.strings(spec, "externalIPs", "spec.externalIPs", s.external_ips);
  r.str(spec, "externalName", "spec.externalName", s.external_name);
  r.str(spec, "sessionAffinity", "spec.sessionAffinity", s.session_affinity);
  if (const json* sac = r.object(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")) {
    if (const json* cip = r.object(*sac, "clientIP", "spec.sessionAffinityConfig.clientIP")) {
      s.affinity_timeout_seconds =
          r.integer(*cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
    }
  }
  r.str(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", s.internal_traffic_policy);
  r.str(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", s.external_traffic_policy);
  r.str(spec, "trafficDistribution", "spec.trafficDistribution", s.traffic_distribution);
}

void readServiceStatus(Reader& r, const json& status, Service& s) {
  const json* lb = r.object(status, "loadBalancer", "status.loadBalancer");
  if (lb == nullptr)
    return;
  const json* ingress = r.array(*lb, "ingress", "status.loadBalancer.ingress");
  if (ingress == nullptr)
    return;
  for (size_t i = 0; i < ingress->size() && r.ok(); ++i) {
    const json& e = (*ingress)[i];
    std::string path = absl::StrCat("status.loadBalancer.ingress[", i, "]");
    if (!e.is_object()) {
      r.fail(path, "an object", e);
      return;
    }
    LoadBalancerIngress in;
    r.str(e, "ip", path + ".ip", in.ip);
    r.str(e, "hostname", path + ".hostname", in.hostname);
    r.str(e, "ipMode", path + ".ipMode", in.ip_mode);
    s.lb_ingress.push_back(std::move(in));
  }
}

void readConditions(Reader& r, const json& ep, const std::string& path, EndpointConditions& c) {
  const json* cond = r.object(ep, "conditions", path + ".conditions");
  if (cond == nullptr)
    return;
  r.optBool(*cond, "ready", path + ".conditions.ready", c.ready);
  r.optBool(*cond, "serving", path + ".conditions.serving", c.serving);
  r.optBool(*cond, "terminating", path + ".conditions.terminating", c.terminating);
}

// hints.forZones[].name / hints.forNodes[].name
void readHintNames(Reader& r,
                   const json& hints,
                   const char* key,
                   const std::string& path,
                   std::vector<std::string>& out) {
  const json* list = r.array(hints, key, path);
  if (list == nullptr)
    return;
  for (size_t i = 0; i < list->size() && r.ok(); ++i) {
    const json& h = (*list)[i];
    std::string hp = absl::StrCat(path, "[", i, "]");
    if (!h.is_object()) {
      r.fail(hp, "an object", h);
      return;
    }
    std::string name;
    r.str(h, "name", hp + ".name", name);
    out.push_back(std::move(name));
  }
}

void readEndpoints(Reader& r, const json& object, EndpointSlice& s) {
  const json* eps = r.array(object, "endpoints", "endpoints");
  if (eps == nullptr)
    return;
  s.endpoints.reserve(eps->size());
  for (size_t i = 0; i < eps->size() && r.ok(); ++i) {
    const json& e = (*eps)[i];
    std::string path = absl::StrCat("endpoints[", i, "]");
    if (!e.is_object()) {
      r.fail(path, "an object", e);
      return;
    }
    Endpoint ep;
    r.strings(e, "addresses", path + ".addresses", ep.addresses);
    readConditions(r, e, path, ep.conditions);
    r.str(e, "nodeName", path + ".nodeName", ep.node_name);
    r.str(e, "zone", path + ".zone", ep.zone);
    if (const json* hints = r.object(e, "hints", path + ".hints")) {
      readHintNames(r, *hints, "forZones", path + ".hints.forZones", ep.hint_zones);
      readHintNames(r, *hints, "forNodes", path + ".hints.forNodes", ep.hint_nodes);
    }
    s.endpoints.push_back(std::move(ep));
  }
}

void readSlicePorts(Reader& r, const json& object, EndpointSlice& s) {
  const json* ports = r.array(object, "ports", "ports");
  if (ports == nullptr)
    return;
  for (size_t i = 0; i < ports->size() && r.ok(); ++i) {
    const json& p = (*ports)[i];
    std::string path = absl::StrCat("ports[", i, "]");
    if (!p.is_object()) {
      r.fail(path, "an object", p);
      return;
    }
    EndpointPort ep;
    ep.protocol = "TCP";
    r.optStr(p, "name", path + ".name", ep.name);
    r.str(p, "protocol", path + ".protocol", ep.protocol);
    if (std::optional<int64_t> port = r.integer(p, "port", path + ".port", 0, 65535))
      ep.port = static_cast<int32_t>(*port);
    s.ports.push_back(std::move(ep));
  }
}

// The boundary: the readers check every type before reading, so nothing should throw; should
// nlohmann throw all the same, the object is refused rather than the caller unwound.
template <typename T, typename Fn>
absl::StatusOr<T> guarded(absl::string_view kind, Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(kind, ": ", e.what()));
  }
}

template <typename T, typename Fn>
absl::StatusOr<T> parseText(absl::string_view text, absl::string_view kind, Fn parse) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(kind, ": not valid JSON"));
  return parse(doc);
}

absl::StatusOr<Service> parseServiceUnguarded(const json& object) {
  Reader r("Service");
  Meta m = readMeta(r, object, "Service");
  if (!r.ok())
    return r.status();
  Service s;
  s.ns = std::move(m.ns);
  s.name = std::move(m.name);
  s.uid = std::move(m.uid);
  s.resource_version = std::move(m.resource_version);
  s.labels = std::move(m.labels);
  s.annotations = std::move(m.annotations);
  s.type = "ClusterIP";
  s.session_affinity = "None";
  s.internal_traffic_policy = "Cluster";
  s.external_traffic_policy = "Cluster";
  if (const json* spec = r.object(object, "spec", "spec"))
    readServiceSpec(r, *spec, s);
  if (const json* status = r.object(object, "status", "status"))
    readServiceStatus(r, *status, s);
  if (!r.ok())
    return r.status();
  return s;
}

absl::StatusOr<EndpointSlice> parseEndpointSliceUnguarded(const json& object) {
  Reader r("EndpointSlice");
  Meta m = readMeta(r, object, "EndpointSlice");
  if (!r.ok())
    return r.status();
  EndpointSlice s;
  s.ns = std::move(m.ns);
  s.name = std::move(m.name);
  s.resource_version = std::move(m.resource_version);
  s.labels = std::move(m.labels);
  if (auto it = s.labels.find(std::string(kServiceNameLabel)); it != s.labels.end())
    s.service_name = it->second;
  r.str(object, "addressType", "addressType", s.address_type);
  if (r.ok() && s.address_type.empty())
    r.failMissing("addressType");
  readEndpoints(r, object, s);
  readSlicePorts(r, object, s);
  if (!r.ok())
    return r.status();
  return s;
}

absl::StatusOr<Node> parseNodeUnguarded(const json& object) {
  Reader r("Node");
  Meta m = readMeta(r, object, "Node");
  if (!r.ok())
    return r.status();
  Node n;
  n.name = std::move(m.name);
  n.resource_version = std::move(m.resource_version);
  if (auto it = m.labels.find(std::string(kZoneLabel)); it != m.labels.end())
    n.zone = it->second;
  return n;
}

}  // namespace

std::string objectKey(absl::string_view ns, absl::string_view name) {
  if (ns.empty())
    return std::string(name);
  return absl::StrCat(ns, "/", name);
}

std::string EndpointSlice::serviceKey() const {
  if (service_name.empty())
    return "";
  return objectKey(ns, service_name);
}

absl::StatusOr<Service> parseService(const json& object) {
  return guarded<Service>("Service", [&] { return parseServiceUnguarded(object); });
}

absl::StatusOr<EndpointSlice> parseEndpointSlice(const json& object) {
  return guarded<EndpointSlice>("EndpointSlice",
                                [&] { return parseEndpointSliceUnguarded(object); });
}

absl::StatusOr<Node> parseNode(const json& object) {
  return guarded<Node>("Node", [&] { return parseNodeUnguarded(object); });
}

absl::StatusOr<Service> parseServiceText(absl::string_view json_text) {
  return parseText<Service>(json_text, "Service", [](const json& j) { return parseService(j); });
}

absl::StatusOr<EndpointSlice> parseEndpointSliceText(absl::string_view json_text) {
  return parseText<EndpointSlice>(json_text, "EndpointSlice",
                                  [](const json& j) { return parseEndpointSlice(j); });
}

absl::StatusOr<Node> parseNodeText(absl::string_view json_text) {
  return parseText<Node>(json_text, "Node", [](const json& j) { return parseNode(j); });
}

}  // namespace lbd::controller::model
