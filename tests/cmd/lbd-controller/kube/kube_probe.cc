// SPDX-License-Identifier: Apache-2.0
// Test tool for tests/integration/controller_kube_client.sh: runs lbd-controller's reflectors
// (Services and EndpointSlices, lbd's label selector) against a real API server and writes what
// their caches hold, plus their counters, to a file once a second and after every change:
//   object services default/web 1234
//   stat services lists=1 relists=0 gone=0 watches=1 events=2 bookmarks=0 errors=0 synced=1
// With --event=NS/NAME it first posts a Warning Event on that Service and exits.
//   lbd_controller_kube_probe --kubeconfig=FILE --out=FILE [--proxy-name=lbd] [--event=NS/NAME]
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "cmd/lbd-controller/app/event_recorder.h"
#include "cmd/lbd-controller/kube/kube_config.h"
#include "cmd/lbd-controller/kube/reflector.h"
#include "cmd/lbd-controller/kube/url.h"

namespace kube = lbd::controller::kube;

int main(int argc, char** argv) {
  std::string kubeconfig, out, proxy = "lbd", event;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--kubeconfig="))
      kubeconfig = std::string(a);
    else if (absl::ConsumePrefix(&a, "--out="))
      out = std::string(a);
    else if (absl::ConsumePrefix(&a, "--proxy-name="))
      proxy = std::string(a);
    else if (absl::ConsumePrefix(&a, "--event="))
      event = std::string(a);
  }
  absl::StatusOr<kube::KubeConfig> cfg = kube::loadKubeconfigFile(kubeconfig);
  if (!cfg.ok()) {
    std::fprintf(stderr, "probe: %s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  auto tokens = std::make_shared<kube::TokenSource>(cfg->token, cfg->token_file);
  if (!event.empty()) {
    size_t slash = event.find('/');
    lbd::controller::app::EventRecorder rec(*kube::HttpClient::create(*cfg, tokens), "probe");
    rec.warn({event.substr(0, slash), event.substr(slash + 1), ""}, "LbdRefused",
             "probe: lbd refused this Service (test)");
    for (int i = 0; i < 100 && rec.posted() + rec.failed() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rec.stop();
    return rec.posted() == 1 ? 0 : 1;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::vector<std::unique_ptr<kube::Reflector>> rs;
  const std::pair<const char*, kube::ResourcePath> specs[] = {
      {"services", {"", "v1", "services"}},
      {"endpointslices", {"discovery.k8s.io", "v1", "endpointslices"}},
  };
  for (const auto& [name, path] : specs) {
    kube::ReflectorOptions o;
    o.name = name;
    o.path = kube::collectionPath(path);
    o.label_selector = kube::proxyLabelSelector(proxy);
    o.page_size = 2;  // small pages, so that pagination (continue) is exercised
    rs.push_back(std::make_unique<kube::Reflector>(*kube::HttpClient::create(*cfg, tokens), o,
                                                   [](const std::vector<kube::Delta>&) {}));
  }
  std::vector<std::thread> threads;
  for (auto& r : rs)
    threads.emplace_back([p = r.get()] { p->run(); });
  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::string last;
    for (;;) {
      std::string s;
      for (const auto& r : rs) {
        for (const auto& [key, obj] : r->store().snapshot())
          absl::StrAppend(&s, "object ", r->options().name, " ", key, " ",
                          kube::resourceVersionOf(*obj), "\n");
        const kube::ReflectorStats& st = r->stats();
        absl::StrAppend(&s, "stat ", r->options().name, " lists=", st.lists.load(),
                        " relists=", st.relists.load(), " gone=", st.gone.load(),
                        " watches=", st.watches.load(), " events=", st.events.load(),
                        " bookmarks=", st.bookmarks.load(), " errors=", st.errors.load(),
                        " synced=", r->synced() ? 1 : 0, "\n");
      }
      if (s != last) {
        std::ofstream(out + ".tmp") << s;
        std::rename((out + ".tmp").c_str(), out.c_str());
        last = s;
      }
      if (done.load())
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  int sig = 0;
  sigwait(&sigs, &sig);
  for (auto& r : rs)
    r->stop();
  for (auto& t : threads)
    t.join();
  done.store(true);
  writer.join();
  return 0;
}
