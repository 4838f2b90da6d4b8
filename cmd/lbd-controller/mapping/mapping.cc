// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/mapping/mapping.h"

namespace lbd::controller::mapping {

Desired mapCluster(const model::Store<model::Service>&,
                   const model::Store<model::EndpointSlice>&,
                   const std::optional<model::Node>&,
                   const MapOptions&) {
  return {};
}

std::string serviceKeyString(const lbd::v1::ServiceKey&) {
  return "";
}

std::string destKeyString(absl::string_view, uint32_t) {
  return "";
}

std::optional<std::string> canonicalAddress(absl::string_view) {
  return std::nullopt;
}

}  // namespace lbd::controller::mapping
