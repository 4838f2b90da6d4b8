// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/metrics.h"

#include <algorithm>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "cmd/lbd-controller/app/event_recorder.h"

namespace lbd::controller::app {
namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void sample(std::string& out, const char* name, uint64_t v) {
  absl::StrAppend(&out, name, " ", v, "\n");
}

using ReflectorField = uint64_t (*)(const kube::Reflector&);

void perResource(std::string& out,
                 const std::vector<const kube::Reflector*>& rs,
                 const char* name,
                 const char* type,
                 const char* help,
                 ReflectorField f) {
  family(out, name, type, help);
  for (const kube::Reflector* r : rs)
    absl::StrAppend(&out, name, "{resource=\"", r->options().name, "\"} ", f(*r), "\n");
}

}  // namespace

void ControllerMetrics::observeReconcile(double seconds) {
  reconciles.fetch_add(1);
  duration_micros_sum.fetch_add(static_cast<uint64_t>(seconds * 1e6));
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i])
      duration_buckets[i].fetch_add(1);
  }
  last_reconcile_unix.store(static_cast<int64_t>(std::time(nullptr)));
}

void ControllerMetrics::noteError() {
  last_error_unix.store(static_cast<int64_t>(std::time(nullptr)));
}

std::string renderMetrics(const ControllerMetrics& m,
                          const std::vector<const kube::Reflector*>& rs,
                          const EventRecorder* events) {
  std::string out;
  perResource(out, rs, "lbd_controller_lists_total", "counter", "Completed (paginated) lists.",
              [](const kube::Reflector& r) { return r.stats().lists.load(); });
  perResource(out, rs, "lbd_controller_relists_total", "counter",
              "Lists after the first (after a 410 or a failure).",
              [](const kube::Reflector& r) { return r.stats().relists.load(); });
  perResource(out, rs, "lbd_controller_watch_gone_total", "counter",
              "410 Gone seen (HTTP status or ERROR event).",
              [](const kube::Reflector& r) { return r.stats().gone.load(); });
  perResource(out, rs, "lbd_controller_watch_restarts_total", "counter",
              "Watch requests after the first.",
              [](const kube::Reflector& r) { return r.stats().watch_restarts.load(); });
  perResource(out, rs, "lbd_controller_watch_events_total", "counter",
              "ADDED/MODIFIED/DELETED events applied.",
              [](const kube::Reflector& r) { return r.stats().events.load(); });
  perResource(out, rs, "lbd_controller_watch_bookmarks_total", "counter", "BOOKMARK events.",
              [](const kube::Reflector& r) { return r.stats().bookmarks.load(); });
  perResource(out, rs, "lbd_controller_api_errors_total", "counter",
              "Failed list/watch attempts (each followed by a backoff).",
              [](const kube::Reflector& r) { return r.stats().errors.load(); });
  perResource(out, rs, "lbd_controller_objects", "gauge", "Objects in the reflector's cache.",
              [](const kube::Reflector& r) { return static_cast<uint64_t>(r.store().size()); });
  perResource(out, rs, "lbd_controller_synced", "gauge", "1 once the first list completed.",
              [](const kube::Reflector& r) { return static_cast<uint64_t>(r.synced()); });

  family(out, "lbd_controller_reconcile_duration_seconds", "histogram",
         "Full reconciles (map, plan against lbd, apply).");
  for (size_t i = 0; i < ControllerMetrics::kBuckets.size(); ++i)
    absl::StrAppend(&out, "lbd_controller_reconcile_duration_seconds_bucket{le=\"",
                    ControllerMetrics::kBuckets[i], "\"} ", m.duration_buckets[i].load(), "\n");
  absl::StrAppend(&out, "lbd_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} ",
                  m.reconciles.load(), "\n");
  absl::StrAppend(&out, "lbd_controller_reconcile_duration_seconds_sum ",
                  absl::StrFormat("%.6f", static_cast<double>(m.duration_micros_sum.load()) / 1e6),
                  "\n");
  absl::StrAppend(&out, "lbd_controller_reconcile_duration_seconds_count ", m.reconciles.load(),
                  "\n");

  struct Row {
    const char* name;
    const char* type;
    const char* help;
    uint64_t v;
  };

  const Row rows[] = {
      {"lbd_controller_reconciles_total", "counter", "Completed reconciles.", m.reconciles.load()},
      {"lbd_controller_reconcile_errors_total", "counter",
       "Reconciles that failed (lbd unreachable).", m.reconcile_errors.load()},
      {"lbd_controller_batches_total", "counter", "ApplyBatch requests sent.", m.batches.load()},
      {"lbd_controller_batch_operations_total", "counter", "Operations sent in batches.",
       m.operations.load()},
      {"lbd_controller_refused_operations_total", "counter",
       "Operations lbd refused (ApplyBatchResponse.failures).", m.refused_operations.load()},
      {"lbd_controller_services_with_problems", "gauge",
       "Kubernetes Services with a mapping problem or conflict (last reconcile).",
       m.problems.load()},
      {"lbd_controller_desired_virtual_services", "gauge", "lbd virtual services wanted.",
       m.desired_services.load()},
      {"lbd_controller_draining_dests", "gauge", "TCP real servers draining at weight 0.",
       m.draining_dests.load()},
      {"lbd_controller_lbd_restarts_total", "counter", "lbd restarts seen (GetInfo instance id).",
       m.lbd_restarts.load()},
      {"lbd_controller_lbd_errors_total", "counter", "Failed calls to lbd.", m.lbd_errors.load()},
      {"lbd_controller_parse_errors_total", "counter", "Objects the model could not parse.",
       m.parse_errors.load()},
      {"lbd_controller_last_error_timestamp_seconds", "gauge", "Unix time of the last error.",
       static_cast<uint64_t>(m.last_error_unix.load())},
      {"lbd_controller_last_reconcile_timestamp_seconds", "gauge",
       "Unix time of the last completed reconcile.",
       static_cast<uint64_t>(m.last_reconcile_unix.load())},
      {"lbd_controller_ready", "gauge", "1 after the first full reconcile.",
       static_cast<uint64_t>(m.ready.load())},
  };
  for (const Row& r : rows) {
    family(out, r.name, r.type, r.help);
    sample(out, r.name, r.v);
  }
  if (events != nullptr) {
    family(out, "lbd_controller_events_posted_total", "counter", "Kubernetes Events posted.");
    sample(out, "lbd_controller_events_posted_total", events->posted());
    family(out, "lbd_controller_events_failed_total", "counter",
           "Events that could not be posted.");
    sample(out, "lbd_controller_events_failed_total", events->failed());
    family(out, "lbd_controller_events_suppressed_total", "counter",
           "Events not posted again (deduplicated).");
    sample(out, "lbd_controller_events_suppressed_total", events->suppressed());
  }
  return out;
}

}  // namespace lbd::controller::app
