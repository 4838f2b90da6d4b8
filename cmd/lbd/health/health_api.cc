// SPDX-License-Identifier: Apache-2.0
// HealthService: the checks of the committed configuration (lbd.v1's health fields, however
// they came in: lbctl --check, the API, lbd --config, the state file). One virtual server per
// service with checks or a health policy; a failing real server is held at weight 0 with its
// weight in Dest.health_weight, so the configuration (and lbctl -S, the state file) keeps it
// and its checks.
#include <utility>

#include "absl/strings/str_cat.h"

#include "cmd/lbd/health/health_proto.h"
#include "cmd/lbd/health/health_service_impl.h"
#include "core/base/log.h"

namespace lb::health {
namespace {

const char* protocolName(const pb::ServiceKey& k) {
  if (!k.has_address())
    return "FWM";
  switch (k.address().protocol()) {
    case pb::PROTOCOL_UDP:
      return "UDP";
    case pb::PROTOCOL_SCTP:
      return "SCTP";
    default:
      return "TCP";
  }
}

// The dest's weight when healthy: its own, or the one a failing check keeps aside.
uint32_t healthyWeight(const pb::Dest& d) {
  return d.weight() == 0 && d.health_weight() != 0 ? d.health_weight() : d.weight();
}

}  // namespace

std::unique_ptr<VsRt> HealthService::Impl::buildApiVs(const pb::Service& s) {
  bool any = s.has_health_policy();
  for (const pb::Dest& d : s.dests())
    any = any || d.health_checks_size() > 0;
  if (!any)
    return nullptr;
  auto vs = std::make_unique<VsRt>();
  vs->api = true;
  VirtualServer& c = vs->cfg;
  c.protocol = protocolName(s.key());
  c.quorum = s.health_policy().quorum() == 0 ? 1 : s.health_policy().quorum();
  c.hysteresis = s.health_policy().hysteresis();
  c.inhibit_on_failure = true;  // held at weight 0: the configuration keeps the dest
  c.file = "api";
  vs->plan.keys.push_back(s.key());
  vs->plan.service = s;
  vs->plan.service.clear_key();
  vs->plan.service.clear_dests();
  if (s.health_policy().has_sorry_server()) {
    pb::Dest sorry = s.health_policy().sorry_server();
    if (sorry.weight() == 0)
      sorry.set_weight(1);
    if (sorry.forward_method() == pb::FORWARD_METHOD_UNSPECIFIED)
      sorry.set_forward_method(pb::FORWARD_METHOD_DIRECT_ROUTE);
    vs->plan.sorry = std::move(sorry);
  }
  vs->name = keyName(s.key());
  std::vector<RsConfig> rsc;
  std::vector<bool> held;
  for (const pb::Dest& d : s.dests()) {
    if (d.health_checks_size() == 0)
      continue;
    const size_t r = vs->rs.size();
    RsRt rs;
    rs.cfg.address = d.address();
    rs.cfg.port = static_cast<uint16_t>(d.port());
    rs.cfg.file = "api";
    rs.dest = d;
    rs.dest.set_weight(healthyWeight(d));
    rs.dest.clear_health_weight();
    rs.file_weight = rs.dest.weight();
    for (const pb::HealthCheck& hc : d.health_checks())
      rs.cfg.checkers.push_back(checkerFromProto(hc));
    // A dest held down (the state file, a restart) starts failed: it is set back when its
    // checks pass.
    const bool down = d.weight() == 0 && d.health_weight() != 0;
    bool alpha = down;
    for (size_t k = 0; k < rs.cfg.checkers.size(); ++k) {
      auto ck = newChecker(*vs, rs, r, k);
      if (down)
        ck->retry = RetryState(ck->timing.retry, true);
      alpha = alpha || ck->timing.alpha;
      rs.checkers.push_back(std::move(ck));
    }
    rsc.push_back({rs.file_weight, true, rs.checkers.size(), alpha});
    held.push_back(down);
    vs->plan.dests.push_back(rs.dest);
    vs->rs.push_back(std::move(rs));
  }
  vs->health = std::make_unique<VsHealth>(std::move(rsc), c.quorum, c.hysteresis,
                                          vs->plan.sorry.has_value());
  for (size_t r = 0; r < vs->rs.size(); ++r) {
    for (auto& ck : vs->rs[r].checkers) {
      if (!held[r] && !ck->timing.alpha)
        (void)vs->health->setChecker(r, ck->index, true);
    }
  }
  return vs;
}

void HealthService::Impl::apiRefresh() {
  api_refresh_posted = false;
  pb::GetConfigResponse cur;
  if (!options.control.get_config)
    return;
  if (absl::Status st = options.control.get_config(&cur); !st.ok()) {
    LB_LOG(kWarn, "health: reading the configuration's checks: %s", st.ToString());
    return;
  }
  absl::flat_hash_set<std::string> file_managed;
  {
    std::lock_guard<std::mutex> lock(mu);
    file_managed = managed;
  }
  VsList next;
  Pool seen;
  size_t checkers = 0;
  for (const pb::Service& s : cur.config().services()) {
    const std::string id = keyId(s.key());
    if (file_managed.contains(id))
      continue;  // keepalived.conf's: its model is the file's
    std::unique_ptr<VsRt> vs = buildApiVs(s);
    if (vs == nullptr)
      continue;
    PoolService ps;
    ps.key = s.key();
    ps.service = vs->plan.service;
    for (const pb::Dest& d : s.dests()) {
      if (d.health_checks_size() > 0 || (vs->plan.sorry && destId(d) == destId(*vs->plan.sorry)))
        ps.dests.emplace(destId(d), d);
    }
    for (const RsRt& rs : vs->rs)
      checkers += rs.checkers.size();
    seen.emplace(id, std::move(ps));
    next.push_back(std::move(vs));
  }
  migrate(next, api_vss);
  for (const auto& v : api_vss)
    dirty_vs.erase(v.get());
  stopCheckers(api_vss);
  const size_t before = api_vss.size();
  api_vss = std::move(next);
  api_applied = std::move(seen);
  api_present = !api_vss.empty();
  if (before != 0 || !api_vss.empty()) {
    LB_LOG(kInfo, "health: the configuration's checks: %d services, %d checkers", api_vss.size(),
           checkers);
  }
  startCheckers(api_vss, true);
  updateStatus();
  // What their health wants now (a held-down real server whose checker kept its state, a
  // sorry server): committed like any result, coalesced.
  for (const auto& v : api_vss)
    scheduleFlush(v.get());
}

}  // namespace lb::health
