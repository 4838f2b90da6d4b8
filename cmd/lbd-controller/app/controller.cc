// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/controller.h"

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

#include "cmd/lbd-controller/kube/log.h"

namespace lbd::controller::app {
namespace {

using Clock = std::chrono::steady_clock;
using kube::logEvent;
using kube::LogLevel;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t msBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

Controller::Controller(ControllerOptions options,
                       ControllerSources sources,
                       LbdApi& lbd,
                       EventSink& events,
                       ControllerMetrics& metrics)
    : options_(std::move(options)),
      sources_(std::move(sources)),
      lbd_(lbd),
      events_(events),
      metrics_(metrics) {}

void Controller::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void Controller::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool Controller::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool Controller::waitFor(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return stopping_ || dirty_; });
  return !stopping_;
}

template <typename T, typename Parse>
const model::Store<T>& Controller::parseAll(const kube::ObjectStore& store,
                                            ParseCache<T>& cache,
                                            Parse parse,
                                            const char* what) {
  const kube::ObjectMap snapshot = store.snapshot();
  for (auto it = cache.source.begin(); it != cache.source.end();) {
    if (snapshot.find(it->first) == snapshot.end()) {
      cache.parsed.erase(it->first);
      it = cache.source.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, obj] : snapshot) {
    auto src = cache.source.find(key);
    if (src != cache.source.end() && src->second == obj)
      continue;  // the same object as last time
    cache.source[key] = obj;
    absl::StatusOr<T> parsed = parse(*obj);
    if (!parsed.ok()) {
      cache.parsed.erase(key);
      metrics_.parse_errors.fetch_add(1);
      logEvent(
          LogLevel::kWarn, "controller", "object ignored: cannot parse",
          {{"kind", what}, {"object", key}, {"error", std::string(parsed.status().message())}});
      continue;
    }
    cache.parsed.insert_or_assign(key, std::move(*parsed));
  }
  return cache.parsed;
}

void Controller::report(const model::Store<model::Service>& services,
                        const std::string& origin,
                        const std::string& reason,
                        const std::string& message) {
  ServiceRef ref;
  size_t slash = origin.find('/');
  ref.ns = slash == std::string::npos ? "" : origin.substr(0, slash);
  ref.name = slash == std::string::npos ? origin : origin.substr(slash + 1);
  if (auto it = services.find(origin); it != services.end())
    ref.uid = it->second.uid;
  if (ref.ns.empty() || ref.name.empty())
    return;
  events_.warn(ref, reason, message);
}

bool Controller::pollLbd() {
  absl::StatusOr<lbd::v1::GetInfoResponse> info = lbd_.getInfo();
  if (!info.ok() && info.status().code() != absl::StatusCode::kUnimplemented) {
    if (lbd_up_) {
      logEvent(LogLevel::kWarn, "controller", "lbd unreachable",
               {{"error", std::string(info.status().message())}});
      metrics_.lbd_errors.fetch_add(1);
      metrics_.noteError();
    }
    lbd_up_ = false;
    return false;
  }
  const std::string id = info.ok() ? info->instance_id() : "";  // UNIMPLEMENTED: an older lbd
  bool due = false;
  if (!lbd_up_) {
    lbd_up_ = true;
    due = true;
  }
  if (lbd_instance_ && *lbd_instance_ != id) {
    metrics_.lbd_restarts.fetch_add(1);
    logEvent(LogLevel::kInfo, "controller", "lbd restarted: full reconcile",
             {{"instance", id}, {"previous", *lbd_instance_}});
    due = true;
  }
  lbd_instance_ = id;
  return due;
}

absl::Status Controller::reconcile() {
  const auto t0 = Clock::now();
  const model::Store<model::Service>& services = parseAll(
      *sources_.services, service_cache_,
      [](const nlohmann::json& j) { return model::parseService(j); }, "Service");
  const model::Store<model::EndpointSlice>& slices = parseAll(
      *sources_.slices, slice_cache_,
      [](const nlohmann::json& j) { return model::parseEndpointSlice(j); }, "EndpointSlice");
  std::optional<model::Node> node;
  if (sources_.nodes != nullptr) {
    const model::Store<model::Node>& nodes = parseAll(
        *sources_.nodes, node_cache_, [](const nlohmann::json& j) { return model::parseNode(j); },
        "Node");
    if (auto it = nodes.find(options_.node_name); it != nodes.end())
      node = it->second;
  }
  mapping::MapOptions mo;
  mo.owner = options_.owner;
  mo.node_name = options_.node_name;
  mapping::Desired desired = mapping::mapCluster(services, slices, node, mo);
  const auto t_mapped = Clock::now();

  absl::StatusOr<lbd::v1::ListServicesResponse> actual = lbd_.listServices();
  if (!actual.ok()) {
    metrics_.lbd_errors.fetch_add(1);
    return actual.status();
  }
  const auto t_listed = Clock::now();
  mapping::PlanOptions po;
  po.owner = options_.owner;
  po.drain_timeout = options_.drain_timeout;
  mapping::Plan plan = mapping::planSync(desired, *actual, drain_, absl::Now(), po);
  const int ops = plan.request.operations_size();
  const auto t_planned = Clock::now();
  size_t refused = 0;
  if (ops > 0) {
    absl::StatusOr<lbd::v1::ApplyBatchResponse> resp = lbd_.applyBatch(plan.request);
    if (!resp.ok()) {
      metrics_.lbd_errors.fetch_add(1);
      return resp.status();
    }
    metrics_.batches.fetch_add(1);
    metrics_.operations.fetch_add(static_cast<uint64_t>(ops));
    refused = static_cast<size_t>(resp->failures_size());
    metrics_.refused_operations.fetch_add(refused);
    for (const lbd::v1::BatchFailure& f : resp->failures()) {
      const std::string origin = f.index() < plan.origins.size() ? plan.origins[f.index()] : "";
      logEvent(LogLevel::kWarn, "controller", "lbd refused an operation",
               {{"service", origin}, {"code", absl::StrCat(f.code())}, {"error", f.message()}});
      if (!origin.empty())
        report(services, origin, "LbdRefused", f.message());
    }
    if (refused > 0)
      metrics_.noteError();
  }
  const auto t_applied = Clock::now();
  std::set<std::string> with_problems;
  for (const auto* problems : {&desired.problems, &plan.conflicts}) {
    for (const auto& [origin, list] : *problems) {
      with_problems.insert(origin);
      for (const mapping::Problem& p : list)
        report(services, origin, p.reason, p.message);
    }
  }
  metrics_.problems.store(with_problems.size());
  metrics_.desired_services.store(desired.services.size());
  metrics_.draining_dests.store(plan.draining);
  draining_ = plan.draining;
  const double took = secondsSince(t0);
  metrics_.observeReconcile(took);
  if (!metrics_.ready.exchange(true))
    logEvent(LogLevel::kInfo, "controller", "first full reconcile done: ready");
  logEvent(ops > 0 ? LogLevel::kInfo : LogLevel::kDebug, "controller", "reconciled",
           {{"services", absl::StrCat(services.size())},
            {"slices", absl::StrCat(slices.size())},
            {"virtual_services", absl::StrCat(desired.services.size())},
            {"operations", absl::StrCat(ops)},
            {"refused", absl::StrCat(refused)},
            {"problems", absl::StrCat(with_problems.size())},
            {"draining", absl::StrCat(plan.draining)},
            {"ms", absl::StrCat(static_cast<int64_t>(took * 1000))},
            {"map_ms", absl::StrCat(msBetween(t0, t_mapped))},
            {"list_ms", absl::StrCat(msBetween(t_mapped, t_listed))},
            {"plan_ms", absl::StrCat(msBetween(t_listed, t_planned))},
            {"apply_ms", absl::StrCat(msBetween(t_planned, t_applied))}});
  return absl::OkStatus();
}

void Controller::run() {
  while (!sources_.synced()) {  // kube-proxy's isInitialized: never touch lbd before
    last_loop_.store(Clock::now());
    if (!waitFor(Clock::now() + std::chrono::milliseconds(100)))
      return;
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = false;
  }
  logEvent(LogLevel::kInfo, "controller", "initial lists complete");
  kube::Backoff retry(options_.retry);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto now = Clock::now();
  auto next_poll = now;
  auto next_resync = now + options_.resync;
  auto next_drain = now;
  bool retrying = false;  // a failed reconcile waits for retry_at
  auto retry_at = now;
  bool due = true;  // the first full reconcile
  while (!stopping()) {
    now = Clock::now();
    last_loop_.store(now);
    if (now >= next_poll) {
      if (pollLbd()) {  // lbd restarted or came back: reconcile now, even during a retry wait
        due = true;
        retrying = false;
      }
      next_poll = now + options_.lbd_poll;
    }
    if (now >= next_resync) {
      due = true;
      next_resync = now + options_.resync;
    }
    if (retrying && now >= retry_at) {
      retrying = false;
      due = true;
    }
    if (draining_ > 0 && now >= next_drain)
      due = true;
    bool changed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      changed = dirty_;
      dirty_ = false;
    }
    if (changed) {
      due = true;
      // Debounce: let the rest of a burst arrive, so that it becomes one batch.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.debounce, [this] { return stopping_; });
      dirty_ = false;
    }
    if (due && !retrying) {
      due = false;
      absl::Status st = reconcile();
      now = Clock::now();
      if (st.ok()) {
        retry.reset();
        next_drain = now + options_.drain_replan;
      } else {
        metrics_.reconcile_errors.fetch_add(1);
        metrics_.noteError();
        auto d = retry.next(now, u(rng));
        retry_at = now + d;
        retrying = true;
        logEvent(
            LogLevel::kWarn, "controller", "reconcile failed; lbd keeps what it has",
            {{"error", std::string(st.message())},
             {"retry_ms",
              absl::StrCat(std::chrono::duration_cast<std::chrono::milliseconds>(d).count())}});
      }
    }
    auto wake = std::min(next_poll, next_resync);
    if (retrying)
      wake = std::min(wake, retry_at);
    if (draining_ > 0)
      wake = std::min(wake, next_drain);
    waitFor(wake);
  }
}

}  // namespace lbd::controller::app
