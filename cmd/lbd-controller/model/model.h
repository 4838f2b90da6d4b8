// SPDX-License-Identifier: Apache-2.0
// The Kubernetes objects the controller reads (core/v1 Service, discovery.k8s.io/v1
// EndpointSlice, core/v1 Node), as plain structs parsed from the API server's JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <nlohmann/json_fwd.hpp>

namespace lbd::controller::model {

// Objects by "namespace/name" (cluster-scoped objects: "name"). std::map, so that everything
// built from a store comes out in one deterministic order.
template <typename T>
using Store = std::map<std::string, T>;

// "namespace/name"; "name" alone when ns is empty.
std::string objectKey(absl::string_view ns, absl::string_view name);

// ---------------------------------------------------------------------------------------------
// Service (core/v1)

struct ServicePort {
  std::string name;      // "" for the single unnamed port
  std::string protocol;  // as in the API: "TCP" (the default when absent), "UDP", "SCTP", ...
  uint32_t port = 0;
  uint32_t node_port = 0;  // 0 = none
};

struct LoadBalancerIngress {
  std::string ip;  // empty for a hostname-only entry
  std::string hostname;
  std::string ip_mode;  // "VIP", "Proxy" or "" (unset = VIP)
};

struct Service {
  std::string ns;  // metadata.namespace
  std::string name;
  std::string uid;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string type;                      // "ClusterIP" (default when absent), "NodePort", ...
  std::string cluster_ip;                // spec.clusterIP: "None" = headless
  std::vector<std::string> cluster_ips;  // spec.clusterIPs ([cluster_ip] when absent)
  std::vector<std::string> ip_families;  // spec.ipFamilies: "IPv4" / "IPv6", same order
  std::vector<ServicePort> ports;
  std::vector<std::string> external_ips;        // spec.externalIPs
  std::string external_name;                    // spec.externalName
  std::vector<LoadBalancerIngress> lb_ingress;  // status.loadBalancer.ingress
  std::string session_affinity;                 // "None" (default) or "ClientIP"
  // spec.sessionAffinityConfig.clientIP.timeoutSeconds; unset = API default 10800.
  std::optional<int64_t> affinity_timeout_seconds;
  std::string internal_traffic_policy;  // "Cluster" (default when absent) or "Local"
  std::string external_traffic_policy;  // "Cluster" (default when absent) or "Local"
  std::string traffic_distribution;     // spec.trafficDistribution, "" when absent

  std::string key() const { return objectKey(ns, name); }
};

// ---------------------------------------------------------------------------------------------
// EndpointSlice (discovery.k8s.io/v1)

struct EndpointConditions {
  std::optional<bool> ready;        // nil = ready
  std::optional<bool> serving;      // nil = defer to ready
  std::optional<bool> terminating;  // nil = false
};

struct Endpoint {
  std::vector<std::string> addresses;  // 1..100; only addresses[0] is used
  EndpointConditions conditions;
  std::string node_name;                // "" when absent
  std::string zone;                     // "" when absent
  std::vector<std::string> hint_zones;  // hints.forZones[].name
  std::vector<std::string> hint_nodes;  // hints.forNodes[].name
};

struct EndpointPort {
  std::optional<std::string> name;  // nil name: kube-proxy skips the port
  std::optional<int32_t> port;      // nil or 0: "all ports", skipped
  std::string protocol;             // "TCP" when absent
};

struct EndpointSlice {
  std::string ns;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  std::string service_name;  // label kubernetes.io/service-name, "" when absent
  std::string address_type;  // "IPv4", "IPv6" or "FQDN"
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;

  std::string key() const { return objectKey(ns, name); }

  // The owning Service's key, "namespace/service-name"; "" when the label is absent.
  std::string serviceKey() const;
};

// ---------------------------------------------------------------------------------------------
// Node (core/v1): only what topology needs.

struct Node {
  std::string name;
  std::string zone;  // label topology.kubernetes.io/zone, "" when absent
  std::string resource_version;
};

inline constexpr absl::string_view kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr absl::string_view kZoneLabel = "topology.kubernetes.io/zone";

// ---------------------------------------------------------------------------------------------
// Parsing. Each takes the object itself (a list's items[i] or a watch event's "object") and
// never throws: a malformed document is INVALID_ARGUMENT naming the field, e.g.
// "Service default/web: spec.ports[1].port: want an integer, got \"80\"". Unknown fields are
// ignored; absent optional fields take the API's defaults noted above. Kind is not checked.
absl::StatusOr<Service> parseService(const nlohmann::json& object);
absl::StatusOr<EndpointSlice> parseEndpointSlice(const nlohmann::json& object);
absl::StatusOr<Node> parseNode(const nlohmann::json& object);

// The same from JSON text (tests, tools). INVALID_ARGUMENT on a syntax error too. (Named apart:
// a string literal converts to both nlohmann::json and absl::string_view.)
absl::StatusOr<Service> parseServiceText(absl::string_view json_text);
absl::StatusOr<EndpointSlice> parseEndpointSliceText(absl::string_view json_text);
absl::StatusOr<Node> parseNodeText(absl::string_view json_text);

}  // namespace lbd::controller::model
