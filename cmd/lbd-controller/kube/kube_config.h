// SPDX-License-Identifier: Apache-2.0
// Where the Kubernetes API server is and how to authenticate to it: in-cluster (the service
// account's mount) or a kubeconfig file (its current context). client-go's rest.Config, reduced
// to what lbd-controller needs.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbd::controller::kube {

struct ServerAddress {
  bool tls = true;        // https
  std::string host;       // without brackets
  std::string port;       // "443" when the URL has none
  std::string base_path;  // "" or a prefix such as "/k8s/clusters/c-1" (no trailing slash)
};

// "https://host:port[/prefix]", "http://...", "https://[::1]:6443". Refuses other schemes,
// user info, queries and fragments.
absl::StatusOr<ServerAddress> parseServerUrl(absl::string_view url);
// "host:port", bracketing an IPv6 literal (Go's net.JoinHostPort).
std::string joinHostPort(absl::string_view host, absl::string_view port);

struct KubeConfig {
  ServerAddress server;
  std::string tls_server_name;  // SNI and certificate name when not server.host
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;           // empty: the system's trust store
  std::string client_cert_pem;  // with client_key_pem: TLS client authentication
  std::string client_key_pem;
  std::string token;       // static bearer token
  std::string token_file;  // re-read (TokenSource); wins over token when both are set
  std::string ns;          // the context's (or pod's) namespace; may be empty
  std::string source;      // "in-cluster" or the kubeconfig path, for logs
};

inline constexpr absl::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

using GetEnv = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> processEnv(const char* name);

// In-cluster: KUBERNETES_SERVICE_HOST/PORT, sa_dir/ca.crt, sa_dir/token (as a token file) and
// sa_dir/namespace. NotFound when the variables are missing (not running in a pod).
absl::StatusOr<KubeConfig> loadInClusterConfig(const GetEnv& env = processEnv,
                                               absl::string_view sa_dir = kServiceAccountDir);

// A kubeconfig's current context (or `context` when not empty). Relative file paths in it are
// resolved against base_dir (the kubeconfig's directory). Files named by it are read here,
// except the token file, which TokenSource re-reads.
absl::StatusOr<KubeConfig> parseKubeconfig(absl::string_view text,
                                           absl::string_view base_dir,
                                           absl::string_view context = "");
absl::StatusOr<KubeConfig> loadKubeconfigFile(const std::string& path,
                                              absl::string_view context = "");

absl::StatusOr<std::string> readFile(const std::string& path, size_t max_bytes = 16u << 20);

}  // namespace lbd::controller::kube
