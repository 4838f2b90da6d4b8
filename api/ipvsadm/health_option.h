// SPDX-License-Identifier: Apache-2.0
// lbctl's health-check options, which ipvsadm does not have (lbd reads them from its --config
// file and lbctl -R too; lbctl -S writes them):
//   -a/-e ... --check TYPE[,KEY[=VALUE]]...   one checker of the real server (repeatable)
//   -A/-E ... --health KEY=VALUE[,KEY=VALUE]... the service's health policy
// TYPE is tcp, http, ssl, udp, dns, ping or misc; the keys are keepalived.conf's (below).
// Values are percent-decoded ("%2C" is a comma, "%20" a space), so any value fits one word.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::ipvsadm {

// --check's argument. InvalidArgument naming the key: an unknown type or key, a key of
// another type, a bad number or duration (seconds, decimals allowed: 0.5).
absl::StatusOr<::lbd::v1::HealthCheck> parseCheckOption(absl::string_view text);
// The argument that parses back into `c` ("tcp,delay_loop=2,retry=3"); keys in a fixed order,
// only the ones set.
std::string formatCheckOption(const ::lbd::v1::HealthCheck& c);

// --health's argument: quorum=N, hysteresis=N, sorry=ADDR:PORT ([V6]:PORT),
// sorry_fwd=m|g|i|fullnat (default g, as -a).
absl::StatusOr<::lbd::v1::HealthPolicy> parseHealthOption(absl::string_view text);
std::string formatHealthOption(const ::lbd::v1::HealthPolicy& p);

// The text of --check's and --health's keys for lbctl -h.
std::string healthOptionsHelp();

}  // namespace lb::ipvsadm
