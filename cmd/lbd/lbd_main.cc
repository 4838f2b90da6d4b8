// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/lbd_main.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/dataplane/dataplane.h"
#include "cmd/lbd/lbd_health.h"
#include "cmd/lbd/lbd_takeover.h"
#include "cmd/lbd/mmap_pages.h"
#include "cmd/lbd/sync/sync_control.h"
#include "cmd/lbd/sync/sync_manager.h"
#include "cmd/lbd/takeover/handover_socket.h"
#include "cmd/lbd/takeover/owner_lock.h"
#include "core/base/log.h"
#include "core/service/service_table.h"

ABSL_FLAG(std::string, tun, "lbd0", "TUN device name");
ABSL_FLAG(std::string, mode, "gateway", "gateway | sidecar | decap");
ABSL_FLAG(int, workers, 0, "worker threads, one per TUN queue (0 = one per CPU)");
ABSL_FLAG(std::string,
          listen,
          "unix:///run/lbd/lbd.sock",
          "gRPC listen address: unix:///path or tcp://host:port");
ABSL_FLAG(std::string, state_file, "", "state file, written atomically on every change");
ABSL_FLAG(std::string, config, "", "configuration file loaded at start");
ABSL_FLAG(std::string,
          run_dir,
          "/run/lbd",
          "runtime directory: the namespace's owner lock (one lbd per network namespace) and "
          "the sysctl journal");
ABSL_FLAG(bool,
          takeover,
          false,
          "hot restart: take over from the lbd running in this namespace (same --listen) its "
          "TUN queues, configuration, kernel state and connections, without dropping any; it "
          "exits once this one serves");
ABSL_FLAG(std::string, log_format, "text", "text | json");
ABSL_FLAG(std::string, log_level, "info", "debug | info | warn | error");
ABSL_FLAG(std::string, tls_cert, "", "server certificate (PEM) for TCP listeners");
ABSL_FLAG(std::string, tls_key, "", "server private key (PEM)");
ABSL_FLAG(std::string, tls_ca, "", "client CA (PEM); when set, clients must present a cert");
ABSL_FLAG(std::string, metrics, "", "host:port for the Prometheus /metrics endpoint");
ABSL_FLAG(int64_t, conn_capacity, 1 << 20, "connection table capacity (entries)");
ABSL_FLAG(int, gue_port, 5555, "decap mode: UDP port GUE packets arrive on (the LB's --tun-port)");
ABSL_FLAG(bool, offloads, true, "ask the TUN device for checksum and TSO/USO offloads");
ABSL_FLAG(bool,
          direct_egress,
          true,
          "send forwarded packets on the egress Ethernet link (AF_PACKET) once its next hop is "
          "known, instead of back through the TUN device");
ABSL_FLAG(bool,
          bpf_fast_path,
          true,
          "attach a tc ingress BPF program that hands packets for lbd straight to the TUN "
          "device (falls back to the kernel path where BPF is not permitted)");
ABSL_FLAG(bool,
          flow_offload,
          true,
          "gateway mode with the tc fast path: NAT and full-NAT conns are rewritten and forwarded "
          "by the tc program itself once lbd scheduled them (TCP: from the SYN on); lbd follows "
          "their state from the program's flags within 20 ms");
ABSL_FLAG(uint32_t,
          flow_offload_min_packets,
          1,
          "client packets a conn must have sent through lbd before it is offloaded (1..1000000; "
          "1: a TCP conn from its SYN on)");
ABSL_FLAG(std::string,
          ftp_ports,
          "21",
          "the FTP helper's control ports, comma-separated (ip_vs_ftp's ports=, at most 8; empty: "
          "off): NAT and full-NAT TCP services on them get PASV/EPSV replies and PORT/EPRT "
          "commands rewritten and their data connections made ahead");

namespace lb::lbd {
namespace {

std::mutex g_log_mu;
bool g_json = false;
FILE* g_log_file = stderr;

std::string jsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

void logSink(LogLevel level, absl::string_view module, absl::string_view msg) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[40];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  std::string line;
  if (g_json) {
    line = absl::StrFormat(R"({"ts":"%s.%03dZ","level":"%s","module":"%s","msg":"%s"})", when,
                           ts.tv_nsec / 1000000, logLevelName(level), jsonEscape(module),
                           jsonEscape(msg));
  } else {
    line = absl::StrFormat("%s.%03dZ %s %s %s", when, ts.tv_nsec / 1000000, logLevelName(level),
                           module, msg);
  }
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::fprintf(g_log_file, "%s\n", line.c_str());
  std::fflush(g_log_file);
}

absl::StatusOr<Mode> parseMode(const std::string& m) {
  if (m == "gateway")
    return Mode::kGateway;
  if (m == "sidecar")
    return Mode::kSidecar;
  if (m == "decap")
    return Mode::kDecap;
  return absl::InvalidArgumentError(
      absl::StrCat("--mode=", m, ": expected gateway, sidecar or decap"));
}

absl::StatusOr<LogLevel> parseLevel(const std::string& l) {
  if (l == "debug")
    return LogLevel::kDebug;
  if (l == "info")
    return LogLevel::kInfo;
  if (l == "warn")
    return LogLevel::kWarn;
  if (l == "error")
    return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat("--log-level=", l, ": unknown level"));
}

// lbd's documented flags are spelled with hyphens (--state-file, --log-format), as operators
// expect; abseil's parser knows only the underscore names, so the name part is normalised.
std::vector<char*> normaliseFlagNames(int argc, char** argv, std::vector<std::string>& storage) {
  storage.reserve(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a.compare(0, 2, "--") == 0) {
      size_t end = a.find('=');
      if (end == std::string::npos)
        end = a.size();
      for (size_t j = 2; j < end; ++j) {
        if (a[j] == '-')
          a[j] = '_';
      }
    }
    storage.push_back(std::move(a));
  }
  std::vector<char*> out;
  for (auto& s : storage)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int fail(const absl::Status& s) {
  LB_LOG(kError, "%s", s.ToString());
  return 1;
}

}  // namespace

int lbdMain(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lbd --tun=NAME --mode=gateway|sidecar|decap --workers=N --listen=ADDR "
      "[--state-file=PATH] [--config=PATH] [--log-format=text|json] [--takeover]\n"
      "  --takeover: hot restart (e.g. to a new binary): the running lbd hands over its TUN "
      "queues, configuration, kernel state and connection table over the Unix socket beside "
      "its control socket, and exits once this one serves; no connection is dropped");
  std::vector<std::string> arg_storage;
  std::vector<char*> args = normaliseFlagNames(argc, argv, arg_storage);
  absl::ParseCommandLine(argc, args.data());

  const std::string format = absl::GetFlag(FLAGS_log_format);
  if (format != "text" && format != "json") {
    std::fprintf(stderr, "lbd: --log-format=%s: expected text or json\n", format.c_str());
    return 2;
  }
  g_json = format == "json";
  setLogSink(&logSink);
  auto level = parseLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok())
    return fail(level.status());
  setMinLogLevel(*level);
  auto mode = parseMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok())
    return fail(mode.status());

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGUSR2);  // a new lbd took over (TakeoverServer)
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // Tables sized for their limits cost only what they use (docs/memory.md).
  setDefaultPageProvider(&mmapPageProvider());
  ServiceTable table;
  DataplaneOptions dopts;
  dopts.tun = absl::GetFlag(FLAGS_tun);
  dopts.mode = *mode;
  dopts.workers = absl::GetFlag(FLAGS_workers);
  dopts.conn_capacity = static_cast<size_t>(absl::GetFlag(FLAGS_conn_capacity));
  const int gue_port = absl::GetFlag(FLAGS_gue_port);
  if (gue_port < 1 || gue_port > 65535) {
    return fail(absl::InvalidArgumentError(absl::StrCat("--gue-port=", gue_port, ": 1..65535")));
  }
  dopts.gue_port = static_cast<uint16_t>(gue_port);
  dopts.offloads = absl::GetFlag(FLAGS_offloads);
  dopts.direct_egress = absl::GetFlag(FLAGS_direct_egress);
  dopts.bpf_fast_path = absl::GetFlag(FLAGS_bpf_fast_path);
  dopts.flow_offload = absl::GetFlag(FLAGS_flow_offload);
  dopts.flow_offload_min_packets = absl::GetFlag(FLAGS_flow_offload_min_packets);
  if (dopts.flow_offload_min_packets < 1 || dopts.flow_offload_min_packets > 1000000) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "--flow-offload-min-packets=", dopts.flow_offload_min_packets, ": 1..1000000")));
  }
  dopts.ftp_ports.clear();
  for (absl::string_view part :
       absl::StrSplit(absl::GetFlag(FLAGS_ftp_ports), ',', absl::SkipEmpty())) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(part, &port) || port < 1 || port > 65535 || dopts.ftp_ports.size() == 8) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "--ftp-ports=", absl::GetFlag(FLAGS_ftp_ports), ": at most 8 ports of 1..65535")));
    }
    dopts.ftp_ports.push_back(static_cast<uint16_t>(port));
  }
  // One owner per network namespace, before anything in the kernel is touched: a second lbd
  // stops here having changed nothing, and leftovers are cleaned (by the dataplane) only once
  // the lock proves their owner gone.
  dopts.run_dir = absl::GetFlag(FLAGS_run_dir);
  // Connection synchronisation's master side: one hook per worker, attached to the master
  // daemon's rings while one runs (they outlive the dataplane: declared before it).
  const size_t sync_workers = dopts.workers > 0 ? static_cast<size_t>(dopts.workers)
                                                : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<sync::SyncWorkerHook>> sync_worker_hooks;
  std::vector<sync::SyncWorkerHook*> sync_hook_ptrs;
  for (size_t i = 0; i < sync_workers; ++i) {
    sync_worker_hooks.push_back(std::make_unique<sync::SyncWorkerHook>());
    sync_hook_ptrs.push_back(sync_worker_hooks.back().get());
    dopts.sync_hooks.push_back(sync_worker_hooks.back().get());
  }
  // And one for the flow offload's reports (the conns its fast path forwards), with its own ring.
  sync_worker_hooks.push_back(std::make_unique<sync::SyncWorkerHook>());
  sync_hook_ptrs.push_back(sync_worker_hooks.back().get());
  dopts.offload_sync_hook = sync_worker_hooks.back().get();
  OwnerInfo me{static_cast<int>(getpid()), dopts.tun, absl::GetFlag(FLAGS_mode),
               absl::GetFlag(FLAGS_listen)};
  const bool takeover = absl::GetFlag(FLAGS_takeover);
  const std::string takeover_path =
      takeoverSocketPath(me.listen, OwnerLock::lockPath(dopts.run_dir));
  std::unique_ptr<OwnerLock> owner;
  absl::StatusOr<std::unique_ptr<Dataplane>> dataplane;
  TakenOver taken;
  std::string mode_name = absl::GetFlag(FLAGS_mode);
  if (takeover) {
    // Hot restart: the lock, the TUN queues and everything else come from the running lbd.
    auto t = takeOver(takeover_path, dopts, table, me);
    if (!t.ok())
      return fail(t.status());
    taken = std::move(*t);
    owner = std::move(taken.owner);
    dataplane = std::move(taken.dataplane);
    mode_name = taken.mode;
  } else {
    auto lock = OwnerLock::acquire(dopts.run_dir, me);
    if (!lock.ok())
      return fail(lock.status());
    owner = std::move(*lock);
    if (absl::Status s = checkNoLiveOwner(dopts.tun, 2000); !s.ok())
      return fail(s);
    dataplane = Dataplane::create(dopts, table);
    if (!dataplane.ok())
      return fail(dataplane.status());
  }
  // A failed takeover tells the old lbd, which carries on, and leaves its kernel state alone.
  auto failStart = [&](const absl::Status& s) {
    if (takeover) {
      finishTakeover(taken, s);
      (*dataplane)->abandon();
    } else {
      (*dataplane)->stop();
    }
    return fail(s);
  };

  ControlOptions copts;
  copts.listen = absl::GetFlag(FLAGS_listen);
  copts.state_file = absl::GetFlag(FLAGS_state_file);
  copts.config_file = absl::GetFlag(FLAGS_config);
  copts.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  copts.tls_key = absl::GetFlag(FLAGS_tls_key);
  copts.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  copts.metrics_listen = absl::GetFlag(FLAGS_metrics);
  copts.replace_socket = takeover;
  // --keepalived-conf: parsed (a bad file stops lbd here); its hooks see every commit.
  auto health = HealthWiring::create(dataplane->get());
  if (!health.ok())
    return failStart(health.status());
  copts.list_health_checks = [h = health->get()](const ::lbd::v1::ListHealthChecksRequest& req,
                                                 ::lbd::v1::ListHealthChecksResponse* resp) {
    return h->list(req, resp);
  };
  // Connection synchronisation (ipvsadm --start-daemon): the backup's entries go into the
  // dataplane's conn table (its shards lock per entry) on the last committed snapshot.
  sync::SyncCommitHooks sync_hooks((*health)->hooks(), table);
  sync::SyncManager::Env sync_env;
  sync_env.conns = const_cast<ConnTable*>((*dataplane)->conns());  // the dataplane's own table
  sync_env.snapshot = [&sync_hooks] { return sync_hooks.snapshot(); };
  sync_env.runtime = &table.runtime();
  sync_env.workers = sync_hook_ptrs.size();  // the workers' rings and the offload's
  sync_env.hooks = sync_hook_ptrs;
  sync_env.now = [] {  // the dataplane's clock (CLOCK_MONOTONIC, as Conn::expires)
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return MonoTime{static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
  };
  sync::SyncManager sync_manager(std::move(sync_env));
  sync_hooks.setManager(&sync_manager, table);
  sync::SyncControl sync_control(sync_manager, &table);
  copts.sync = &sync_control;
  ControlPlane control(table, &sync_hooks, copts);
  if (!takeover) {
    if (absl::Status s = control.loadInitialConfig(); !s.ok())
      return failStart(s);
  }
  // A takeover starts the control plane first: whatever fails there fails before this lbd has
  // read a packet from the queues, so the old one carries on with nothing missing.
  if (takeover) {
    if (absl::Status s = control.start(); !s.ok())
      return failStart(s);
  }
  if (absl::Status s = (*dataplane)->start(); !s.ok())
    return failStart(s);
  if (!takeover) {
    if (absl::Status s = control.start(); !s.ok())
      return failStart(s);
  }
  if (takeover) {
    finishTakeover(taken, absl::OkStatus());
    // The old lbd's sync daemons, started again here: a backup daemon's socket may share
    // group:port with the old one's until it exits (SO_REUSEADDR).
    control.startSyncDaemons(taken.sync_daemons);
  }
  auto takeover_server =
      TakeoverServer::start(takeover_path, control, **dataplane, *owner, dopts.mode, mode_name);
  if (!takeover_server.ok()) {
    LB_LOG(kWarn, "hot restart unavailable: %s", takeover_server.status().ToString());
  }
  if (absl::Status s = (*health)->start(control); !s.ok()) {
    control.shutdown();
    return failStart(s);
  }
  LB_LOG(kInfo, "lbd started: tun=%s mode=%s listen=%s%s", dopts.tun, mode_name, copts.listen,
         takeover ? " (took over)" : "");
  // Start-up code and symbol tables are not needed again (docs/memory.md).
  LB_LOG(kInfo, "start-up pages dropped: %zu kB", dropStartupPages());

  for (;;) {
    // Once a second, between signals: removed dests whose last conn has expired give their
    // ids back (the kernel's dest trash timer).
    const timespec tick{1, 0};
    const int sig = sigtimedwait(&sigs, nullptr, &tick);
    if (sig < 0) {
      control.collectTrash();
      continue;
    }
    if (sig == SIGUSR2) {
      if (takeover_server.ok() && (*takeover_server)->handedOver())
        break;
      continue;
    }
    if (sig == SIGHUP) {
      // Logs go to stderr; a supervisor that rotates them reopens the stream itself.
      LB_LOG(kInfo, "SIGHUP: logs reopened");
      (*health)->reload();  // --keepalived-conf, if any
      continue;
    }
    LB_LOG(kInfo, "signal %d: stopping", sig);
    break;
  }
  (*health)->stop();
  if (takeover_server.ok() && (*takeover_server)->handedOver()) {
    // The new lbd owns the sockets, the TUN queues, the lock and the kernel state now.
    (*takeover_server)->stop();
    owner->handedOver();
    control.releaseSocket();
    control.shutdown();
    (*dataplane)->abandon();
    LB_LOG(kInfo, "lbd handed over and stopped");
    return 0;
  }
  if (takeover_server.ok())
    (*takeover_server)->stop();
  control.shutdown();
  (*dataplane)->stop();
  LB_LOG(kInfo, "lbd stopped");
  return 0;
}

}  // namespace lb::lbd
