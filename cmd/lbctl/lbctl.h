// SPDX-License-Identifier: Apache-2.0
// lbctl: runs one ipvsadm command line against lbd's gRPC API and prints what ipvsadm prints.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "api/ipvsadm/parser.h"

#include "lbd/v1/lbd.grpc.pb.h"

namespace lb::lbctl {

// The grammar's words, as lbctl names them.
using ipvsadm::Command;
using ipvsadm::CommandKind;

inline constexpr char kDefaultServer[] = "unix:///run/lbd/lbd.sock";

using Stub = ::lbd::v1::LoadBalancer::StubInterface;

// How lbctl reaches lbd. server: unix:///path, tcp://host:port (plain, or TLS when any --tls-*
// option is given) or tls://host:port (always TLS; without --tls-ca the system's roots are
// trusted). tls_cert + tls_key: the client's certificate for servers that require one.
struct ClientOptions {
  std::string server;
  std::string tls_ca, tls_cert, tls_key;
};

// Creates a stub; InvalidArgument for an unreadable file or TLS options on a unix socket.
using StubFactory =
    std::function<absl::StatusOr<std::unique_ptr<Stub>>(const ClientOptions& options)>;

// The real factory: a gRPC channel to lbd.
absl::StatusOr<std::unique_ptr<Stub>> makeStub(const ClientOptions& options);

// The server address: --server, else $LBD_SERVER, else kDefaultServer.
std::string resolveServer(const std::string& flag);

// Runs `program args...` and returns the exit status ipvsadm would: 0 ok, 2 bad options,
// 255 (ipvsadm's -1) when lbd refused the change, 1 when a listing failed.
int runLbctl(const std::string& program,
             const std::vector<std::string>& args,
             std::istream& in,
             std::ostream& out,
             std::ostream& err,
             const StubFactory& factory);

// Executes one parsed command on `stub` (-R reads its lines from `in`).
int executeCommand(const std::string& program,
                   const Command& cmd,
                   Stub& stub,
                   std::istream& in,
                   std::ostream& out,
                   std::ostream& err);

// The line ipvsadm prints for a failed operation (libipvs.c ipvs_strerror), from lbd's status.
// Where ipvsadm's text is generic, lbd's reason follows on a second line ("lbd: ...").
std::string ipvsadmError(CommandKind kind, const grpc::Status& status);

}  // namespace lb::lbctl
