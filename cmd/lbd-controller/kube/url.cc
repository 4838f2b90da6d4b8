// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace lbd::controller::kube {

std::string percentEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string buildQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty())
      continue;
    absl::StrAppend(&q, q.empty() ? "?" : "&", percentEncode(k), "=", percentEncode(v));
  }
  return q;
}

std::string collectionPath(const ResourcePath& r, absl::string_view ns) {
  std::string p = r.group.empty() ? absl::StrCat("/api/", r.version)
                                  : absl::StrCat("/apis/", r.group, "/", r.version);
  if (!ns.empty())
    absl::StrAppend(&p, "/namespaces/", percentEncode(ns));
  absl::StrAppend(&p, "/", r.resource);
  return p;
}

std::string listTarget(absl::string_view base, const ListOptions& o) {
  std::vector<std::pair<std::string, std::string>> q = {
      {"labelSelector", o.label_selector},
      {"fieldSelector", o.field_selector},
      {"limit", o.limit > 0 ? absl::StrCat(o.limit) : ""},
      {"continue", o.continue_token},
  };
  // The continue token carries the snapshot's version: sending resourceVersion with it is an
  // error, and resourceVersionMatch without resourceVersion is invalid.
  if (o.continue_token.empty() && !o.resource_version.empty()) {
    q.emplace_back("resourceVersion", o.resource_version);
    q.emplace_back("resourceVersionMatch", o.resource_version_match);
  }
  return absl::StrCat(base, buildQuery(q));
}

std::string watchTarget(absl::string_view base, const WatchOptions& o) {
  return absl::StrCat(
      base, buildQuery({
                {"watch", "1"},
                {"labelSelector", o.label_selector},
                {"fieldSelector", o.field_selector},
                {"resourceVersion", o.resource_version},
                {"allowWatchBookmarks", o.allow_bookmarks ? "true" : ""},
                {"timeoutSeconds", o.timeout_seconds > 0 ? absl::StrCat(o.timeout_seconds) : ""},
            }));
}

std::string proxyLabelSelector(absl::string_view proxy_name) {
  return absl::StrCat("service.kubernetes.io/service-proxy-name=", proxy_name,
                      ",!service.kubernetes.io/headless");
}

}  // namespace lbd::controller::kube
