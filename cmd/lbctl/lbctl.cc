// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbctl/lbctl.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "api/ipvsadm/lbd_commands.h"
#include "cmd/lbctl/format.h"
#include "cmd/lbctl/health_list.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

using ipvsadm::canonicalFwmarkRule;
using ipvsadm::formatSysctl;
using ipvsadm::fwmarkRuleLine;
using ipvsadm::parseIpvsadm;
using ipvsadm::ParseResult;
using ipvsadm::setSysctl;
using ipvsadm::splitRuleLine;
using ipvsadm::SysctlArg;
using ipvsadm::sysctlNames;
using ipvsadm::usageText;
using ipvsadm::versionText;

constexpr int kExitRefused = 255;
constexpr int kMaxResponseBytes = 1 << 30;  // ipvsadm returns -1 when the kernel refuses

// The control plane answers NOT_FOUND with a message starting "no such service" when the
// service itself is missing; any other NOT_FOUND names the dest, scheduler or engine.
bool serviceMissing(const grpc::Status& s) {
  return absl::StartsWith(absl::AsciiStrToLower(s.error_message()), "no such service");
}

void setDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

std::string jsonOf(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &json, opts).ok())
    return "{}\n";
  return json;
}

// -n: numeric; otherwise every address and port of the listing looked up once, in parallel,
// for at most kNameLookupBound in total (cmd/lbctl/names.h).
template <typename Response>
Names namesFor(const Response& resp, const ListOptions& o) {
  if (o.numeric || o.json)
    return Names();
  return Names::lookup(nameRequestOf(resp), systemResolver(), kNameLookupBound);
}

bool unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// Prints a failure and returns the exit status.
int report(CommandKind kind, const grpc::Status& s, std::ostream& err, int refused_code) {
  err << ipvsadmError(kind, s) << "\n";
  return unreachable(s) ? 2 : refused_code;
}

int runList(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  const ListOptions& o = cmd.list;
  if (o.connection) {
    pb::ListConnectionsResponse resp;
    grpc::Status s = stub.ListConnections(&ctx, pb::ListConnectionsRequest(), &resp);
    if (!s.ok())
      return report(cmd.kind, s, err, 1);
    out << (o.json ? jsonOf(resp) : formatConnections(resp, o, namesFor(resp, o)));
    return 0;
  }
  if (!cmd.has_service && o.timeout) {
    pb::GetTimeoutsResponse resp;
    grpc::Status s = stub.GetTimeouts(&ctx, pb::GetTimeoutsRequest(), &resp);
    if (!s.ok())
      return report(cmd.kind, s, err, 1);
    out << (o.json ? jsonOf(resp) : formatTimeouts(resp.timeouts()));
    return 0;
  }
  if (!cmd.has_service && o.daemon) {
    pb::ListSyncDaemonsResponse resp;
    grpc::Status s = stub.ListSyncDaemons(&ctx, pb::ListSyncDaemonsRequest(), &resp);
    if (!s.ok())
      return report(cmd.kind, s, err, 1);
    out << (o.json ? jsonOf(resp) : formatSyncDaemons(resp));  // nothing when none runs
    return 0;
  }
  pb::ListServicesRequest req;
  if (cmd.has_service)
    *req.mutable_key() = cmd.service.key();
  pb::ListServicesResponse resp;
  grpc::Status s = stub.ListServices(&ctx, req, &resp);
  if (!s.ok())
    return report(cmd.kind, s, err, 1);
  out << (o.json ? jsonOf(resp) : formatServiceList(resp, o, !cmd.has_service, namesFor(resp, o)));
  return 0;
}

int runSave(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  pb::ListServicesResponse resp;
  grpc::Status s = stub.ListServices(&ctx, pb::ListServicesRequest(), &resp);
  if (!s.ok())
    return report(cmd.kind, s, err, 1);
  // lbd's additions (timeouts, sysctls, fwmark rules), in lines -R reads back.
  pb::GetConfigResponse cfg;
  grpc::ClientContext cfg_ctx;
  setDeadline(cfg_ctx);
  if (grpc::Status cs = stub.GetConfig(&cfg_ctx, pb::GetConfigRequest(), &cfg); !cs.ok())
    return report(cmd.kind, cs, err, 1);
  out << formatSaveSettings(cfg.config()) << formatSave(resp, cmd.list, namesFor(resp, cmd.list))
      << formatSaveFwmarkRules(cfg.config());
  return 0;
}

int runGetLaddr(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  pb::ListLocalAddressesRequest req;
  if (cmd.has_service)
    *req.mutable_key() = cmd.service.key();
  pb::ListLocalAddressesResponse resp;
  grpc::Status s = stub.ListLocalAddresses(&ctx, req, &resp);
  if (!s.ok())
    return report(cmd.kind, s, err, 1);
  out << (cmd.list.json ? jsonOf(resp) : formatLocalAddresses(resp));
  return 0;
}

// The mutations as ApplyBatch operations (the request of the RPC of the same name); nullopt
// for every other command.
std::optional<pb::BatchOperation> batchOperation(const Command& cmd) {
  pb::BatchOperation op;
  const pb::ServiceKey& key = cmd.service.key();
  switch (cmd.kind) {
    case CommandKind::kAddService:
      *op.mutable_create_service()->mutable_service() = cmd.service;
      return op;
    case CommandKind::kEditService:
      *op.mutable_update_service()->mutable_service() = cmd.service;
      return op;
    case CommandKind::kDeleteService:
      *op.mutable_delete_service()->mutable_key() = key;
      return op;
    case CommandKind::kFlush:
      op.mutable_flush_services();
      return op;
    case CommandKind::kAddDest:
      *op.mutable_create_dest()->mutable_key() = key;
      *op.mutable_create_dest()->mutable_dest() = cmd.dest;
      return op;
    case CommandKind::kEditDest:
      *op.mutable_update_dest()->mutable_key() = key;
      *op.mutable_update_dest()->mutable_dest() = cmd.dest;
      return op;
    case CommandKind::kDeleteDest: {
      pb::DeleteDestRequest* req = op.mutable_delete_dest();
      *req->mutable_key() = key;
      req->set_address(cmd.dest.address());
      req->set_port(cmd.dest.port());
      return op;
    }
    case CommandKind::kSetTimeout:
      *op.mutable_set_timeouts()->mutable_timeouts() = cmd.timeouts;
      return op;
    case CommandKind::kAddLaddr:
      *op.mutable_create_local_address()->mutable_key() = key;
      op.mutable_create_local_address()->set_address(cmd.laddr);
      return op;
    case CommandKind::kDelLaddr:
      *op.mutable_delete_local_address()->mutable_key() = key;
      op.mutable_delete_local_address()->set_address(cmd.laddr);
      return op;
    default:
      return std::nullopt;
  }
}

// One operation through its own RPC.
grpc::Status sendOperation(const pb::BatchOperation& op, Stub& stub) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  switch (op.kind_case()) {
#define LB_SEND(Case, field, Rpc)             \
  case pb::BatchOperation::Case: {            \
    pb::Rpc##Response resp;                   \
    return stub.Rpc(&ctx, op.field(), &resp); \
  }
    LB_SEND(kCreateService, create_service, CreateService)
    LB_SEND(kUpdateService, update_service, UpdateService)
    LB_SEND(kDeleteService, delete_service, DeleteService)
    LB_SEND(kFlushServices, flush_services, FlushServices)
    LB_SEND(kCreateDest, create_dest, CreateDest)
    LB_SEND(kUpdateDest, update_dest, UpdateDest)
    LB_SEND(kDeleteDest, delete_dest, DeleteDest)
    LB_SEND(kCreateLocalAddress, create_local_address, CreateLocalAddress)
    LB_SEND(kDeleteLocalAddress, delete_local_address, DeleteLocalAddress)
    LB_SEND(kSetTimeouts, set_timeouts, SetTimeouts)
    LB_SEND(kSetSysctls, set_sysctls, SetSysctls)
    LB_SEND(kSetFwmarkRules, set_fwmark_rules, SetFwmarkRules)
#undef LB_SEND
    case pb::BatchOperation::KIND_NOT_SET:
      break;
  }
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not a mutation");
}

// The mutations: one RPC each (-Z too).
grpc::Status runOtherMutation(const Command& cmd, Stub& stub) {
  if (cmd.kind == CommandKind::kZero) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    pb::ZeroStatsRequest req;
    if (cmd.has_service)
      *req.mutable_key() = cmd.service.key();
    pb::ZeroStatsResponse resp;
    return stub.ZeroStats(&ctx, req, &resp);
  }
  std::optional<pb::BatchOperation> op = batchOperation(cmd);
  if (!op.has_value())
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not a mutation");
  return sendOperation(*op, stub);
}

// Requests stay well under lbd's 64 MiB limit for ApplyBatchRequest.
constexpr size_t kMaxBatchBytes = 16 << 20;

// -R's mutation lines not sent yet, sent in ApplyBatch requests (one commit each in lbd), and
// the exit status of the last line run. An lbd without ApplyBatch gets one RPC a line.
class RestoreQueue {
 public:
  RestoreQueue(Stub& stub, std::ostream& err) : stub_(stub), err_(err) {}

  // Queues one mutation line; sends the queue when it is full. False when lbd is unreachable
  // (ipvsadm's "Can't initialize ipvs" is printed, the restore ends with status 2).
  bool add(CommandKind kind, pb::BatchOperation&& op) {
    bytes_ += op.ByteSizeLong() + 4;
    *req_.add_operations() = std::move(op);
    kinds_.push_back(kind);
    return bytes_ < kMaxBatchBytes || flush();
  }

  // Sends the queued lines. Each refused line prints ipvsadm's message for it, exactly as the
  // same command on its own does, and the lines after it still run (restore_table()).
  bool flush() {
    const size_t n = kinds_.size();
    if (n == 0)
      return true;
    std::vector<grpc::Status> st;
    if (batched_)
      st = sendBatch();
    for (size_t i = 0; i < n; ++i) {
      if (i == st.size())  // no ApplyBatch: one RPC a line, each after the one before it
        st.push_back(sendOperation(req_.operations(static_cast<int>(i)), stub_));
      if (st[i].ok())
        continue;
      err_ << ipvsadmError(kinds_[i], st[i]) << "\n";
      if (unreachable(st[i])) {
        last_ = 2;
        return false;
      }
    }
    last_ = st.back().ok() ? 0 : kExitRefused;
    req_.Clear();
    kinds_.clear();
    bytes_ = 0;
    return true;
  }

  int last() const { return last_; }

  void setLast(int rc) { last_ = rc; }

 private:
  // The queue as one ApplyBatch request: each line's status (OK, or why lbd refused it).
  // None, and batched_ cleared, when lbd has no ApplyBatch.
  std::vector<grpc::Status> sendBatch() {
    std::vector<grpc::Status> st(kinds_.size());
    grpc::ClientContext ctx;
    // Generous: lbd checks every operation and then commits them all at once.
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60) +
                     std::chrono::milliseconds(req_.operations_size()));
    pb::ApplyBatchResponse resp;
    grpc::Status s = stub_.ApplyBatch(&ctx, req_, &resp);
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      batched_ = false;
      st.clear();
    } else if (!s.ok()) {  // not sent, or applied but not published: blame the last line
      st.back() = s;
    } else {
      for (const pb::BatchFailure& f : resp.failures()) {
        if (f.index() < st.size()) {
          st[f.index()] =
              grpc::Status(static_cast<grpc::StatusCode>(f.code()), std::string(f.message()));
        }
      }
    }
    return st;
  }

  Stub& stub_;
  std::ostream& err_;
  pb::ApplyBatchRequest req_;
  std::vector<CommandKind> kinds_;  // of req_'s operations, for ipvsadm's messages
  size_t bytes_ = 0;
  bool batched_ = true;  // false once lbd answered UNIMPLEMENTED
  int last_ = 0;
};

// One -R line that is not a mutation of the model, after the lines before it were sent.
// Returns its exit status and whether ipvsadm would go on with the next line.
std::pair<int, bool> runRestoreLine(const std::string& program,
                                    const Command& cmd,
                                    Stub& stub,
                                    std::ostream& out,
                                    std::ostream& err) {
  if (cmd.kind == CommandKind::kRestore) {  // restore_table(): "avoid infinite loop"
    err << "Try `" << program << " -h' or '" << program << " --help' for more information.\n";
    return {kExitRefused, false};
  }
  std::istringstream none;
  const int rc = executeCommand(program, cmd, stub, none, out, err);
  // -h and -v exit (usage_exit(0), version_exit(0)). process_options() returns only 0 or -1:
  // any other status is an exit() (fail(2, ...), a listing's exit(1), lbd unreachable).
  const bool exits = cmd.kind == CommandKind::kHelp || cmd.kind == CommandKind::kVersion;
  return {rc, !exits && (rc == 0 || rc == kExitRefused)};
}

// -R, as ipvsadm's restore_table(): every line runs in order, as its own command would. A line
// lbd refuses prints ipvsadm's message and the restore goes on; the exit status is the last
// line's. A line ipvsadm's parse_options() would exit on (fail(), tryhelp_exit()) ends the
// restore with its status: the lines before it are applied, it and the ones after it are not.
// popt's own errors (unknown option, missing argument after the command) only fail the line.
// Runs of mutation lines go to lbd as ApplyBatch requests, sent before any other line runs.
int runRestore(const std::string& program,
               Stub& stub,
               std::istream& in,
               std::ostream& out,
               std::ostream& err) {
  RestoreQueue queue(stub, err);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words = splitRuleLine(line);
    if (words.empty())
      continue;
    ParseResult r = parseIpvsadm(program, words);
    if (r.ok) {
      if (std::optional<pb::BatchOperation> op = batchOperation(r.command); op.has_value()) {
        if (!queue.add(r.command.kind, std::move(*op)))
          return queue.last();
        continue;
      }
    }
    if (!queue.flush())
      return queue.last();
    if (!r.ok) {
      err << r.error.message << "\n";
      if (!r.error.returns)
        return r.error.exit_code;
      queue.setLast(r.error.exit_code);
      continue;
    }
    auto [rc, go_on] = runRestoreLine(program, r.command, stub, out, err);
    if (!go_on)
      return rc;
    queue.setLast(rc);
  }
  queue.flush();
  return queue.last();
}

// --sysctl: list, read or write (read-modify-write of the whole set: SetSysctls replaces it).
int runSysctl(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  pb::GetSysctlsResponse cur;
  {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    grpc::Status s = stub.GetSysctls(&ctx, pb::GetSysctlsRequest(), &cur);
    if (!s.ok())
      return report(cmd.kind, s, err, 1);
  }
  const bool write = !cmd.sysctls.empty() && cmd.sysctls.front().set;
  if (!write) {
    if (cmd.list.json) {
      out << jsonOf(cur);
      return 0;
    }
    std::vector<std::string> names;
    for (const SysctlArg& a : cmd.sysctls)
      names.push_back(a.name);
    if (names.empty())
      names = sysctlNames();
    for (const std::string& n : names)
      out << formatSysctl(cur.sysctls(), n);
    return 0;
  }
  pb::SetSysctlsRequest req;
  *req.mutable_sysctls() = cur.sysctls();
  for (const SysctlArg& a : cmd.sysctls) {
    if (absl::Status st = setSysctl(*req.mutable_sysctls(), a.name, a.value); !st.ok()) {
      err << st.message() << "\n";
      return 2;
    }
  }
  grpc::ClientContext ctx;
  setDeadline(ctx);
  pb::SetSysctlsResponse resp;
  grpc::Status s = stub.SetSysctls(&ctx, req, &resp);
  return s.ok() ? 0 : report(cmd.kind, s, err, kExitRefused);
}

// The fwmark rules: GetConfig for the current list, SetFwmarkRules with the new one.
int runFwmarkRules(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  pb::GetConfigResponse cfg;
  {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    grpc::Status s = stub.GetConfig(&ctx, pb::GetConfigRequest(), &cfg);
    if (!s.ok())
      return report(cmd.kind, s, err, 1);
  }
  const auto& rules = cfg.config().fwmark_rules();
  if (cmd.kind == CommandKind::kListFwmarkRules) {
    if (cmd.list.json) {
      pb::SetFwmarkRulesRequest all;
      *all.mutable_rules() = rules;
      out << jsonOf(all);
      return 0;
    }
    for (const pb::FwmarkRule& r : rules)
      out << fwmarkRuleLine(r) << "\n";
    return 0;
  }
  pb::SetFwmarkRulesRequest req;
  const std::string want = cmd.fwmark_rule.SerializeAsString();
  bool removed = false;
  for (const pb::FwmarkRule& r : rules) {
    const bool same = canonicalFwmarkRule(r).SerializeAsString() == want;
    if (cmd.kind == CommandKind::kClearFwmarkRules ||
        (cmd.kind == CommandKind::kDelFwmarkRule && same && !removed)) {
      removed = true;
      continue;
    }
    if (cmd.kind == CommandKind::kAddFwmarkRule && same) {
      err << "Fwmark rule already exists\n";
      return kExitRefused;
    }
    *req.add_rules() = r;
  }
  if (cmd.kind == CommandKind::kDelFwmarkRule && !removed) {
    err << "No such fwmark rule\n";
    return kExitRefused;
  }
  if (cmd.kind == CommandKind::kAddFwmarkRule)
    *req.add_rules() = cmd.fwmark_rule;  // appended: the first matching rule wins
  grpc::ClientContext ctx;
  setDeadline(ctx);
  pb::SetFwmarkRulesResponse resp;
  grpc::Status s = stub.SetFwmarkRules(&ctx, req, &resp);
  return s.ok() ? 0 : report(cmd.kind, s, err, kExitRefused);
}

// --start-daemon / --stop-daemon: StartSyncDaemon / StopSyncDaemon with the options as given.
int runSyncDaemon(const Command& cmd, Stub& stub, std::ostream& err) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  grpc::Status s;
  if (cmd.kind == CommandKind::kStartDaemon) {
    pb::StartSyncDaemonRequest req;
    *req.mutable_daemon() = cmd.sync_daemon;
    pb::StartSyncDaemonResponse resp;
    s = stub.StartSyncDaemon(&ctx, req, &resp);
  } else {
    pb::StopSyncDaemonRequest req;
    req.set_role(cmd.sync_daemon.role());
    pb::StopSyncDaemonResponse resp;
    s = stub.StopSyncDaemon(&ctx, req, &resp);
  }
  return s.ok() ? 0 : report(cmd.kind, s, err, kExitRefused);
}

}  // namespace

std::string ipvsadmError(CommandKind kind, const grpc::Status& s) {
  using grpc::StatusCode;
  const StatusCode code = s.error_code();
  const std::string detail = absl::StrCat("lbd: ", s.error_message());
  if (unreachable(s)) {
    return absl::StrCat("Can't initialize ipvs: ", s.error_message(),
                        "\nAre you sure that lbd is running?");
  }
  if (code == StatusCode::ALREADY_EXISTS && kind == CommandKind::kStartDaemon)
    return "Daemon has already run";  // libipvs ipvs_strerror: ipvs_start_daemon, EEXIST
  if (code == StatusCode::NOT_FOUND && kind == CommandKind::kStopDaemon)
    return "No daemon is running";  // ipvs_stop_daemon, ESRCH
  if (code == StatusCode::INVALID_ARGUMENT && kind == CommandKind::kStartDaemon &&
      absl::StartsWith(s.error_message(), "no interface")) {
    return "No such device\n" + detail;  // start_sync_thread's -ENODEV, strerror'd by ipvsadm
  }
  if (code == StatusCode::ALREADY_EXISTS) {
    if (kind == CommandKind::kAddService)
      return "Service already exists";
    if (kind == CommandKind::kAddDest)
      return "Destination already exists";
    if (kind == CommandKind::kAddLaddr)
      return "Local address already exists";
  }
  if (code == StatusCode::NOT_FOUND) {
    switch (kind) {
      case CommandKind::kAddService:
        return "Scheduler or persistence engine not found";
      case CommandKind::kEditService:
        return serviceMissing(s) ? "No such service" : "Scheduler or persistence engine not found";
      case CommandKind::kAddDest:
      case CommandKind::kAddLaddr:
      case CommandKind::kGetLaddr:
        return "Service not defined";
      case CommandKind::kEditDest:
      case CommandKind::kDeleteDest:
        return serviceMissing(s) ? "Service not defined" : "No such destination";
      case CommandKind::kDelLaddr:
        return serviceMissing(s) ? "Service not defined" : "No such Local address";
      default:
        return "No such service";
    }
  }
  if (code == StatusCode::RESOURCE_EXHAUSTED)
    return "Memory allocation problem\n" + detail;
  if (code == StatusCode::PERMISSION_DENIED || code == StatusCode::UNAUTHENTICATED) {
    return "Permission denied (you must be root)\n" + detail;
  }
  if ((code == StatusCode::INVALID_ARGUMENT || code == StatusCode::FAILED_PRECONDITION) &&
      absl::StrContains(s.error_message(), "above upper threshold")) {
    return "Numerical result out of range\n" + detail;  // ip_vs_check_udest's -ERANGE
  }
  if (code == StatusCode::INVALID_ARGUMENT || code == StatusCode::FAILED_PRECONDITION) {
    return "Invalid operation.  Possibly wrong module version, address not unicast, ...\n" + detail;
  }
  return detail;
}

int executeCommand(const std::string& program,
                   const Command& cmd,
                   Stub& stub,
                   std::istream& in,
                   std::ostream& out,
                   std::ostream& err) {
  switch (cmd.kind) {
    case CommandKind::kHelp:
      out << usageText(program);
      return 0;
    case CommandKind::kVersion:
      out << versionText();
      return 0;
    case CommandKind::kStartDaemon:
    case CommandKind::kStopDaemon:
      return runSyncDaemon(cmd, stub, err);
    case CommandKind::kList:
      return runList(cmd, stub, out, err);
    case CommandKind::kSave:
      return runSave(cmd, stub, out, err);
    case CommandKind::kGetLaddr:
      return runGetLaddr(cmd, stub, out, err);
    case CommandKind::kRestore:
      return runRestore(program, stub, in, out, err);
    case CommandKind::kSysctl:
      return runSysctl(cmd, stub, out, err);
    case CommandKind::kAddFwmarkRule:
    case CommandKind::kDelFwmarkRule:
    case CommandKind::kListFwmarkRules:
    case CommandKind::kClearFwmarkRules:
      return runFwmarkRules(cmd, stub, out, err);
    default:
      break;
  }
  grpc::Status s = runOtherMutation(cmd, stub);
  if (!s.ok())
    return report(cmd.kind, s, err, kExitRefused);
  return 0;
}

std::string resolveServer(const std::string& flag) {
  if (!flag.empty())
    return flag;
  const char* env = std::getenv("LBD_SERVER");  // NOLINT(concurrency-mt-unsafe): main thread
  if (env != nullptr && *env != '\0')
    return env;
  return kDefaultServer;
}

namespace {

absl::StatusOr<std::string> readPem(const std::string& path, absl::string_view flag) {
  std::ifstream f(path);
  std::stringstream pem;
  if (f)
    pem << f.rdbuf();
  if (!f || pem.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, ": cannot read the file"));
  }
  return pem.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Stub>> makeStub(const ClientOptions& o) {
  absl::string_view target = o.server;
  const bool tls_scheme = absl::ConsumePrefix(&target, "tls://");
  const bool tcp_scheme = !tls_scheme && absl::ConsumePrefix(&target, "tcp://");
  const bool any_tls = !o.tls_ca.empty() || !o.tls_cert.empty() || !o.tls_key.empty();
  if (any_tls && !tls_scheme && !tcp_scheme) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server=", o.server, ": TLS needs tls://host:port (or tcp://host:port)"));
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls_scheme || any_tls) {
    grpc::SslCredentialsOptions ssl;
    if (!o.tls_ca.empty()) {
      absl::StatusOr<std::string> ca = readPem(o.tls_ca, "--tls-ca");
      if (!ca.ok())
        return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!o.tls_cert.empty()) {
      absl::StatusOr<std::string> cert = readPem(o.tls_cert, "--tls-cert");
      if (!cert.ok())
        return cert.status();
      absl::StatusOr<std::string> key = readPem(o.tls_key, "--tls-key");
      if (!key.ok())
        return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  // Listings of tens of thousands of services exceed gRPC's default 4 MiB per message.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxResponseBytes);
  return std::unique_ptr<Stub>(
      pb::LoadBalancer::NewStub(grpc::CreateCustomChannel(std::string(target), creds, args)));
}

int runLbctl(const std::string& program,
             const std::vector<std::string>& args,
             std::istream& in,
             std::ostream& out,
             std::ostream& err,
             const StubFactory& factory) {
  if (isListChecks(args))  // lbd's own: the health checks (cmd/lbctl/health_list.cc)
    return runListChecks(args, out, err, factory);
  ParseResult r = parseIpvsadm(program, args);
  if (!r.ok) {
    err << r.error.message << "\n";
    return r.error.exit_code;
  }
  // Channels connect lazily: -h, -v and the daemon commands never reach the server.
  const Command& c = r.command;
  absl::StatusOr<std::unique_ptr<Stub>> stub =
      factory(ClientOptions{resolveServer(c.server), c.tls_ca, c.tls_cert, c.tls_key});
  if (!stub.ok()) {
    err << stub.status().message() << "\n";
    return 2;
  }
  return executeCommand(program, r.command, **stub, in, out, err);
}

}  // namespace lb::lbctl
