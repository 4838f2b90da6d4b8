// SPDX-License-Identifier: Apache-2.0
// YAML (a kubeconfig) -> nlohmann::json, through libyaml's event parser. Kubeconfigs use block
// and flow mappings, sequences and scalars only; anchors and aliases are refused.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::kube {

// Plain scalars true/false become booleans and null/~/empty become null; every other scalar,
// numbers included, stays a string (what a kubeconfig needs). Only the first document is read.
absl::StatusOr<nlohmann::json> yamlToJson(absl::string_view text);

}  // namespace lbd::controller::kube
