// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/ipwrapper.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace lb::health {

VsHealth::VsHealth(std::vector<RsConfig> rs, uint32_t quorum, uint32_t hysteresis, bool has_sorry)
    : rs_(std::move(rs)), quorum_(quorum), hysteresis_(hysteresis), has_sorry_(has_sorry) {
  for (const RsConfig& r : rs_) {
    // Alpha: every checker starts failed (check_data.c: set_checker_state(checker, false)).
    checker_up_.emplace_back(r.checkers, !r.alpha);
    failed_.push_back(r.alpha ? r.checkers : 0);
  }
  // The starting quorum (init_service_vs → update_quorum_state): lost at once when the alive
  // weight is short, without a transition (nothing was up yet, so nothing is notified).
  const uint64_t sum = aliveWeightSum();
  if (sum == 0 || static_cast<int64_t>(sum) < static_cast<int64_t>(quorum_) - hysteresis_)
    quorum_up_ = false;
}

uint64_t VsHealth::aliveWeightSum() const {
  uint64_t sum = 0;
  for (size_t i = 0; i < rs_.size(); ++i) {
    if (failed_[i] == 0)
      sum += rs_[i].weight;
  }
  return sum;
}

std::optional<Transition> VsHealth::updateQuorum() {
  const int64_t sum = static_cast<int64_t>(aliveWeightSum());
  if (!quorum_up_ && sum >= static_cast<int64_t>(quorum_) + hysteresis_) {
    quorum_up_ = true;
    return Transition{Transition::What::kQuorum, 0, true};
  }
  if (quorum_up_ && (sum == 0 || sum < static_cast<int64_t>(quorum_) - hysteresis_)) {
    quorum_up_ = false;
    return Transition{Transition::What::kQuorum, 0, false};
  }
  return std::nullopt;
}

std::vector<Transition> VsHealth::setChecker(size_t rs, size_t checker, bool up) {
  std::vector<Transition> out;
  if (rs >= rs_.size() || checker >= checker_up_[rs].size() || checker_up_[rs][checker] == up)
    return out;
  const bool was_alive = failed_[rs] == 0;
  checker_up_[rs][checker] = up;
  failed_[rs] += up ? -1 : 1;
  const bool alive = failed_[rs] == 0;
  if (alive != was_alive) {
    out.push_back({Transition::What::kRealServer, rs, alive});
    if (std::optional<Transition> q = updateQuorum())
      out.push_back(*q);
  }
  return out;
}

std::vector<Transition> VsHealth::setWeight(size_t rs, uint32_t weight) {
  std::vector<Transition> out;
  if (rs >= rs_.size())
    return out;
  rs_[rs].weight = weight;
  if (std::optional<Transition> q = updateQuorum())
    out.push_back(*q);
  return out;
}

VsHealth::Desired VsHealth::desired() const {
  Desired d;
  // Quorum lost with a sorry server: the sorry server alone serves (clear_service_rs takes the
  // alive real servers out; inhibited ones stay at weight 0).
  const bool sorry_mode = !quorum_up_ && has_sorry_;
  d.sorry = sorry_mode;
  for (size_t i = 0; i < rs_.size(); ++i) {
    const bool alive = failed_[i] == 0;
    if (alive && !sorry_mode)
      d.rs.emplace_back(rs_[i].weight);
    else if (rs_[i].inhibit_on_failure)
      d.rs.emplace_back(0u);
    else
      d.rs.emplace_back(std::nullopt);
  }
  return d;
}

std::string fifoVsName(const std::string& address,
                       const std::string& protocol,
                       uint16_t port,
                       uint32_t fwmark) {
  if (fwmark != 0)
    return absl::StrCat("FWM ", fwmark);
  return absl::StrCat("[", address, "]:", absl::AsciiStrToLower(protocol), ":", port);
}

std::string fifoVsLine(const std::string& vs_name, bool up) {
  return absl::StrCat("VS ", vs_name, " ", up ? "UP" : "DOWN", "\n");
}

std::string fifoRsLine(const std::string& rs_address,
                       const std::string& protocol,
                       uint16_t rs_port,
                       const std::string& vs_name,
                       bool up) {
  return absl::StrCat("RS [", rs_address, "]:", absl::AsciiStrToLower(protocol), ":", rs_port, " ",
                      vs_name, " ", up ? "UP" : "DOWN", "\n");
}

}  // namespace lb::health
