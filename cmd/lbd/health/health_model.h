// SPDX-License-Identifier: Apache-2.0
// keepalived.conf's virtual servers as lbd.v1 services and dests (pure): a virtual_server is
// one service, a `group` one service per group entry (address ranges expanded); the real
// servers' dests carry their configured weight; the sorry server is one more dest. And the
// difference between two pools as ApplyBatch operations.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "cmd/lbd/health/keepalived_conf.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::health {

struct VsPlan {
  std::vector<::lbd::v1::ServiceKey> keys;
  ::lbd::v1::Service service;            // without key
  std::vector<::lbd::v1::Dest> dests;    // one per real server, at its configured weight
  std::optional<::lbd::v1::Dest> sorry;  // the sorry server, weight 1
  std::vector<std::string> fifo_names;   // keepalived's name of each key in the notify FIFO
};

// InvalidArgument "FILE:LINE: reason" for what lbd cannot honour (a real server whose port
// differs from the service's under DR, a group of more than 4096 services, ...).
absl::StatusOr<std::vector<VsPlan>> planVirtualServers(const KeepalivedConfig& cfg);

// A pool: service key (serialized) → the service and its dests by "address|port".
struct PoolService {
  ::lbd::v1::ServiceKey key;
  ::lbd::v1::Service service;
  std::map<std::string, ::lbd::v1::Dest> dests;
};

using Pool = std::map<std::string, PoolService>;

std::string keyId(const ::lbd::v1::ServiceKey& k);
std::string destId(const ::lbd::v1::Dest& d);
std::string destId(const std::string& address, uint32_t port);
// "TCP 198.18.0.1:80", "FWM 7" (for logs and listings).
std::string keyName(const ::lbd::v1::ServiceKey& k);

// The operations that turn `from` into `to`: services deleted, created (then their dests),
// updated; dests deleted, created, updated. Nothing for what is equal.
::lbd::v1::ApplyBatchRequest diffPools(const Pool& from, const Pool& to);

}  // namespace lb::health
