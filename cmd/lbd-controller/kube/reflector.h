// SPDX-License-Identifier: Apache-2.0
// list + watch of one resource into an ObjectStore: client-go's Reflector (tools/cache/
// reflector.go) on our HttpClient. Paginated list, watch from the list's resourceVersion with
// bookmarks and a random timeout, re-list on 410, capped backoff with jitter, Retry-After.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "cmd/lbd-controller/kube/backoff.h"
#include "cmd/lbd-controller/kube/http_client.h"
#include "cmd/lbd-controller/kube/object_store.h"

namespace lbd::controller::kube {

struct ReflectorOptions {
  std::string name;  // "services": logs and metrics
  std::string path;  // the collection, e.g. /api/v1/services (collectionPath)
  std::string label_selector;
  std::string field_selector;
  int page_size = 500;
  int min_watch_timeout_s = 300;  // timeoutSeconds drawn uniformly from [min, max]
  int max_watch_timeout_s = 600;
  Backoff::Options backoff;
  std::chrono::seconds request_timeout{60};  // one list page
};

// Counters for /metrics; read from any thread.
struct ReflectorStats {
  std::atomic<uint64_t> lists{0};           // completed (paginated) lists
  std::atomic<uint64_t> relists{0};         // lists after the first
  std::atomic<uint64_t> gone{0};            // 410s seen (HTTP status or ERROR event)
  std::atomic<uint64_t> watches{0};         // watch requests started
  std::atomic<uint64_t> watch_restarts{0};  // watches after the first
  std::atomic<uint64_t> events{0};          // ADDED/MODIFIED/DELETED applied
  std::atomic<uint64_t> bookmarks{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int64_t> last_error_unix{0};  // seconds since the epoch, 0 = never
};

class Reflector {
 public:
  // Called on the reflector's thread after each list (every delta of the replace, synthesized
  // deletions included) and after each batch of watch events read together.
  using Handler = std::function<void(const std::vector<Delta>& deltas)>;

  Reflector(std::unique_ptr<HttpClient> client, ReflectorOptions options, Handler handler);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Runs until stop(); blocks. Never deletes anything from the store on a failure: only a
  // successful list replaces it.
  void run();
  // Any thread: aborts the current request and makes run() return.
  void stop();

  bool synced() const { return synced_.load(); }  // the first list completed

  std::string resourceVersion() const;

  const ReflectorStats& stats() const { return stats_; }

  const ObjectStore& store() const { return store_; }

  const ReflectorOptions& options() const { return options_; }

 private:
  // What to do after a failed step.
  struct Failure {
    absl::Status status;
    int http_status = 0;
    std::optional<std::chrono::seconds> retry_after;
  };
  enum class WatchEnd { kClean, kRelist, kFailed };

  std::optional<Failure> list();
  WatchEnd watch(Failure* failure);
  // Applies one chunk's events; false when the stream must end (ERROR event or bad object).
  bool applyEvents(WatchDecoder& dec, std::vector<Delta>& deltas, bool* gone, Failure* failure);
  static Failure failureOf(absl::Status st);
  Failure httpFailure(const char* what, const HttpResponse& r);
  void onFailure(const Failure& f);
  void sleepFor(std::chrono::steady_clock::duration d);
  void setResourceVersion(std::string rv);

  std::unique_ptr<HttpClient> client_;
  ReflectorOptions options_;
  Handler handler_;
  ObjectStore store_;
  ReflectorStats stats_;
  Backoff backoff_;
  std::mt19937_64 rng_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string rv_;
  std::atomic<bool> synced_{false};
  bool need_list_ = true;
  bool list_from_rv_ = false;  // after a 410: list at rv_ with NotOlderThan first
};

// The Status of a watch ERROR event or a failed response body: {code, reason, message}.
struct ApiStatus {
  int code = 0;
  std::string reason;
  std::string message;
};

ApiStatus parseApiStatus(const nlohmann::json& object);
ApiStatus parseApiStatusBody(absl::string_view body);

}  // namespace lbd::controller::kube
