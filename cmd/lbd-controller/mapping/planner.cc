// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/mapping/planner.h"

namespace lbd::controller::mapping {

Plan planSync(const Desired&,
              const lbd::v1::ListServicesResponse&,
              DrainState&,
              absl::Time,
              const PlanOptions&) {
  return {};
}

lbd::v1::ReplaceConfigRequest toReplaceConfig(const Desired&, absl::string_view) {
  return {};
}

}  // namespace lbd::controller::mapping
