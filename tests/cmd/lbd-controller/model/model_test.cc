// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/model/model.h"

#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// As the API server sends it (kubectl get svc -o json, trimmed of managedFields).
constexpr absl::string_view kDualStackLb = R"json({
  "apiVersion": "v1", "kind": "Service",
  "metadata": {
    "name": "web", "namespace": "shop", "uid": "5f0c-11", "resourceVersion": "4711",
    "labels": {"service.kubernetes.io/service-proxy-name": "lbd"},
    "annotations": {"lbd.io/scheduler": "wlc"}
  },
  "spec": {
    "type": "LoadBalancer",
    "clusterIP": "198.18.100.1",
    "clusterIPs": ["198.18.100.1", "2001:2::100:1"],
    "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
    "ports": [
      {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
      {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}
    ],
    "externalIPs": ["198.18.200.1"],
    "sessionAffinity": "ClientIP",
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
    "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
    "trafficDistribution": "PreferClose",
    "healthCheckNodePort": 31000
  },
  "status": {"loadBalancer": {"ingress": [
    {"ip": "198.18.201.1", "ipMode": "VIP"},
    {"ip": "198.18.201.2", "ipMode": "Proxy"},
    {"hostname": "lb.example"}
  ]}}
})json";

TEST(ModelServiceTest, ParsesEveryFieldTheMappingReads) {
  absl::StatusOr<Service> s = parseServiceText(kDualStackLb);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->key(), "shop/web");
  EXPECT_EQ(s->uid, "5f0c-11");
  EXPECT_EQ(s->resource_version, "4711");
  EXPECT_EQ(s->labels.at("service.kubernetes.io/service-proxy-name"), "lbd");
  EXPECT_EQ(s->annotations.at("lbd.io/scheduler"), "wlc");
  EXPECT_EQ(s->type, "LoadBalancer");
  EXPECT_THAT(s->cluster_ips, ElementsAre("198.18.100.1", "2001:2::100:1"));
  EXPECT_THAT(s->ip_families, ElementsAre("IPv4", "IPv6"));
  ASSERT_EQ(s->ports.size(), 2u);
  EXPECT_EQ(s->ports[0].name, "http");
  EXPECT_EQ(s->ports[0].protocol, "TCP");
  EXPECT_EQ(s->ports[0].port, 80u);
  EXPECT_EQ(s->ports[0].node_port, 30080u);
  EXPECT_EQ(s->ports[1].protocol, "UDP");
  EXPECT_EQ(s->ports[1].node_port, 0u);
  EXPECT_THAT(s->external_ips, ElementsAre("198.18.200.1"));
  ASSERT_EQ(s->lb_ingress.size(), 3u);
  EXPECT_EQ(s->lb_ingress[0].ip, "198.18.201.1");
  EXPECT_EQ(s->lb_ingress[0].ip_mode, "VIP");
  EXPECT_EQ(s->lb_ingress[1].ip_mode, "Proxy");
  EXPECT_EQ(s->lb_ingress[2].ip, "");
  EXPECT_EQ(s->lb_ingress[2].hostname, "lb.example");
  EXPECT_EQ(s->session_affinity, "ClientIP");
  EXPECT_EQ(s->affinity_timeout_seconds, 600);
  EXPECT_EQ(s->external_traffic_policy, "Local");
  EXPECT_EQ(s->internal_traffic_policy, "Cluster");
  EXPECT_EQ(s->traffic_distribution, "PreferClose");
}

TEST(ModelServiceTest, AbsentFieldsTakeTheApiDefaults) {
  absl::StatusOr<Service> s = parseServiceText(R"({"metadata": {"name": "a", "namespace": "n"},
      "spec": {"clusterIP": "198.18.100.2", "ports": [{"port": 8080}]}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, "ClusterIP");
  EXPECT_THAT(s->cluster_ips, ElementsAre("198.18.100.2"));  // from clusterIP
  EXPECT_TRUE(s->ip_families.empty());
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(s->ports[0].name, "");
  EXPECT_EQ(s->ports[0].protocol, "TCP");
  EXPECT_EQ(s->session_affinity, "None");
  EXPECT_FALSE(s->affinity_timeout_seconds.has_value());
  EXPECT_EQ(s->internal_traffic_policy, "Cluster");
  EXPECT_EQ(s->external_traffic_policy, "Cluster");
  EXPECT_TRUE(s->labels.empty());
}

TEST(ModelServiceTest, NullFieldsAreAbsentFields) {
  absl::StatusOr<Service> s = parseServiceText(
      R"({"metadata": {"name": "a", "labels": null}, "spec": {"ports": null, "clusterIP": null}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->key(), "a");
  EXPECT_TRUE(s->ports.empty());
  EXPECT_TRUE(s->cluster_ips.empty());
}

struct BadCase {
  const char* json;
  const char* message;  // a substring the Status must carry
};

TEST(ModelServiceTest, MalformedFieldsAreInvalidArgumentNamingTheField) {
  const BadCase cases[] = {
      {R"({"metadata": {"name": "w", "namespace": "n"}, "spec": {"ports": [{"port": "80"}]}})",
       "Service n/w: spec.ports[0].port: want an integer, got \"80\""},
      {R"({"metadata": {"name": "w"}, "spec": {"ports": [{"port": 70000}]}})",
       "spec.ports[0].port: want an integer in 1..65535, got 70000"},
      {R"({"metadata": {"name": "w"}, "spec": {"ports": [{"name": "x"}]}})",
       "spec.ports[0].port: missing"},
      {R"({"metadata": {"name": "w"}, "spec": {"ports": {"port": 80}}})",
       "spec.ports: want an array"},
      {R"({"metadata": {"name": "w"}, "spec": {"clusterIPs": ["198.18.0.1", 7]}})",
       "spec.clusterIPs[1]: want a string, got 7"},
      {R"({"metadata": {"name": "w", "labels": {"a": 1}}})", "metadata.labels[\"a\"]"},
      {R"({"metadata": {"name": "w"}, "spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1.5}}}})",
       "spec.sessionAffinityConfig.clientIP.timeoutSeconds: want an integer"},
      {R"({"metadata": {"name": "w"}, "status": {"loadBalancer": {"ingress": [{"ip": false}]}}})",
       "status.loadBalancer.ingress[0].ip: want a string"},
      {R"({"metadata": {"namespace": "n"}})", "metadata.name: missing"},
      {R"({"spec": {}})", "metadata: missing"},
      {R"([1, 2])", "object: want a JSON object"},
      {R"({"metadata": {"name": "w"}, "spec": "x"})", "spec: want an object"},
  };
  for (const BadCase& c : cases) {
    absl::StatusOr<Service> s = parseServiceText(c.json);
    ASSERT_FALSE(s.ok()) << c.json;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.message)) << c.json;
  }
}

TEST(ModelServiceTest, SyntaxErrorsAndTruncatedTextAreRefusedWithoutThrowing) {
  for (absl::string_view text : {"", "{", "{\"metadata\": {\"name\": \"w\"", "nul", "\xff\xfe"}) {
    absl::StatusOr<Service> s = parseServiceText(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("not valid JSON"));
  }
}

TEST(ModelServiceTest, ParsesAJsonObjectOfAWatchEvent) {
  nlohmann::json event = nlohmann::json::parse(
      R"({"type": "ADDED", "object": {"kind": "Service", "metadata": {"name": "w", "namespace": "n"},
          "spec": {"clusterIP": "None"}}})");
  absl::StatusOr<Service> s = parseService(event["object"]);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cluster_ip, "None");
}

constexpr absl::string_view kSlice = R"json({
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "web-abc12", "namespace": "shop", "resourceVersion": "99",
               "labels": {"kubernetes.io/service-name": "web",
                          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
  "addressType": "IPv4",
  "endpoints": [
    {"addresses": ["198.18.1.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
     "nodeName": "node-a", "zone": "z1",
     "hints": {"forZones": [{"name": "z1"}], "forNodes": [{"name": "node-a"}]},
     "targetRef": {"kind": "Pod", "name": "web-1"}},
    {"addresses": ["198.18.1.2", "198.18.1.3"], "conditions": {"ready": false, "serving": true, "terminating": true}},
    {"addresses": ["198.18.1.4"], "conditions": {}}
  ],
  "ports": [{"name": "http", "protocol": "TCP", "port": 8080}, {"name": "", "port": 9000},
            {"name": "all"}, {"port": 53, "protocol": "UDP"}]
})json";

TEST(ModelEndpointSliceTest, ParsesEndpointsConditionsHintsAndPorts) {
  absl::StatusOr<EndpointSlice> s = parseEndpointSliceText(kSlice);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->key(), "shop/web-abc12");
  EXPECT_EQ(s->service_name, "web");
  EXPECT_EQ(s->serviceKey(), "shop/web");
  EXPECT_EQ(s->address_type, "IPv4");
  ASSERT_EQ(s->endpoints.size(), 3u);
  const Endpoint& a = s->endpoints[0];
  EXPECT_THAT(a.addresses, ElementsAre("198.18.1.1"));
  EXPECT_EQ(a.conditions.ready, true);
  EXPECT_EQ(a.conditions.terminating, false);
  EXPECT_EQ(a.node_name, "node-a");
  EXPECT_EQ(a.zone, "z1");
  EXPECT_THAT(a.hint_zones, ElementsAre("z1"));
  EXPECT_THAT(a.hint_nodes, ElementsAre("node-a"));
  EXPECT_THAT(s->endpoints[1].addresses, ElementsAre("198.18.1.2", "198.18.1.3"));
  EXPECT_EQ(s->endpoints[1].conditions.ready, false);
  EXPECT_EQ(s->endpoints[1].conditions.terminating, true);
  // Absent conditions stay nil: the mapping reads nil ready as ready.
  EXPECT_FALSE(s->endpoints[2].conditions.ready.has_value());
  EXPECT_FALSE(s->endpoints[2].conditions.serving.has_value());
  EXPECT_FALSE(s->endpoints[2].conditions.terminating.has_value());
  EXPECT_TRUE(s->endpoints[2].node_name.empty());
  ASSERT_EQ(s->ports.size(), 4u);
  EXPECT_EQ(s->ports[0].name, "http");
  EXPECT_EQ(s->ports[0].port, 8080);
  EXPECT_EQ(s->ports[1].name, "");  // "" is a name; nil is not
  EXPECT_EQ(s->ports[1].protocol, "TCP");
  EXPECT_FALSE(s->ports[2].port.has_value());  // nil port: "all ports"
  EXPECT_FALSE(s->ports[3].name.has_value());
  EXPECT_EQ(s->ports[3].protocol, "UDP");
}

TEST(ModelEndpointSliceTest, NoServiceNameLabelMeansNoServiceKey) {
  absl::StatusOr<EndpointSlice> s = parseEndpointSliceText(
      R"({"metadata": {"name": "orphan", "namespace": "n"}, "addressType": "FQDN"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->serviceKey(), "");
  EXPECT_EQ(s->address_type, "FQDN");
  EXPECT_TRUE(s->endpoints.empty());
}

TEST(ModelEndpointSliceTest, MalformedFieldsAreInvalidArgumentNamingTheField) {
  const BadCase cases[] = {
      {R"({"metadata": {"name": "s", "namespace": "n"}, "endpoints": []})",
       "EndpointSlice n/s: addressType: missing"},
      {R"({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": "198.18.1.1"}]})",
       "endpoints[0].addresses: want an array of strings"},
      {R"({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": ["a"], "conditions": {"ready": "true"}}]})",
       "endpoints[0].conditions.ready: want a boolean, got \"true\""},
      {R"({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{}, {"hints": {"forZones": [{"name": 3}]}}]})",
       "endpoints[1].hints.forZones[0].name: want a string"},
      {R"({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": -1}]})",
       "ports[0].port: want an integer in 0..65535, got -1"},
      {R"({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"name": 5}]})",
       "ports[0].name: want a string"},
      {R"({"metadata": {"name": "s"}, "addressType": 4})", "addressType: want a string"},
  };
  for (const BadCase& c : cases) {
    absl::StatusOr<EndpointSlice> s = parseEndpointSliceText(c.json);
    ASSERT_FALSE(s.ok()) << c.json;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.message)) << c.json;
  }
}

TEST(ModelNodeTest, TakesTheZoneLabel) {
  absl::StatusOr<Node> n = parseNodeText(R"({"metadata": {"name": "node-a", "resourceVersion": "7",
      "labels": {"topology.kubernetes.io/zone": "z1", "kubernetes.io/hostname": "node-a"}}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->name, "node-a");
  EXPECT_EQ(n->zone, "z1");
  EXPECT_EQ(n->resource_version, "7");
  absl::StatusOr<Node> bare = parseNodeText(R"({"metadata": {"name": "node-b"}})");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->zone, "");
  EXPECT_FALSE(parseNodeText(R"({"metadata": {"name": 1}})").ok());
}

// Every node of a real document replaced by each JSON type in turn, and every prefix of its
// text: the parsers return a Status (OK or INVALID_ARGUMENT) and never throw.
void forEachNode(nlohmann::json& node, const std::function<void()>& visit, nlohmann::json& root) {
  const nlohmann::json kinds[] = {nullptr,
                                  1,
                                  -7,
                                  1.5,
                                  "x",
                                  true,
                                  nlohmann::json::array(),
                                  nlohmann::json::object(),
                                  nlohmann::json::array({1, "y"})};
  nlohmann::json saved = node;
  for (const nlohmann::json& k : kinds) {
    node = k;
    visit();
  }
  node = saved;
  if (node.is_object()) {
    for (auto& [key, child] : node.items())
      forEachNode(child, visit, root);
  } else if (node.is_array()) {
    for (auto& child : node)
      forEachNode(child, visit, root);
  }
}

template <typename Parse>
int mutateEverywhere(absl::string_view text, Parse parse) {
  nlohmann::json root = nlohmann::json::parse(text);
  int runs = 0;
  forEachNode(
      root,
      [&] {
        ++runs;
        auto r = parse(root);
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
          // Refused by the readers' checks, not by an exception caught at the boundary.
          EXPECT_THAT(std::string(r.status().message()),
                      ::testing::Not(HasSubstr("json.exception")));
        }
      },
      root);
  return runs;
}

TEST(ModelRobustnessTest, EveryNodeOfEveryTypeNeverThrows) {
  EXPECT_GT(mutateEverywhere(kDualStackLb, [](const nlohmann::json& j) { return parseService(j); }),
            300);
  EXPECT_GT(mutateEverywhere(kSlice, [](const nlohmann::json& j) { return parseEndpointSlice(j); }),
            300);
}

TEST(ModelRobustnessTest, EveryPrefixOfTheTextIsRefusedWithoutThrowing) {
  for (size_t n = 0; n < kDualStackLb.size(); ++n)
    EXPECT_FALSE(parseServiceText(kDualStackLb.substr(0, n)).ok()) << n;
  for (size_t n = 0; n < kSlice.size(); ++n)
    EXPECT_FALSE(parseEndpointSliceText(kSlice.substr(0, n)).ok()) << n;
}

}  // namespace
}  // namespace lbd::controller::model
