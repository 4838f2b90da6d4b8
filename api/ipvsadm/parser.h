// SPDX-License-Identifier: Apache-2.0
// ipvsadm's command line (ipvsadm.c parse_options / process_options): commands, options, the
// command-versus-option legality table, defaults and checks, producing lbd.v1 messages.
// The ipvsadm grammar library: lbctl parses its command lines with it, lbd its --config file
// (one ipvsadm command per line).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::ipvsadm {

enum class CommandKind {
  kNone,
  kAddService,
  kEditService,
  kDeleteService,
  kFlush,
  kList,
  kAddDest,
  kDeleteDest,
  kEditDest,
  kSetTimeout,
  kStartDaemon,
  kStopDaemon,
  kRestore,
  kSave,
  kZero,
  kAddLaddr,  // DPVS -P
  kDelLaddr,  // DPVS -Q
  kGetLaddr,  // DPVS -G
  // lbctl's own commands (api/ipvsadm/lbd_commands.h): no ipvsadm equivalent.
  kSysctl,            // --sysctl [NAME[=VALUE]...]
  kAddFwmarkRule,     // --add-fwmark-rule
  kDelFwmarkRule,     // --del-fwmark-rule
  kListFwmarkRules,   // --list-fwmark-rules
  kClearFwmarkRules,  // --clear-fwmark-rules
  kHelp,
  kVersion,
};

// ipvsadm's FMT_* bits and list selectors, as plain booleans.
struct ListOptions {
  bool numeric = false;
  bool connection = false;  // -c
  bool timeout = false;     // --timeout
  bool daemon = false;      // --daemon
  bool stats = false;
  bool rate = false;
  bool thresholds = false;
  bool persistent_conn = false;
  bool tun_info = false;
  bool nosort = false;
  bool exact = false;
  bool json = false;  // lbctl's --output=json
};

// One --sysctl argument: NAME (read) or NAME=VALUE (write). `name` is the short name
// ("expire_nodest_conn"), whatever prefix was typed.
struct SysctlArg {
  std::string name;
  bool set = false;
  uint64_t value = 0;
};

struct Command {
  CommandKind kind = CommandKind::kNone;
  bool has_service = false;      // -t/-u/--sctp-service/-f given
  ::lbd::v1::Service service;    // key and attributes (-A/-E), or just the key
  bool has_dest = false;         // -r given
  ::lbd::v1::Dest dest;          // -a/-e/-d
  ::lbd::v1::Timeouts timeouts;  // --set
  std::string laddr;             // -z
  ListOptions list;
  std::string daemon_state;  // master | backup
  // --start-daemon / --stop-daemon: the role and the options as given (mcast_interface
  // ipvsadm's default "eth0" when not given, truncated to 15 characters as ipvsadm does).
  ::lbd::v1::SyncDaemon sync_daemon;
  std::vector<SysctlArg> sysctls;     // --sysctl
  ::lbd::v1::FwmarkRule fwmark_rule;  // --add-fwmark-rule / --del-fwmark-rule
  // Global client options (anywhere on the line).
  std::string server;    // --server=ADDR
  std::string tls_ca;    // --tls-ca=FILE
  std::string tls_cert;  // --tls-cert=FILE (mutual TLS)
  std::string tls_key;   // --tls-key=FILE
};

// A command line that ipvsadm would refuse: the message it prints and the exit status it uses
// (2 for option errors via fail(), 255 for tryhelp_exit(-1) and popt errors).
struct ParseError {
  std::string message;  // without trailing newline
  int exit_code = 2;
  // popt's own errors after the command (unknown option, missing argument): parse_options()
  // prints them and returns -1 instead of exiting, so ipvsadm -R goes on with the next line.
  // Every other error ends ipvsadm (fail(), tryhelp_exit()).
  bool returns = false;
};

// Parses argv[1..] (args excludes the program name). `program` is used in messages.
// Never exits and keeps no global state (getopt is reset on every call).
// Returns either a Command or a ParseError.
struct ParseResult {
  bool ok = false;
  Command command;
  ParseError error;
};

ParseResult parseIpvsadm(const std::string& program, const std::vector<std::string>& args);

// Splits one -R / config line into words (whitespace separated, '#' starts a comment, an
// optional leading "ipvsadm" or "lbctl" is dropped). Empty result for blank lines.
std::vector<std::string> splitRuleLine(const std::string& line);

// ipvsadm -h text and -v line, with `program` substituted.
std::string usageText(const std::string& program);
std::string versionText();

}  // namespace lb::ipvsadm
