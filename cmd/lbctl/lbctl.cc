// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbctl/lbctl.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "cmd/lbctl/format.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

constexpr int kExitRefused = 255;  // ipvsadm returns -1 when the kernel refuses

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
    out << (o.json ? jsonOf(resp) : formatConnections(resp, o));
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
    return 0;  // no sync daemon runs in lbd (yet): ipvsadm prints nothing then
  }
  pb::ListServicesRequest req;
  if (cmd.has_service)
    *req.mutable_key() = cmd.service.key();
  pb::ListServicesResponse resp;
  grpc::Status s = stub.ListServices(&ctx, req, &resp);
  if (!s.ok())
    return report(cmd.kind, s, err, 1);
  out << (o.json ? jsonOf(resp) : formatServiceList(resp, o, !cmd.has_service));
  return 0;
}

int runSave(const Command& cmd, Stub& stub, std::ostream& out, std::ostream& err) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  pb::ListServicesResponse resp;
  grpc::Status s = stub.ListServices(&ctx, pb::ListServicesRequest(), &resp);
  if (!s.ok())
    return report(cmd.kind, s, err, 1);
  out << formatSave(resp, cmd.list);
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

// -R: every line is parsed before anything is sent, so a bad line changes nothing.
int runRestore(const std::string& program,
               Stub& stub,
               std::istream& in,
               std::ostream& out,
               std::ostream& err) {
  std::vector<Command> cmds;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words = splitRuleLine(line);
    if (words.empty())
      continue;
    ParseResult r = parseIpvsadm(program, words);
    if (!r.ok) {
      err << r.error.message << "\n";
      return r.error.exit_code;
    }
    if (r.command.kind == CommandKind::kRestore) {
      err << "Try `" << program << " -h' or '" << program << " --help' for more information.\n";
      return kExitRefused;
    }
    cmds.push_back(std::move(r.command));
  }
  int rc = 0;
  std::istringstream none;
  for (const Command& c : cmds) {
    if (int r = executeCommand(program, c, stub, none, out, err); r != 0)
      rc = r;
  }
  return rc;
}

// The mutations: one RPC each.
grpc::Status runMutation(const Command& cmd, Stub& stub) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  const pb::ServiceKey& key = cmd.service.key();
  switch (cmd.kind) {
    case CommandKind::kAddService: {
      pb::CreateServiceRequest req;
      *req.mutable_service() = cmd.service;
      pb::CreateServiceResponse resp;
      return stub.CreateService(&ctx, req, &resp);
    }
    case CommandKind::kEditService: {
      pb::UpdateServiceRequest req;
      *req.mutable_service() = cmd.service;
      pb::UpdateServiceResponse resp;
      return stub.UpdateService(&ctx, req, &resp);
    }
    case CommandKind::kDeleteService: {
      pb::DeleteServiceRequest req;
      *req.mutable_key() = key;
      pb::DeleteServiceResponse resp;
      return stub.DeleteService(&ctx, req, &resp);
    }
    case CommandKind::kFlush: {
      pb::FlushServicesResponse resp;
      return stub.FlushServices(&ctx, pb::FlushServicesRequest(), &resp);
    }
    case CommandKind::kAddDest:
    case CommandKind::kEditDest: {
      pb::CreateDestRequest req;
      *req.mutable_key() = key;
      *req.mutable_dest() = cmd.dest;
      if (cmd.kind == CommandKind::kAddDest) {
        pb::CreateDestResponse resp;
        return stub.CreateDest(&ctx, req, &resp);
      }
      pb::UpdateDestRequest ureq;
      *ureq.mutable_key() = key;
      *ureq.mutable_dest() = cmd.dest;
      pb::UpdateDestResponse resp;
      return stub.UpdateDest(&ctx, ureq, &resp);
    }
    case CommandKind::kDeleteDest: {
      pb::DeleteDestRequest req;
      *req.mutable_key() = key;
      req.set_address(cmd.dest.address());
      req.set_port(cmd.dest.port());
      pb::DeleteDestResponse resp;
      return stub.DeleteDest(&ctx, req, &resp);
    }
    default:
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not a mutation");
  }
}

// The other mutations: timeouts, zero, local addresses.
grpc::Status runOtherMutation(const Command& cmd, Stub& stub) {
  grpc::ClientContext ctx;
  setDeadline(ctx);
  switch (cmd.kind) {
    case CommandKind::kSetTimeout: {
      pb::SetTimeoutsRequest req;
      *req.mutable_timeouts() = cmd.timeouts;
      pb::SetTimeoutsResponse resp;
      return stub.SetTimeouts(&ctx, req, &resp);
    }
    case CommandKind::kZero: {
      pb::ZeroStatsRequest req;
      if (cmd.has_service)
        *req.mutable_key() = cmd.service.key();
      pb::ZeroStatsResponse resp;
      return stub.ZeroStats(&ctx, req, &resp);
    }
    case CommandKind::kAddLaddr: {
      pb::CreateLocalAddressRequest req;
      *req.mutable_key() = cmd.service.key();
      req.set_address(cmd.laddr);
      pb::CreateLocalAddressResponse resp;
      return stub.CreateLocalAddress(&ctx, req, &resp);
    }
    case CommandKind::kDelLaddr: {
      pb::DeleteLocalAddressRequest req;
      *req.mutable_key() = cmd.service.key();
      req.set_address(cmd.laddr);
      pb::DeleteLocalAddressResponse resp;
      return stub.DeleteLocalAddress(&ctx, req, &resp);
    }
    default:
      return runMutation(cmd, stub);
  }
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
      err << "Connection synchronisation (sync daemon) is not supported by lbd yet\n";
      return kExitRefused;
    case CommandKind::kList:
      return runList(cmd, stub, out, err);
    case CommandKind::kSave:
      return runSave(cmd, stub, out, err);
    case CommandKind::kGetLaddr:
      return runGetLaddr(cmd, stub, out, err);
    case CommandKind::kRestore:
      return runRestore(program, stub, in, out, err);
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

std::unique_ptr<Stub> makeStub(const std::string& server, const std::string& tls_ca) {
  std::string target = server;
  if (absl::StartsWith(target, "tcp://"))
    target = target.substr(6);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!tls_ca.empty()) {
    std::ifstream f(tls_ca);
    std::stringstream pem;
    pem << f.rdbuf();
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return pb::LoadBalancer::NewStub(grpc::CreateChannel(target, creds));
}

int runLbctl(const std::string& program,
             const std::vector<std::string>& args,
             std::istream& in,
             std::ostream& out,
             std::ostream& err,
             const StubFactory& factory) {
  ParseResult r = parseIpvsadm(program, args);
  if (!r.ok) {
    err << r.error.message << "\n";
    return r.error.exit_code;
  }
  // Channels connect lazily: -h, -v and the daemon commands never reach the server.
  std::unique_ptr<Stub> stub = factory(resolveServer(r.command.server), r.command.tls_ca);
  return executeCommand(program, r.command, *stub, in, out, err);
}

}  // namespace lb::lbctl
