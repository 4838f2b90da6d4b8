// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/control_plane.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "cmd/lbd/control/api_convert.h"
#include "cmd/lbd/control/control_ops.h"
#include "cmd/lbd/control/metrics_server.h"
#include "core/base/log.h"

#include "lbd/v1/lbd.grpc.pb.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

constexpr int kMaxRequestBytes = 64 << 20;  // ApplyBatchRequest's documented limit

grpc::ServerUnaryReactor* done(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(toGrpcStatus(s));
  return r;
}

// The gRPC face of ControlOps: each handler is convert+apply (ControlOps), then toGrpcStatus.
// Callback API; handlers return at once with a finished reactor.
class LoadBalancerService final : public pb::LoadBalancer::CallbackService {
 public:
  explicit LoadBalancerService(ControlOps& ops)
      : ops_(ops), start_(std::chrono::system_clock::now()), instance_id_(randomInstanceId()) {}

#define LB_MUTATION_RPC(Name, method)                                                            \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const pb::Name##Request* req, \
                                 pb::Name##Response*) override {                                 \
    return done(ctx, ops_.method(*req));                                                         \
  }
  LB_MUTATION_RPC(CreateService, createService)
  LB_MUTATION_RPC(UpdateService, updateService)
  LB_MUTATION_RPC(DeleteService, deleteService)
  LB_MUTATION_RPC(CreateDest, createDest)
  LB_MUTATION_RPC(UpdateDest, updateDest)
  LB_MUTATION_RPC(DeleteDest, deleteDest)
  LB_MUTATION_RPC(CreateLocalAddress, createLocalAddress)
  LB_MUTATION_RPC(DeleteLocalAddress, deleteLocalAddress)
  LB_MUTATION_RPC(SetTimeouts, setTimeouts)
  LB_MUTATION_RPC(SetSysctls, setSysctls)
  LB_MUTATION_RPC(SetFwmarkRules, setFwmarkRules)
  LB_MUTATION_RPC(ReplaceConfig, replaceConfig)
  LB_MUTATION_RPC(ZeroStats, zeroStats)
#undef LB_MUTATION_RPC

  grpc::ServerUnaryReactor* FlushServices(grpc::CallbackServerContext* ctx,
                                          const pb::FlushServicesRequest*,
                                          pb::FlushServicesResponse*) override {
    return done(ctx, ops_.flushServices());
  }

  grpc::ServerUnaryReactor* ApplyBatch(grpc::CallbackServerContext* ctx,
                                       const pb::ApplyBatchRequest* req,
                                       pb::ApplyBatchResponse* resp) override {
    return done(ctx, ops_.applyBatch(*req, resp));
  }

  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* ctx,
                                         const pb::ListServicesRequest* req,
                                         pb::ListServicesResponse* resp) override {
    return done(ctx, ops_.listServices(*req, resp));
  }

  grpc::ServerUnaryReactor* ListLocalAddresses(grpc::CallbackServerContext* ctx,
                                               const pb::ListLocalAddressesRequest* req,
                                               pb::ListLocalAddressesResponse* resp) override {
    return done(ctx, ops_.listLocalAddresses(*req, resp));
  }

#define LB_GET_RPC(Name, method)                                                             \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const pb::Name##Request*, \
                                 pb::Name##Response* resp) override {                        \
    return done(ctx, ops_.method(resp));                                                     \
  }
  LB_GET_RPC(ListConnections, listConnections)
  LB_GET_RPC(GetStats, getStats)
  LB_GET_RPC(GetTimeouts, getTimeouts)
  LB_GET_RPC(GetSysctls, getSysctls)
  LB_GET_RPC(GetConfig, getConfig)
#undef LB_GET_RPC

  grpc::ServerUnaryReactor* StartSyncDaemon(grpc::CallbackServerContext* ctx,
                                            const pb::StartSyncDaemonRequest* req,
                                            pb::StartSyncDaemonResponse*) override {
    return done(ctx, ops_.startSyncDaemon(*req));
  }

  grpc::ServerUnaryReactor* StopSyncDaemon(grpc::CallbackServerContext* ctx,
                                           const pb::StopSyncDaemonRequest* req,
                                           pb::StopSyncDaemonResponse*) override {
    return done(ctx, ops_.stopSyncDaemon(*req));
  }

  grpc::ServerUnaryReactor* ListSyncDaemons(grpc::CallbackServerContext* ctx,
                                            const pb::ListSyncDaemonsRequest*,
                                            pb::ListSyncDaemonsResponse* resp) override {
    return done(ctx, ops_.listSyncDaemons(resp));
  }

  grpc::ServerUnaryReactor* ListHealthChecks(grpc::CallbackServerContext* ctx,
                                             const pb::ListHealthChecksRequest* req,
                                             pb::ListHealthChecksResponse* resp) override {
    if (!list_health_checks)
      return done(ctx, absl::OkStatus());
    return done(ctx, list_health_checks(*req, resp));
  }

  // ListHealthChecks answers from the health subsystem (ControlOptions::list_health_checks).
  std::function<absl::Status(const pb::ListHealthChecksRequest&, pb::ListHealthChecksResponse*)>
      list_health_checks;

  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx,
                                    const pb::GetInfoRequest*,
                                    pb::GetInfoResponse* resp) override {
    resp->set_version(LBD_VERSION);
    resp->set_pid(static_cast<uint32_t>(::getpid()));
    const auto since_epoch = start_.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    resp->mutable_start_time()->set_seconds(secs.count());
    resp->mutable_start_time()->set_nanos(static_cast<int32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count()));
    resp->set_instance_id(instance_id_);
    return done(ctx, absl::OkStatus());
  }

 private:
  // 128 bits from the system's entropy, 32 hex digits: a new one every start (GetInfo).
  static std::string randomInstanceId() {
    std::random_device rd;
    std::string id;
    for (int i = 0; i < 4; ++i)
      id += absl::StrFormat("%08x", rd());
    return id;
  }

  ControlOps& ops_;
  const std::chrono::system_clock::time_point start_;
  const std::string instance_id_;
};

// mkdir -p for the socket's directory.
absl::Status makeDirs(const std::string& dir) {
  if (dir.empty())
    return absl::OkStatus();
  for (size_t pos = 1;; ++pos) {
    pos = dir.find('/', pos);
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", prefix, ": ", std::strerror(errno)));
    }
    if (pos == std::string::npos)
      return absl::OkStatus();
  }
}

// Whether a process accepts connections on the Unix socket `path`.
bool unixSocketAnswers(const std::string& path) {
  sockaddr_un sa{};
  if (path.size() >= sizeof(sa.sun_path))
    return false;
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return ok;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

struct ControlPlane::Impl {
  Impl(ServiceTable& table, DataplaneHooks* hooks, ControlOptions opts)
      : options(std::move(opts)),
        ops(table, hooks, options.state_file, options.clock),
        service(ops) {
    service.list_health_checks = options.list_health_checks;
    ops.setSyncHooks(options.sync);
  }

  ControlOptions options;
  ControlOps ops;
  LoadBalancerService service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<MetricsServer> metrics;
  std::string unix_path;
  bool socket_placed = false;  // this process's socket is at unix_path (shutdown removes it)
  int port = 0;
  bool stopped = false;

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials(bool tcp) const;
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ControlPlane::Impl::credentials(
    bool tcp) const {
  const bool cert = !options.tls_cert.empty(), key = !options.tls_key.empty();
  if (cert != key)
    return absl::InvalidArgumentError("TLS: --tls-cert and --tls-key go together");
  if (!options.tls_ca.empty() && !cert) {
    return absl::InvalidArgumentError("TLS: --tls-ca (client certificates) needs --tls-cert");
  }
  if (!tcp || !cert) {
    if (tcp)
      LB_LOG(kWarn, "gRPC on %s without TLS (give --tls-cert and --tls-key)", options.listen);
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl(
      options.tls_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                             : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair{readFile(options.tls_key),
                                                         readFile(options.tls_cert)};
  if (pair.private_key.empty() || pair.cert_chain.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TLS: cannot read --tls-cert ", options.tls_cert,
                                                   " / --tls-key ", options.tls_key));
  }
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_ca.empty()) {
    ssl.pem_root_certs = readFile(options.tls_ca);
    if (ssl.pem_root_certs.empty())
      return absl::InvalidArgumentError(absl::StrCat("TLS: cannot read --tls-ca ", options.tls_ca));
  }
  return grpc::SslServerCredentials(ssl);
}

ControlPlane::ControlPlane(ServiceTable& table, DataplaneHooks* hooks, ControlOptions options)
    : impl_(std::make_unique<Impl>(table, hooks, std::move(options))) {}

ControlPlane::~ControlPlane() {
  shutdown();
}

absl::Status ControlPlane::loadInitialConfig() {
  return impl_->ops.loadInitial(impl_->options.config_file);
}

absl::Status ControlPlane::start() {
  const std::string& listen = impl_->options.listen;
  std::string target;
  std::string bind_path;  // unix: where the socket is made before it is renamed to the path
  const bool tcp = absl::StartsWith(listen, "tcp://");
  if (tcp) {
    target = listen.substr(6);
  } else if (absl::StartsWith(listen, "unix://")) {
    impl_->unix_path = listen.substr(7);
    if (impl_->unix_path.empty() || impl_->unix_path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("--listen=", listen, ": need unix:///path"));
    }
    target = absl::StrCat("unix://", impl_->unix_path);
    const size_t slash = impl_->unix_path.rfind('/');
    if (absl::Status st = makeDirs(impl_->unix_path.substr(0, slash)); !st.ok())
      return st;

    struct stat sb {};

    if (impl_->options.replace_socket) {
      // Hot restart: the old lbd still serves the path; this one's socket replaces it below.
    } else if (::lstat(impl_->unix_path.c_str(), &sb) == 0 && S_ISSOCK(sb.st_mode)) {
      // A stale socket from a previous run; one that still accepts is another process's.
      if (unixSocketAnswers(impl_->unix_path)) {
        return absl::FailedPreconditionError(
            absl::StrCat("--listen=", listen,
                         ": another process serves this socket (another lbd?); left alone"));
      }
      ::unlink(impl_->unix_path.c_str());
    }
    // The socket is made under a name of this process's and renamed to the path once it
    // serves: the path never lacks a socket that answers (a hot restart replaces the old lbd's
    // atomically), and gRPC's unlink of its listener's name at shutdown never removes the
    // socket a new lbd put at the path.
    bind_path = absl::StrCat(impl_->unix_path, ".", ::getpid());
    target = absl::StrCat("unix://", bind_path);
    ::unlink(bind_path.c_str());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", listen, ": expected unix:///path or tcp://host:port"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = impl_->credentials(tcp);
  if (!creds.ok())
    return creds.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, *creds, tcp ? &impl_->port : nullptr);
  builder.RegisterService(&impl_->service);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);  // ApplyBatch: lbctl -R's big restores
  // The socket is created 0600 from the start (no window before the chmod below).
  const mode_t old_mask = ::umask(0177);
  impl_->server = builder.BuildAndStart();
  ::umask(old_mask);
  if (impl_->server == nullptr || (tcp && impl_->port == 0)) {
    return absl::UnavailableError(absl::StrCat("gRPC: cannot listen on ", listen));
  }
  const std::string& made = bind_path.empty() ? impl_->unix_path : bind_path;
  if (!impl_->unix_path.empty() && ::chmod(made.c_str(), 0600) != 0) {
    return absl::InternalError(
        absl::StrCat("chmod ", impl_->unix_path, ": ", std::strerror(errno)));
  }
  impl_->server->GetHealthCheckService()->SetServingStatus("lbd.v1.LoadBalancer", true);

  if (!impl_->options.metrics_listen.empty()) {
    auto m = MetricsServer::start(impl_->options.metrics_listen,
                                  [this] { return impl_->ops.renderMetrics(); });
    if (!m.ok())
      return m.status();
    impl_->metrics = std::move(*m);
  }
  // Last: a start that fails must not have replaced the socket at the path (in a hot restart,
  // the old lbd's, which carries on).
  if (!bind_path.empty()) {
    if (::rename(bind_path.c_str(), impl_->unix_path.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("rename ", bind_path, " to ", impl_->unix_path, ": ", std::strerror(errno)));
    }
    impl_->socket_placed = true;
  }
  LB_LOG(kInfo, "gRPC listening on %s%s", listen,
         impl_->options.metrics_listen.empty()
             ? ""
             : absl::StrCat(", metrics on ", impl_->options.metrics_listen));
  return absl::OkStatus();
}

size_t ControlPlane::collectTrash() {
  return impl_->ops.collectTrash();
}

void ControlPlane::shutdown() {
  if (impl_->stopped)
    return;
  impl_->stopped = true;
  if (impl_->server != nullptr) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (impl_->metrics != nullptr)
    impl_->metrics->stop();
  if (!impl_->unix_path.empty() && impl_->socket_placed)
    ::unlink(impl_->unix_path.c_str());
}

int ControlPlane::boundPort() const {
  return impl_->port;
}

ControlOps& ControlPlane::ops() {
  return impl_->ops;
}

std::string ControlPlane::freezeForHandover() {
  return impl_->ops.freeze();
}

void ControlPlane::startSyncDaemons(const std::vector<::lbd::v1::SyncDaemon>& daemons) {
  impl_->ops.startSyncDaemons(daemons);
}

void ControlPlane::thaw() {
  impl_->ops.thaw();
}

void ControlPlane::releaseSocket() {
  impl_->unix_path.clear();
}

absl::Status ControlPlane::loadHandedOver(ServiceTable& table,
                                          const std::string& bytes,
                                          std::vector<::lbd::v1::SyncDaemon>* sync_daemons) {
  ::lbd::v1::Config p;
  if (!p.ParseFromString(bytes))
    return absl::InvalidArgumentError("configuration handed over: does not parse");
  if (sync_daemons != nullptr)
    sync_daemons->assign(p.sync_daemons().begin(), p.sync_daemons().end());
  absl::StatusOr<FullConfig> cfg = configFromProto(p);
  if (!cfg.ok())
    return cfg.status();
  return table.replace(*cfg);
}

void ControlPlane::wait() {
  if (impl_->server != nullptr)
    impl_->server->Wait();
}

}  // namespace lb::lbd
