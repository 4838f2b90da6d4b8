// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/mapping/planner.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lbd::controller::mapping {

namespace pb = lbd::v1;

namespace {

using google::protobuf::util::MessageDifferencer;

// ServiceKey with its address in canonical form, as a map key.
std::string keyOf(const pb::ServiceKey& key) {
  if (!key.has_address())
    return serviceKeyString(key);
  pb::ServiceKey k = key;
  if (std::optional<std::string> c = canonicalAddress(k.address().address()))
    k.mutable_address()->set_address(*c);
  return serviceKeyString(k);
}

std::string destKeyOf(const pb::Dest& d) {
  std::optional<std::string> c = canonicalAddress(d.address());
  return destKeyString(c.has_value() ? *c : d.address(), d.port());
}

bool isInet6(const pb::ServiceKey& key) {
  return key.has_address() ? key.address().address().find(':') != std::string::npos
                           : key.fwmark().family() == pb::ADDRESS_FAMILY_INET6;
}

// Persistence with lbd's defaults filled in (timeout 360 s, netmask /32 or /128).
pb::Persistence normalPersistence(const pb::Service& s) {
  pb::Persistence p = s.persistence();
  if (p.timeout().seconds() == 0)
    p.mutable_timeout()->set_seconds(360);
  if (p.netmask_prefix() == 0)
    p.set_netmask_prefix(isInet6(s.key()) ? 128 : 32);
  return p;
}

std::vector<std::string> sortedAddresses(const pb::Service& s) {
  std::vector<std::string> out;
  for (const std::string& a : s.local_addresses()) {
    std::optional<std::string> c = canonicalAddress(a);
    out.push_back(c.has_value() ? *c : a);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The attributes UpdateService sets (dests and owner aside), with lbd's defaults applied.
bool sameAttributes(const pb::Service& want, const pb::Service& have) {
  auto sched = [](const pb::Service& s) { return s.scheduler().empty() ? "wlc" : s.scheduler(); };
  if (sched(want) != sched(have) || want.one_packet() != have.one_packet())
    return false;
  if (want.scheduler_options_case() != have.scheduler_options_case())
    return false;
  if (!MessageDifferencer::Equals(want.sh(), have.sh()) ||
      !MessageDifferencer::Equals(want.mh(), have.mh()) ||
      !MessageDifferencer::Equals(want.flags(), have.flags()))
    return false;
  if (want.has_persistence() != have.has_persistence())
    return false;
  if (want.has_persistence() &&
      !MessageDifferencer::Equals(normalPersistence(want), normalPersistence(have)))
    return false;
  return sortedAddresses(want) == sortedAddresses(have);
}

// A dest's weight as configured: a failing health check (Dest.health_checks, set by an
// operator) holds it at 0 with its weight in health_weight.
uint32_t configuredWeight(const pb::Dest& d) {
  return d.weight() == 0 && d.health_weight() != 0 ? d.health_weight() : d.weight();
}

bool sameDest(const pb::Dest& want, const pb::Dest& have) {
  if (want.forward_method() != have.forward_method() || want.weight() != configuredWeight(have) ||
      want.upper_threshold() != have.upper_threshold() ||
      want.lower_threshold() != have.lower_threshold())
    return false;
  if (want.forward_method() != pb::FORWARD_METHOD_TUNNEL)
    return true;
  auto type = [](const pb::Dest& d) {
    return d.tunnel().type() == pb::TUNNEL_TYPE_UNSPECIFIED ? pb::TUNNEL_TYPE_IPIP
                                                            : d.tunnel().type();
  };
  auto csum = [](const pb::Dest& d) {
    return d.tunnel().checksum() == pb::TUNNEL_CHECKSUM_UNSPECIFIED ? pb::TUNNEL_CHECKSUM_NONE
                                                                    : d.tunnel().checksum();
  };
  return type(want) == type(have) && csum(want) == csum(have) &&
         want.tunnel().port() == have.tunnel().port();
}

// The operations, by kind, in the order they go into the request.
struct Ops {
  enum Kind {
    kDeleteService,
    kCreateService,
    kUpdateService,
    kDeleteDest,
    kUpdateDest,
    kCreateDest,
    kKinds
  };

  std::vector<std::pair<pb::BatchOperation, std::string>> by_kind[kKinds];

  void add(Kind k, pb::BatchOperation op, const std::string& origin) {
    by_kind[k].emplace_back(std::move(op), origin);
  }
};

pb::BatchOperation createDest(const pb::ServiceKey& key, const pb::Dest& d) {
  pb::BatchOperation op;
  *op.mutable_create_dest()->mutable_key() = key;
  *op.mutable_create_dest()->mutable_dest() = d;
  return op;
}

pb::BatchOperation updateDest(const pb::ServiceKey& key, const pb::Dest& d) {
  pb::BatchOperation op;
  *op.mutable_update_dest()->mutable_key() = key;
  *op.mutable_update_dest()->mutable_dest() = d;
  return op;
}

pb::BatchOperation deleteDest(const pb::ServiceKey& key, const pb::Dest& d) {
  pb::BatchOperation op;
  *op.mutable_delete_dest()->mutable_key() = key;
  op.mutable_delete_dest()->set_address(d.address());
  op.mutable_delete_dest()->set_port(d.port());
  return op;
}

// Plans one service's dests; actual is the service lbd holds.
class DestPlanner {
 public:
  DestPlanner(DrainState& drain, absl::Time now, const PlanOptions& options, Plan& plan)
      : drain_(drain), now_(now), options_(options), plan_(plan) {}

  std::set<std::string>& seen() { return seen_; }

  void plan(const DesiredService& ds, const pb::ServiceStatus& actual, Ops& ops) {
    const pb::ServiceKey& key = actual.service().key();  // lbd's spelling for the operations
    const std::string svc = keyOf(key);
    std::map<std::string, const pb::Dest*> want;
    for (const pb::Dest& d : ds.service.dests())
      want.emplace(destKeyOf(d), &d);
    std::set<std::string> have;
    for (const pb::DestStatus& st : actual.dests()) {
      const std::string dk = destKeyOf(st.dest());
      have.insert(dk);
      auto it = want.find(dk);
      if (it == want.end()) {
        gone(ds, key, svc, dk, st, ops);
        continue;
      }
      drain_.draining.erase(absl::StrCat(svc, " ", dk));  // back: updated in place
      if (!sameDest(*it->second, st.dest())) {
        pb::Dest d = *it->second;
        d.set_address(st.dest().address());
        // Checks an operator attached stay (UpdateDest replaces them), and so does their hold.
        *d.mutable_health_checks() = st.dest().health_checks();
        if (st.dest().weight() == 0 && st.dest().health_weight() != 0 && d.weight() != 0) {
          d.set_health_weight(d.weight());
          d.set_weight(0);
        }
        ops.add(Ops::kUpdateDest, updateDest(key, d), ds.origin);
      }
    }
    for (const pb::Dest& d : ds.service.dests()) {
      if (have.count(destKeyOf(d)) == 0)
        ops.add(Ops::kCreateDest, createDest(key, d), ds.origin);
    }
  }

 private:
  // A dest lbd has and the cluster no longer wants.
  void gone(const DesiredService& ds,
            const pb::ServiceKey& key,
            const std::string& svc,
            const std::string& dk,
            const pb::DestStatus& st,
            Ops& ops) {
    const std::string id = absl::StrCat(svc, " ", dk);
    const uint64_t conns = uint64_t{st.active_conns()} + st.inactive_conns();
    const bool tcp = key.has_address() && key.address().protocol() == pb::PROTOCOL_TCP;
    if (!tcp || !ds.drain || conns == 0) {
      drain_.draining.erase(id);
      ops.add(Ops::kDeleteDest, deleteDest(key, st.dest()), ds.origin);
      return;
    }
    auto [it, fresh] = drain_.draining.emplace(id, DrainState::Entry{now_});
    const absl::Time deadline = it->second.since + options_.drain_timeout;
    if (now_ >= deadline) {
      drain_.draining.erase(it);
      ops.add(Ops::kDeleteDest, deleteDest(key, st.dest()), ds.origin);
      return;
    }
    seen_.insert(id);
    if (st.dest().weight() != 0) {
      pb::Dest d = st.dest();
      d.set_weight(0);
      ops.add(Ops::kUpdateDest, updateDest(key, d), ds.origin);
    }
    ++plan_.draining;
    if (!plan_.next_deadline.has_value() || deadline < *plan_.next_deadline)
      plan_.next_deadline = deadline;
  }

  DrainState& drain_;
  absl::Time now_;
  const PlanOptions& options_;
  Plan& plan_;
  std::set<std::string> seen_;  // drain entries still live after this plan
};

pb::Service withoutDests(const pb::Service& s, const std::string& owner) {
  pb::Service out = s;
  out.clear_dests();
  out.set_owner(owner);
  return out;
}

}  // namespace

Plan planSync(const Desired& desired,
              const pb::ListServicesResponse& actual,
              DrainState& drain,
              absl::Time now,
              const PlanOptions& options) {
  Plan plan;
  plan.request.set_owner(options.owner);
  std::map<std::string, const pb::ServiceStatus*> owned;
  std::map<std::string, const pb::ServiceStatus*> foreign;
  for (const pb::ServiceStatus& st : actual.services()) {
    (st.service().owner() == options.owner ? owned : foreign)[keyOf(st.service().key())] = &st;
  }
  Ops ops;
  DestPlanner dests(drain, now, options, plan);
  std::set<std::string> wanted;
  for (const DesiredService& ds : desired.services) {
    const std::string key = keyOf(ds.service.key());
    wanted.insert(key);
    if (auto f = foreign.find(key); f != foreign.end()) {
      const std::string& who = f->second->service().owner();
      plan.conflicts[ds.origin].push_back(Problem{
          std::string(kReasonAddressConflict),
          absl::StrCat("virtual service ", key, " is held by ",
                       who.empty() ? "an operator (lbctl)" : absl::StrCat("owner \"", who, "\"")),
          true});
      continue;
    }
    auto o = owned.find(key);
    if (o == owned.end()) {
      pb::BatchOperation op;
      *op.mutable_create_service()->mutable_service() = withoutDests(ds.service, options.owner);
      ops.add(Ops::kCreateService, std::move(op), ds.origin);
      for (const pb::Dest& d : ds.service.dests())
        ops.add(Ops::kCreateService, createDest(ds.service.key(), d), ds.origin);
      continue;
    }
    if (!sameAttributes(ds.service, o->second->service())) {
      pb::BatchOperation op;
      pb::Service s = withoutDests(ds.service, options.owner);
      *s.mutable_key() = o->second->service().key();
      *op.mutable_update_service()->mutable_service() = std::move(s);
      ops.add(Ops::kUpdateService, std::move(op), ds.origin);
    }
    dests.plan(ds, *o->second, ops);
  }
  for (const auto& [key, st] : owned) {
    if (wanted.count(key) != 0)
      continue;
    pb::BatchOperation op;
    *op.mutable_delete_service()->mutable_key() = st->service().key();
    ops.add(Ops::kDeleteService, std::move(op), "");
  }
  // Drains of dests and services that are gone altogether end here.
  for (auto it = drain.draining.begin(); it != drain.draining.end();)
    it = dests.seen().count(it->first) != 0 ? std::next(it) : drain.draining.erase(it);
  for (auto& kind : ops.by_kind) {
    for (auto& [op, origin] : kind) {
      *plan.request.add_operations() = std::move(op);
      plan.origins.push_back(std::move(origin));
    }
  }
  return plan;
}

pb::ReplaceConfigRequest toReplaceConfig(const Desired& desired, absl::string_view owner) {
  pb::ReplaceConfigRequest req;
  req.set_owner(std::string(owner));
  for (const DesiredService& ds : desired.services) {
    pb::Service* s = req.mutable_config()->add_services();
    *s = ds.service;
    s->set_owner(std::string(owner));
  }
  return req;
}

}  // namespace lbd::controller::mapping
