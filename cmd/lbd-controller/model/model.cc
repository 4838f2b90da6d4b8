// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/model/model.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::model {

std::string objectKey(absl::string_view ns, absl::string_view name) {
  if (ns.empty())
    return std::string(name);
  return absl::StrCat(ns, "/", name);
}

std::string EndpointSlice::serviceKey() const {
  if (service_name.empty())
    return "";
  return objectKey(ns, service_name);
}

absl::StatusOr<Service> parseService(const nlohmann::json&) {
  return absl::UnimplementedError("parseService: not yet");
}

absl::StatusOr<EndpointSlice> parseEndpointSlice(const nlohmann::json&) {
  return absl::UnimplementedError("parseEndpointSlice: not yet");
}

absl::StatusOr<Node> parseNode(const nlohmann::json&) {
  return absl::UnimplementedError("parseNode: not yet");
}

absl::StatusOr<Service> parseService(absl::string_view) {
  return absl::UnimplementedError("parseService: not yet");
}

absl::StatusOr<EndpointSlice> parseEndpointSlice(absl::string_view) {
  return absl::UnimplementedError("parseEndpointSlice: not yet");
}

absl::StatusOr<Node> parseNode(absl::string_view) {
  return absl::UnimplementedError("parseNode: not yet");
}

}  // namespace lbd::controller::model
