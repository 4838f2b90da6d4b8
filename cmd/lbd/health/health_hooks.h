// SPDX-License-Identifier: Apache-2.0
// The health subsystem's seat at the control plane's commit: wraps the dataplane's hooks, so
// that every commit is also seen by HealthService::observe (an operator's weight edits), and
// /metrics and GetStats carry the checkers' metrics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/health/health_service.h"

namespace lb::health {

class HealthHooks : public lbd::DataplaneHooks {
 public:
  // inner may be nullptr (no dataplane). set() may be called later (the service is created
  // after the control plane); until then commits pass through.
  explicit HealthHooks(lbd::DataplaneHooks* inner) : inner_(inner) {}

  void set(HealthService* health) { health_ = health; }

  // DataplaneHooks
  absl::Status onCommit(const ServiceTable& table) override {
    if (health_ != nullptr)
      health_->observe(table);
    return inner_ != nullptr ? inner_->onCommit(table) : absl::OkStatus();
  }

  const ConnTable* conns() const override { return inner_ != nullptr ? inner_->conns() : nullptr; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override {
    std::vector<std::pair<std::string, uint64_t>> m;
    if (inner_ != nullptr)
      m = inner_->metrics();
    if (health_ != nullptr) {
      for (auto& x : health_->metrics())
        m.push_back(std::move(x));
    }
    return m;
  }

 private:
  lbd::DataplaneHooks* inner_;
  HealthService* health_ = nullptr;
};

}  // namespace lb::health
