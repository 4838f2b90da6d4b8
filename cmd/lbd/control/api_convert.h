// SPDX-License-Identifier: Apache-2.0
// Pure conversions between lbd.v1 messages and core's configuration model (K's translate*):
// every input is checked here (addresses, enums, ranges, durations) and refused with
// InvalidArgument naming the field and value; core then validates semantics. No I/O, no state.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/sched/scheduler.h"
#include "core/service/config.h"
#include "core/stats/stats.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd {

// The one place where absl::Status becomes grpc::Status: the codes are numerically identical.
grpc::Status toGrpcStatus(const absl::Status& s);

// ipvsadm's limits.
inline constexpr uint32_t kMaxTimeoutSeconds = 86400 * 31;
inline constexpr uint32_t kDefaultPersistSeconds = 360;

absl::StatusOr<IpAddr> addrFromProto(absl::string_view text, absl::string_view field);

absl::StatusOr<ServiceKey> serviceKeyFromProto(const ::lbd::v1::ServiceKey& k);
::lbd::v1::ServiceKey serviceKeyToProto(const ServiceKey& k);

// The service's attributes; p.dests() is ignored here (see configFromProto).
absl::StatusOr<ServiceConfig> serviceFromProto(const ::lbd::v1::Service& p);
// Without dests.
::lbd::v1::Service serviceToProto(const ServiceConfig& s);

absl::StatusOr<DestConfig> destFromProto(const ::lbd::v1::Dest& p);
::lbd::v1::Dest destToProto(const DestConfig& d);

// Unset or zero fields become 0 (= keep the current value, ServiceTable::setTimeouts).
absl::StatusOr<Timeouts> timeoutsFromProto(const ::lbd::v1::Timeouts& p);
::lbd::v1::Timeouts timeoutsToProto(const Timeouts& t);

absl::StatusOr<Sysctls> sysctlsFromProto(const ::lbd::v1::Sysctls& p);
::lbd::v1::Sysctls sysctlsToProto(const Sysctls& s);

absl::StatusOr<FwmarkRule> fwmarkRuleFromProto(const ::lbd::v1::FwmarkRule& p);
::lbd::v1::FwmarkRule fwmarkRuleToProto(const FwmarkRule& r);

// The whole configuration, services with their dests in the given order. Unset timeouts
// become the defaults (900 120 300).
absl::StatusOr<FullConfig> configFromProto(const ::lbd::v1::Config& p);
::lbd::v1::Config configToProto(const FullConfig& c);

::lbd::v1::Stats statsToProto(const StatsValues& v);
::lbd::v1::Rates ratesToProto(const RateValues& v);

// One connection as -Lnc shows it; `state` is connStateName(c), `now` the dataplane's clock.
::lbd::v1::Connection connToProto(const Conn& c, absl::string_view state, MonoTime now);

}  // namespace lb::lbd
