// SPDX-License-Identifier: Apache-2.0
// The configuration model and its mutations, each validated whole then applied whole; builds
// ServiceSnapshot. The control half of ip_vs_ctl.c (ip_vs_add_service, ip_vs_edit_dest, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "core/service/config.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"

namespace lb {

// Control thread only (one mutation at a time). Every mutation copies the model, applies the
// change, validates the whole result, then commits it and builds a new snapshot (generation+1);
// on error it returns a Status naming the offending value and changes nothing:
//   AlreadyExists ("service TCP 198.18.0.1:80 already exists", "dest ... already exists"),
//   NotFound (service / dest / local address / scheduler not found), InvalidArgument (ranges,
//   flags, ports, l_threshold > u_threshold), FailedPrecondition (full NAT without local
//   addresses), ResourceExhausted (max_services, max_dests, local addresses per service).
// Keys are normalised: a fwmark key has proto TCP, no vaddr and vport 0; netmask 0 becomes the
// family's full prefix.
class ServiceTable {
 public:
  struct Limits {
    size_t max_services = 65536;
    size_t max_dests = 1 << 17;  // ids, tombstones included
    size_t workers = 1;          // stats blocks; more via runtime().setWorkers() before start
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
  // Frees tombstoned dest ids whose conns are all gone (active + inactive + persistent == 0)
  // and retired full-NAT pools nobody uses; call periodically (every commit does too). Returns
  // the number of dest ids freed. Freed ids are reused only after every fresh id has been used.
  size_t collectTrash();

  // Ids currently tombstoned (removed dests still referenced by conns).
  size_t trashSizeForTest() const { return trash_.size(); }

 private:
  // A dest id handed out: live, or tombstoned (dest trash) until its conns are gone.
  struct DestSlot {
    bool used = false;
    bool live = false;
    ServiceId svc = kNoService;
    ServiceKey svc_key;
    DestConfig config;
    int32_t last_weight = 0;  // latest non-zero weight (__ip_vs_update_dest)
  };

  // Dest trash key: the kernel's ip_vs_trash_get_dest matches the service by value.
  struct DestKey {
    ServiceKey svc;
    IpAddr addr;
    uint16_t port = 0;
    friend bool operator==(const DestKey&, const DestKey&) = default;

    template <typename H>
    friend H AbslHashValue(H h, const DestKey& k) {
      return H::combine(std::move(h), k.svc, k.addr, k.port);
    }
  };

  struct SchedState {
    SchedulerPtr scheduler;  // nullptr for "none"
    std::string name;
    SchedulerOptions options;
    std::vector<DestInfo> dests;  // as last given to create()/update()
  };
  struct Plan;

  absl::Status commit(FullConfig next);
  absl::StatusOr<Plan> makePlan(const FullConfig& next) const;
  absl::Status planScheduler(const ServiceConfig& svc,
                             const Sysctls& sysctls,
                             std::vector<DestInfo> infos,
                             Plan& plan,
                             size_t i) const;
  bool keepsScheduler(const ServiceConfig& svc, const Sysctls& sysctls, ServiceId id) const;
  absl::Status applySchedulers(Plan& plan);
  void applyIds(const FullConfig& next, const Plan& plan);
  void removeGone(const FullConfig& next, const Plan& plan);
  // Counts `next`'s NAT real servers into real_server_refs_; true when the set changed.
  bool updateRealServers(const FullConfig& next, const Plan& plan);
  void applyService(const ServiceWithDests& s, const Plan& plan, size_t i);
  void applyDest(const ServiceWithDests& s, const Plan& plan, size_t i, size_t j);
  // From config_; services the plan marks unchanged reuse their part of the current snapshot.
  // The real-server set is rebuilt from real_server_refs_ when `real_servers_changed`, else
  // shared with the current snapshot.
  void buildSnapshot(const Plan* plan = nullptr, bool real_servers_changed = true);
  void releaseServiceRef(ServiceId id);
  void retireService(ServiceId id);

  Limits limits_;
  FullConfig config_;
  std::unique_ptr<ServiceRuntime> runtime_;
  SnapshotPtr snapshot_;
  // Scheduler instances survive snapshots, keyed by service id.
  absl::flat_hash_map<ServiceId, SchedState> schedulers_;
  absl::flat_hash_map<ServiceKey, ServiceId> service_ids_;  // live services
  // Dest slots (live and tombstoned) naming each service id; a deleted service's id is reused
  // only once this drops to zero.
  absl::flat_hash_map<ServiceId, size_t> service_refs_;
  absl::flat_hash_set<ServiceId> retired_services_;  // deleted, id still named by tombstones
  std::vector<ServiceId> free_service_ids_;          // FIFO: reused only when fresh ids run out
  size_t free_service_head_ = 0;
  ServiceId next_service_id_ = 0;
  std::vector<DestSlot> dest_slots_;                 // indexed by DestId
  absl::flat_hash_map<DestKey, DestId> dest_index_;  // live and tombstoned
  std::vector<DestId> free_dest_ids_;                // FIFO: reused only when fresh ids run out
  size_t free_dest_head_ = 0;
  std::vector<DestId> trash_;  // tombstoned ids
  // NAT and full-NAT real servers of the model, each with the number of dests naming it.
  absl::flat_hash_map<ServiceSnapshot::RealServerKey, uint32_t> real_server_refs_;
  uint64_t generation_ = 0;
};

}  // namespace lb
