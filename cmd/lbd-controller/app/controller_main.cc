// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/controller_main.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "cmd/lbd-controller/app/controller.h"
#include "cmd/lbd-controller/app/event_recorder.h"
#include "cmd/lbd-controller/app/lbd_api.h"
#include "cmd/lbd-controller/app/metrics.h"
#include "cmd/lbd-controller/app/status_server.h"
#include "cmd/lbd-controller/app/webhook_flags.h"
#include "cmd/lbd-controller/kube/http_client.h"
#include "cmd/lbd-controller/kube/kube_config.h"
#include "cmd/lbd-controller/kube/log.h"
#include "cmd/lbd-controller/kube/reflector.h"
#include "cmd/lbd-controller/kube/url.h"

ABSL_FLAG(std::string,
          kubeconfig,
          "",
          "kubeconfig file (its current context); empty: in-cluster (service account)");
ABSL_FLAG(std::string, context, "", "kubeconfig context instead of the current one");
ABSL_FLAG(
    std::string,
    lbd,
    "unix:///run/lbd/lbd.sock",
    "lbd's gRPC address (unix:// or tcp://); none: serve only the sidecar injector (--webhook)");
ABSL_FLAG(std::string,
          proxy_name,
          "lbd",
          "serve Services labelled service.kubernetes.io/service-proxy-name=<this>");
ABSL_FLAG(std::string, namespace, "", "watch one namespace only (empty: all namespaces)");
ABSL_FLAG(absl::Duration, resync, absl::Minutes(5), "full reconcile against lbd this often");
ABSL_FLAG(absl::Duration,
          drain_timeout,
          absl::Minutes(15),
          "a TCP real server gone from every EndpointSlice stays at weight 0 until its "
          "connections end or this long, then it is deleted");
ABSL_FLAG(std::string,
          node_name,
          "",
          "this pod's node (Local traffic policies, topology hints); default $NODE_NAME");
ABSL_FLAG(std::string,
          metrics,
          ":9443",
          "HOST:PORT for /metrics, /healthz and /readyz (empty: off)");
ABSL_FLAG(std::string,
          owner,
          "lbd-controller",
          "owner stamped on the lbd services this controller makes; it never touches others");
ABSL_FLAG(std::string, log_format, "text", "text | json");
ABSL_FLAG(std::string, log_level, "info", "debug | info | warn | error");

namespace lbd::controller::app {
namespace {

using kube::logEvent;
using kube::LogLevel;

int fail(const std::string& msg) {
  std::fprintf(stderr, "lbd-controller: %s\n", msg.c_str());
  return 1;
}

// The flags are documented with hyphens (--drain-timeout, --log-format) as operators expect;
// abseil knows the underscore names, so the name part of each --flag is normalised. "--" ends
// the flags.
std::vector<char*> hyphensToUnderscores(int argc, char** argv, std::vector<std::string>& storage) {
  storage.reserve(static_cast<size_t>(argc));
  bool flags = true;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--")
      flags = false;
    if (flags && i > 0 && a.size() > 2 && a.compare(0, 2, "--") == 0) {
      const size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    }
    storage.push_back(std::move(a));
  }
  std::vector<char*> out;
  for (std::string& s : storage)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

absl::StatusOr<kube::KubeConfig> loadConfig() {
  const std::string path = absl::GetFlag(FLAGS_kubeconfig);
  if (!path.empty())
    return kube::loadKubeconfigFile(path, absl::GetFlag(FLAGS_context));
  return kube::loadInClusterConfig();
}

}  // namespace

int controllerMain(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Kubernetes Services and EndpointSlices -> lbd (list/watch, one ApplyBatch per change)");
  std::vector<std::string> storage;
  std::vector<char*> args = hyphensToUnderscores(argc, argv, storage);
  absl::ParseCommandLine(argc, args.data());
  const std::string log_format = absl::GetFlag(FLAGS_log_format);
  if (log_format != "text" && log_format != "json")
    return fail("--log-format: text or json");
  kube::setLogJson(log_format == "json");
  LogLevel level;
  if (!kube::parseLogLevel(absl::GetFlag(FLAGS_log_level), &level))
    return fail("--log-level: debug, info, warn or error");
  kube::setLogLevel(level);

  // Block the stop signals in every thread; the main thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (absl::GetFlag(FLAGS_lbd) == "none")
    return runWebhookOnly(&stop_signals, absl::GetFlag(FLAGS_metrics));

  absl::StatusOr<kube::KubeConfig> config = loadConfig();
  if (!config.ok())
    return fail(std::string(config.status().message()));
  std::string node_name = absl::GetFlag(FLAGS_node_name);
  if (node_name.empty())
    node_name = kube::processEnv("NODE_NAME").value_or("");
  const std::string ns = absl::GetFlag(FLAGS_namespace);
  auto tokens = std::make_shared<kube::TokenSource>(config->token, config->token_file);
  auto client = [&]() -> absl::StatusOr<std::unique_ptr<kube::HttpClient>> {
    return kube::HttpClient::create(*config, tokens);
  };

  absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> injector = startWebhookFromFlags();
  if (!injector.ok())
    return fail(std::string(injector.status().message()));

  absl::StatusOr<std::unique_ptr<GrpcLbdApi>> lbd = GrpcLbdApi::create(absl::GetFlag(FLAGS_lbd));
  if (!lbd.ok())
    return fail(std::string(lbd.status().message()));
  absl::StatusOr<std::unique_ptr<kube::HttpClient>> events_client = client();
  if (!events_client.ok())
    return fail(std::string(events_client.status().message()));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EventRecorder events(std::move(*events_client), node_name.empty() ? host : node_name);
  ControllerMetrics metrics;

  const std::string selector = kube::proxyLabelSelector(absl::GetFlag(FLAGS_proxy_name));

  struct Spec {
    const char* name;
    kube::ResourcePath path;
    std::string ns, label, field;
  };

  std::vector<Spec> specs = {
      {"services", {"", "v1", "services"}, ns, selector, ""},
      {"endpointslices", {"discovery.k8s.io", "v1", "endpointslices"}, ns, selector, ""},
  };
  if (!node_name.empty())
    specs.push_back({"nodes", {"", "v1", "nodes"}, "", "", "metadata.name=" + node_name});
  Controller* ctl_ptr = nullptr;
  std::vector<std::unique_ptr<kube::Reflector>> reflectors;
  for (const Spec& s : specs) {
    absl::StatusOr<std::unique_ptr<kube::HttpClient>> c = client();
    if (!c.ok())
      return fail(std::string(c.status().message()));
    kube::ReflectorOptions o;
    o.name = s.name;
    o.path = kube::collectionPath(s.path, s.ns);
    o.label_selector = s.label;
    o.field_selector = s.field;
    reflectors.push_back(std::make_unique<kube::Reflector>(
        std::move(*c), o, [&ctl_ptr](const std::vector<kube::Delta>& d) {
          if (!d.empty() && ctl_ptr != nullptr)
            ctl_ptr->notify();
        }));
  }
  ControllerOptions co;
  co.owner = absl::GetFlag(FLAGS_owner);
  co.node_name = node_name;
  co.resync = std::chrono::seconds(absl::ToInt64Seconds(absl::GetFlag(FLAGS_resync)));
  if (co.resync < std::chrono::seconds(1))
    return fail("--resync: at least 1s");
  co.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  ControllerSources sources;
  sources.services = &reflectors[0]->store();
  sources.slices = &reflectors[1]->store();
  sources.nodes = reflectors.size() > 2 ? &reflectors[2]->store() : nullptr;
  sources.synced = [&] { return reflectors[0]->synced() && reflectors[1]->synced(); };
  Controller controller(co, sources, **lbd, events, metrics);
  ctl_ptr = &controller;

  std::unique_ptr<StatusServer> status;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics); !listen.empty()) {
    std::vector<const kube::Reflector*> rs;
    for (const auto& r : reflectors)
      rs.push_back(r.get());
    std::map<std::string, StatusServer::Handler> routes;
    routes["/metrics"] = [&metrics, rs, &events] {
      return StatusServer::Page{200, "text/plain; version=0.0.4; charset=utf-8",
                                renderMetrics(metrics, rs, &events)};
    };
    routes["/healthz"] = [&controller] {
      bool alive =
          std::chrono::steady_clock::now() - controller.lastLoop() < std::chrono::seconds(60);
      return alive ? StatusServer::Page{200, "text/plain", "ok\n"}
                   : StatusServer::Page{503, "text/plain", "reconcile loop stuck\n"};
    };
    routes["/readyz"] = [&controller] {
      return controller.ready() ? StatusServer::Page{200, "text/plain", "ok\n"}
                                : StatusServer::Page{503, "text/plain", "not yet reconciled\n"};
    };
    absl::StatusOr<std::unique_ptr<StatusServer>> s =
        StatusServer::start(listen, std::move(routes));
    if (!s.ok())
      return fail(std::string(s.status().message()));
    status = std::move(*s);
  }

  logEvent(LogLevel::kInfo, "main", "starting",
           {{"api", kube::joinHostPort(config->server.host, config->server.port)},
            {"config", config->source},
            {"lbd", absl::GetFlag(FLAGS_lbd)},
            {"selector", selector},
            {"namespace", ns.empty() ? "(all)" : ns},
            {"node", node_name},
            {"metrics_port", status ? absl::StrCat(status->port()) : "off"}});
  std::vector<std::thread> threads;
  for (auto& r : reflectors)
    threads.emplace_back([p = r.get()] { p->run(); });
  threads.emplace_back([&controller] { controller.run(); });

  int sig = 0;
  sigwait(&stop_signals, &sig);
  logEvent(LogLevel::kInfo, "main", "stopping", {{"signal", absl::StrCat(sig)}});
  controller.stop();
  for (auto& r : reflectors)
    r->stop();
  for (auto& t : threads)
    t.join();
  events.stop();
  if (*injector)
    (*injector)->stop();
  if (status)
    status->stop();
  return 0;
}

}  // namespace lbd::controller::app
