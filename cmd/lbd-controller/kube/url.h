// SPDX-License-Identifier: Apache-2.0
// Request targets for the Kubernetes REST API: resource paths and percent-encoded queries.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace lbd::controller::kube {

// RFC 3986: everything but ALPHA / DIGIT / "-" / "." / "_" / "~" becomes %XX (uppercase).
std::string percentEncode(absl::string_view s);
// "?k1=v1&k2=v2" with encoded values, pairs with an empty value left out; "" when none remain.
std::string buildQuery(const std::vector<std::pair<std::string, std::string>>& params);

// A collection: group "" is the core API (/api/v1), others /apis/<group>/<version>.
struct ResourcePath {
  std::string group;     // "", "discovery.k8s.io"
  std::string version;   // "v1"
  std::string resource;  // "services", "endpointslices", "nodes", "events"
};

// /api/v1/services, /api/v1/namespaces/ns/services, /apis/discovery.k8s.io/v1/endpointslices.
std::string collectionPath(const ResourcePath& r, absl::string_view ns = "");

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int limit = 500;
  std::string continue_token;
  std::string resource_version;
  std::string resource_version_match;  // "NotOlderThan" / "Exact"; only with resource_version
};

std::string listTarget(absl::string_view base, const ListOptions& o);

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int timeout_seconds = 0;
  bool allow_bookmarks = true;
};

std::string watchTarget(absl::string_view base, const WatchOptions& o);

// The label selector for lbd's objects: service-proxy-name=<proxy>,!headless (reference §1).
std::string proxyLabelSelector(absl::string_view proxy_name);

}  // namespace lbd::controller::kube
