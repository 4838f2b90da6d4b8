// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/lbd_commands.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

constexpr uint64_t kU32Max = 0xffffffffu;

// One /proc/sys/net/ipv4/vs entry: its range and how it maps onto lbd.v1.Sysctls.
struct SysctlField {
  const char* name;
  uint64_t min, max;
  uint64_t (*get)(const pb::Sysctls&);
  void (*set)(pb::Sysctls&, uint64_t);
};

#define LB_BOOL_SYSCTL(f)                                                                 \
  SysctlField {                                                                           \
#f, 0, 1,                                                                             \
        [](const pb::Sysctls& s)                                                          \
             -> uint64_t { return s.f() ? 1 : 0; }, [](pb::Sysctls & s,                   \
                                                       uint64_t v) { s.set_##f(v != 0); } \
  }
#define LB_U32_SYSCTL(f)                                                                         \
  SysctlField {                                                                                  \
#f, 0, kU32Max,                                                                              \
        [](const pb::Sysctls& s)                                                                 \
             -> uint64_t { return s.f(); },                                                      \
                                         [](pb::Sysctls & s,                                     \
                                            uint64_t v) { s.set_##f(static_cast<uint32_t>(v)); } \
  }
#define LB_SECONDS_SYSCTL(f)                                                               \
  SysctlField {                                                                            \
#f, 1, kU32Max,                                                                          \
        [](const pb::Sysctls& s) -> uint64_t { return static_cast<uint64_t>(f##_seconds(s)); }, \
        [](pb::Sysctls& s, uint64_t v) {                                                     \
          s.mutable_##f()->set_seconds(static_cast<int64_t>(v));                             \
          s.mutable_##f()->set_nanos(0);                                                     \
        } \
  }

// The sync sysctls are optional in lbd.v1: unset reads as the kernel's default.
#define LB_OPT_U32_SYSCTL(f, def, lo, hi)                                                 \
  SysctlField {                                                                           \
#f, lo, hi, [](const pb::Sysctls& s) -> uint64_t { return s.has_##f() ? s.f() : def; }, \
        [](pb::Sysctls& s, uint64_t v) { s.set_##f(static_cast<uint32_t>(v)); } \
  }

int64_t sync_refresh_period_seconds(const pb::Sysctls& s) {
  return s.has_sync_refresh_period() ? s.sync_refresh_period().seconds() : 0;
}

// Unset durations read as the kernel's default (86400 s), as lbd fills them on output.
int64_t lblc_expiration_seconds(const pb::Sysctls& s) {
  return s.has_lblc_expiration() ? s.lblc_expiration().seconds() : 86400;
}

int64_t lblcr_expiration_seconds(const pb::Sysctls& s) {
  return s.has_lblcr_expiration() ? s.lblcr_expiration().seconds() : 86400;
}

// Sorted by name. Semantics and defaults: the kernel's ipvs-sysctl.rst (see lbd.proto).
const std::array<SysctlField, 25> kSysctls = {{
    LB_U32_SYSCTL(am_droprate),
    LB_U32_SYSCTL(conn_reuse_mode),
    LB_U32_SYSCTL(drop_entry),
    LB_U32_SYSCTL(drop_packet),
    LB_BOOL_SYSCTL(expire_nodest_conn),
    LB_BOOL_SYSCTL(expire_quiescent_template),
    LB_SECONDS_SYSCTL(lblc_expiration),
    LB_SECONDS_SYSCTL(lblcr_expiration),
    LB_BOOL_SYSCTL(nat_icmp_send),
    LB_BOOL_SYSCTL(pmtu_disc),
    LB_BOOL_SYSCTL(schedule_icmp),
    LB_U32_SYSCTL(secure_tcp),
    LB_BOOL_SYSCTL(sloppy_sctp),
    LB_BOOL_SYSCTL(sloppy_tcp),
    // Connection sync (ip_vs_sync.c). The kernel's sync_threshold "3 50" is two values here:
    // sync_threshold and sync_period.
    LB_OPT_U32_SYSCTL(sync_period, 50, 0, kU32Max),
    SysctlField{"sync_persist_mode", 0, 1,
                [](const pb::Sysctls& s) -> uint64_t { return s.sync_persist_mode() ? 1 : 0; },
                [](pb::Sysctls& s, uint64_t v) { s.set_sync_persist_mode(v != 0); }},
    LB_OPT_U32_SYSCTL(sync_ports, 1, 1, 64),
    LB_OPT_U32_SYSCTL(sync_qlen_max, 0, 0, kU32Max),
    SysctlField{"sync_refresh_period", 0, kU32Max,
                [](const pb::Sysctls& s) -> uint64_t {
                  return static_cast<uint64_t>(sync_refresh_period_seconds(s));
                },
                [](pb::Sysctls& s, uint64_t v) {
                  s.mutable_sync_refresh_period()->set_seconds(static_cast<int64_t>(v));
                  s.mutable_sync_refresh_period()->set_nanos(0);
                }},
    LB_OPT_U32_SYSCTL(sync_retries, 0, 0, 3),
    LB_OPT_U32_SYSCTL(sync_sock_size, 0, 0, 0x7fffffff),
    LB_OPT_U32_SYSCTL(sync_threshold, 3, 0, kU32Max),
    LB_OPT_U32_SYSCTL(sync_version, 1, 0, 1),
    // lbd: SYN cookies for NAT / full-NAT TCP services (docs/syn-flood.md).
    LB_OPT_U32_SYSCTL(syncookies, 1, 0, 2),
    LB_OPT_U32_SYSCTL(syncookies_threshold, 4096, 1, kU32Max),
}};

#undef LB_BOOL_SYSCTL
#undef LB_U32_SYSCTL
#undef LB_SECONDS_SYSCTL
#undef LB_OPT_U32_SYSCTL

const SysctlField* findSysctl(absl::string_view name) {
  for (const SysctlField& f : kSysctls) {
    if (name == f.name)
      return &f;
  }
  return nullptr;
}

// "net.ipv4.vs.x", "net/ipv4/vs/x" and "/proc/sys/net/ipv4/vs/x" all name sysctl "x".
std::string shortSysctlName(absl::string_view name) {
  for (absl::string_view prefix : {"/proc/sys/net/ipv4/vs/", "net/ipv4/vs/", "net.ipv4.vs."}) {
    if (absl::ConsumePrefix(&name, prefix))
      break;
  }
  return std::string(name);
}

ParseError usageError(std::string message) {
  return ParseError{std::move(message), 2};
}

struct LbctlCommandInfo {
  const char* option;
  CommandKind kind;
  const char* name;  // as in ipvsadm's messages
};

constexpr std::array<LbctlCommandInfo, 5> kLbctlCommands = {{
    {"--sysctl", CommandKind::kSysctl, "sysctl"},
    {"--add-fwmark-rule", CommandKind::kAddFwmarkRule, "add-fwmark-rule"},
    {"--del-fwmark-rule", CommandKind::kDelFwmarkRule, "del-fwmark-rule"},
    {"--list-fwmark-rules", CommandKind::kListFwmarkRules, "list-fwmark-rules"},
    {"--clear-fwmark-rules", CommandKind::kClearFwmarkRules, "clear-fwmark-rules"},
}};

std::optional<ParseError> parseSysctlArgs(const std::vector<std::string>& words, Command& cmd) {
  bool reads = false, writes = false;
  for (const std::string& w : words) {
    SysctlArg a;
    const size_t eq = w.find('=');
    a.name = shortSysctlName(eq == std::string::npos ? w : w.substr(0, eq));
    const SysctlField* f = findSysctl(a.name);
    if (f == nullptr) {
      return usageError(absl::StrFormat("unknown sysctl `%s' (lbctl --sysctl lists them)", a.name));
    }
    if (eq != std::string::npos) {
      a.set = true;
      const std::string value = w.substr(eq + 1);
      if (!absl::SimpleAtoi(value, &a.value) || a.value < f->min || a.value > f->max) {
        return usageError(absl::StrFormat("illegal value `%s' for sysctl %s (%u..%u)", value,
                                          a.name, f->min, f->max));
      }
    }
    (a.set ? writes : reads) = true;
    cmd.sysctls.push_back(std::move(a));
  }
  if (reads && writes) {
    return usageError("--sysctl: either read (NAME) or write (NAME=VALUE), not both at once");
  }
  return std::nullopt;
}

// ADDR or ADDR/LEN, canonical: masked to LEN, "addr/len". nullopt when malformed.
std::optional<std::string> canonicalPrefix(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  unsigned char bytes[16] = {};
  int af = AF_INET;
  if (inet_pton(AF_INET, parts[0].c_str(), bytes) != 1) {
    af = AF_INET6;
    if (inet_pton(AF_INET6, parts[0].c_str(), bytes) != 1)
      return std::nullopt;
  }
  const int max_len = af == AF_INET ? 32 : 128;
  int len = max_len;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &len) || len < 0 || len > max_len))
    return std::nullopt;
  for (int bit = len; bit < max_len; ++bit)
    bytes[bit / 8] = static_cast<unsigned char>(bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(af, bytes, buf, sizeof(buf));
  return absl::StrCat(buf, "/", len);
}

std::optional<ParseError> parseFwmarkRuleArgs(const LbctlCommandInfo& info,
                                              const std::vector<std::string>& words,
                                              Command& cmd) {
  pb::FwmarkRule& r = cmd.fwmark_rule;
  r.set_protocol(pb::PROTOCOL_ANY);
  bool has_mark = false, has_dest = false;
  const bool selectors =
      info.kind == CommandKind::kAddFwmarkRule || info.kind == CommandKind::kDelFwmarkRule;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string opt = words[i], value;
    const size_t eq = opt.find('=');
    if (eq != std::string::npos && absl::StartsWith(opt, "--")) {
      value = opt.substr(eq + 1);
      opt = opt.substr(0, eq);
    }
    const bool known = opt == "--mark" || opt == "--dest" || opt == "--proto" || opt == "--dport";
    if (!absl::StartsWith(opt, "-"))
      return usageError(absl::StrFormat("unexpected argument %s", opt));
    if (!known)
      return ParseError{absl::StrCat(opt, ": unknown option"), 255, true};
    if (!selectors) {
      return usageError(
          absl::StrFormat("Illegal '%s' option with the '%s' command", opt.substr(2), info.name));
    }
    if (eq == std::string::npos) {
      if (i + 1 >= words.size())
        return ParseError{absl::StrCat(opt, ": missing argument"), 255, true};
      value = words[++i];
    }
    if (opt == "--mark") {
      uint64_t mark = 0;
      if (has_mark || !absl::SimpleAtoi(value, &mark) || mark == 0 || mark > kU32Max) {
        return usageError(absl::StrFormat("invalid fwmark value `%s' specified", value));
      }
      has_mark = true;
      r.set_mark(static_cast<uint32_t>(mark));
    } else if (opt == "--dest") {
      std::optional<std::string> prefix = canonicalPrefix(value);
      if (has_dest || !prefix) {
        return usageError(absl::StrFormat("illegal destination `%s' specified", value));
      }
      has_dest = true;
      r.set_destination(*prefix);
    } else if (opt == "--proto") {
      const std::string p = absl::AsciiStrToLower(value);
      if (p == "tcp") {
        r.set_protocol(pb::PROTOCOL_TCP);
      } else if (p == "udp") {
        r.set_protocol(pb::PROTOCOL_UDP);
      } else if (p == "sctp") {
        r.set_protocol(pb::PROTOCOL_SCTP);
      } else if (p == "any") {
        r.set_protocol(pb::PROTOCOL_ANY);
      } else {
        return usageError(absl::StrFormat("illegal protocol `%s' specified", value));
      }
    } else {  // --dport P or P:Q
      std::vector<std::string> ports = absl::StrSplit(value, absl::MaxSplits(':', 1));
      uint32_t lo = 0, hi = 0;
      bool ok = absl::SimpleAtoi(ports[0], &lo) && lo <= 65535;
      hi = lo;
      if (ok && ports.size() == 2)
        ok = absl::SimpleAtoi(ports[1], &hi) && hi <= 65535 && lo <= hi;
      if (!ok)
        return usageError(absl::StrFormat("illegal port range `%s' specified", value));
      r.set_port_min(lo);
      r.set_port_max(hi);
    }
  }
  if (selectors && !has_mark) {
    return usageError(
        absl::StrFormat("You need to supply the 'mark' option for the '%s' command", info.name));
  }
  if (selectors && !has_dest) {
    return usageError(
        absl::StrFormat("You need to supply the 'dest' option for the '%s' command", info.name));
  }
  if (selectors)
    r = canonicalFwmarkRule(r);
  return std::nullopt;
}

}  // namespace

std::optional<ParseError> stripGlobalOptions(std::vector<std::string>& args, Command& cmd) {
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string name;
    for (const char* opt : {"--server", "--tls-ca", "--tls-cert", "--tls-key", "--output"}) {
      if (a == opt || absl::StartsWith(a, absl::StrCat(opt, "=")))
        name = opt;
    }
    if (name.empty()) {
      rest.push_back(a);
      continue;
    }
    std::string output;
    std::string* target = name == "--server"     ? &cmd.server
                          : name == "--tls-ca"   ? &cmd.tls_ca
                          : name == "--tls-cert" ? &cmd.tls_cert
                          : name == "--tls-key"  ? &cmd.tls_key
                                                 : &output;
    if (a.size() > name.size()) {
      *target = a.substr(name.size() + 1);
    } else if (i + 1 < args.size()) {
      *target = args[++i];
    } else {
      return ParseError{absl::StrCat(name, ": missing argument"), 255};
    }
    if (name == "--output") {
      if (output != "json") {
        return ParseError{absl::StrFormat("illegal output format `%s' (only json)", output), 2};
      }
      cmd.list.json = true;
    }
  }
  args = std::move(rest);
  return std::nullopt;
}

bool isLbctlCommand(const std::string& first) {
  for (const LbctlCommandInfo& c : kLbctlCommands) {
    if (first == c.option || absl::StartsWith(first, absl::StrCat(c.option, "=")))
      return true;
  }
  return false;
}

std::optional<ParseError> parseLbctlCommand(const std::vector<std::string>& args, Command& cmd) {
  const LbctlCommandInfo* info = nullptr;
  for (const LbctlCommandInfo& c : kLbctlCommands) {
    if (args[0] == c.option || absl::StartsWith(args[0], absl::StrCat(c.option, "=")))
      info = &c;
  }
  if (info == nullptr)
    return usageError(absl::StrFormat("unknown command %s", args[0]));
  cmd.kind = info->kind;
  std::vector<std::string> words(args.begin() + 1, args.end());
  const size_t eq = args[0].find('=');
  if (eq != std::string::npos)
    words.insert(words.begin(), args[0].substr(eq + 1));  // --sysctl=NAME=VALUE
  const bool listing = info->kind == CommandKind::kListFwmarkRules ||
                       (info->kind == CommandKind::kSysctl && words.empty());
  for (const std::string& w : words) {
    if (isLbctlCommand(w) || (w.size() == 2 && w[0] == '-' && w[1] != '-'))
      return usageError("multiple commands specified");
  }
  if (info->kind == CommandKind::kSysctl) {
    if (std::optional<ParseError> e = parseSysctlArgs(words, cmd))
      return e;
    const bool reading = !cmd.sysctls.empty() && !cmd.sysctls.front().set;
    if (cmd.list.json && !listing && !reading) {
      return usageError("Illegal 'output' option with the 'sysctl' command when writing");
    }
    return std::nullopt;
  }
  if (cmd.list.json && !listing) {
    return usageError(absl::StrFormat("Illegal 'output' option with the '%s' command", info->name));
  }
  return parseFwmarkRuleArgs(*info, words, cmd);
}

std::vector<std::string> sysctlNames() {
  std::vector<std::string> names;
  for (const SysctlField& f : kSysctls)
    names.emplace_back(f.name);
  return names;
}

absl::StatusOr<uint64_t> getSysctl(const pb::Sysctls& s, const std::string& name) {
  const SysctlField* f = findSysctl(shortSysctlName(name));
  if (f == nullptr)
    return absl::NotFoundError(absl::StrCat("unknown sysctl ", name));
  return f->get(s);
}

absl::Status setSysctl(pb::Sysctls& s, const std::string& name, uint64_t value) {
  const SysctlField* f = findSysctl(shortSysctlName(name));
  if (f == nullptr)
    return absl::NotFoundError(absl::StrCat("unknown sysctl ", name));
  if (value < f->min || value > f->max) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl ", f->name, ": ", value, " out of range ", f->min, "..", f->max));
  }
  f->set(s, value);
  return absl::OkStatus();
}

std::string formatSysctl(const pb::Sysctls& s, const std::string& name) {
  absl::StatusOr<uint64_t> v = getSysctl(s, name);
  return absl::StrCat("net.ipv4.vs.", shortSysctlName(name), " = ", v.ok() ? *v : 0, "\n");
}

pb::FwmarkRule canonicalFwmarkRule(const pb::FwmarkRule& r) {
  pb::FwmarkRule c = r;
  if (std::optional<std::string> p = canonicalPrefix(r.destination()))
    c.set_destination(*p);
  if (c.protocol() == pb::PROTOCOL_UNSPECIFIED)
    c.set_protocol(pb::PROTOCOL_ANY);
  if (c.port_min() == 0 && c.port_max() == 0)
    c.set_port_max(65535);
  return c;
}

std::string fwmarkRuleLine(const pb::FwmarkRule& rule) {
  const pb::FwmarkRule r = canonicalFwmarkRule(rule);
  std::string line =
      absl::StrFormat("--add-fwmark-rule --mark %u --dest %s", r.mark(), r.destination());
  switch (r.protocol()) {
    case pb::PROTOCOL_TCP:
      absl::StrAppend(&line, " --proto tcp");
      break;
    case pb::PROTOCOL_UDP:
      absl::StrAppend(&line, " --proto udp");
      break;
    case pb::PROTOCOL_SCTP:
      absl::StrAppend(&line, " --proto sctp");
      break;
    default:
      break;
  }
  if (r.port_min() == r.port_max()) {
    absl::StrAppend(&line, " --dport ", r.port_min());
  } else if (r.port_min() != 0 || r.port_max() != 65535) {
    absl::StrAppend(&line, " --dport ", r.port_min(), ":", r.port_max());
  }
  return line;
}

}  // namespace lb::ipvsadm
