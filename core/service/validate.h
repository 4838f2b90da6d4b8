// SPDX-License-Identifier: Apache-2.0
// Validation and normalisation of the configuration model: the checks of ip_vs_ctl.c
// (ip_vs_add_service, ip_vs_check_udest, ip_vs_set_timeout, the sysctl handlers) plus the ones
// ipvsadm makes that the table keeps (weight range, tunnel options). Internal to lb_core_service.
#pragma once

#include <cstddef>

#include "absl/status/status.h"

#include "core/service/config.h"

namespace lb {

inline constexpr uint32_t kMaxPersistTimeout = 2678400;  // 31 days (ipvsadm, libipvs.h)
inline constexpr uint32_t kMaxTimeout = 2678400;         // --set values (ipvsadm)
inline constexpr uint32_t kMaxWeight = 65535;
inline constexpr uint32_t kMaxThreshold = 2147483647;    // INT_MAX
inline constexpr size_t kMaxLocalAddrsPerService = 256;  // LocalAddrPool::kMaxAddrs

// A fwmark key with proto TCP, no vaddr and vport 0 (how the kernel stores it). Any thread.
ServiceKey normalizeKey(ServiceKey key);
// normalizeKey, and netmask 0 => 32 / 128. Any thread.
void normalizeService(ServiceConfig& svc);
// Every service of `cfg` normalised. Any thread.
void normalizeConfig(FullConfig& cfg);

// Each returns OK or the first error, naming the offending value. Any thread; may allocate.
absl::Status validateService(const ServiceConfig& svc);
absl::Status validateDest(const ServiceConfig& svc, const DestConfig& dest);
absl::Status validateTimeouts(const Timeouts& t);
absl::Status validateSysctls(const Sysctls& s);
absl::Status validateFwmarkRule(const FwmarkRule& r, size_t index);
// The whole (normalised) configuration, including duplicates and the service limit. Scheduler
// names are looked up (NotFound) but no scheduler is built.
absl::Status validateConfig(const FullConfig& cfg, size_t max_services);

}  // namespace lb
