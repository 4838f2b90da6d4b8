// SPDX-License-Identifier: Apache-2.0
// lbd.v1's HealthCheck (a real server's checker, set through the API, lbctl --check, the
// --config file or the state file) ⇄ the checker model keepalived.conf parses into
// (CheckerSpec). Pure.
#pragma once

#include "cmd/lbd/health/keepalived_conf.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::health {

// Unset values stay unset (keepalived's defaults apply through resolveTiming); an HTTP or
// SSL check without a url gets keepalived's "GET /" expecting 200-299. file/line: "api", 0.
CheckerSpec checkerFromProto(const ::lbd::v1::HealthCheck& p);
// What lbd.v1 can carry of `c` (not: bind_port, bind_if, fwmark, http_protocol, reply
// lengths, user, log_all_failures).
::lbd::v1::HealthCheck checkerToProto(const CheckerSpec& c);

}  // namespace lb::health
