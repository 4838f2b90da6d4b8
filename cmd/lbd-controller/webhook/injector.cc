// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/webhook/injector.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace lbd::controller::webhook {
namespace {

using json = nlohmann::json;

// RFC 6901: "~" is "~0" and "/" is "~1" in a JSON pointer's token.
std::string pointerToken(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::set<std::string> names(const json& list) {
  std::set<std::string> out;
  if (!list.is_array())
    return out;
  for (const json& item : list) {
    if (item.is_object() && item.contains("name") && item["name"].is_string())
      out.insert(item["name"].get<std::string>());
  }
  return out;
}

const json& at(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object())
    return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

bool annotatedForInjection(const json& pod) {
  const json& v = at(at(at(pod, "metadata"), "annotations"), kInjectAnnotation.data());
  return v.is_string() && (v.get<std::string>() == "true" || v.get<std::string>() == "enabled");
}

json response(const std::string& uid, bool allowed) {
  json r = {{"apiVersion", "admission.k8s.io/v1"},
            {"kind", "AdmissionReview"},
            {"response", {{"uid", uid}, {"allowed", allowed}}}};
  return r;
}

}  // namespace

absl::StatusOr<InjectTemplate> parseInjectTemplate(absl::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError("inject template: not a JSON object");
  InjectTemplate t;
  const json& containers = at(j, "containers");
  if (!containers.is_array() || containers.empty())
    return absl::InvalidArgumentError("inject template: no containers");
  for (const json& c : containers) {
    if (!at(c, "name").is_string() || !at(c, "image").is_string())
      return absl::InvalidArgumentError("inject template: a container without name or image");
  }
  t.containers = containers;
  const json& volumes = at(j, "volumes");
  if (!volumes.is_null()) {
    if (!volumes.is_array())
      return absl::InvalidArgumentError("inject template: volumes is not a list");
    for (const json& v : volumes) {
      if (!at(v, "name").is_string())
        return absl::InvalidArgumentError("inject template: a volume without a name");
    }
    t.volumes = volumes;
  }
  return t;
}

json injectionPatch(const json& pod, const InjectTemplate& tmpl) {
  json ops = json::array();
  const json& spec = at(pod, "spec");
  for (const json& c : tmpl.containers)
    ops.push_back({{"op", "add"}, {"path", "/spec/containers/-"}, {"value", c}});
  if (!tmpl.volumes.empty()) {
    if (!at(spec, "volumes").is_array()) {
      ops.push_back({{"op", "add"}, {"path", "/spec/volumes"}, {"value", tmpl.volumes}});
    } else {
      for (const json& v : tmpl.volumes)
        ops.push_back({{"op", "add"}, {"path", "/spec/volumes/-"}, {"value", v}});
    }
  }
  if (!at(at(pod, "metadata"), "annotations").is_object()) {
    ops.push_back({{"op", "add"},
                   {"path", "/metadata/annotations"},
                   {"value", {{std::string(kInjectedAnnotation), "true"}}}});
  } else {
    ops.push_back(
        {{"op", "add"},
         {"path", absl::StrCat("/metadata/annotations/", pointerToken(kInjectedAnnotation))},
         {"value", "true"}});
  }
  return ops;
}

absl::StatusOr<json> review(const json& request, const InjectTemplate& tmpl) {
  const json& req = at(request, "request");
  const json& uid = at(req, "uid");
  if (!uid.is_string() || uid.get<std::string>().empty())
    return absl::InvalidArgumentError("not an AdmissionReview: no request.uid");
  const std::string id = uid.get<std::string>();
  const json& pod = at(req, "object");
  if (!pod.is_object() || !annotatedForInjection(pod))
    return response(id, true);

  const json& spec = at(pod, "spec");
  const std::set<std::string> have_containers = names(at(spec, "containers"));
  const std::set<std::string> want_containers = names(tmpl.containers);
  size_t present = 0;
  for (const std::string& n : want_containers)
    present += have_containers.count(n);
  if (present == want_containers.size())
    return response(id, true);  // injected already (a re-invocation, or a hand-written spec)

  std::string clash;
  if (present != 0) {
    for (const std::string& n : want_containers) {
      if (have_containers.count(n) != 0)
        clash = absl::StrCat("container ", n);
    }
  }
  const std::set<std::string> have_volumes = names(at(spec, "volumes"));
  for (const std::string& n : names(tmpl.volumes)) {
    if (have_volumes.count(n) != 0)
      clash = absl::StrCat("volume ", n);
  }
  for (const char* list : {"initContainers", "ephemeralContainers"}) {
    for (const std::string& n : names(at(spec, list))) {
      if (want_containers.count(n) != 0)
        clash = absl::StrCat("container ", n);
    }
  }
  if (!clash.empty()) {
    json r = response(id, false);
    r["response"]["status"] = {
        {"code", 400},
        {"message", absl::StrCat("lbd.io/inject: the pod already has a ", clash,
                                 " that lbd's sidecar needs; rename it or inject by hand")}};
    return r;
  }

  json r = response(id, true);
  r["response"]["patchType"] = "JSONPatch";
  r["response"]["patch"] = absl::Base64Escape(injectionPatch(pod, tmpl).dump());
  const json& automount = at(spec, "automountServiceAccountToken");
  if (automount.is_boolean() && !automount.get<bool>()) {
    r["response"]["warnings"] = json::array(
        {"lbd.io/inject: automountServiceAccountToken is false: the injected lbd-controller "
         "cannot reach the Kubernetes API"});
  }
  return r;
}

}  // namespace lbd::controller::webhook
