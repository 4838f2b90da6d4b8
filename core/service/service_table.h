// SPDX-License-Identifier: Apache-2.0
// The configuration model and its mutations, each validated whole then applied whole; builds
// ServiceSnapshot. The control half of ip_vs_ctl.c (ip_vs_add_service, ip_vs_edit_dest, ...).
#ifndef LBD_CORE_SERVICE_SERVICE_TABLE_H_
#define LBD_CORE_SERVICE_SERVICE_TABLE_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/service/config.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"

namespace lb {

// Control thread only (one mutation at a time). Every mutation either succeeds whole or
// returns a Status naming the offending value and changes nothing:
//   AlreadyExists ("service TCP 198.18.0.1:80 already exists", "dest ... already exists"),
//   NotFound (service / dest / scheduler not found), InvalidArgument (ranges, flags, ports),
//   FailedPrecondition (e.g. l_threshold > u_threshold), ResourceExhausted (limits).
class ServiceTable {
 public:
  struct Limits {
    size_t max_services = 65536;
    size_t max_dests = 1 << 17;  // ids, tombstones included
  };
  explicit ServiceTable(const Limits& limits);
  ServiceTable() : ServiceTable(Limits{}) {}

  absl::Status addService(const ServiceConfig& svc);
  // Full replacement of the service's attributes (ipvsadm -E); dests are kept.
  absl::Status editService(const ServiceConfig& svc);
  absl::Status deleteService(const ServiceKey& key);
  absl::Status flush();  // -C
  absl::Status addDest(const ServiceKey& key, const DestConfig& dest);
  absl::Status editDest(const ServiceKey& key, const DestConfig& dest);  // full replacement
  absl::Status deleteDest(const ServiceKey& key, const IpAddr& addr, uint16_t port);
  // --set: zero fields keep the current value.
  absl::Status setTimeouts(const Timeouts& t);
  absl::Status setSysctls(const Sysctls& s);
  absl::Status addLocalAddr(const ServiceKey& key, const IpAddr& addr);
  absl::Status deleteLocalAddr(const ServiceKey& key, const IpAddr& addr);
  absl::Status setFwmarkRules(const std::vector<FwmarkRule>& rules);
  // Replaces everything (restore, the controller, the state file). Validated whole first.
  absl::Status replace(const FullConfig& cfg);
  // Checks a whole configuration without applying it.
  absl::Status validate(const FullConfig& cfg) const;

  // The model as it stands (dests in kernel list order).
  const FullConfig& config() const { return config_; }
  // The current snapshot; a new one is built by every successful mutation.
  SnapshotPtr snapshot() const { return snapshot_; }
  ServiceRuntime& runtime() { return *runtime_; }
  const ServiceRuntime& runtime() const { return *runtime_; }
  // Ids of a live service / dest, for stats. NotFound otherwise.
  absl::StatusOr<ServiceId> serviceId(const ServiceKey& key) const;
  absl::StatusOr<DestId> destId(const ServiceKey& key, const IpAddr& addr, uint16_t port) const;

 private:
  absl::Status commit(FullConfig next);
  Limits limits_;
  FullConfig config_;
  std::unique_ptr<ServiceRuntime> runtime_;
  SnapshotPtr snapshot_;
  // Scheduler instances survive snapshots, keyed by service id.
  absl::flat_hash_map<ServiceId, SchedulerPtr> schedulers_;
  absl::flat_hash_map<ServiceKey, ServiceId> service_ids_;
  uint64_t generation_ = 0;
};

}  // namespace lb

#endif  // LBD_CORE_SERVICE_SERVICE_TABLE_H_
