// SPDX-License-Identifier: Apache-2.0
// kubeconfig and in-cluster configuration, the YAML reader, URLs, backoff and the token source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd-controller/kube/backoff.h"
#include "cmd/lbd-controller/kube/kube_config.h"
#include "cmd/lbd-controller/kube/log.h"
#include "cmd/lbd-controller/kube/token_source.h"
#include "cmd/lbd-controller/kube/url.h"
#include "cmd/lbd-controller/kube/yaml_json.h"

namespace lbd::controller::kube {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kube_config_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }

  ~TempDir() { std::filesystem::remove_all(path_); }

  std::string write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(YamlJson, KubeconfigShapes) {
  absl::StatusOr<nlohmann::json> j = yamlToJson(R"(
apiVersion: v1
clusters:
- cluster:
    server: "https://127.0.0.1:6443"
    insecure-skip-tls-verify: true
  name: c1
list: [a, 'b', 3]
empty:
flow: {k: v}
)");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
  EXPECT_EQ((*j)["clusters"][0]["cluster"]["insecure-skip-tls-verify"], true);
  EXPECT_EQ((*j)["list"], nlohmann::json::array({"a", "b", "3"}));
  EXPECT_TRUE((*j)["empty"].is_null());
  EXPECT_EQ((*j)["flow"]["k"], "v");
  EXPECT_TRUE(yamlToJson("{\"json\": [1, 2]}").ok());  // JSON is YAML
  EXPECT_FALSE(yamlToJson("a: [1, 2").ok());
  EXPECT_FALSE(yamlToJson("a: &x 1\nb: *x\n").ok());
}

std::string b64(const std::string& s) {
  return absl::Base64Escape(s);
}

TEST(Kubeconfig, CurrentContextWithDataFields) {
  std::string text = absl::StrCat(R"(
apiVersion: v1
kind: Config
current-context: ctl
contexts:
- name: admin
  context: {cluster: other, user: admin}
- name: ctl
  context:
    cluster: test
    user: controller
    namespace: lbd-system
clusters:
- name: other
  cluster: {server: "https://10.0.0.1"}
- name: test
  cluster:
    server: https://[::1]:6443/prefix/
    certificate-authority-data: )",
                                  b64("CA PEM"), R"(
    tls-server-name: kubernetes.default
users:
- name: controller
  user:
    token: abc.def
    client-certificate-data: )",
                                  b64("CERT"), R"(
    client-key-data: )",
                                  b64("KEY"), "\n");
  absl::StatusOr<KubeConfig> c = parseKubeconfig(text, "/nonexistent");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->server.tls);
  EXPECT_EQ(c->server.host, "::1");
  EXPECT_EQ(c->server.port, "6443");
  EXPECT_EQ(c->server.base_path, "/prefix");
  EXPECT_EQ(c->tls_server_name, "kubernetes.default");
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token, "abc.def");
  EXPECT_EQ(c->ns, "lbd-system");
  EXPECT_FALSE(c->insecure_skip_tls_verify);

  absl::StatusOr<KubeConfig> admin = parseKubeconfig(text, "/nonexistent", "admin");
  EXPECT_EQ(admin.status().code(), absl::StatusCode::kNotFound);  // user "admin" is not listed
}

TEST(Kubeconfig, FilesRelativeToTheKubeconfig) {
  TempDir d;
  d.write("ca.crt", "CA FILE");
  d.write("c.crt", "CERT FILE");
  d.write("c.key", "KEY FILE");
  std::string path = d.write("config", R"(
current-context: x
contexts: [{name: x, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://k8s.example:443", certificate-authority: ca.crt}}]
users: [{name: u, user: {client-certificate: c.crt, client-key: c.key, tokenFile: tok}}]
)");
  absl::StatusOr<KubeConfig> c = loadKubeconfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, "CA FILE");
  EXPECT_EQ(c->client_cert_pem, "CERT FILE");
  EXPECT_EQ(c->client_key_pem, "KEY FILE");
  EXPECT_EQ(c->token_file, d.path() + "/tok");
  EXPECT_EQ(c->server.host, "k8s.example");
  EXPECT_EQ(c->source, path);
}

TEST(Kubeconfig, Refusals) {
  const std::string head = R"(
current-context: x
contexts: [{name: x, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://h", insecure-skip-tls-verify: true}}]
)";
  EXPECT_EQ(parseKubeconfig(head + "users: [{name: u, user: {exec: {command: aws}}}]", "")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(parseKubeconfig(head + "users: [{name: u, user: {username: a, password: b}}]", "")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_FALSE(parseKubeconfig(
                   head + "users: [{name: u, user: {client-certificate-data: " + b64("C") + "}}]",
                   "")
                   .ok());                                 // a certificate without its key
  EXPECT_FALSE(parseKubeconfig("contexts: []", "").ok());  // no current-context
  absl::StatusOr<KubeConfig> ok = parseKubeconfig(head + "users: [{name: u, user: {}}]", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->insecure_skip_tls_verify);
  EXPECT_EQ(ok->server.port, "443");
}

TEST(InCluster, EnvAndServiceAccountFiles) {
  TempDir d;
  d.write("ca.crt", "SA CA");
  d.write("token", "t1\n");
  d.write("namespace", "lbd\n");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto getenv = [&](const char* n) -> std::optional<std::string> {
    auto it = env.find(n);
    if (it == env.end())
      return std::nullopt;
    return it->second;
  };
  absl::StatusOr<KubeConfig> c = loadInClusterConfig(getenv, d.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.host, "fd00::1");
  EXPECT_EQ(joinHostPort(c->server.host, c->server.port), "[fd00::1]:443");
  EXPECT_EQ(c->ca_pem, "SA CA");
  EXPECT_EQ(c->token_file, d.path() + "/token");
  EXPECT_EQ(c->ns, "lbd");
  env.erase("KUBERNETES_SERVICE_PORT");
  EXPECT_EQ(loadInClusterConfig(getenv, d.path()).status().code(), absl::StatusCode::kNotFound);
}

TEST(ServerUrl, Parse) {
  EXPECT_EQ(parseServerUrl("http://127.0.0.1:8080")->port, "8080");
  EXPECT_FALSE(parseServerUrl("http://127.0.0.1:8080")->tls);
  EXPECT_EQ(parseServerUrl("https://[2001:2::1]")->port, "443");
  for (const char* bad : {"ftp://h", "https://", "https://::1:443", "https://h:0", "https://h:x",
                          "https://u@h", "https://h/?q", "https://[::1"}) {
    EXPECT_FALSE(parseServerUrl(bad).ok()) << bad;
  }
}

TEST(Url, PercentEncodingAndTargets) {
  EXPECT_EQ(percentEncode("a-b_c.d~e f/g=h,!i"), "a-b_c.d~e%20f%2Fg%3Dh%2C%21i");
  EXPECT_EQ(proxyLabelSelector("lbd"),
            "service.kubernetes.io/service-proxy-name=lbd,!service.kubernetes.io/headless");
  ResourcePath svc{"", "v1", "services"};
  ResourcePath eps{"discovery.k8s.io", "v1", "endpointslices"};
  EXPECT_EQ(collectionPath(svc), "/api/v1/services");
  EXPECT_EQ(collectionPath(eps, "ns1"), "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices");

  ListOptions l;
  l.label_selector = "a=b,!c";
  EXPECT_EQ(listTarget("/api/v1/services", l),
            "/api/v1/services?labelSelector=a%3Db%2C%21c&limit=500");
  l.resource_version = "42";
  l.resource_version_match = "NotOlderThan";
  EXPECT_EQ(listTarget("/p", l),
            "/p?labelSelector=a%3Db%2C%21c&limit=500&resourceVersion=42&resourceVersionMatch="
            "NotOlderThan");
  l.continue_token = "tok=";  // continue pages carry no resourceVersion
  EXPECT_EQ(listTarget("/p", l), "/p?labelSelector=a%3Db%2C%21c&limit=500&continue=tok%3D");

  WatchOptions w;
  w.field_selector = "metadata.name=node-1";
  w.resource_version = "7";
  w.timeout_seconds = 321;
  EXPECT_EQ(watchTarget("/api/v1/nodes", w),
            "/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dnode-1&resourceVersion=7"
            "&allowWatchBookmarks=true&timeoutSeconds=321");
}

TEST(BackoffTest, DoublesToTheCapThenResetsAfterQuiet) {
  Backoff b;
  auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  using std::chrono::milliseconds;
  std::vector<int64_t> got;
  for (int i = 0; i < 8; ++i)
    got.push_back(std::chrono::duration_cast<milliseconds>(b.next(t, 0.0)).count());
  EXPECT_EQ(got, (std::vector<int64_t>{800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}));
  // Jitter stretches a delay by at most 50 %, never past the cap.
  Backoff j;
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(j.next(t, 0.999999)).count(), 1199);
  // Two minutes without a failure: back to 0.8 s.
  EXPECT_EQ(
      std::chrono::duration_cast<milliseconds>(b.next(t + std::chrono::minutes(2), 0.0)).count(),
      800);
  EXPECT_EQ(
      std::chrono::duration_cast<milliseconds>(b.next(t + std::chrono::minutes(2), 0.0)).count(),
      1600);
}

TEST(TokenSourceTest, ReReadsEveryMinuteAndAfterInvalidate) {
  TempDir d;
  std::string f = d.write("token", "one\n");
  auto now = std::chrono::steady_clock::time_point{};
  TokenSource ts("static-ignored", f, [&] { return now; });
  EXPECT_EQ(*ts.token(), "one");
  d.write("token", "two");
  now += std::chrono::seconds(59);
  EXPECT_EQ(*ts.token(), "one");  // cached
  now += std::chrono::seconds(1);
  EXPECT_EQ(*ts.token(), "two");  // a minute old: re-read
  d.write("token", "three");
  ts.invalidate();  // a 401
  EXPECT_EQ(*ts.token(), "three");
  std::filesystem::remove(f);
  now += std::chrono::minutes(5);
  EXPECT_EQ(*ts.token(), "three");  // unreadable: the last token is kept

  TokenSource missing("", d.path() + "/nope");
  EXPECT_FALSE(missing.token().ok());
  TokenSource fixed("abc", "");
  EXPECT_EQ(*fixed.token(), "abc");
}

}  // namespace
}  // namespace lbd::controller::kube

namespace lbd::controller::kube {
namespace {

TEST(LogLine, TextAndJson) {
  std::string t = formatLogLine(false, LogLevel::kWarn, "reflector", "list failed",
                                {{"resource", "services"}, {"error", "HTTP 500: \"x\" y=z"}});
  EXPECT_NE(
      t.find(" warn reflector list failed resource=services error=\"HTTP 500: \\\"x\\\" y=z\""),
      std::string::npos)
      << t;
  std::string j = formatLogLine(true, LogLevel::kError, "main", "bad \xff byte", {{"k", "v\n"}});
  nlohmann::json p = nlohmann::json::parse(j);
  EXPECT_EQ(p["level"], "error");
  EXPECT_EQ(p["component"], "main");
  EXPECT_EQ(p["k"], "v\n");
  EXPECT_TRUE(p["ts"].is_string());
  LogLevel l;
  EXPECT_TRUE(parseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(parseLogLevel("verbose", &l));
}

}  // namespace
}  // namespace lbd::controller::kube
