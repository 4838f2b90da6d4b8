// SPDX-License-Identifier: Apache-2.0
// lbd's health checking, keepalived's checker daemon in lbd: the virtual servers of a
// keepalived.conf, their real servers and checkers, run on one Boost.Asio thread. What the
// results do (ipwrapper) reaches the load balancer through the control plane's commit, as an
// lbctl command does (ApplyBatch: one snapshot, one state-file write); an operator's own
// commits are observed (DataplaneHooks::onCommit) so that `lbctl -e -w N` is the weight a
// healed real server comes back with.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "cmd/lbd/health/keepalived_conf.h"
#include "core/service/service_table.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::health {

// The control plane's commit API (ControlOps::applyBatch, getConfig).
struct ControlApi {
  std::function<absl::Status(const ::lbd::v1::ApplyBatchRequest&, ::lbd::v1::ApplyBatchResponse*)>
      apply_batch;
  std::function<absl::Status(::lbd::v1::GetConfigResponse*)> get_config;
};

struct HealthOptions {
  std::string conf_path;
  ConfReader reader;  // default: the filesystem
  ControlApi control;
};

// One checker's state, for listings and metrics.
struct CheckerStatus {
  std::string service;  // "TCP 198.18.0.1:80" style: the first key of its virtual server
  std::string rs;       // "198.18.1.1:8080"
  std::string checker;  // "TCP_CHECK", "HTTP_GET", ...
  ::lbd::v1::HealthCheckStatus proto;  // the same for ListHealthChecks
  bool up = false;
  uint64_t checks = 0;
  uint64_t failures = 0;
  uint64_t transitions = 0;
  uint64_t last_latency_us = 0;
  // Every attempt's duration: counts per bucket of kLatencyBucketsUs (not cumulative; the
  // last one is above the last bound) and their sum, for a Prometheus histogram.
  std::array<uint64_t, 9> latency_counts{};
  uint64_t latency_sum_us = 0;
};

// The histogram's upper bounds (microseconds); +Inf after them.
inline constexpr std::array<uint64_t, 8> kLatencyBucketsUs = {
    1'000, 5'000, 10'000, 50'000, 100'000, 500'000, 1'000'000, 5'000'000};

class HealthService {
 public:
  // Parses the file (refusing it whole with "FILE:LINE: reason") and builds the model. No
  // check runs and nothing is committed yet.
  static absl::StatusOr<std::unique_ptr<HealthService>> create(HealthOptions options);
  ~HealthService();

  // Binds the control plane's commit API (when it was not known at create()). Before start().
  void setControl(ControlApi control);

  // Commits the virtual servers (all real servers in, unless alpha), then starts the checks
  // on the health thread. Main thread, after the control plane loaded its configuration.
  absl::Status start();
  // SIGHUP: re-reads the file. A bad file is refused whole (the running configuration stays);
  // otherwise only the difference is committed, and unchanged checkers keep their state.
  // Main thread; blocks until the health thread applied it.
  absl::Status reload();
  // Stops every checker on the health thread, then the thread, and joins the threads. Called on
  // the health thread itself (from a handler), it stops the checkers there and returns; the
  // next stop() or the destructor joins. Safe to call twice, not from two threads at once.
  void stop();

  // Checkers not stopped (keepalived.conf's and the configuration's). Only while the health
  // thread is not running: before start() or after stop().
  size_t runningCheckersForTest() const;

  // Control thread, inside every commit (see HealthHooks): notices an operator's weight edits
  // and removals of real servers this service manages.
  void observe(const ServiceTable& table);

  // Any thread: per-checker state (a copy).
  std::vector<CheckerStatus> status() const;
  // Any thread: ListHealthChecks (req.key() filters by the service).
  absl::Status list(const ::lbd::v1::ListHealthChecksRequest& req,
                    ::lbd::v1::ListHealthChecksResponse* resp) const;
  // Any thread: Prometheus samples "name{labels}" → value.
  std::vector<std::pair<std::string, uint64_t>> metrics() const;

 private:
  struct Impl;
  explicit HealthService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::health
