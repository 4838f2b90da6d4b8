// SPDX-License-Identifier: Apache-2.0
// What checker results do to a virtual server, as keepalived's ipwrapper.c does it, without
// I/O: a real server is alive while none of its checkers fails; a dead one leaves the pool, or
// stays at weight 0 under inhibit_on_failure; the quorum (Σ weight of alive real servers,
// with hysteresis) brings the sorry server in when it is lost and out when it is back. The
// caller turns desired() into dest operations and runs the notifications.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lb::health {

struct RsConfig {
  uint32_t weight = 1;  // the weight a healthy server has (config, or the operator's -e)
  bool inhibit_on_failure = false;
  size_t checkers = 0;
  bool alpha = false;  // start failed: every checker counts as failing until it succeeds
};

// One notification: a real server or the virtual server went up or down.
struct Transition {
  enum class What { kRealServer, kQuorum };
  What what = What::kRealServer;
  size_t rs = 0;  // kRealServer: index
  bool up = false;
};

class VsHealth {
 public:
  // quorum ≥ 1, hysteresis ≥ 0; has_sorry: a sorry_server is configured.
  VsHealth(std::vector<RsConfig> rs, uint32_t quorum, uint32_t hysteresis, bool has_sorry);

  // A checker's state changed (or its first result came). Returns the notifications, in the
  // order keepalived runs them (the real server's, then the quorum's).
  std::vector<Transition> setChecker(size_t rs, size_t checker, bool up);
  // A new healthy weight (operator -e, misc_dynamic). Returns quorum transitions.
  std::vector<Transition> setWeight(size_t rs, uint32_t weight);

  // The pool as it should be: per real server, its weight in IPVS or nullopt (not in the
  // pool); and whether the sorry server is in.
  struct Desired {
    std::vector<std::optional<uint32_t>> rs;
    bool sorry = false;
  };

  Desired desired() const;

  bool alive(size_t rs) const { return failed_[rs] == 0; }

  bool quorumUp() const { return quorum_up_; }

  uint32_t weight(size_t rs) const { return rs_[rs].weight; }

  uint64_t aliveWeightSum() const;

 private:
  std::optional<Transition> updateQuorum();

  std::vector<RsConfig> rs_;
  std::vector<std::vector<bool>> checker_up_;
  std::vector<size_t> failed_;
  uint32_t quorum_;
  uint32_t hysteresis_;
  bool has_sorry_;
  bool quorum_up_ = true;
};

// keepalived's lvs_notify_fifo lines: "VS [198.18.0.1]:tcp:80 UP",
// "RS [198.18.1.1]:tcp:8080 [198.18.0.1]:tcp:80 DOWN"; fwmark services read "FWM 7".
std::string fifoVsName(const std::string& address,
                       const std::string& protocol,
                       uint16_t port,
                       uint32_t fwmark);
std::string fifoVsLine(const std::string& vs_name, bool up);
std::string fifoRsLine(const std::string& rs_address,
                       const std::string& protocol,
                       uint16_t rs_port,
                       const std::string& vs_name,
                       bool up);

}  // namespace lb::health
