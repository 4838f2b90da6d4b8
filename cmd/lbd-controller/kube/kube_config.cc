// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/kube_config.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "cmd/lbd-controller/kube/yaml_json.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::kube {
namespace {

using nlohmann::json;

// The string at obj[key], or "" when absent or not a string.
std::string str(const json& obj, const char* key) {
  if (!obj.is_object())
    return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool boolean(const json& obj, const char* key) {
  if (!obj.is_object())
    return false;
  auto it = obj.find(key);
  if (it == obj.end())
    return false;
  if (it->is_boolean())
    return it->get<bool>();
  return it->is_string() && it->get<std::string>() == "true";
}

// The `field` object of the entry named `name` in the list obj[list] (clusters, users,
// contexts); NotFound when there is none.
absl::StatusOr<json> named(const json& root,
                           const char* list,
                           const char* field,
                           const std::string& name) {
  auto l = root.find(list);
  if (l != root.end() && l->is_array()) {
    for (const json& e : *l) {
      if (str(e, "name") == name) {
        auto f = e.find(field);
        return f != e.end() && f->is_object() ? *f : json::object();
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("kubeconfig: no ", field, " named \"", name, "\""));
}

std::string resolvePath(absl::string_view base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || base_dir.empty())
    return p;
  return absl::StrCat(base_dir, "/", p);
}

// data (base64) wins over a file, as in client-go.
absl::StatusOr<std::string> pemFrom(const json& obj,
                                    const char* data_key,
                                    const char* file_key,
                                    absl::string_view base_dir) {
  std::string data = str(obj, data_key);
  if (!data.empty()) {
    std::string out;
    if (!absl::Base64Unescape(data, &out))
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", data_key, " is not base64"));
    return out;
  }
  std::string file = str(obj, file_key);
  if (file.empty())
    return std::string();
  return readFile(resolvePath(base_dir, file));
}

}  // namespace

std::optional<std::string> processEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr)
    return std::nullopt;
  return std::string(v);
}

std::string joinHostPort(absl::string_view host, absl::string_view port) {
  if (absl::StrContains(host, ':'))
    return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<ServerAddress> parseServerUrl(absl::string_view url) {
  ServerAddress a;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    a.tls = true;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    a.tls = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("server URL \"", url, "\": not https:// or http://"));
  }
  if (absl::StrContains(rest, '?') || absl::StrContains(rest, '#'))
    return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": query or fragment"));
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    absl::string_view path = rest.substr(slash);
    while (absl::ConsumeSuffix(&path, "/")) {
    }
    a.base_path = std::string(path);
  }
  if (hostport.empty() || absl::StrContains(hostport, '@'))
    return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": bad host"));
  absl::string_view port;
  if (hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos)
      return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": unclosed ["));
    a.host = std::string(hostport.substr(1, close - 1));
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":"))
      return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": bad port"));
    port = after;
  } else {
    size_t colon = hostport.rfind(':');
    if (colon != absl::string_view::npos && hostport.find(':') != colon)
      return absl::InvalidArgumentError(
          absl::StrCat("server URL \"", url, "\": an IPv6 address needs brackets"));
    a.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos)
      port = hostport.substr(colon + 1);
  }
  if (a.host.empty())
    return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": empty host"));
  if (port.empty()) {
    a.port = a.tls ? "443" : "80";
  } else {
    uint32_t p = 0;
    if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535)
      return absl::InvalidArgumentError(absl::StrCat("server URL \"", url, "\": bad port"));
    a.port = std::string(port);
  }
  return a;
}

absl::StatusOr<std::string> readFile(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string s;
  char buf[8192];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    s.append(buf, static_cast<size_t>(f.gcount()));
    if (s.size() > max_bytes)
      return absl::ResourceExhaustedError(absl::StrCat(path, ": larger than ", max_bytes));
  }
  if (f.bad())
    return absl::DataLossError(absl::StrCat("error reading ", path));
  return s;
}

absl::StatusOr<KubeConfig> loadInClusterConfig(const GetEnv& env, absl::string_view sa_dir) {
  std::optional<std::string> host = env("KUBERNETES_SERVICE_HOST");
  std::optional<std::string> port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port || host->empty() || port->empty())
    return absl::NotFoundError(
        "not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
        "(use --kubeconfig)");
  absl::StatusOr<ServerAddress> a =
      parseServerUrl(absl::StrCat("https://", joinHostPort(*host, *port)));
  if (!a.ok())
    return a.status();
  KubeConfig c;
  c.server = *a;
  c.source = "in-cluster";
  absl::StatusOr<std::string> ca = readFile(absl::StrCat(sa_dir, "/ca.crt"));
  if (!ca.ok())
    return ca.status();
  c.ca_pem = *ca;
  c.token_file = absl::StrCat(sa_dir, "/token");
  absl::StatusOr<std::string> ns = readFile(absl::StrCat(sa_dir, "/namespace"));
  if (ns.ok())
    c.ns = std::string(absl::StripAsciiWhitespace(*ns));
  return c;
}

absl::StatusOr<KubeConfig> parseKubeconfig(absl::string_view text,
                                           absl::string_view base_dir,
                                           absl::string_view context) {
  absl::StatusOr<json> root = yamlToJson(text);
  if (!root.ok())
    return root.status();
  if (!root->is_object())
    return absl::InvalidArgumentError("kubeconfig: not a mapping");
  std::string ctx_name = context.empty() ? str(*root, "current-context") : std::string(context);
  if (ctx_name.empty())
    return absl::InvalidArgumentError("kubeconfig: no current-context");
  absl::StatusOr<json> ctx = named(*root, "contexts", "context", ctx_name);
  if (!ctx.ok())
    return ctx.status();
  absl::StatusOr<json> cluster = named(*root, "clusters", "cluster", str(*ctx, "cluster"));
  if (!cluster.ok())
    return cluster.status();
  KubeConfig c;
  c.ns = str(*ctx, "namespace");
  absl::StatusOr<ServerAddress> a = parseServerUrl(str(*cluster, "server"));
  if (!a.ok())
    return a.status();
  c.server = *a;
  c.tls_server_name = str(*cluster, "tls-server-name");
  c.insecure_skip_tls_verify = boolean(*cluster, "insecure-skip-tls-verify");
  absl::StatusOr<std::string> ca =
      pemFrom(*cluster, "certificate-authority-data", "certificate-authority", base_dir);
  if (!ca.ok())
    return ca.status();
  c.ca_pem = *ca;
  std::string user_name = str(*ctx, "user");
  if (!user_name.empty()) {
    absl::StatusOr<json> user = named(*root, "users", "user", user_name);
    if (!user.ok())
      return user.status();
    if (user->contains("exec") || user->contains("auth-provider"))
      return absl::UnimplementedError(absl::StrCat(
          "kubeconfig user \"", user_name, "\": exec and auth-provider plugins are not supported"));
    if (!str(*user, "username").empty() || !str(*user, "password").empty())
      return absl::UnimplementedError(
          absl::StrCat("kubeconfig user \"", user_name, "\": basic auth is not supported"));
    absl::StatusOr<std::string> cert =
        pemFrom(*user, "client-certificate-data", "client-certificate", base_dir);
    if (!cert.ok())
      return cert.status();
    absl::StatusOr<std::string> key = pemFrom(*user, "client-key-data", "client-key", base_dir);
    if (!key.ok())
      return key.status();
    if (cert->empty() != key->empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "kubeconfig user \"", user_name, "\": a client certificate needs its key and back"));
    c.client_cert_pem = *cert;
    c.client_key_pem = *key;
    c.token = str(*user, "token");
    std::string tf = str(*user, "tokenFile");
    if (!tf.empty())
      c.token_file = resolvePath(base_dir, tf);
  }
  return c;
}

absl::StatusOr<KubeConfig> loadKubeconfigFile(const std::string& path, absl::string_view context) {
  absl::StatusOr<std::string> text = readFile(path);
  if (!text.ok())
    return text.status();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  absl::StatusOr<KubeConfig> c = parseKubeconfig(*text, dir, context);
  if (!c.ok())
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  c->source = path;
  return c;
}

}  // namespace lbd::controller::kube
