// SPDX-License-Identifier: Apache-2.0
// mapCluster row by row against ../shared/reference/kubernetes-mapping.md: §2 (Service fields),
// §3 (EndpointSlices, which endpoints take new traffic, the lbd-actions table) and §6 item 8.
#include "cmd/lbd-controller/mapping/mapping.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lbd::controller::mapping {
namespace {

namespace pb = lbd::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// ---------------------------------------------------------------------------------------------
// Builders

model::ServicePort port(std::string name,
                        std::string protocol,
                        uint32_t number,
                        uint32_t node = 0) {
  return model::ServicePort{std::move(name), std::move(protocol), number, node};
}

// A ClusterIP Service "ns/name" on cluster_ips (families taken from the addresses).
model::Service service(absl::string_view key,
                       std::vector<std::string> cluster_ips,
                       std::vector<model::ServicePort> ports) {
  model::Service s;
  size_t slash = key.find('/');
  s.ns = std::string(key.substr(0, slash));
  s.name = std::string(key.substr(slash + 1));
  s.type = "ClusterIP";
  s.cluster_ip = cluster_ips.empty() ? "" : cluster_ips[0];
  for (const std::string& ip : cluster_ips)
    s.ip_families.push_back(ip.find(':') == std::string::npos ? "IPv4" : "IPv6");
  s.cluster_ips = std::move(cluster_ips);
  s.ports = std::move(ports);
  s.session_affinity = "None";
  s.internal_traffic_policy = "Cluster";
  s.external_traffic_policy = "Cluster";
  return s;
}

struct Cond {
  std::optional<bool> ready;
  std::optional<bool> serving;
  std::optional<bool> terminating;
};

const Cond kReady{true, true, false};
const Cond kServingTerminating{false, true, true};
const Cond kNotServingTerminating{false, false, true};
const Cond kNotReady{false, false, false};
const Cond kNil{};

model::Endpoint ep(std::string address, Cond c = kReady, std::string node = "") {
  model::Endpoint e;
  e.addresses = {std::move(address)};
  e.conditions = {c.ready, c.serving, c.terminating};
  e.node_name = std::move(node);
  return e;
}

model::Endpoint zoned(std::string address,
                      std::vector<std::string> zones,
                      std::vector<std::string> nodes = {}) {
  model::Endpoint e = ep(std::move(address));
  e.hint_zones = std::move(zones);
  e.hint_nodes = std::move(nodes);
  return e;
}

model::EndpointPort eport(std::optional<std::string> name,
                          std::optional<int32_t> number,
                          std::string protocol = "TCP") {
  return model::EndpointPort{std::move(name), number, std::move(protocol)};
}

model::EndpointSlice slice(absl::string_view service_key,
                           std::string name,
                           std::vector<model::Endpoint> eps,
                           std::vector<model::EndpointPort> ports,
                           std::string type = "IPv4") {
  model::EndpointSlice s;
  size_t slash = service_key.find('/');
  s.ns = std::string(service_key.substr(0, slash));
  s.name = std::move(name);
  s.service_name = std::string(service_key.substr(slash + 1));
  s.labels[std::string(model::kServiceNameLabel)] = s.service_name;
  s.address_type = std::move(type);
  s.endpoints = std::move(eps);
  s.ports = std::move(ports);
  return s;
}

struct World {
  model::Store<model::Service> services;
  model::Store<model::EndpointSlice> slices;
  std::optional<model::Node> node;
  MapOptions options;

  World& add(model::Service s) {
    std::string k = s.key();
    services[k] = std::move(s);
    return *this;
  }

  World& add(model::EndpointSlice s) {
    std::string k = s.key();
    slices[k] = std::move(s);
    return *this;
  }

  Desired map() const { return mapCluster(services, slices, node, options); }
};

std::vector<std::string> vsKeys(const Desired& d) {
  std::vector<std::string> out;
  for (const DesiredService& ds : d.services)
    out.push_back(serviceKeyString(ds.service.key()));
  return out;
}

const DesiredService* find(const Desired& d, absl::string_view key) {
  for (const DesiredService& ds : d.services) {
    if (serviceKeyString(ds.service.key()) == key)
      return &ds;
  }
  return nullptr;
}

// "198.18.1.1:8080 w1" per dest.
std::vector<std::string> dests(const Desired& d, absl::string_view key) {
  const DesiredService* ds = find(d, key);
  if (ds == nullptr)
    return {"<no VS " + std::string(key) + ">"};
  std::vector<std::string> out;
  for (const pb::Dest& dest : ds->service.dests())
    out.push_back(absl::StrCat(destKeyString(dest.address(), dest.port()), " w", dest.weight()));
  return out;
}

std::vector<std::string> reasons(const Desired& d, const std::string& service) {
  std::vector<std::string> out;
  auto it = d.problems.find(service);
  if (it == d.problems.end())
    return out;
  for (const Problem& p : it->second)
    out.push_back(absl::StrCat(p.reason, p.blocking ? " blocking" : ""));
  return out;
}

// ---------------------------------------------------------------------------------------------
// §2: Service fields -> virtual services

TEST(MapClusterTest, ClusterIpIsOneVsPerPortWithRrNatWeightOneAndTheOwner) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80), port("dns", "UDP", 53)}));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1"), ep("198.18.1.2")},
              {eport("http", 8080), eport("dns", 5353, "UDP")}));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80", "UDP/198.18.100.1:53"));
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
  EXPECT_THAT(dests(d, "UDP/198.18.100.1:53"),
              ElementsAre("198.18.1.1:5353 w1", "198.18.1.2:5353 w1"));
  const DesiredService& vs = *find(d, "TCP/198.18.100.1:80");
  EXPECT_EQ(vs.service.scheduler(), "rr");
  EXPECT_EQ(vs.service.owner(), "lbd-controller");
  EXPECT_FALSE(vs.service.has_persistence());
  EXPECT_EQ(vs.service.dests(0).forward_method(), pb::FORWARD_METHOD_MASQ);
  EXPECT_EQ(vs.origin, "shop/web");
  EXPECT_TRUE(vs.drain);
  EXPECT_TRUE(d.problems.empty());
}

TEST(MapClusterTest, AVsWithoutEndpointsHasNoDests) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80"));
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), IsEmpty());
}

TEST(MapClusterTest, ExternalIpsAndVipModeIngressIpsGetVsesProxyAndHostnameOnesDoNot) {
  World w;
  model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80, 30080)});
  s.type = "LoadBalancer";
  s.external_ips = {"198.18.200.1"};
  s.lb_ingress = {{"198.18.201.1", "", "VIP"},
                  {"198.18.201.2", "", ""},
                  {"198.18.201.3", "", "Proxy"},
                  {"", "lb.example", ""}};
  w.add(std::move(s));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1")}, {eport("http", 8080)}));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80", "TCP/198.18.200.1:80",
                                     "TCP/198.18.201.1:80", "TCP/198.18.201.2:80"));
  EXPECT_THAT(dests(d, "TCP/198.18.201.2:80"), ElementsAre("198.18.1.1:8080 w1"));
}

TEST(MapClusterTest, NodePortVsesOnlyOnConfiguredNodeAddresses) {
  World w;
  model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80, 30080)});
  s.type = "NodePort";
  w.add(std::move(s));
  EXPECT_THAT(vsKeys(w.map()), ElementsAre("TCP/198.18.100.1:80"));  // default: none
  w.options.node_addresses = {"198.18.0.10", "2001:2::10"};
  EXPECT_THAT(vsKeys(w.map()), ElementsAre("TCP/198.18.0.10:30080", "TCP/198.18.100.1:80"));
  w.services["shop/web"].ports[0].node_port = 0;  // nodePort 0: none
  EXPECT_THAT(vsKeys(w.map()), ElementsAre("TCP/198.18.100.1:80"));
}

TEST(MapClusterTest, DualStackMakesAVsPerFamilyFedOnlyBySameFamilySlices) {
  World w;
  model::Service s =
      service("shop/web", {"2001:2::100:1", "198.18.100.1"}, {port("http", "TCP", 80)});
  s.external_ips = {"198.18.200.1", "2001:2::200:1"};
  w.add(std::move(s));
  w.add(slice("shop/web", "web-v4", {ep("198.18.1.1")}, {eport("http", 8080)}));
  w.add(slice("shop/web", "web-v6", {ep("2001:2:0:0::1:1")}, {eport("http", 8080)}, "IPv6"));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80", "TCP/198.18.200.1:80",
                                     "TCP/[2001:2::100:1]:80", "TCP/[2001:2::200:1]:80"));
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
  // Canonical text (inet_ntop), whatever spelling the slice used.
  EXPECT_THAT(dests(d, "TCP/[2001:2::100:1]:80"), ElementsAre("[2001:2::1:1]:8080 w1"));
  EXPECT_THAT(dests(d, "TCP/[2001:2::200:1]:80"), ElementsAre("[2001:2::1:1]:8080 w1"));
}

TEST(MapClusterTest, SingleStackServiceIgnoresTheOtherFamilysSlices) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/web", "web-v6", {ep("2001:2::1:1")}, {eport("http", 8080)}, "IPv6"));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80"));
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), IsEmpty());
}

TEST(MapClusterTest, ClientIpAffinityIsPersistenceWithTimeoutSecondsAndAFullMask) {
  World w;
  model::Service s =
      service("shop/web", {"198.18.100.1", "2001:2::100:1"}, {port("http", "TCP", 80)});
  s.session_affinity = "ClientIP";
  s.affinity_timeout_seconds = 600;
  w.add(std::move(s));
  Desired d = w.map();
  const pb::Service& v4 = find(d, "TCP/198.18.100.1:80")->service;
  ASSERT_TRUE(v4.has_persistence());
  EXPECT_EQ(v4.persistence().timeout().seconds(), 600);
  EXPECT_EQ(v4.persistence().netmask_prefix(), 32u);
  const pb::Service& v6 = find(d, "TCP/[2001:2::100:1]:80")->service;
  EXPECT_EQ(v6.persistence().netmask_prefix(), 128u);

  w.services["shop/web"].affinity_timeout_seconds.reset();  // API default
  EXPECT_EQ(find(w.map(), "TCP/198.18.100.1:80")->service.persistence().timeout().seconds(), 10800);
  w.services["shop/web"].annotations[std::string(kPersistenceNetmaskAnnotation)] = "24";
  d = w.map();
  EXPECT_EQ(find(d, "TCP/198.18.100.1:80")->service.persistence().netmask_prefix(), 24u);
  EXPECT_EQ(find(d, "TCP/[2001:2::100:1]:80")->service.persistence().netmask_prefix(), 24u);
  w.services["shop/web"].session_affinity = "None";
  EXPECT_FALSE(find(w.map(), "TCP/198.18.100.1:80")->service.has_persistence());
}

// ---------------------------------------------------------------------------------------------
// §3: EndpointSlices -> real servers

TEST(MapClusterTest, NamedPortResolvingToDifferentNumbersPerPodGivesEachItsOwnPort) {
  // The EndpointSlice controller puts pods whose "http" container port differs in different
  // slices; the Service's targetPort is never read.
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/web", "web-a", {ep("198.18.1.1"), ep("198.18.1.2")}, {eport("http", 8080)}));
  w.add(slice("shop/web", "web-b", {ep("198.18.1.3")}, {eport("http", 9090)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1", "198.18.1.3:9090 w1"));
}

TEST(MapClusterTest, PortsJoinByNameAndProtocol) {
  World w;
  w.add(
      service("shop/dns", {"198.18.100.2"}, {port("dns", "UDP", 53), port("dns-tcp", "TCP", 53)}));
  w.add(slice("shop/dns", "dns-1", {ep("198.18.1.1")},
              {eport("dns", 5353, "UDP"), eport("dns-tcp", 5354, "TCP"),
               eport("dns", 9999, "TCP")}));  // same name, other protocol: not the UDP port's
  Desired d = w.map();
  EXPECT_THAT(dests(d, "UDP/198.18.100.2:53"), ElementsAre("198.18.1.1:5353 w1"));
  EXPECT_THAT(dests(d, "TCP/198.18.100.2:53"), ElementsAre("198.18.1.1:5354 w1"));
}

TEST(MapClusterTest, UnnamedPortJoinsTheEmptyNameAndNilNamesAndNilOrZeroPortsAreSkipped) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("", "TCP", 80)}));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1")}, {eport("", 8080)}));
  w.add(slice("shop/web", "web-2", {ep("198.18.1.2")}, {eport(std::nullopt, 8081)}));
  w.add(slice("shop/web", "web-3", {ep("198.18.1.3")}, {eport("", std::nullopt)}));
  w.add(slice("shop/web", "web-4", {ep("198.18.1.4")}, {eport("", 0)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
}

TEST(MapClusterTest, OnlyAddressesZeroOfAnEndpointIsUsed) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  model::Endpoint e = ep("198.18.1.1");
  e.addresses.push_back("198.18.1.9");
  w.add(slice("shop/web", "web-1", {e}, {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
}

TEST(MapClusterTest, EndpointMovingBetweenSlicesCountsOncePreferringTheNonTerminatingEntry) {
  for (bool ready_first : {true, false}) {
    World w;
    w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
    // Slice names decide the merge order; the result must not depend on it.
    w.add(slice("shop/web", ready_first ? "web-a" : "web-b", {ep("198.18.1.1", kReady)},
                {eport("http", 8080)}));
    w.add(slice("shop/web", ready_first ? "web-b" : "web-a",
                {ep("198.18.1.1", kServingTerminating), ep("198.18.1.2", kServingTerminating)},
                {eport("http", 8080)}));
    EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
                ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0"))
        << "ready first: " << ready_first;
  }
}

TEST(MapClusterTest, SlicesOfOtherServicesOrWithoutTheServiceNameLabelAreIgnored) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/other", "other-1", {ep("198.18.1.7")}, {eport("http", 8080)}));
  w.add(slice("prod/web", "web-1", {ep("198.18.1.8")}, {eport("http", 8080)}));  // namespace
  model::EndpointSlice orphan =
      slice("shop/web", "orphan", {ep("198.18.1.9")}, {eport("http", 8080)});
  orphan.service_name.clear();
  orphan.labels.clear();
  w.add(std::move(orphan));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1")}, {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
}

TEST(MapClusterTest, FqdnSliceIsDroppedWithANonBlockingProblem) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  model::Endpoint fqdn;
  fqdn.addresses = {"backend.example"};
  w.add(slice("shop/web", "web-fqdn", {fqdn}, {eport("http", 8080)}, "FQDN"));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1")}, {eport("http", 8080)}));
  Desired d = w.map();
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
  EXPECT_THAT(reasons(d, "shop/web"), ElementsAre("FQDNSliceIgnored"));
  EXPECT_THAT(d.problems.at("shop/web")[0].message, HasSubstr("web-fqdn"));
}

TEST(MapClusterTest, WrongFamilyOrUnparsableEndpointAddressIsSkippedWithAProblem) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1"), ep("2001:2::1"), ep("not-an-ip")},
              {eport("http", 8080)}));
  Desired d = w.map();
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1"));
  EXPECT_THAT(reasons(d, "shop/web"), ElementsAre("EndpointIgnored", "EndpointIgnored"));
}

// The lbd-actions table, row by row.
TEST(MapClusterTest, LbdActionsTableReadyServingTerminatingNotServing) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice(
      "shop/web", "web-1",
      {ep("198.18.1.1", kReady), ep("198.18.1.2", kNil), ep("198.18.1.3", kServingTerminating),
       ep("198.18.1.4", kNotServingTerminating), ep("198.18.1.5", kNotReady)},
      {eport("http", 8080)}));
  // ready (or nil) -> weight 1; serving&&terminating while ready ones exist -> 0 (quiesced);
  // not serving -> 0 (quiesced).
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1", "198.18.1.3:8080 w0",
                          "198.18.1.4:8080 w0", "198.18.1.5:8080 w0"));
}

TEST(MapClusterTest, ServingTerminatingTakeTrafficWhenNoEndpointIsReady) {
  World w;
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/web", "web-1",
              {ep("198.18.1.3", kServingTerminating), ep("198.18.1.4", kNotServingTerminating),
               ep("198.18.1.5", kNotReady)},
              {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.3:8080 w1", "198.18.1.4:8080 w0", "198.18.1.5:8080 w0"));
}

// ---------------------------------------------------------------------------------------------
// Traffic policies against this pod's node (§2, §6 item 8)

World policyWorld() {
  World w;
  w.options.node_name = "node-a";
  model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)});
  s.type = "LoadBalancer";
  s.lb_ingress = {{"198.18.201.1", "", ""}};
  w.add(std::move(s));
  return w;
}

TEST(MapClusterTest, InternalTrafficPolicyLocalUsesOnlyThisNodesEndpointsOnTheClusterIp) {
  World w = policyWorld();
  w.services["shop/web"].internal_traffic_policy = "Local";
  w.add(slice("shop/web", "web-1",
              {ep("198.18.1.1", kReady, "node-a"), ep("198.18.1.2", kReady, "node-b")},
              {eport("http", 8080)}));
  Desired d = w.map();
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0"));
  EXPECT_THAT(dests(d, "TCP/198.18.201.1:80"),  // external: Cluster
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
}

TEST(MapClusterTest, InternalTrafficPolicyLocalWithoutLocalEndpointsDrops) {
  World w = policyWorld();
  w.services["shop/web"].internal_traffic_policy = "Local";
  w.options.external_local_fallback = true;  // only for externalTrafficPolicy
  w.add(slice("shop/web", "web-1", {ep("198.18.1.2", kReady, "node-b")}, {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"), ElementsAre("198.18.1.2:8080 w0"));
}

TEST(MapClusterTest, LocalPolicyFallsBackToLocalServingTerminatingEndpoints) {
  World w = policyWorld();
  w.services["shop/web"].internal_traffic_policy = "Local";
  w.add(slice("shop/web", "web-1",
              {ep("198.18.1.1", kServingTerminating, "node-a"), ep("198.18.1.2", kReady, "node-b")},
              {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0"));
}

TEST(MapClusterTest, ExternalTrafficPolicyLocalAppliesToExternalVsesOnly) {
  World w = policyWorld();
  w.services["shop/web"].external_traffic_policy = "Local";
  w.services["shop/web"].external_ips = {"198.18.200.1"};
  w.add(slice("shop/web", "web-1",
              {ep("198.18.1.1", kReady, "node-a"), ep("198.18.1.2", kReady, "node-b")},
              {eport("http", 8080)}));
  Desired d = w.map();
  EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
  for (const char* vs : {"TCP/198.18.200.1:80", "TCP/198.18.201.1:80"}) {
    EXPECT_THAT(dests(d, vs), ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0")) << vs;
  }
}

TEST(MapClusterTest, ExternalTrafficPolicyLocalWithoutLocalEndpointDropsUnlessFallbackIsOn) {
  World w = policyWorld();
  w.services["shop/web"].external_traffic_policy = "Local";
  w.add(slice("shop/web", "web-1", {ep("198.18.1.2", kReady, "node-b")}, {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.201.1:80"), ElementsAre("198.18.1.2:8080 w0"));
  w.options.external_local_fallback = true;
  EXPECT_THAT(dests(w.map(), "TCP/198.18.201.1:80"), ElementsAre("198.18.1.2:8080 w1"));
}

TEST(MapClusterTest, WithoutANodeNameNothingIsLocal) {
  World w = policyWorld();
  w.options.node_name.clear();
  w.services["shop/web"].internal_traffic_policy = "Local";
  w.add(slice("shop/web", "web-1", {ep("198.18.1.1", kReady, "")}, {eport("http", 8080)}));
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w0"));
}

// ---------------------------------------------------------------------------------------------
// Topology hints (§2 trafficDistribution, kube-proxy's topologyModeFromHints)

World hintsWorld(std::vector<model::Endpoint> eps) {
  World w;
  w.options.node_name = "node-a";
  w.node = model::Node{"node-a", "z1", ""};
  w.add(service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)}));
  w.add(slice("shop/web", "web-1", std::move(eps), {eport("http", 8080)}));
  return w;
}

TEST(MapClusterTest, ZoneHintsApplyWhenEveryReadyEndpointHasOneAndOneMatches) {
  World w = hintsWorld({zoned("198.18.1.1", {"z1"}), zoned("198.18.1.2", {"z2"}),
                        ep("198.18.1.3", kNotReady)});  // not ready: needs no hint
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0", "198.18.1.3:8080 w0"));
}

TEST(MapClusterTest, ZoneHintsAreIgnoredWhenAReadyEndpointLacksOne) {
  World w = hintsWorld({zoned("198.18.1.1", {"z1"}), zoned("198.18.1.2", {})});
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
}

TEST(MapClusterTest, ZoneHintsAreIgnoredWhenNoneMatchesThisZoneOrTheZoneIsUnknown) {
  World w = hintsWorld({zoned("198.18.1.1", {"z2"}), zoned("198.18.1.2", {"z3"})});
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
  World unknown = hintsWorld({zoned("198.18.1.1", {"z1"}), zoned("198.18.1.2", {"z2"})});
  unknown.node.reset();
  EXPECT_THAT(dests(unknown.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1"));
}

TEST(MapClusterTest, NodeHintsComeBeforeZoneHints) {
  World w = hintsWorld(
      {zoned("198.18.1.1", {"z1"}, {"node-b"}), zoned("198.18.1.2", {"z1"}, {"node-a"})});
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w0", "198.18.1.2:8080 w1"));
}

TEST(MapClusterTest, NodeHintsNeedOneOnEveryReadyEndpointElseZoneHintsApply) {
  World w = hintsWorld({zoned("198.18.1.1", {"z1"}, {"node-a"}), zoned("198.18.1.2", {"z1"}),
                        zoned("198.18.1.3", {"z2"}, {"node-c"})});
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w1", "198.18.1.3:8080 w0"));
}

TEST(MapClusterTest, HintsDoNotApplyToLocalPolicy) {
  World w = hintsWorld({zoned("198.18.1.1", {"z2"}), zoned("198.18.1.2", {"z1"})});
  w.slices["shop/web-1"].endpoints[0].node_name = "node-a";
  w.services["shop/web"].internal_traffic_policy = "Local";
  EXPECT_THAT(dests(w.map(), "TCP/198.18.100.1:80"),
              ElementsAre("198.18.1.1:8080 w1", "198.18.1.2:8080 w0"));
}

// ---------------------------------------------------------------------------------------------
// lbd.io/ annotations

TEST(MapClusterTest, SchedulerAnnotationTakesAnyLbdScheduler) {
  for (const char* sched : {"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh",
                            "mh", "fo", "ovf", "twos"}) {
    World w;
    model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)});
    s.annotations[std::string(kSchedulerAnnotation)] = sched;
    w.add(std::move(s));
    Desired d = w.map();
    ASSERT_EQ(d.services.size(), 1u) << sched;
    EXPECT_EQ(d.services[0].service.scheduler(), sched);
  }
}

TEST(MapClusterTest, ForwardMethodAnnotation) {
  struct Case {
    const char* value;
    pb::ForwardMethod method;
    const char* dest;  // DR and tunnel real servers take the service port, as ipvsadm forces
  };

  const Case cases[] = {{"nat", pb::FORWARD_METHOD_MASQ, "198.18.1.1:8080 w1"},
                        {"dr", pb::FORWARD_METHOD_DIRECT_ROUTE, "198.18.1.1:80 w1"},
                        {"tunnel", pb::FORWARD_METHOD_TUNNEL, "198.18.1.1:80 w1"},
                        {"fullnat", pb::FORWARD_METHOD_FULL_NAT, "198.18.1.1:8080 w1"}};
  for (const Case& c : cases) {
    World w;
    model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)});
    s.annotations[std::string(kForwardMethodAnnotation)] = c.value;
    s.annotations[std::string(kLocalAddressesAnnotation)] = "198.18.50.1, 198.18.50.2,2001:2::50";
    w.add(std::move(s));
    w.add(slice("shop/web", "web-1", {ep("198.18.1.1")}, {eport("http", 8080)}));
    Desired d = w.map();
    ASSERT_EQ(d.services.size(), 1u) << c.value;
    EXPECT_EQ(d.services[0].service.dests(0).forward_method(), c.method) << c.value;
    EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), ElementsAre(c.dest)) << c.value;
    EXPECT_THAT(d.services[0].service.local_addresses(), ElementsAre("198.18.50.1", "198.18.50.2"))
        << c.value;  // its own family only
  }
}

TEST(MapClusterTest, DrainAnnotationFalseTurnsDrainingOff) {
  World w;
  model::Service s = service("shop/nfs", {"198.18.100.1"}, {port("nfs", "TCP", 2049)});
  s.annotations[std::string(kDrainAnnotation)] = "false";
  w.add(std::move(s));
  EXPECT_FALSE(w.map().services.at(0).drain);
}

// ---------------------------------------------------------------------------------------------
// Bad input: a Problem for that Service, no VS for it, nothing else harmed

TEST(MapClusterTest, EachBadInputGetsAProblemAndNoVsWhileOtherServicesAreUnaffected) {
  struct Case {
    const char* name;
    void (*spoil)(model::Service&);
    const char* reason;
    const char* message;
  };

  const Case cases[] = {
      {"headless", [](model::Service& s) { s.cluster_ip = "None"; }, "Headless", "headless"},
      {"no clusterIP", [](model::Service& s) { s.cluster_ip = ""; }, "Headless", "headless"},
      {"externalname",
       [](model::Service& s) {
         s.type = "ExternalName";
         s.external_name = "db.example";
       },
       "ExternalName", "ExternalName"},
      {"protocol", [](model::Service& s) { s.ports[1].protocol = "QUIC"; }, "UnsupportedProtocol",
       "spec.ports[1].protocol QUIC"},
      {"scheduler",
       [](model::Service& s) { s.annotations[std::string(kSchedulerAnnotation)] = "fastest"; },
       "BadAnnotation", "lbd.io/scheduler=\"fastest\""},
      {"forward",
       [](model::Service& s) { s.annotations[std::string(kForwardMethodAnnotation)] = "snat"; },
       "BadAnnotation", "lbd.io/forward-method=\"snat\""},
      {"netmask",
       [](model::Service& s) { s.annotations[std::string(kPersistenceNetmaskAnnotation)] = "/24"; },
       "BadAnnotation", "lbd.io/persistence-netmask=\"/24\""},
      {"netmask range",
       [](model::Service& s) { s.annotations[std::string(kPersistenceNetmaskAnnotation)] = "0"; },
       "BadAnnotation", "lbd.io/persistence-netmask"},
      {"local addresses",
       [](model::Service& s) { s.annotations[std::string(kLocalAddressesAnnotation)] = "x"; },
       "BadAnnotation", "lbd.io/local-addresses"},
      {"drain", [](model::Service& s) { s.annotations[std::string(kDrainAnnotation)] = "no"; },
       "BadAnnotation", "lbd.io/drain"},
      {"fullnat without pool",
       [](model::Service& s) { s.annotations[std::string(kForwardMethodAnnotation)] = "fullnat"; },
       "BadAnnotation", "needs lbd.io/local-addresses"},
      {"clusterIP", [](model::Service& s) { s.cluster_ips = {"198.18.999.1"}; }, "BadAddress",
       "198.18.999.1"},
      {"families", [](model::Service& s) { s.ip_families = {"IPv6"}; }, "InvalidSpec",
       "ipFamilies"},
      {"affinity timeout",
       [](model::Service& s) {
         s.session_affinity = "ClientIP";
         s.affinity_timeout_seconds = 0;
       },
       "InvalidSpec", "timeoutSeconds 0"},
  };
  for (const Case& c : cases) {
    World w;
    model::Service bad =
        service("shop/bad", {"198.18.100.9"}, {port("http", "TCP", 80), port("q", "UDP", 443)});
    c.spoil(bad);
    w.add(std::move(bad));
    w.add(service("shop/good", {"198.18.100.1"}, {port("http", "TCP", 80)}));
    w.add(slice("shop/good", "good-1", {ep("198.18.1.1")}, {eport("http", 8080)}));
    w.add(slice("shop/bad", "bad-1", {ep("198.18.1.2")}, {eport("http", 8080)}));
    Desired d = w.map();
    EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80")) << c.name;
    EXPECT_THAT(dests(d, "TCP/198.18.100.1:80"), ElementsAre("198.18.1.1:8080 w1")) << c.name;
    ASSERT_EQ(d.problems.count("shop/bad"), 1u) << c.name;
    EXPECT_EQ(d.problems.count("shop/good"), 0u) << c.name;
    const Problem& p = d.problems.at("shop/bad").at(0);
    EXPECT_EQ(p.reason, c.reason) << c.name;
    EXPECT_TRUE(p.blocking) << c.name;
    EXPECT_THAT(p.message, HasSubstr(c.message)) << c.name;
  }
}

TEST(MapClusterTest, AnUnparsableExternalIpIsLeftOutTheRestServed) {
  World w;
  model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)});
  s.external_ips = {"bogus", "198.18.200.1"};
  w.add(std::move(s));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80", "TCP/198.18.200.1:80"));
  EXPECT_THAT(reasons(d, "shop/web"), ElementsAre("BadAddress"));
}

TEST(MapClusterTest, TwoServicesClaimingOneVsTheFirstInKeyOrderKeepsIt) {
  World w;
  model::Service a = service("shop/a", {"198.18.100.1"}, {port("http", "TCP", 80)});
  a.external_ips = {"198.18.200.1"};
  model::Service b = service("shop/b", {"198.18.100.2"}, {port("http", "TCP", 80)});
  b.external_ips = {"198.18.200.1"};
  w.add(std::move(a)).add(std::move(b));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80", "TCP/198.18.200.1:80"));
  EXPECT_EQ(find(d, "TCP/198.18.200.1:80")->origin, "shop/a");
  EXPECT_THAT(reasons(d, "shop/b"), ElementsAre("AddressConflict blocking"));
  EXPECT_THAT(d.problems.at("shop/b")[0].message, HasSubstr("shop/a"));
}

TEST(MapClusterTest, AnExternalIpEqualToTheClusterIpIsOneVs) {
  World w;
  model::Service s = service("shop/web", {"198.18.100.1"}, {port("http", "TCP", 80)});
  s.external_ips = {"198.18.100.1"};
  w.add(std::move(s));
  Desired d = w.map();
  EXPECT_THAT(vsKeys(d), ElementsAre("TCP/198.18.100.1:80"));
  EXPECT_TRUE(d.problems.empty());
}

TEST(MapClusterTest, SameInputsGiveTheSameOutput) {
  World w = hintsWorld({zoned("198.18.1.1", {"z1"}), zoned("198.18.1.2", {"z2"})});
  w.add(service("shop/a", {"198.18.100.7", "2001:2::7"}, {port("x", "UDP", 53)}));
  Desired a = w.map();
  Desired b = w.map();
  ASSERT_EQ(a.services.size(), b.services.size());
  for (size_t i = 0; i < a.services.size(); ++i)
    EXPECT_EQ(a.services[i].service.SerializeAsString(), b.services[i].service.SerializeAsString());
}

TEST(MappingKeysTest, KeyStringsAndCanonicalAddresses) {
  pb::ServiceKey k;
  k.mutable_address()->set_protocol(pb::PROTOCOL_SCTP);
  k.mutable_address()->set_address("2001:2::1");
  k.mutable_address()->set_port(9);
  EXPECT_EQ(serviceKeyString(k), "SCTP/[2001:2::1]:9");
  k.mutable_fwmark()->set_mark(7);
  EXPECT_EQ(serviceKeyString(k), "FWM/7");
  EXPECT_EQ(destKeyString("198.18.0.1", 80), "198.18.0.1:80");
  EXPECT_EQ(canonicalAddress("2001:0002:0000::0001"), "2001:2::1");
  EXPECT_EQ(canonicalAddress("198.18.0.1"), "198.18.0.1");
  EXPECT_EQ(canonicalAddress("198.18.0.1/32"), std::nullopt);
  EXPECT_EQ(canonicalAddress(""), std::nullopt);
}

}  // namespace
}  // namespace lbd::controller::mapping
