// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/config_file.h"

#include <fcntl.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "api/ipvsadm/lbd_commands.h"
#include "cmd/lbd/control/api_convert.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;
using ipvsadm::CommandKind;

absl::Status ioError(absl::string_view step, const std::string& path) {
  return absl::InternalError(absl::StrCat(step, " ", path, ": ", std::strerror(errno)));
}

absl::Status writeAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ioError("write", path);
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

std::vector<ServiceWithDests>::iterator findService(FullConfig& cfg, const ServiceKey& k) {
  return std::find_if(cfg.services.begin(), cfg.services.end(),
                      [&](const ServiceWithDests& s) { return s.service.key == k; });
}

// Keeps the first text-format parse error as "LINE:COLUMN: message" (1-based).
class StateFileErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line,
                google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first.empty())
      first = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }

  std::string first;
};

absl::Status noSuchService(const ServiceKey& k) {
  return absl::NotFoundError(absl::StrCat("no such service: ", k.toString()));
}

absl::Status applyDestCommand(const ipvsadm::Command& cmd, ServiceWithDests& svc) {
  absl::StatusOr<IpAddr> addr = addrFromProto(cmd.dest.address(), "dest.address");
  if (!addr.ok())
    return addr.status();
  const uint16_t port = static_cast<uint16_t>(cmd.dest.port());
  auto it = std::find_if(svc.dests.begin(), svc.dests.end(),
                         [&](const DestConfig& d) { return d.addr == *addr && d.port == port; });
  const std::string name = formatAddrPort(*addr, port);
  if (cmd.kind == CommandKind::kDeleteDest) {
    if (it == svc.dests.end())
      return absl::NotFoundError(absl::StrCat("dest ", name, " not found"));
    svc.dests.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<DestConfig> d = destFromProto(cmd.dest);
  if (!d.ok())
    return d.status();
  if (cmd.kind == CommandKind::kAddDest) {
    if (it != svc.dests.end()) {
      return absl::AlreadyExistsError(absl::StrCat("dest ", name, " already exists"));
    }
    svc.dests.insert(svc.dests.begin(), *d);  // the kernel's list order: newest first
    return absl::OkStatus();
  }
  if (it == svc.dests.end())
    return absl::NotFoundError(absl::StrCat("dest ", name, " not found"));
  *it = *d;
  return absl::OkStatus();
}

absl::Status applyLaddrCommand(const ipvsadm::Command& cmd, ServiceWithDests& svc) {
  absl::StatusOr<IpAddr> addr = addrFromProto(cmd.laddr, "laddr");
  if (!addr.ok())
    return addr.status();
  std::vector<IpAddr>& pool = svc.service.local_addrs;
  auto it = std::find(pool.begin(), pool.end(), *addr);
  if (cmd.kind == CommandKind::kAddLaddr) {
    if (it != pool.end()) {
      return absl::AlreadyExistsError(absl::StrCat("local address ", cmd.laddr, " already exists"));
    }
    pool.push_back(*addr);
    return absl::OkStatus();
  }
  if (it == pool.end()) {
    return absl::NotFoundError(absl::StrCat("local address ", cmd.laddr, " not found"));
  }
  pool.erase(it);
  return absl::OkStatus();
}

absl::Status applyServiceCommand(const ipvsadm::Command& cmd, FullConfig& cfg) {
  absl::StatusOr<ServiceKey> key = serviceKeyFromProto(cmd.service.key());
  if (!key.ok())
    return key.status();
  auto it = findService(cfg, *key);
  if (cmd.kind == CommandKind::kAddService) {
    if (it != cfg.services.end()) {
      return absl::AlreadyExistsError(absl::StrCat("service ", key->toString(), " already exists"));
    }
    absl::StatusOr<ServiceConfig> s = serviceFromProto(cmd.service);
    if (!s.ok())
      return s.status();
    cfg.services.push_back(ServiceWithDests{*s, {}});
    return absl::OkStatus();
  }
  if (it == cfg.services.end())
    return noSuchService(*key);
  switch (cmd.kind) {
    case CommandKind::kEditService: {
      absl::StatusOr<ServiceConfig> s = serviceFromProto(cmd.service);
      if (!s.ok())
        return s.status();
      s->local_addrs = it->service.local_addrs;  // -E keeps the pool, as UpdateService does
      it->service = *s;
      return absl::OkStatus();
    }
    case CommandKind::kDeleteService:
      cfg.services.erase(it);
      return absl::OkStatus();
    case CommandKind::kAddLaddr:
    case CommandKind::kDelLaddr:
      return applyLaddrCommand(cmd, *it);
    default:
      return applyDestCommand(cmd, *it);
  }
}

// --sysctl NAME=VALUE and the fwmark-rule commands (lbctl's own, api/ipvsadm/lbd_commands.h).
absl::Status applyLbctlCommand(const ipvsadm::Command& cmd, FullConfig& cfg) {
  if (cmd.kind == CommandKind::kSysctl) {
    pb::Sysctls s = sysctlsToProto(cfg.sysctls);
    for (const ipvsadm::SysctlArg& a : cmd.sysctls) {
      if (!a.set)
        return absl::InvalidArgumentError(absl::StrCat("--sysctl ", a.name, ": needs =VALUE"));
      if (absl::Status st = ipvsadm::setSysctl(s, a.name, a.value); !st.ok())
        return st;
    }
    absl::StatusOr<Sysctls> next = sysctlsFromProto(s);
    if (!next.ok())
      return next.status();
    cfg.sysctls = *next;
    return absl::OkStatus();
  }
  if (cmd.kind == CommandKind::kClearFwmarkRules) {
    cfg.fwmark_rules.clear();
    return absl::OkStatus();
  }
  absl::StatusOr<FwmarkRule> rule = fwmarkRuleFromProto(cmd.fwmark_rule);
  if (!rule.ok())
    return rule.status();
  rule->dst = rule->dst.masked(rule->prefix_len);  // as ServiceTable stores it
  auto it = std::find(cfg.fwmark_rules.begin(), cfg.fwmark_rules.end(), *rule);
  const std::string line = ipvsadm::fwmarkRuleLine(cmd.fwmark_rule);
  if (cmd.kind == CommandKind::kDelFwmarkRule) {
    if (it == cfg.fwmark_rules.end())
      return absl::NotFoundError(absl::StrCat("no such fwmark rule: ", line));
    cfg.fwmark_rules.erase(it);
    return absl::OkStatus();
  }
  if (it != cfg.fwmark_rules.end())
    return absl::AlreadyExistsError(absl::StrCat("fwmark rule already exists: ", line));
  cfg.fwmark_rules.push_back(*rule);
  return absl::OkStatus();
}

}  // namespace

absl::Status applyCommand(const ipvsadm::Command& cmd, FullConfig& cfg) {
  switch (cmd.kind) {
    case CommandKind::kFlush:
      cfg.services.clear();
      return absl::OkStatus();
    case CommandKind::kSetTimeout: {
      absl::StatusOr<Timeouts> t = timeoutsFromProto(cmd.timeouts);
      if (!t.ok())
        return t.status();
      if (t->tcp != 0)
        cfg.timeouts.tcp = t->tcp;
      if (t->tcp_fin != 0)
        cfg.timeouts.tcp_fin = t->tcp_fin;
      if (t->udp != 0)
        cfg.timeouts.udp = t->udp;
      return absl::OkStatus();
    }
    case CommandKind::kAddService:
    case CommandKind::kEditService:
    case CommandKind::kDeleteService:
    case CommandKind::kAddDest:
    case CommandKind::kEditDest:
    case CommandKind::kDeleteDest:
    case CommandKind::kAddLaddr:
    case CommandKind::kDelLaddr:
      return applyServiceCommand(cmd, cfg);
    case CommandKind::kSysctl:
    case CommandKind::kAddFwmarkRule:
    case CommandKind::kDelFwmarkRule:
    case CommandKind::kClearFwmarkRules:
      return applyLbctlCommand(cmd, cfg);
    default:
      return absl::InvalidArgumentError(
          "only -A -E -D -C -a -e -d --set -P -Q --sysctl NAME=VALUE --add-fwmark-rule "
          "--del-fwmark-rule --clear-fwmark-rules are allowed in a config file");
  }
}

absl::StatusOr<FullConfig> parseConfigText(absl::string_view text,
                                           absl::string_view name,
                                           const ConfigValidator& validate) {
  FullConfig cfg;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    std::vector<std::string> words = ipvsadm::splitRuleLine(std::string(line));
    if (words.empty())
      continue;
    auto at = [&](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("config ", name, ":", line_no, ": ", s.message()));
    };
    ipvsadm::ParseResult r = ipvsadm::parseIpvsadm("lbd", words);
    if (!r.ok)
      return at(absl::InvalidArgumentError(r.error.message));
    if (absl::Status s = applyCommand(r.command, cfg); !s.ok())
      return at(s);
    if (validate) {
      if (absl::Status s = validate(cfg); !s.ok())
        return at(s);
    }
  }
  return cfg;
}

absl::StatusOr<FullConfig> loadConfigFile(const std::string& path,
                                          const ConfigValidator& validate) {
  std::ifstream f(path);
  if (!f)
    return absl::NotFoundError(absl::StrCat("config ", path, ": ", std::strerror(errno)));
  std::stringstream ss;
  ss << f.rdbuf();
  return parseConfigText(ss.str(), path, validate);
}

absl::Status writeStateFile(const std::string& path,
                            const FullConfig& cfg,
                            const std::vector<pb::SyncDaemon>& sync_daemons) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  pb::Config proto = configToProto(cfg);
  for (const pb::SyncDaemon& d : sync_daemons)
    *proto.add_sync_daemons() = d;
  if (!printer.PrintToString(proto, &text)) {
    return absl::InternalError("state file: cannot serialise the configuration");
  }
  text = absl::StrCat("# lbd state file: lbd.v1.Config in protobuf text format. Written by lbd;\n",
                      "# edit the --config file instead.\n", text);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return ioError("open", tmp);
  absl::Status st = writeAll(fd, text, tmp);
  if (st.ok() && ::fsync(fd) != 0)
    st = ioError("fsync", tmp);
  if (::close(fd) != 0 && st.ok())
    st = ioError("close", tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return ioError("rename", tmp);
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: the rename is durable once the directory is
    ::close(dfd);
  }
  return absl::OkStatus();
}

absl::StatusOr<FullConfig> readStateFile(const std::string& path,
                                         std::vector<pb::SyncDaemon>* sync_daemons) {
  // Only a missing file means "first start"; anything else must not start lbd empty.
  struct stat sb {};

  if (::stat(path.c_str(), &sb) != 0) {
    const std::string msg = absl::StrCat("state file ", path, ": ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::FailedPreconditionError(msg);
  }
  if (!S_ISREG(sb.st_mode))
    return absl::FailedPreconditionError(absl::StrCat("state file ", path, ": not a file"));
  std::ifstream f(path);
  std::stringstream ss;
  if (f)
    ss << f.rdbuf();
  if (!f) {
    return absl::FailedPreconditionError(
        absl::StrCat("state file ", path, ": cannot read: ", std::strerror(errno)));
  }
  const std::string text = ss.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    // writeStateFile always writes the timeouts: an empty file is a truncated one.
    return absl::InvalidArgumentError(
        absl::StrCat("state file ", path,
                     ": empty (lbd never writes an empty state); remove it to start empty"));
  }
  pb::Config p;
  StateFileErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &p)) {
    return absl::InvalidArgumentError(absl::StrCat("state file ", path, ":", errors.first,
                                                   " (corrupt; lbd refuses to start empty)"));
  }
  absl::StatusOr<FullConfig> cfg = configFromProto(p);
  if (!cfg.ok()) {
    return absl::Status(cfg.status().code(),
                        absl::StrCat("state file ", path, ": ", cfg.status().message()));
  }
  if (sync_daemons != nullptr)
    sync_daemons->assign(p.sync_daemons().begin(), p.sync_daemons().end());
  return cfg;
}

}  // namespace lb::lbd
