// SPDX-License-Identifier: Apache-2.0
// The sidecar injector's decision: an AdmissionReview (admission.k8s.io/v1) for a pod in, the
// review's response out, with a JSONPatch (RFC 6902) that adds lbd and lbd-controller to a pod
// annotated lbd.io/inject: "true" (the way Linkerd's and Vault's injectors work). Pure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::webhook {

inline constexpr absl::string_view kInjectAnnotation = "lbd.io/inject";
inline constexpr absl::string_view kInjectedAnnotation = "lbd.io/injected";

// What is injected: containers and volumes, as the Helm chart renders them
// ({"containers": [...], "volumes": [...]}).
struct InjectTemplate {
  nlohmann::json containers = nlohmann::json::array();
  nlohmann::json volumes = nlohmann::json::array();
};

// Parses the chart's template.json. INVALID_ARGUMENT naming what is wrong: not JSON, no
// containers, a container or volume without a name.
absl::StatusOr<InjectTemplate> parseInjectTemplate(absl::string_view text);

// The AdmissionReview to send back for `review` (the request body). INVALID_ARGUMENT when the
// body is not an AdmissionReview with request.uid (answered 400). A pod that is not annotated,
// or already has the template's containers, is allowed unchanged; a pod whose containers or
// volumes clash by name with the template is refused with the clashing name (allowed: false);
// otherwise it is allowed with the patch. Never throws.
absl::StatusOr<nlohmann::json> review(const nlohmann::json& request, const InjectTemplate& tmpl);

// The JSONPatch operations alone (exposed for tests): appends the template's containers and
// volumes and sets lbd.io/injected: "true".
nlohmann::json injectionPatch(const nlohmann::json& pod, const InjectTemplate& tmpl);

}  // namespace lbd::controller::webhook
