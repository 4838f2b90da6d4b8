// SPDX-License-Identifier: Apache-2.0
// The desired lbd services (mapping.h) against what lbd holds -> one ApplyBatchRequest that
// converges them: kube-proxy's syncService/syncEndpoint plus its graceful termination
// (pkg/proxy/ipvs/graceful_termination.go), with a bounded drain. Pure: no I/O, `now` passed in.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "cmd/lbd-controller/mapping/mapping.h"

#include "lbd/v1/lbd.pb.h"

namespace lbd::controller::mapping {

// TCP real servers gone from every slice, held at weight 0 while their connections end. Owned by
// the caller and kept across planSync calls (and across lbd restarts: a restarted lbd has lost
// the connections, so the drains end at the next plan). Losing it (controller restart) is safe:
// a weight-0 owned dest that is not desired starts a new drain.
struct DrainState {
  struct Entry {
    absl::Time since;  // when it was first seen draining
  };

  // By serviceKeyString + " " + destKeyString.
  std::map<std::string, Entry> draining;
};

struct PlanOptions {
  std::string owner = "lbd-controller";  // ApplyBatchRequest.owner; only such services are planned
  // A drained TCP dest is deleted when its active+inactive connections reach 0 or after this.
  absl::Duration drain_timeout = absl::Minutes(5);
};

struct Plan {
  // owner = PlanOptions::owner. Operations in this order: DeleteService (owned, not desired),
  // CreateService (then its CreateDests), UpdateService, DeleteDest, UpdateDest, CreateDest.
  // Empty operations = nothing to do.
  lbd::v1::ApplyBatchRequest request;
  // origins[i] = the Kubernetes Service ("namespace/name") operation i is for; "" for deletes of
  // services no Kubernetes Service wants any more. For turning BatchFailures into Events.
  std::vector<std::string> origins;
  // Desired VSs lbd already holds under another owner (an operator's, or another controller's):
  // not planned; "namespace/name" -> Problem (reason "AddressConflict", blocking).
  std::map<std::string, std::vector<Problem>> conflicts;
  // Dests still draining after this plan; when set, plan again by this time at the latest (the
  // earliest drain deadline). Conns are only seen by planning again: the caller re-plans every
  // few seconds while draining > 0.
  std::size_t draining = 0;
  std::optional<absl::Time> next_deadline;
};

// `actual` is lbd's ListServicesResponse (all services; those not owned by options.owner are
// only read for conflicts), with each dest's active/inactive connection counts. Services are
// matched by key, dests by (canonical address, port). A service is updated when scheduler,
// scheduler options, persistence, one_packet or local addresses differ; a dest when forward
// method, weight, thresholds or tunnel differ (so weights are reconciled on every plan, the
// reference's §6 item 9). A dest not desired: UDP/SCTP, drain off, or no connections -> deleted
// now; TCP with connections -> weight 0 and tracked in `drain` until active+inactive == 0 or
// drain_timeout since it started, then deleted. A desired dest that is draining or quiesced is
// updated in place (never deleted and re-added). Same inputs twice -> the second plan is empty.
Plan planSync(const Desired& desired,
              const lbd::v1::ListServicesResponse& actual,
              DrainState& drain,
              absl::Time now,
              const PlanOptions& options);

// The desired state as an owner-scoped ReplaceConfigRequest (config.services only, owner set):
// for a first sync without drains. planSync against ListServices is the usual path.
lbd::v1::ReplaceConfigRequest toReplaceConfig(const Desired& desired, absl::string_view owner);

}  // namespace lbd::controller::mapping
