// SPDX-License-Identifier: Apache-2.0
// lbctl's own command-line words, which ipvsadm does not have: the global client options
// (--server, --tls-*, --output), the IPVS sysctls (--sysctl; ipvsadm leaves them to sysctl(8)
// and /proc/sys/net/ipv4/vs) and the fwmark classification rules (--add-fwmark-rule ...; with
// the kernel, iptables -t mangle -j MARK sets the mark that ipvsadm -f matches). lbd reads these
// lines from its --config file too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "api/ipvsadm/parser.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::ipvsadm {

// Takes --server, --tls-ca, --tls-cert, --tls-key and --output (anywhere on the line, "--x=V"
// or "--x V") out of `args` into `cmd`.
std::optional<ParseError> stripGlobalOptions(std::vector<std::string>& args, Command& cmd);

// Whether `first` starts one of lbctl's own commands (--sysctl, --*-fwmark-rule*).
bool isLbctlCommand(const std::string& first);

// Parses one of lbctl's own commands (args[0] is the command) into `cmd`. Errors exit 2, as
// ipvsadm's option errors do.
std::optional<ParseError> parseLbctlCommand(const std::vector<std::string>& args, Command& cmd);

// The sysctls, by their /proc/sys/net/ipv4/vs names, in sorted order (as sysctl(8) lists them).
std::vector<std::string> sysctlNames();
// Reads / writes one sysctl of the message. Durations are whole seconds (as /proc shows
// lblc_expiration). NotFound for an unknown name; InvalidArgument for a value out of range.
absl::StatusOr<uint64_t> getSysctl(const ::lbd::v1::Sysctls& s, const std::string& name);
absl::Status setSysctl(::lbd::v1::Sysctls& s, const std::string& name, uint64_t value);
// "net.ipv4.vs.NAME = VALUE\n", as `sysctl net.ipv4.vs.NAME` prints it.
std::string formatSysctl(const ::lbd::v1::Sysctls& s, const std::string& name);

// The rule as lbd stores it: destination masked to its prefix and written "addr/len", port
// range 0..65535 when none was given. Rules compare equal iff their canonical forms do.
::lbd::v1::FwmarkRule canonicalFwmarkRule(const ::lbd::v1::FwmarkRule& r);
// The command line that re-creates the rule:
// "--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80:90".
std::string fwmarkRuleLine(const ::lbd::v1::FwmarkRule& r);

}  // namespace lb::ipvsadm
