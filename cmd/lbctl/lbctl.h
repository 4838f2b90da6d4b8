// SPDX-License-Identifier: Apache-2.0
// lbctl: runs one ipvsadm command line against lbd's gRPC API and prints what ipvsadm prints.
#ifndef LBD_CMD_LBCTL_LBCTL_H_
#define LBD_CMD_LBCTL_LBCTL_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cmd/lbctl/ipvsadm_parser.h"

#include "lbd/v1/lbd.grpc.pb.h"

namespace lb::lbctl {

inline constexpr char kDefaultServer[] = "unix:///run/lbd/lbd.sock";

using Stub = ::lbd::v1::LoadBalancer::StubInterface;
// Creates a stub for `server` (unix:///path or tcp://host:port), with TLS when tls_ca is set.
using StubFactory =
    std::function<std::unique_ptr<Stub>(const std::string& server, const std::string& tls_ca)>;

// The real factory: a gRPC channel to lbd.
std::unique_ptr<Stub> makeStub(const std::string& server, const std::string& tls_ca);

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

#endif  // LBD_CMD_LBCTL_LBCTL_H_
