// SPDX-License-Identifier: Apache-2.0
// lbctl --list-checks: lbd's health checks (ListHealthChecks), a listing of lbd's own.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "cmd/lbctl/lbctl.h"

namespace lb::lbctl {

// Whether the command line asks for --list-checks (handled before the ipvsadm grammar).
bool isListChecks(const std::vector<std::string>& args);

// One line per checker: service, real server, checker, UP/DOWN, weight when up, attempts,
// failures, transitions, the last failure's reason.
std::string formatHealthChecks(const ::lbd::v1::ListHealthChecksResponse& resp);

// lbctl --list-checks [-t|-u SERVICE | -f MARK] [--output=json] [--server=ADDR] [--tls-*].
int runListChecks(const std::vector<std::string>& args,
                  std::ostream& out,
                  std::ostream& err,
                  const StubFactory& factory);

}  // namespace lb::lbctl
