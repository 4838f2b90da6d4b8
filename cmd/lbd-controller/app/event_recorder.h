// SPDX-License-Identifier: Apache-2.0
// Kubernetes Events (core/v1) on Services whose configuration lbd or the mapping refused:
// POST /api/v1/namespaces/{ns}/events with involvedObject = the Service. Deduplicated: the same
// (Service, reason, message) is posted once per `repeat_after`. Posting runs on its own thread,
// so an unreachable API server never slows a reconcile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cmd/lbd-controller/kube/http_client.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::app {

struct ServiceRef {
  std::string ns;
  std::string name;
  std::string uid;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // A Warning event on the Service. Any thread; never blocks on the network.
  virtual void warn(const ServiceRef& service,
                    const std::string& reason,
                    const std::string& message) = 0;
};

// The core/v1 Event body (exposed for tests). `now` is RFC 3339.
nlohmann::json makeServiceEvent(const ServiceRef& service,
                                const std::string& reason,
                                const std::string& message,
                                const std::string& now,
                                const std::string& host,
                                uint64_t unique);

class EventRecorder : public EventSink {
 public:
  EventRecorder(std::unique_ptr<kube::HttpClient> client,
                std::string host,
                std::chrono::seconds repeat_after = std::chrono::minutes(30));
  ~EventRecorder() override;

  // EventSink
  void warn(const ServiceRef& service,
            const std::string& reason,
            const std::string& message) override;

  void stop();

  uint64_t posted() const { return posted_.load(); }

  uint64_t failed() const { return failed_.load(); }

  uint64_t suppressed() const { return suppressed_.load(); }

 private:
  struct Pending {
    ServiceRef service;
    std::string reason;
    std::string message;
  };

  void run();

  std::unique_ptr<kube::HttpClient> client_;
  std::string host_;
  std::chrono::seconds repeat_after_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<Pending> queue_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_;  // dedupe key -> posted at
  std::atomic<uint64_t> posted_{0}, failed_{0}, suppressed_{0};
  uint64_t seq_ = 0;
  std::thread thread_;
};

}  // namespace lbd::controller::app
