// SPDX-License-Identifier: Apache-2.0
// HealthService: building the running model from the configuration, carrying state over a
// reload, the pool it wants, and the status snapshot for listings and metrics.
#include "absl/strings/str_cat.h"

#include "cmd/lbd/health/health_service_impl.h"

namespace lb::health {

std::string specKey(const CheckerSpec& c) {
  // Everything but where it was written: an unchanged checker keeps its state on reload.
  std::string s = absl::StrCat(
      static_cast<int>(c.type), "|", c.connect_ip, "|", c.connect_port.value_or(0), "|", c.bindto,
      "|", c.bind_port.value_or(0), "|", c.bind_if, "|", c.fwmark.value_or(0), "|", c.virtualhost,
      "|", c.http_protocol, "|", c.enable_sni, "|", c.sni_name, "|", c.payload, "|",
      c.require_reply, "|", c.reply_pattern, "|", c.reply_mask, "|", c.min_reply_length, "|",
      c.max_reply_length, "|", c.dns_type, "|", c.dns_name, "|", c.misc_path, "|", c.misc_dynamic,
      "|", c.user);
  for (const UrlSpec& u : c.urls) {
    absl::StrAppend(&s, "|u:", u.path, ",", u.digest, ",", u.virtualhost);
    for (const StatusRange& r : u.statuses)
      absl::StrAppend(&s, ",", r.lo, "-", r.hi);
  }
  return s;
}

// keyId() of the lbd.v1 key the control plane lists for a table's key (api_convert's mapping),
// so a commit is matched to the services this subsystem manages without converting protos.
std::string coreKeyId(const ServiceKey& k) {
  if (k.isFwmark()) {
    return absl::StrCat(
        "f|", k.fwmark, "|",
        static_cast<int>(k.af == Af::kInet6 ? pb::ADDRESS_FAMILY_INET6 : pb::ADDRESS_FAMILY_INET));
  }
  const pb::Protocol p = k.proto == L4Proto::kUdp    ? pb::PROTOCOL_UDP
                         : k.proto == L4Proto::kSctp ? pb::PROTOCOL_SCTP
                                                     : pb::PROTOCOL_TCP;
  return absl::StrCat("a|", static_cast<int>(p), "|", k.vaddr.toString(), "|", k.vport);
}

std::shared_ptr<CheckerRt> HealthService::Impl::newChecker(VsRt& vs,
                                                           const RsRt& rs,
                                                           size_t r,
                                                           size_t k) {
  auto ck = std::make_shared<CheckerRt>();
  ck->spec = rs.cfg.checkers[k];
  ck->timing = resolveTiming(vs.cfg, rs.cfg, ck->spec);
  ck->retry = RetryState(ck->timing.retry, ck->timing.alpha);
  ck->key = specKey(ck->spec);
  ck->vs = &vs;
  ck->rs = r;
  ck->index = k;
  ProbeTarget& t = ck->target;
  t.address = ck->spec.connect_ip.empty() ? rs.cfg.address : ck->spec.connect_ip;
  t.port = ck->spec.connect_port.value_or(static_cast<uint16_t>(rs.dest.port()));
  if (ck->spec.type == CheckType::kDns && !ck->spec.connect_port)
    t.port = rs.cfg.port != 0 ? rs.cfg.port : 53;
  t.bindto = ck->spec.bindto;
  t.bind_port = ck->spec.bind_port.value_or(0);
  t.bind_if = ck->spec.bind_if;
  t.fwmark = ck->spec.fwmark.value_or(0);
  t.timeout =
      ck->spec.type == CheckType::kMisc ? ck->timing.misc_timeout : ck->timing.connect_timeout;
  t.vhost = !ck->spec.virtualhost.empty() ? ck->spec.virtualhost
            : !rs.cfg.virtualhost.empty() ? rs.cfg.virtualhost
                                          : vs.cfg.virtualhost;
  return ck;
}

absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> HealthService::Impl::build(
    const KeepalivedConfig& c) {
  absl::StatusOr<std::vector<VsPlan>> plans = planVirtualServers(c);
  if (!plans.ok())
    return plans.status();
  std::vector<std::unique_ptr<VsRt>> out;
  for (size_t i = 0; i < plans->size(); ++i) {
    auto vs = std::make_unique<VsRt>();
    vs->cfg = c.virtual_servers[i];
    vs->plan = std::move((*plans)[i]);
    vs->name = vs->plan.keys.empty() ? "(empty group)" : keyName(vs->plan.keys[0]);
    std::vector<RsConfig> rsc;
    for (size_t r = 0; r < vs->cfg.real_servers.size(); ++r) {
      RsRt rs;
      rs.cfg = vs->cfg.real_servers[r];
      rs.dest = vs->plan.dests[r];
      rs.file_weight = rs.dest.weight();
      bool alpha = false;
      bool inhibit = rs.cfg.inhibit_on_failure.value_or(vs->cfg.inhibit_on_failure);
      for (size_t k = 0; k < rs.cfg.checkers.size(); ++k) {
        auto ck = newChecker(*vs, rs, r, k);
        alpha = alpha || ck->timing.alpha;
        rs.checkers.push_back(std::move(ck));
      }
      rsc.push_back({rs.file_weight, inhibit, rs.checkers.size(), alpha});
      vs->rs.push_back(std::move(rs));
    }
    // Alpha per checker: VsHealth starts every checker of an alpha real server failed;
    // non-alpha checkers of it are set up right below.
    vs->health = std::make_unique<VsHealth>(std::move(rsc), vs->cfg.quorum, vs->cfg.hysteresis,
                                            vs->plan.sorry.has_value());
    for (size_t r = 0; r < vs->rs.size(); ++r) {
      for (auto& ck : vs->rs[r].checkers) {
        if (!ck->timing.alpha)
          (void)vs->health->setChecker(r, ck->index, true);
      }
    }
    out.push_back(std::move(vs));
  }
  return out;
}

void HealthService::Impl::migrate(std::vector<std::unique_ptr<VsRt>>& next, const VsList& from) {
  std::map<std::string, const VsRt*> old_vs;
  for (const auto& v : from) {
    for (const pb::ServiceKey& k : v->plan.keys)
      old_vs.emplace(keyId(k), v.get());
  }
  for (auto& v : next) {
    if (v->plan.keys.empty())
      continue;
    auto it = old_vs.find(keyId(v->plan.keys[0]));
    if (it == old_vs.end())
      continue;
    const VsRt& ov = *it->second;
    for (size_t r = 0; r < v->rs.size(); ++r) {
      RsRt& rs = v->rs[r];
      for (size_t orr = 0; orr < ov.rs.size(); ++orr) {
        const RsRt& ors = ov.rs[orr];
        if (destId(ors.dest) != destId(rs.dest))
          continue;
        if (ors.file_weight == rs.file_weight && ov.health->weight(orr) != rs.file_weight) {
          rs.dest.set_weight(ov.health->weight(orr));
          (void)v->health->setWeight(r, ov.health->weight(orr));
        }
        for (auto& ck : rs.checkers) {
          if (ck->index >= ors.checkers.size() || ors.checkers[ck->index]->key != ck->key)
            continue;
          const CheckerRt& oc = *ors.checkers[ck->index];
          ck->retry = oc.retry;
          ck->checks = oc.checks;
          ck->failures = oc.failures;
          ck->transitions = oc.transitions;
          ck->last_failure = oc.last_failure;
          ck->last_latency_us = oc.last_latency_us;
          ck->latency_counts = oc.latency_counts;
          ck->latency_sum_us = oc.latency_sum_us;
          (void)v->health->setChecker(r, ck->index, oc.retry.up());
        }
      }
    }
    // The quorum state follows the migrated checkers silently (no notification).
  }
}

Pool HealthService::Impl::desiredPool() const {
  Pool pool;
  for (const auto& v : vss)
    desiredFor(*v, pool);
  return pool;
}

void HealthService::Impl::desiredFor(const VsRt& vs, Pool& pool) {
  {
    const VsRt* v = &vs;
    VsHealth::Desired d = v->health->desired();
    for (const pb::ServiceKey& k : v->plan.keys) {
      PoolService ps;
      ps.key = k;
      ps.service = v->plan.service;
      for (size_t r = 0; r < v->rs.size(); ++r) {
        if (!d.rs[r].has_value())
          continue;
        pb::Dest dest = v->rs[r].dest;
        dest.set_weight(*d.rs[r]);
        // Held at 0 by its checks: the weight it gets back (lbd.v1 Dest.health_weight).
        if (v->api && *d.rs[r] == 0 && dest.health_checks_size() > 0)
          dest.set_health_weight(v->health->weight(r));
        ps.dests.emplace(destId(dest), dest);
      }
      if (d.sorry && v->plan.sorry)
        ps.dests.emplace(destId(*v->plan.sorry), *v->plan.sorry);
      pool.emplace(keyId(k), std::move(ps));
    }
  }
}

void HealthService::Impl::setManaged() {
  absl::flat_hash_set<std::string> m;
  for (const auto& v : vss) {
    for (const pb::ServiceKey& k : v->plan.keys)
      m.insert(keyId(k));
  }
  std::lock_guard<std::mutex> lock(mu);
  managed = std::move(m);
}

CheckerStatus HealthService::Impl::statusOf(const CheckerRt& ck) const {
  const VsRt& v = *ck.vs;
  const RsRt& rs = v.rs[ck.rs];
  CheckerStatus s;
  s.service = v.name;
  s.rs = rs.cfg.address.find(':') != std::string::npos
             ? absl::StrCat("[", rs.dest.address(), "]:", rs.dest.port())
             : absl::StrCat(rs.dest.address(), ":", rs.dest.port());
  s.checker = checkTypeName(ck.spec.type);
  s.up = ck.retry.up();
  s.checks = ck.checks;
  s.failures = ck.failures;
  s.transitions = ck.transitions;
  s.last_latency_us = ck.last_latency_us;
  s.latency_counts = ck.latency_counts;
  s.latency_sum_us = ck.latency_sum_us;
  pb::HealthCheckStatus& p = s.proto;
  if (!v.plan.keys.empty())
    *p.mutable_key() = v.plan.keys[0];
  p.set_address(rs.dest.address());
  p.set_port(rs.dest.port());
  p.set_type(static_cast<pb::HealthCheckType>(static_cast<int>(ck.spec.type) + 1));
  p.set_target(ck.spec.type == CheckType::kMisc
                   ? ck.spec.misc_path
                   : (ck.target.address.find(':') != std::string::npos
                          ? absl::StrCat("[", ck.target.address, "]:", ck.target.port)
                          : absl::StrCat(ck.target.address, ":", ck.target.port)));
  p.set_up(s.up);
  p.set_real_server_up(v.health->alive(ck.rs));
  p.set_weight(v.health->weight(ck.rs));
  p.set_last_failure(ck.last_failure);
  p.set_checks(ck.checks);
  p.set_failures(ck.failures);
  p.set_transitions(ck.transitions);
  p.mutable_last_latency()->set_seconds(static_cast<int64_t>(ck.last_latency_us / 1000000));
  p.mutable_last_latency()->set_nanos(static_cast<int32_t>(ck.last_latency_us % 1000000 * 1000));
  p.set_config(ck.spec.line == 0 ? ck.spec.file : absl::StrCat(ck.spec.file, ":", ck.spec.line));
  return s;
}

void HealthService::Impl::updateStatus() {
  std::vector<CheckerStatus> out;
  for (const VsList* list : {&vss, &api_vss}) {
    for (const auto& v : *list) {
      for (const RsRt& rs : v->rs) {
        for (const auto& ck : rs.checkers) {
          ck->slot = out.size();
          out.push_back(statusOf(*ck));
        }
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  status_snapshot = std::move(out);
}

void HealthService::Impl::updateStatus(const CheckerRt& changed) {
  const RsRt& rs = changed.vs->rs[changed.rs];
  std::vector<CheckerStatus> fresh;
  for (const auto& ck : rs.checkers)
    fresh.push_back(statusOf(*ck));
  std::lock_guard<std::mutex> lock(mu);
  for (size_t i = 0; i < rs.checkers.size(); ++i) {
    if (rs.checkers[i]->slot < status_snapshot.size())
      status_snapshot[rs.checkers[i]->slot] = std::move(fresh[i]);
  }
}

}  // namespace lb::health
