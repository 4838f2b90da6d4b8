// SPDX-License-Identifier: Apache-2.0
// Kubernetes Services + EndpointSlices + this Node -> the lbd services they stand for: kube-proxy
// IPVS semantics (pkg/proxy/ipvs/proxier.go, pkg/proxy/topology.go, endpointslicecache.go), as
// ../shared/reference/kubernetes-mapping.md §2-3 lays them out. A pure function: no I/O, no clock.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "cmd/lbd-controller/model/model.h"

#include "lbd/v1/lbd.pb.h"

namespace lbd::controller::mapping {

// Annotations (not upstream; the API has no field for these).
inline constexpr absl::string_view kSchedulerAnnotation = "lbd.io/scheduler";  // rr (default) ...
inline constexpr absl::string_view kForwardMethodAnnotation =
    "lbd.io/forward-method";  // nat (default), fullnat, dr, tunnel
inline constexpr absl::string_view kPersistenceNetmaskAnnotation =
    "lbd.io/persistence-netmask";  // prefix length: IPv4 1..32, IPv6 1..128 (default 32 / 128)
// Full-NAT local-address pool, comma-separated, both families allowed (each VS takes its own).
inline constexpr absl::string_view kLocalAddressesAnnotation = "lbd.io/local-addresses";
// "false": a TCP real server gone from every slice is deleted at once instead of drained (the
// reference's §6 item 11, e.g. NFS). Default "true".
inline constexpr absl::string_view kDrainAnnotation = "lbd.io/drain";

// Problem reasons (a Kubernetes Event's reason, a counter's label).
inline constexpr absl::string_view kReasonHeadless = "Headless";  // clusterIP None/"": no VS
inline constexpr absl::string_view kReasonExternalName = "ExternalName";                // no VS
inline constexpr absl::string_view kReasonUnsupportedProtocol = "UnsupportedProtocol";  // no VS
inline constexpr absl::string_view kReasonBadAnnotation = "BadAnnotation";              // no VS
// A clusterIP that is no IP: no VS. An externalIP or ingress IP that is none: that address is
// left out (blocking = false).
inline constexpr absl::string_view kReasonBadAddress = "BadAddress";
// A spec value out of range (clusterIPs vs ipFamilies, affinity timeout): no VS.
inline constexpr absl::string_view kReasonInvalidSpec = "InvalidSpec";
// A VS (address, port, protocol) that another Service (first in key order) already claims:
// this Service gets no VS at all.
inline constexpr absl::string_view kReasonAddressConflict = "AddressConflict";
// Not blocking: the Service's VSs exist, only the named input was left out.
inline constexpr absl::string_view kReasonFqdnSlice = "FQDNSliceIgnored";
inline constexpr absl::string_view kReasonBadEndpoint = "EndpointIgnored";  // bad/wrong-family IP

struct Problem {
  std::string reason;    // one of kReason*
  std::string message;   // names the offending field and value
  bool blocking = true;  // true: the Service got no VS at all
};

// One lbd virtual service the cluster wants, with where it came from.
struct DesiredService {
  // key, scheduler, persistence, local_addresses, owner = MapOptions::owner, and dests (every
  // endpoint of the port and family: weight 1 if selected for new traffic, 0 if quiesced), dests
  // sorted by (address, port). Addresses are in canonical text form (inet_ntop).
  lbd::v1::Service service;
  std::string origin;  // the Kubernetes Service, "namespace/name"
  bool drain = true;   // lbd.io/drain != "false"
};

struct Desired {
  std::vector<DesiredService> services;  // sorted by serviceKeyString(service.key())
  // Per Kubernetes Service ("namespace/name"); Services without problems are absent.
  std::map<std::string, std::vector<Problem>> problems;
};

struct MapOptions {
  std::string owner = "lbd-controller";  // stamped on every lbd.v1.Service
  // This pod's spec.nodeName (NODE_NAME from the downward API): "local" for Local policies and
  // node hints. Empty: no endpoint is local.
  std::string node_name;
  // NodePort VSs (address:nodePort) are made on these addresses; empty (the default): none,
  // as a sidecar lbd does not answer on node addresses.
  std::vector<std::string> node_addresses;
  // externalTrafficPolicy: Local with no local endpoint. false (default): the VS keeps its dests
  // all at weight 0, so new connections are refused (the API's meaning of Local, nothing leaves
  // the node). true: use the Cluster set instead (kube-proxy's fallback for in-node clients).
  // internalTrafficPolicy: Local with no local endpoint always drops, as the API says.
  bool external_local_fallback = false;
};

// The whole desired state. Never fails: a Service that cannot be mapped gets a blocking Problem
// and no VS; every other Service is unaffected. `node` is this pod's Node (its zone for zone
// hints); nullopt = unknown (zone hints never match).
//
// Per Service, per address family of spec.ipFamilies, per ports[] entry: VSs on clusterIPs[i],
// each externalIP and each LB ingress IP whose ipMode is VIP or unset, of that family (plus
// node_addresses:nodePort). Real servers: every same-family EndpointSlice whose label
// kubernetes.io/service-name names the Service, port joined by (name, protocol), port number from
// the slice, addresses[0]; an endpoint in two slices counts once (non-terminating preferred).
// Weights (kube-proxy's CategorizeEndpoints): ClusterIP VS -> internalTrafficPolicy set,
// external VSs -> externalTrafficPolicy set; Cluster = ready endpoints (topology hints applied
// when every ready endpoint has one and one matches), or serving&&terminating ones when none is
// ready; Local = ready endpoints on node_name, else serving&&terminating ones on it.
Desired mapCluster(const model::Store<model::Service>& services,
                   const model::Store<model::EndpointSlice>& slices,
                   const std::optional<model::Node>& node,
                   const MapOptions& options);

// "TCP/198.18.0.1:80", "UDP/[2001:2::1]:53", "FWM/7" (ipvsadm's spelling): a key for maps and
// messages. The address is printed as given.
std::string serviceKeyString(const lbd::v1::ServiceKey& key);
// "198.18.0.1:8080", "[2001:2::1]:8080".
std::string destKeyString(absl::string_view address, uint32_t port);

// An IP literal in canonical form (inet_ntop of inet_pton); nullopt if it is none. Kubernetes
// and lbd may spell the same IPv6 address differently; compare canonical forms.
std::optional<std::string> canonicalAddress(absl::string_view address);

}  // namespace lbd::controller::mapping
