// SPDX-License-Identifier: Apache-2.0
// The health fields of lbd.v1 (Dest 20-29: health_checks, health_weight; Service 20-29:
// health_policy) checked at the edge and carried through core's configuration as opaque
// bytes (DestConfig::health, ServiceConfig::health): the state file, GetConfig, ReplaceConfig
// and a hot restart keep them. The health subsystem reads them back from each commit.
#pragma once

#include <string>

#include "absl/status/statusor.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd {

// Checks p's health fields; their bytes (deterministic; empty when there are none).
// InvalidArgument naming the field: a check without a type, a port over 65535, a bad address,
// a status code outside 100..999, a MISC check without a path, a negative duration.
absl::StatusOr<std::string> destHealthFromProto(const ::lbd::v1::Dest& p);
absl::StatusOr<std::string> serviceHealthFromProto(const ::lbd::v1::Service& p);

// Puts the fields back into `p` (nothing for empty bytes).
void destHealthToProto(const std::string& bytes, ::lbd::v1::Dest* p);
void serviceHealthToProto(const std::string& bytes, ::lbd::v1::Service* p);

}  // namespace lb::lbd
