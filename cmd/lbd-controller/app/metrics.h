// SPDX-License-Identifier: Apache-2.0
// lbd-controller's Prometheus metrics (text format 0.0.4): reconciles, batches, refusals, plus
// each reflector's list/watch counters and the event recorder's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "cmd/lbd-controller/kube/reflector.h"

namespace lbd::controller::app {

class EventRecorder;

struct ControllerMetrics {
  // Reconcile duration histogram upper bounds, seconds.
  static constexpr std::array<double, 10> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,  1,     2.5,  10};
  std::atomic<uint64_t> reconciles{0};
  std::atomic<uint64_t> reconcile_errors{0};
  std::array<std::atomic<uint64_t>, kBuckets.size()> duration_buckets{};
  std::atomic<uint64_t> duration_micros_sum{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> operations{0};
  std::atomic<uint64_t> refused_operations{0};
  std::atomic<uint64_t> problems{0};          // Services with a mapping problem, last reconcile
  std::atomic<uint64_t> desired_services{0};  // lbd virtual services wanted, last reconcile
  std::atomic<uint64_t> draining_dests{0};
  std::atomic<uint64_t> lbd_restarts{0};
  std::atomic<uint64_t> lbd_errors{0};
  std::atomic<uint64_t> parse_errors{0};
  std::atomic<int64_t> last_error_unix{0};
  std::atomic<int64_t> last_reconcile_unix{0};
  std::atomic<bool> ready{false};

  void observeReconcile(double seconds);
  void noteError();
};

// The whole /metrics page.
std::string renderMetrics(const ControllerMetrics& m,
                          const std::vector<const kube::Reflector*>& reflectors,
                          const EventRecorder* events);

}  // namespace lbd::controller::app
