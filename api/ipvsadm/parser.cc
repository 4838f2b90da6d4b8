// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/parser.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "api/ipvsadm/lbd_commands.h"
#include "api/ipvsadm/parser_options.h"
#include "api/ipvsadm/tables.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

// Thrown-free early exit: every check returns this on failure.
struct Failure {
  std::string message;
  int exit_code;
  bool returns = false;  // ParseError::returns
};

// The parser's working state: ipvsadm's ipvs_command_entry plus the option bit set.
class Parser {
 public:
  explicit Parser(std::string program) : program_(std::move(program)) {
    // process_options' defaults: weight 1, DR, ipip, /32 persistence granularity.
    cmd_.dest.set_weight(1);
    cmd_.dest.set_forward_method(pb::FORWARD_METHOD_DIRECT_ROUTE);
  }

  std::optional<Failure> run(std::vector<std::string> args);

  Command& command() { return cmd_; }

 private:
  std::optional<Failure> fail(std::string msg) { return Failure{std::move(msg), 2}; }

  std::optional<Failure> tryHelp() {
    return Failure{
        absl::StrFormat("Try `%s -h' or '%s --help' for more information.", program_, program_),
        255};
  }

  std::optional<Failure> setCommand(CommandKind k);
  std::optional<Failure> setOption(int opt);
  std::optional<Failure> handleOption(int c, const char* arg);
  std::optional<Failure> handleServiceOption(int c, const char* arg);
  std::optional<Failure> handleDestOption(int c, const char* arg);
  std::optional<Failure> handleListOption(int c);
  std::optional<Failure> handleDaemonOption(int c, const char* arg);
  std::optional<Failure> handleTunnelOption(int c, const char* arg);
  std::optional<Failure> finishOptions(const std::vector<std::string>& positional);
  std::optional<Failure> genericOptCheck();
  std::optional<Failure> tunnelOptCheck();
  std::optional<Failure> semanticChecks();
  std::optional<Failure> parseSchedFlags();

  bool has(int opt) const { return (options_ & (uint64_t{1} << opt)) != 0; }

  std::string program_;
  Command cmd_;
  uint64_t options_ = 0;
  int svc_af_ = AF_INET;
  int dest_af_ = AF_INET;
  uint16_t svc_port_ = 0;
  uint32_t fwmark_ = 0;
  pb::Protocol svc_proto_ = pb::PROTOCOL_UNSPECIFIED;
  std::string sched_name_;
  std::string sched_flags_arg_;
  int tun_type_ = 0;        // 0 ipip, 1 gue, 2 gre (IP_VS_CONN_F_TUNNEL_TYPE_*)
  uint32_t tun_flags_ = 0;  // bit 0 csum, bit 1 remcsum (IP_VS_TUNNEL_ENCAP_FLAG_*)
  uint32_t tun_port_ = 0;
  int netmask_prefix_ = 0;
  std::string pe_name_;
};

std::optional<Failure> Parser::setCommand(CommandKind k) {
  if (cmd_.kind != CommandKind::kNone)
    return fail("multiple commands specified");
  cmd_.kind = k;
  return std::nullopt;
}

std::optional<Failure> Parser::setOption(int opt) {
  uint64_t bit = uint64_t{1} << opt;
  if ((options_ & bit) != 0) {
    return fail(absl::StrFormat("multiple '%s' options specified", kOptNames[opt]));
  }
  options_ |= bit;
  return std::nullopt;
}

std::optional<Failure> Parser::handleServiceOption(int c, const char* arg) {
  if (auto f = setOption(kOptService))
    return f;
  cmd_.has_service = true;
  pb::ServiceKey* key = cmd_.service.mutable_key();
  if (c == 'f') {
    errno = 0;
    char* end = nullptr;
    long long l = std::strtoll(arg, &end, 10);
    if (*end != '\0' || end == arg || errno == ERANGE || l <= 0 || l > UINT_MAX) {
      return fail(absl::StrFormat("invalid fwmark value `%s' specified", arg));
    }
    fwmark_ = static_cast<uint32_t>(l);
    svc_af_ = AF_INET;
    svc_proto_ = pb::PROTOCOL_TCP;
    key->mutable_fwmark()->set_mark(fwmark_);
    key->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
    return std::nullopt;
  }
  svc_proto_ = c == 't' ? pb::PROTOCOL_TCP : c == 'u' ? pb::PROTOCOL_UDP : pb::PROTOCOL_SCTP;
  ParsedAddr a;
  a.af = svc_af_;
  int parse = parseService(arg, svc_proto_, &a);
  if ((parse & kSvcAddr) == 0)
    return fail("illegal virtual server address[:port] specified");
  svc_af_ = a.af;
  svc_port_ = a.port;
  pb::VirtualAddress* va = key->mutable_address();
  va->set_protocol(svc_proto_);
  va->set_address(a.address);
  va->set_port(a.port);
  return std::nullopt;
}

std::optional<Failure> Parser::handleDestOption(int c, const char* arg) {
  switch (c) {
    case 'r': {
      if (auto f = setOption(kOptServer))
        return f;
      cmd_.has_dest = true;
      ParsedAddr a;
      a.af = svc_af_;
      int parse = parseService(arg, svc_proto_, &a);
      if ((parse & kSvcAddr) == 0)
        return fail("illegal real server address[:port] specified");
      dest_af_ = a.af;
      cmd_.dest.set_address(a.address);
      // Copy vport to dport when not given (as of the moment -r is parsed, as ipvsadm does).
      cmd_.dest.set_port(parse == kSvcAddr ? svc_port_ : a.port);
      return std::nullopt;
    }
    case 'i':
    case 'g':
    case 'm':
    case kTagFullNat: {
      if (auto f = setOption(kOptForward))
        return f;
      cmd_.dest.set_forward_method(c == 'i'   ? pb::FORWARD_METHOD_TUNNEL
                                   : c == 'g' ? pb::FORWARD_METHOD_DIRECT_ROUTE
                                   : c == 'm' ? pb::FORWARD_METHOD_MASQ
                                              : pb::FORWARD_METHOD_FULL_NAT);
      return std::nullopt;
    }
    case 'w': {
      if (auto f = setOption(kOptWeight))
        return f;
      int64_t n = stringToNumber(arg, 0, 65535);
      if (n == -1)
        return fail("illegal weight specified");
      cmd_.dest.set_weight(static_cast<uint32_t>(n));
      return std::nullopt;
    }
    case 'x':
    case 'y': {
      if (auto f = setOption(c == 'x' ? kOptUThreshold : kOptLThreshold))
        return f;
      int64_t n = stringToNumber(arg, 0, INT_MAX);
      if (n == -1) {
        return fail(c == 'x' ? "illegal u_threshold specified" : "illegal l_threshold specified");
      }
      if (c == 'x') {
        cmd_.dest.set_upper_threshold(static_cast<uint32_t>(n));
      } else {
        cmd_.dest.set_lower_threshold(static_cast<uint32_t>(n));
      }
      return std::nullopt;
    }
    default:
      return handleTunnelOption(c, arg);
  }
}

std::optional<Failure> Parser::handleTunnelOption(int c, const char* arg) {
  switch (c) {
    case kTagTunType: {
      if (auto f = setOption(kOptTunType))
        return f;
      std::string t = arg;
      if (t == "ipip") {
        tun_type_ = 0;
      } else if (t == "gue") {
        tun_type_ = 1;
      } else if (t == "gre") {
        tun_type_ = 2;
      } else {
        return fail("illegal tunnel type specified");
      }
      return std::nullopt;
    }
    case kTagTunPort: {
      if (auto f = setOption(kOptTunPort))
        return f;
      int64_t n = stringToNumber(arg, 1, 65535);
      if (n == -1)
        return fail("illegal tunnel port specified");
      tun_port_ = static_cast<uint32_t>(n);
      return std::nullopt;
    }
    case kTagTunNoCsum:
      return setOption(kOptTunNoCsum);
    case kTagTunCsum:
      tun_flags_ |= 1;
      return setOption(kOptTunCsum);
    case kTagTunRemCsum:
      tun_flags_ |= 2;
      return setOption(kOptTunRemCsum);
    default:
      return Failure{absl::StrFormat("invalid option `%d'", c), 2};
  }
}

std::optional<Failure> Parser::handleListOption(int c) {
  ListOptions& l = cmd_.list;
  switch (c) {
    case 'c':
      l.connection = true;
      return setOption(kOptConnection);
    case 'n':
      l.numeric = true;
      return setOption(kOptNumeric);
    case kTagTimeout:
      l.timeout = true;
      return setOption(kOptTimeout);
    case kTagDaemon:
      l.daemon = true;
      return setOption(kOptDaemon);
    case kTagStats:
      l.stats = true;
      return setOption(kOptStats);
    case kTagRate:
      l.rate = true;
      return setOption(kOptRate);
    case kTagThresholds:
      l.thresholds = true;
      return setOption(kOptThresholds);
    case kTagPersistentConn:
      l.persistent_conn = true;
      return setOption(kOptPersistentConn);
    case kTagNoSort:
      l.nosort = true;
      return setOption(kOptNoSort);
    case kTagSort:
      return std::nullopt;  // sorting is the default: a no-op, as in ipvsadm
    case 'X':
      l.exact = true;
      return setOption(kOptExact);
    case kTagTunInfo:
      l.tun_info = true;
      return setOption(kOptTunInfo);
    default:
      return std::nullopt;
  }
}

std::optional<Failure> Parser::handleDaemonOption(int c, const char* arg) {
  std::optional<int> opt = syncDaemonOptionBit(c);
  if (!opt)
    return std::nullopt;
  if (auto f = setOption(*opt))
    return f;
  if (std::optional<std::string> refused = setSyncDaemonOption(c, arg, &cmd_.sync_daemon))
    return fail(std::move(*refused));
  return std::nullopt;
}

std::optional<Failure> Parser::handleOption(int c, const char* arg) {
  switch (c) {
    case 't':
    case 'u':
    case 'f':
    case kTagSctp:
      return handleServiceOption(c, arg);
    case 's':
      if (auto f = setOption(kOptScheduler))
        return f;
      sched_name_ = std::string(arg).substr(0, 15);  // IP_VS_SCHEDNAME_MAXLEN - 1
      return std::nullopt;
    case 'p': {
      if (auto f = setOption(kOptPersistent))
        return f;
      int timeout = kDefaultPersistTimeout;
      if (arg != nullptr) {
        int64_t n = stringToNumber(arg, 1, kMaxTimeout);
        if (n == -1)
          return fail(absl::StrFormat("invalid timeout value `%s' specified", arg));
        timeout = static_cast<int>(n);
      }
      cmd_.service.mutable_persistence()->mutable_timeout()->set_seconds(timeout);
      return std::nullopt;
    }
    case 'M': {
      if (auto f = setOption(kOptNetmask))
        return f;
      if (svc_af_ != AF_INET6) {
        in_addr m{};
        bool ok = inet_aton(arg, &m) != 0;
        if (!ok) {
          std::optional<in_addr> r = hostToAddr(arg);
          ok = r.has_value();
          if (ok)
            m = *r;
        }
        std::optional<int> prefix = ok ? maskToPrefix(m) : std::nullopt;
        if (!prefix || *prefix == 0) {
          return fail("illegal virtual server persistent mask specified");
        }
        netmask_prefix_ = *prefix;
      } else {
        int n = std::atoi(arg);
        if (n < 1 || n > 128)
          return fail("illegal ipv6 netmask specified");
        netmask_prefix_ = n;
      }
      return std::nullopt;
    }
    case 'o':
      cmd_.service.set_one_packet(true);
      return setOption(kOptOnePacket);
    case kTagSynproxy:
      cmd_.service.set_synproxy(true);
      return setOption(kOptSynproxy);
    case kTagCheck: {
      // Repeatable: one checker each.
      if (!has(kOptCheck)) {
        if (auto f = setOption(kOptCheck))
          return f;
      }
      if (std::optional<std::string> refused = addCheckOption(arg, &cmd_.dest))
        return fail(std::move(*refused));
      return std::nullopt;
    }
    case kTagHealth: {
      if (auto f = setOption(kOptHealth))
        return f;
      if (std::optional<std::string> refused = setHealthOption(arg, &cmd_.service))
        return fail(std::move(*refused));
      return std::nullopt;
    }
    case kTagPe:
      if (auto f = setOption(kOptPe))
        return f;
      pe_name_ = std::string(arg).substr(0, 32);
      return std::nullopt;
    case 'b':
      if (auto f = setOption(kOptSchedFlags))
        return f;
      sched_flags_arg_ = std::string(arg).substr(0, 127);
      return std::nullopt;
    case '6':
      if (fwmark_ == 0)
        return fail("-6 used before -f\n");
      svc_af_ = AF_INET6;
      cmd_.service.mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET6);
      return std::nullopt;
    case 'z': {
      if (auto f = setOption(kOptLaddr))
        return f;
      ParsedAddr a;
      int parse = parseService(arg, svc_proto_, &a);
      if (parse != kSvcAddr)
        return fail("illegal local address specified");
      cmd_.laddr = a.address;
      return std::nullopt;
    }
    case 'r':
    case 'i':
    case 'g':
    case 'm':
    case kTagFullNat:
    case 'w':
    case 'x':
    case 'y':
    case kTagTunType:
    case kTagTunPort:
    case kTagTunNoCsum:
    case kTagTunCsum:
    case kTagTunRemCsum:
      return handleDestOption(c, arg);
    case 'c':
    case 'n':
    case 'X':
    case kTagTimeout:
    case kTagDaemon:
    case kTagStats:
    case kTagRate:
    case kTagThresholds:
    case kTagPersistentConn:
    case kTagNoSort:
    case kTagSort:
    case kTagTunInfo:
      return handleListOption(c);
    default:
      return handleDaemonOption(c, arg);
  }
}

std::string optionText(char** argv, int optind_now, int c) {
  const char* last = argv[optind_now - 1];
  if (last != nullptr && std::strncmp(last, "--", 2) == 0) {
    return std::string(last).substr(0, std::string(last).find('='));
  }
  return absl::StrCat("-", std::string(1, static_cast<char>(c)));
}

std::optional<Failure> Parser::run(std::vector<std::string> args) {
  std::vector<std::string> store;
  store.push_back(program_);
  for (std::string& a : args)
    store.push_back(std::move(a));
  std::vector<char*> argv;
  for (std::string& s : store)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(store.size());

  optind = 0;  // glibc: full re-initialisation, so the parser can run many times
  opterr = 0;
  std::vector<std::string> positional;
  bool first = true;
  for (;;) {
    int c = getopt_long(argc, argv.data(), kShortOpts, kLongOpts, nullptr);
    if (c == -1) {
      if (optind >= argc)
        break;
      if (first)
        return tryHelp();
      positional.emplace_back(argv[static_cast<size_t>(optind)]);
      ++optind;
      continue;
    }
    // popt: an error before the command is tryhelp_exit(); after it, parse_options() prints
    // the error and returns -1.
    if ((c == '?' || c == ':') && first)
      return tryHelp();
    if (c == '?') {
      std::string bad = optopt != 0 ? absl::StrCat("-", std::string(1, static_cast<char>(optopt)))
                                    : std::string(argv[static_cast<size_t>(optind - 1)]);
      return Failure{absl::StrCat(bad, ": unknown option"), 255, true};
    }
    if (c == ':') {
      return Failure{absl::StrCat(optionText(argv.data(), optind, optopt), ": missing argument"),
                     255, true};
    }
    const char* arg = optarg;
    // popt's optional argument: "-p 360" takes the next word unless it is an option.
    if (c == 'p' && arg == nullptr && optind < argc &&
        argv[static_cast<size_t>(optind)][0] != '-') {
      arg = argv[static_cast<size_t>(optind)];
      ++optind;
    }
    if (first) {
      first = false;
      std::optional<CommandKind> k = commandFor(c);
      if (!k)
        return tryHelp();
      if (auto f = setCommand(*k))
        return f;
      if (*k == CommandKind::kHelp || *k == CommandKind::kVersion)
        return std::nullopt;
      if (*k == CommandKind::kStartDaemon || *k == CommandKind::kStopDaemon) {
        std::string state = arg;
        if (state != "master" && state != "backup") {
          return fail(*k == CommandKind::kStartDaemon ? "illegal start-daemon parameter specified"
                                                      : "illegal start_daemon specified");
        }
        cmd_.daemon_state = state;
        cmd_.sync_daemon.set_role(state == "master" ? pb::SYNC_DAEMON_ROLE_MASTER
                                                    : pb::SYNC_DAEMON_ROLE_BACKUP);
        if (cmd_.sync_daemon.mcast_interface().empty())
          cmd_.sync_daemon.set_mcast_interface("eth0");  // ipvsadm's DEF_MCAST_IFN
      }
      continue;
    }
    if (commandFor(c).has_value()) {
      return fail(absl::StrFormat("invalid option `%s'", optionText(argv.data(), optind, c)));
    }
    if (auto f = handleOption(c, arg))
      return f;
  }
  if (first)
    return tryHelp();
  if (auto f = finishOptions(positional))
    return f;
  if (auto f = genericOptCheck())
    return f;
  return semanticChecks();
}

std::optional<Failure> Parser::finishOptions(const std::vector<std::string>& positional) {
  size_t used = 0;
  if (cmd_.kind == CommandKind::kSetTimeout) {
    if (positional.size() < 3)
      return fail("--set option requires 3 timeout values");
    int64_t v[3];
    for (size_t i = 0; i < 3; ++i) {
      v[i] = stringToNumber(positional[i].c_str(), 0, kMaxTimeout);
      if (v[i] == -1) {
        return fail(absl::StrFormat("invalid timeout value `%s' specified", positional[i]));
      }
    }
    cmd_.timeouts.mutable_tcp()->set_seconds(v[0]);
    cmd_.timeouts.mutable_tcp_fin()->set_seconds(v[1]);
    cmd_.timeouts.mutable_udp()->set_seconds(v[2]);
    used = 3;
  }
  if (positional.size() > used) {
    return fail(absl::StrFormat("unexpected argument %s", positional[used]));
  }
  if (!sched_flags_arg_.empty())
    return parseSchedFlags();
  return std::nullopt;
}

std::optional<Failure> Parser::parseSchedFlags() {
  const std::string sched = sched_name_.empty() ? "wlc" : sched_name_;
  uint32_t bits = 0;
  std::vector<std::string> flags = absl::StrSplit(sched_flags_arg_, ',', absl::SkipEmpty());
  if (flags.empty())
    return fail("invalid scheduler flag `'");
  for (const std::string& flag : flags) {
    if (flag == "flag-1") {
      bits |= 1;
    } else if (flag == "flag-2") {
      bits |= 2;
    } else if (flag == "flag-3") {
      bits |= 4;
    } else if (flag == "sh-fallback" || flag == "sh-port" || flag == "mh-fallback" ||
               flag == "mh-port") {
      bits |= absl::EndsWith(flag, "fallback") ? 1u : 2u;
      if (sched != flag.substr(0, 2)) {
        return fail(absl::StrFormat("incompatible scheduler flag `%s'", flag));
      }
    } else {
      return fail(absl::StrFormat("invalid scheduler flag `%s'", flag));
    }
  }
  // Typed options for sh/mh (SCHED1 = fallback, SCHED2 = port); raw flags otherwise.
  pb::Service& s = cmd_.service;
  if (sched == "sh" && (bits & 4) == 0) {
    s.mutable_sh()->set_fallback((bits & 1) != 0);
    s.mutable_sh()->set_port((bits & 2) != 0);
  } else if (sched == "mh" && (bits & 4) == 0) {
    s.mutable_mh()->set_fallback((bits & 1) != 0);
    s.mutable_mh()->set_port((bits & 2) != 0);
  } else {
    s.mutable_flags()->set_flag_1((bits & 1) != 0);
    s.mutable_flags()->set_flag_2((bits & 2) != 0);
    s.mutable_flags()->set_flag_3((bits & 4) != 0);
  }
  return std::nullopt;
}

std::optional<Failure> Parser::genericOptCheck() {
  const CommandInfo* info = commandInfo(cmd_.kind);
  if (info == nullptr)
    return std::nullopt;
  int last = 0, count = 0;
  for (int j = 0; j < kOptCount; ++j) {
    const char rule = info->legal[j];
    if (!has(j)) {
      if (rule == '+') {
        return fail(absl::StrFormat("You need to supply the '%s' option for the '%s' command",
                                    kOptNames[static_cast<size_t>(j)], info->name));
      }
      continue;
    }
    if (rule == 'x') {
      return fail(absl::StrFormat("Illegal '%s' option with the '%s' command",
                                  kOptNames[static_cast<size_t>(j)], info->name));
    }
    if (rule == '1' && ++count > 1) {
      return fail(absl::StrFormat(
          "The option '%s' conflicts with the '%s' option in the '%s' "
          "command",
          kOptNames[static_cast<size_t>(j)], kOptNames[static_cast<size_t>(last)], info->name));
    }
    if (rule == '1')
      last = j;
  }
  if (cmd_.list.json && cmd_.kind != CommandKind::kList && cmd_.kind != CommandKind::kGetLaddr) {
    return fail(absl::StrFormat("Illegal 'output' option with the '%s' command", info->name));
  }
  return std::nullopt;
}

// ipvsadm.c tunnel_types_v_options: columns tun-port, nocsum, csum, remcsum.
std::optional<Failure> Parser::tunnelOptCheck() {
  static constexpr const char* kTunNames[] = {"ipip", "gue", "gre"};
  static constexpr const char* kRules[] = {"xxxx", "+111", "x11x"};
  static constexpr int kCols[] = {kOptTunPort, kOptTunNoCsum, kOptTunCsum, kOptTunRemCsum};
  const char* rules = kRules[tun_type_];
  int last = 0, count = 0;
  for (int j = 0; j < 4; ++j) {
    const int k = kCols[j];
    const char* name = kOptNames[static_cast<size_t>(k)];
    if (!has(k)) {
      if (rules[j] == '+') {
        return fail(absl::StrFormat("You need to supply the '%s' option for the '%s' tunnel type",
                                    name, kTunNames[tun_type_]));
      }
      continue;
    }
    if (rules[j] == 'x') {
      return fail(absl::StrFormat("Illegal '%s' option with the '%s' tunnel type", name,
                                  kTunNames[tun_type_]));
    }
    if (rules[j] == '1' && ++count > 1) {
      return fail(
          absl::StrFormat("The option '%s' conflicts with the '%s' option in the '%s' tunnel type",
                          name, kOptNames[static_cast<size_t>(last)], kTunNames[tun_type_]));
    }
    if (rules[j] == '1')
      last = k;
  }
  return std::nullopt;
}

std::optional<Failure> Parser::semanticChecks() {
  const CommandKind k = cmd_.kind;
  pb::Service& s = cmd_.service;
  if (k == CommandKind::kAddService || k == CommandKind::kEditService) {
    if (fwmark_ == 0 && svc_port_ == 0 && !has(kOptPersistent)) {
      return fail("Zero port specified for non-persistent service");
    }
    if (s.one_packet() && fwmark_ == 0 && svc_proto_ != pb::PROTOCOL_UDP) {
      return fail("One-Packet Scheduling is only for UDP virtual services");
    }
    if (!pe_name_.empty() && !has(kOptPersistent)) {
      return fail("The 'pe' option needs the 'persistent' option");
    }
    s.set_scheduler(sched_name_.empty() ? "wlc" : sched_name_);
    if (has(kOptPersistent)) {
      s.mutable_persistence()->set_netmask_prefix(static_cast<uint32_t>(netmask_prefix_));
      s.mutable_persistence()->set_engine(pe_name_);
    }
  }
  if (k == CommandKind::kAddDest || k == CommandKind::kEditDest) {
    const pb::ForwardMethod fwd = cmd_.dest.forward_method();
    const bool tunnel = fwd == pb::FORWARD_METHOD_TUNNEL;
    // The dest port must equal the service port for tunnel and DR (not for fwmark services).
    if (fwmark_ == 0 && (tunnel || fwd == pb::FORWARD_METHOD_DIRECT_ROUTE)) {
      cmd_.dest.set_port(svc_port_);
    }
    if (dest_af_ != svc_af_ && !tunnel) {
      return fail("Different address family is allowed only for tunneling servers");
    }
    const bool tun_opts = has(kOptTunType) || has(kOptTunPort) || has(kOptTunNoCsum) ||
                          has(kOptTunCsum) || has(kOptTunRemCsum);
    if (tun_opts && !tunnel)
      return fail("Tunnel options conflict with forward method");
    if (auto f = tunnelOptCheck())
      return f;
    if (tunnel) {
      pb::Tunnel* t = cmd_.dest.mutable_tunnel();
      t->set_type(tun_type_ == 0   ? pb::TUNNEL_TYPE_IPIP
                  : tun_type_ == 1 ? pb::TUNNEL_TYPE_GUE
                                   : pb::TUNNEL_TYPE_GRE);
      t->set_port(tun_port_);
      t->set_checksum((tun_flags_ & 2) != 0   ? pb::TUNNEL_CHECKSUM_REMOTE
                      : (tun_flags_ & 1) != 0 ? pb::TUNNEL_CHECKSUM_CSUM
                                              : pb::TUNNEL_CHECKSUM_NONE);
    }
  }
  if (k == CommandKind::kList) {
    const bool a = has(kOptConnection) || has(kOptTimeout) || has(kOptDaemon);
    const bool b = has(kOptStats) || has(kOptRate) || has(kOptThresholds);
    if ((a && b) || ((has(kOptTimeout) || has(kOptDaemon)) && has(kOptPersistentConn))) {
      return fail("options conflicts in the list command");
    }
  }
  return std::nullopt;
}

}  // namespace
}  // namespace lb::ipvsadm

namespace lb::ipvsadm {

ParseResult parseIpvsadm(const std::string& program, const std::vector<std::string>& args) {
  ParseResult r;
  std::vector<std::string> rest = args;
  Command globals;
  if (std::optional<ParseError> e = stripGlobalOptions(rest, globals)) {
    r.error = *e;
    return r;
  }
  ipvsadm::Parser p(program);
  p.command().list.json = globals.list.json;  // checked against the command like any option
  if (rest.empty()) {
    // No arguments: list everything (ipvsadm's main with argc == 1).
    p.command().kind = CommandKind::kList;
  } else if (isLbctlCommand(rest.front())) {
    if (std::optional<ParseError> e = parseLbctlCommand(rest, p.command())) {
      r.error = *e;
      return r;
    }
  } else if (std::optional<ipvsadm::Failure> f = p.run(std::move(rest))) {
    r.error = ParseError{f->message, f->exit_code, f->returns};
    return r;
  }
  r.ok = true;
  r.command = std::move(p.command());
  r.command.server = globals.server;
  r.command.tls_ca = globals.tls_ca;
  r.command.tls_cert = globals.tls_cert;
  r.command.tls_key = globals.tls_key;
  return r;
}

std::vector<std::string> splitRuleLine(const std::string& line) {
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(line, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    if (absl::StartsWith(w, "#"))
      break;
    words.emplace_back(w);
  }
  if (!words.empty()) {
    absl::string_view first = words.front();
    size_t slash = first.rfind('/');
    if (slash != absl::string_view::npos)
      first.remove_prefix(slash + 1);
    if (first == "ipvsadm" || first == "lbctl")
      words.erase(words.begin());
  }
  return words;
}

}  // namespace lb::ipvsadm
