// SPDX-License-Identifier: Apache-2.0
// The reconcile loop: the reflectors' caches -> mapCluster -> planSync against lbd's
// ListServices -> one ApplyBatch. Touches lbd only once both initial lists completed; then at
// start, on every change (debounced, so a burst is one batch), every --resync, when lbd restarts
// (GetInfo's instance id), while real servers drain, and after a failure (with backoff).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "cmd/lbd-controller/app/event_recorder.h"
#include "cmd/lbd-controller/app/lbd_api.h"
#include "cmd/lbd-controller/app/metrics.h"
#include "cmd/lbd-controller/kube/backoff.h"
#include "cmd/lbd-controller/kube/object_store.h"
#include "cmd/lbd-controller/mapping/mapping.h"
#include "cmd/lbd-controller/mapping/planner.h"
#include "cmd/lbd-controller/model/model.h"

namespace lbd::controller::app {

struct ControllerOptions {
  std::string owner = "lbd-controller";
  std::string node_name;
  std::chrono::milliseconds debounce{50};  // a burst of watch events -> one batch
  std::chrono::seconds resync{300};
  absl::Duration drain_timeout = absl::Minutes(15);
  std::chrono::milliseconds lbd_poll{2000};      // GetInfo: is lbd up, did it restart?
  std::chrono::milliseconds drain_replan{2000};  // re-plan while real servers drain
  kube::Backoff::Options retry{std::chrono::milliseconds(500), 2.0, std::chrono::seconds(30), 0.5,
                               std::chrono::minutes(2)};
};

// Where the objects come from: the reflectors' stores and whether their first lists completed.
struct ControllerSources {
  const kube::ObjectStore* services = nullptr;
  const kube::ObjectStore* slices = nullptr;
  const kube::ObjectStore* nodes = nullptr;  // optional: this node only (fieldSelector)
  std::function<bool()> synced;              // services and slices listed at least once
};

class Controller {
 public:
  Controller(ControllerOptions options,
             ControllerSources sources,
             LbdApi& lbd,
             EventSink& events,
             ControllerMetrics& metrics);

  // Any thread (the reflectors' handlers): something changed.
  void notify();
  // Runs until stop(); blocks.
  void run();
  void stop();

  // One full reconcile now (the loop's body; tests call it directly). Unavailable etc. when lbd
  // cannot be reached: nothing was changed then.
  absl::Status reconcile();
  // Did lbd restart (or come back)? Polls GetInfo; true when a reconcile is due because of it.
  bool pollLbd();

  bool ready() const { return metrics_.ready.load(); }

  bool stopping() const;

  // Heartbeat of the loop (for /healthz): steady-clock time of its last iteration.
  std::chrono::steady_clock::time_point lastLoop() const { return last_loop_.load(); }

 private:
  // The parsed objects, kept across reconciles: only objects whose JSON changed (another
  // ObjectPtr) are parsed again, and nothing is copied.
  template <typename T>
  struct ParseCache {
    std::map<std::string, kube::ObjectPtr> source;  // what `parsed` (or a failure) came from
    model::Store<T> parsed;
  };

  template <typename T, typename Parse>
  const model::Store<T>& parseAll(const kube::ObjectStore& store,
                                  ParseCache<T>& cache,
                                  Parse parse,
                                  const char* what);
  void report(const model::Store<model::Service>& services,
              const std::string& origin,
              const std::string& reason,
              const std::string& message);
  bool waitFor(std::chrono::steady_clock::time_point until);  // false when stopping

  ControllerOptions options_;
  ControllerSources sources_;
  LbdApi& lbd_;
  EventSink& events_;
  ControllerMetrics& metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = true;
  bool stopping_ = false;

  ParseCache<model::Service> service_cache_;
  ParseCache<model::EndpointSlice> slice_cache_;
  ParseCache<model::Node> node_cache_;
  mapping::DrainState drain_;
  std::optional<std::string> lbd_instance_;
  bool lbd_up_ = false;
  size_t draining_ = 0;
  std::atomic<std::chrono::steady_clock::time_point> last_loop_{};
};

}  // namespace lbd::controller::app
