// SPDX-License-Identifier: Apache-2.0
// The dataplane's part of a hot restart (lbd --takeover): what the old lbd hands the new one
// (TUN queue fds, the kernel state it installed, its conns) and how conns refer to services
// and real servers across the two processes, whose ids differ (the old one's history of
// edits, tombstones and recycled ids is not replayed).
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "core/conn/conn.h"
#include "core/service/snapshot.h"

namespace lb::lbd {

struct DataplaneHandover {
  // Old side: the dataplane's own fds (sent with SCM_RIGHTS, which duplicates them). New side:
  // the received fds, owned by Dataplane::adopt from the call on.
  std::vector<int> tun_fds;
  std::string kernel_state;  // KernelState::exportState
  std::string conns;         // encodeConns (core/conn/conn_snapshot.h)
  std::string ids;           // handoverIds: service and dest ids by their keys
};

// The old side's ids: one line per live service ("svc ID KEY") and per dest of it ("dest ID KEY
// ADDR PORT"). Removed (tombstoned) dests are not listed: their conns are not carried over.
std::string handoverIds(const ServiceSnapshot& snap);

// Maps the old side's ids to this snapshot's. Control thread.
class IdMap {
 public:
  IdMap(const std::string& old_ids, const ServiceSnapshot& snap);

  // Rewrites p.svc and p.dest to this side's ids; false when the service or dest is not in this
  // configuration.
  bool rebind(ConnParams& p) const;

 private:
  absl::flat_hash_map<ServiceId, ServiceId> svcs_;
  absl::flat_hash_map<DestId, DestId> dests_;
};

}  // namespace lb::lbd
