// SPDX-License-Identifier: Apache-2.0
// ServiceTable's commit: plan ids and schedulers for a validated model, apply them (dest trash,
// id recycling, overload resets, full-NAT pools), then build the snapshot the workers read.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

#include "core/base/check.h"
#include "core/service/service_table.h"
#include "core/service/validate.h"

namespace lb {

struct ServiceTable::Plan {
  enum class SchedAction { kKeep, kCreate, kUpdate, kNone };
  enum class DestAction { kKeep, kRecover, kNew };

  static constexpr size_t kNoIndex = static_cast<size_t>(-1);

  struct Svc {
    ServiceId id = kNoService;
    bool is_new = false;
    // An existing service whose config, dests and scheduler options are all as before: the
    // commit keeps its ids, scheduler, pool and snapshot part as they are, and the vectors below
    // stay empty.
    bool unchanged = false;
    size_t old_index = kNoIndex;  // position in the current model; kNoIndex for a new service
    SchedAction sched_action = SchedAction::kKeep;
    SchedState sched;  // the scheduler state after the commit
    std::vector<DestId> dest_ids;
    std::vector<DestAction> dest_actions;
    std::vector<int32_t> last_weights;
  };

  std::vector<Svc> services;  // parallel to the new model's services
};

namespace {

// The k-th id a commit hands out: fresh ids first, then freed ones oldest first, so that an id
// is recycled as late as possible (a worker on an old snapshot may still name it).
template <typename Id>
std::optional<Id> peekId(
    size_t k, size_t next_fresh, size_t max, const std::vector<Id>& freed, size_t head) {
  const size_t fresh = max > next_fresh ? max - next_fresh : 0;
  if (k < fresh)
    return static_cast<Id>(next_fresh + k);
  k -= fresh;
  if (head + k < freed.size())
    return freed[head + k];
  return std::nullopt;
}

bool sameDests(const std::vector<DestInfo>& a, const std::vector<DestInfo>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const DestInfo& x, const DestInfo& y) {
                      return x.id == y.id && x.addr == y.addr && x.port == y.port &&
                             x.weight == y.weight && x.last_weight == y.last_weight;
                    });
}

SchedulerOptions schedulerOptions(const ServiceConfig& svc, const Sysctls& sysctls) {
  SchedulerOptions o;
  o.flags = svc.flags & (kSchedFlag1 | kSchedFlag2 | kSchedFlag3);
  if (svc.scheduler == "lblc")
    o.lblc_expiration = seconds(sysctls.lblc_expiration_s);
  if (svc.scheduler == "lblcr")
    o.lblc_expiration = seconds(sysctls.lblcr_expiration_s);
  return o;
}

constexpr L4Proto kPortProtos[] = {L4Proto::kTcp, L4Proto::kUdp, L4Proto::kSctp};

// Calls f(proto, addr, port) for each NAT or full-NAT dest of `s` (ip_vs_has_real_service);
// dests of fwmark services count for TCP, UDP and SCTP.
template <typename F>
void forEachRealServer(const ServiceWithDests& s, F f) {
  const ServiceKey& key = s.service.key;
  for (const DestConfig& d : s.dests) {
    if (d.fwd != FwdMethod::kMasq && d.fwd != FwdMethod::kFullNat)
      continue;
    if (key.isFwmark()) {
      for (L4Proto p : kPortProtos)
        f(p, d.addr, d.port);
    } else {
      f(key.proto, d.addr, d.port);
    }
  }
}

}  // namespace

ServiceTable::ServiceTable(const Limits& limits)
    : limits_(limits),
      runtime_(
          std::make_unique<ServiceRuntime>(limits.max_services, limits.max_dests, limits.workers)) {
  buildSnapshot();
}

// Everything commit() checks, without applying: the model's checks plus building each
// service's scheduler once (the factories validate their flags).
absl::Status ServiceTable::validate(const FullConfig& cfg) const {
  FullConfig c = cfg;
  normalizeConfig(c);
  if (absl::Status s = validateConfig(c, limits_.max_services); !s.ok())
    return s;
  return makePlan(c).status();
}

absl::Status ServiceTable::commit(FullConfig next) {
  if (absl::Status s = validateConfig(next, limits_.max_services); !s.ok())
    return s;
  absl::StatusOr<Plan> plan = makePlan(next);
  if (!plan.ok())
    return plan.status();
  if (absl::Status s = applySchedulers(*plan); !s.ok())
    return s;
  applyIds(next, *plan);
  const bool real_servers_changed = updateRealServers(next, *plan);
  config_ = std::move(next);
  collectTrash();
  ++generation_;
  buildSnapshot(&*plan, real_servers_changed);
  return absl::OkStatus();
}

// Ids for every service and dest of `next` (kept, recovered from the trash, or new) and the
// scheduler each service will have. Const: nothing is changed, so a failure here (id
// exhaustion, a factory rejecting its flags) leaves the table as it was.
absl::StatusOr<ServiceTable::Plan> ServiceTable::makePlan(const FullConfig& next) const {
  Plan plan;
  plan.services.resize(next.services.size());
  size_t new_services = 0, new_dests = 0;
  for (size_t i = 0; i < next.services.size(); ++i) {
    const ServiceConfig& svc = next.services[i].service;
    Plan::Svc& ps = plan.services[i];
    if (auto it = service_ids_.find(svc.key); it != service_ids_.end()) {
      ps.id = it->second;
      // The current snapshot's services are parallel to config_.services.
      ps.old_index = snapshot_->by_key_.at(svc.key);
      if (config_.services[ps.old_index] == next.services[i] &&
          keepsScheduler(svc, next.sysctls, ps.id)) {
        ps.unchanged = true;
        continue;
      }
    } else {
      std::optional<ServiceId> id = peekId(new_services++, next_service_id_, limits_.max_services,
                                           free_service_ids_, free_service_head_);
      if (!id) {
        return absl::ResourceExhaustedError(
            absl::StrCat("no free service id for ", svc.key.toString(), ": max_services ",
                         limits_.max_services, " reached (removed services still in use count)"));
      }
      ps.id = *id;
      ps.is_new = true;
    }
    std::vector<DestInfo> infos;
    for (const DestConfig& d : next.services[i].dests) {
      const int32_t weight = static_cast<int32_t>(d.weight);
      DestId id;
      Plan::DestAction action;
      int32_t last_weight = weight;  // __ip_vs_update_dest: set on add, or when non-zero
      if (auto it = dest_index_.find(DestKey{svc.key, d.addr, d.port}); it != dest_index_.end()) {
        id = it->second;
        const DestSlot& slot = dest_slots_[id];
        action = slot.live ? Plan::DestAction::kKeep : Plan::DestAction::kRecover;
        if (slot.live && weight == 0)
          last_weight = slot.last_weight;
      } else {
        std::optional<DestId> fresh = peekId(new_dests++, dest_slots_.size(), limits_.max_dests,
                                             free_dest_ids_, free_dest_head_);
        if (!fresh) {
          return absl::ResourceExhaustedError(
              absl::StrCat("no free dest id for ", formatAddrPort(d.addr, d.port), " in service ",
                           svc.key.toString(), ": max_dests ", limits_.max_dests,
                           " reached (removed dests still in use count)"));
        }
        id = *fresh;
        action = Plan::DestAction::kNew;
      }
      ps.dest_ids.push_back(id);
      ps.dest_actions.push_back(action);
      ps.last_weights.push_back(last_weight);
      infos.push_back(DestInfo{id, d.addr, d.port, weight, last_weight});
    }
    if (absl::Status st = planScheduler(svc, next.sysctls, std::move(infos), plan, i); !st.ok()) {
      return st;
    }
  }
  return plan;
}

// True when the service's current scheduler instance serves `svc` as it is (same name and
// options), or when both have none: with an unchanged dest list, planScheduler would keep it.
bool ServiceTable::keepsScheduler(const ServiceConfig& svc,
                                  const Sysctls& sysctls,
                                  ServiceId id) const {
  auto it = schedulers_.find(id);
  if (svc.scheduler == "none")
    return it == schedulers_.end();
  if (it == schedulers_.end())
    return false;
  const SchedState& cur = it->second;
  const SchedulerOptions opts = schedulerOptions(svc, sysctls);
  return cur.scheduler != nullptr && cur.name == svc.scheduler && cur.options.flags == opts.flags &&
         cur.options.lblc_expiration == opts.lblc_expiration;
}

// The scheduler service `i` will have: the current instance (updated if its dest list changed)
// when name and options are unchanged, else a new one from the factory.
absl::Status ServiceTable::planScheduler(const ServiceConfig& svc,
                                         const Sysctls& sysctls,
                                         std::vector<DestInfo> infos,
                                         Plan& plan,
                                         size_t i) const {
  Plan::Svc& ps = plan.services[i];
  if (svc.scheduler == "none") {
    ps.sched_action = Plan::SchedAction::kNone;
    return absl::OkStatus();
  }
  const SchedulerOptions opts = schedulerOptions(svc, sysctls);
  const SchedState* cur = nullptr;
  if (auto it = schedulers_.find(ps.id); !ps.is_new && it != schedulers_.end()) {
    cur = &it->second;
  }
  if (cur != nullptr && cur->scheduler != nullptr && cur->name == svc.scheduler &&
      cur->options.flags == opts.flags && cur->options.lblc_expiration == opts.lblc_expiration) {
    ps.sched_action =
        sameDests(cur->dests, infos) ? Plan::SchedAction::kKeep : Plan::SchedAction::kUpdate;
    ps.sched = SchedState{cur->scheduler, svc.scheduler, opts, std::move(infos)};
    return absl::OkStatus();
  }
  const SchedulerFactory* factory = findScheduler(svc.scheduler);
  if (factory == nullptr) {
    return absl::NotFoundError(absl::StrCat("scheduler '", svc.scheduler, "' not found"));
  }
  absl::StatusOr<SchedulerPtr> created = factory->create(infos, opts);
  if (!created.ok()) {
    return absl::Status(created.status().code(), absl::StrCat("service ", svc.key.toString(), ": ",
                                                              created.status().message()));
  }
  ps.sched_action = Plan::SchedAction::kCreate;
  ps.sched = SchedState{std::move(*created), svc.scheduler, opts, std::move(infos)};
  return absl::OkStatus();
}

// The kernel's add_dest/upd_dest/del_dest hooks: existing schedulers learn the new list in
// list order. An update failure rolls back the updates already made.
absl::Status ServiceTable::applySchedulers(Plan& plan) {
  std::vector<const SchedState*> done;
  for (const Plan::Svc& ps : plan.services) {
    if (ps.sched_action != Plan::SchedAction::kUpdate)
      continue;
    const SchedState& cur = schedulers_.at(ps.id);
    absl::Status s = cur.scheduler->update(ps.sched.dests);
    if (!s.ok()) {
      for (const SchedState* old : done)
        old->scheduler->update(old->dests).IgnoreError();
      return absl::Status(s.code(), absl::StrCat("scheduler ", cur.name, ": ", s.message()));
    }
    done.push_back(&cur);
  }
  return absl::OkStatus();
}

void ServiceTable::applyIds(const FullConfig& next, const Plan& plan) {
  removeGone(next, plan);
  for (size_t i = 0; i < next.services.size(); ++i) {
    if (!plan.services[i].unchanged)
      applyService(next.services[i], plan, i);
  }
}

// Dests and services that disappear: dests go to the trash (ip_vs_del_dest), services retire
// their id until no tombstone names it.
void ServiceTable::removeGone(const FullConfig& next, const Plan& plan) {
  // Where each current service is in `next` (keys are unique on both sides).
  std::vector<size_t> next_index(config_.services.size(), Plan::kNoIndex);
  for (size_t i = 0; i < plan.services.size(); ++i) {
    if (plan.services[i].old_index != Plan::kNoIndex)
      next_index[plan.services[i].old_index] = i;
  }
  absl::flat_hash_set<std::pair<IpAddr, uint16_t>> kept;  // one service's dests in `next`
  for (size_t j = 0; j < config_.services.size(); ++j) {
    const ServiceWithDests& s = config_.services[j];
    const size_t i = next_index[j];
    if (i != Plan::kNoIndex && plan.services[i].unchanged)
      continue;
    kept.clear();
    if (i != Plan::kNoIndex) {
      for (const DestConfig& d : next.services[i].dests)
        kept.insert({d.addr, d.port});
    }
    for (const DestConfig& d : s.dests) {
      if (kept.contains(std::pair<IpAddr, uint16_t>(d.addr, d.port)))
        continue;
      DestId id = dest_index_.at(DestKey{s.service.key, d.addr, d.port});
      dest_slots_[id].live = false;
      trash_.push_back(id);
    }
  }
  for (size_t j = 0; j < config_.services.size(); ++j) {
    const ServiceWithDests& s = config_.services[j];
    if (next_index[j] != Plan::kNoIndex)
      continue;
    auto it = service_ids_.find(s.service.key);
    const ServiceId id = it->second;
    service_ids_.erase(it);
    schedulers_.erase(id);
    runtime_->dropPool(id);
    retireService(id);
  }
}

// Unchanged services keep their counts; the others' old dests are uncounted, their new ones
// counted (new ones first, so a key that stays never drops to zero).
bool ServiceTable::updateRealServers(const FullConfig& next, const Plan& plan) {
  bool changed = false;
  std::vector<bool> old_unchanged(config_.services.size(), false);
  for (size_t i = 0; i < next.services.size(); ++i) {
    const Plan::Svc& ps = plan.services[i];
    if (ps.unchanged) {
      old_unchanged[ps.old_index] = true;
      continue;
    }
    forEachRealServer(next.services[i], [&](L4Proto p, const IpAddr& a, uint16_t port) {
      if (++real_server_refs_[ServiceSnapshot::RealServerKey{p, a, port}] == 1)
        changed = true;
    });
  }
  for (size_t j = 0; j < config_.services.size(); ++j) {
    if (old_unchanged[j])
      continue;
    forEachRealServer(config_.services[j], [&](L4Proto p, const IpAddr& a, uint16_t port) {
      auto it = real_server_refs_.find(ServiceSnapshot::RealServerKey{p, a, port});
      LB_CHECK(it != real_server_refs_.end());
      if (--it->second == 0) {
        real_server_refs_.erase(it);
        changed = true;
      }
    });
  }
  return changed;
}

// Service `i` of the new model: its id, dests, scheduler and full-NAT pool.
void ServiceTable::applyService(const ServiceWithDests& s, const Plan& plan, size_t i) {
  const Plan::Svc& ps = plan.services[i];
  if (ps.is_new) {
    if (ps.id == next_service_id_) {
      ++next_service_id_;
    } else {
      LB_CHECK(free_service_ids_[free_service_head_] == ps.id);
      ++free_service_head_;
    }
    service_ids_[s.service.key] = ps.id;
    runtime_->zeroService(ps.id, {});
  }
  for (size_t j = 0; j < s.dests.size(); ++j)
    applyDest(s, plan, i, j);
  switch (ps.sched_action) {
    case Plan::SchedAction::kCreate:
    case Plan::SchedAction::kUpdate:
      schedulers_[ps.id] = ps.sched;
      break;
    case Plan::SchedAction::kNone:
      schedulers_.erase(ps.id);
      break;
    case Plan::SchedAction::kKeep:
      break;
  }
  if (s.service.local_addrs.empty()) {
    runtime_->dropPool(ps.id);
  } else {
    runtime_->poolFor(ps.id, s.service.local_addrs);
  }
}

// Dest `j` of service `i`: a new id, a recovered tombstone, or an existing dest (maybe edited).
void ServiceTable::applyDest(const ServiceWithDests& s, const Plan& plan, size_t i, size_t j) {
  const Plan::Svc& ps = plan.services[i];
  const DestConfig& d = s.dests[j];
  const DestId id = ps.dest_ids[j];
  uint32_t old_u = 0;
  switch (ps.dest_actions[j]) {
    case Plan::DestAction::kNew:
      if (id == dest_slots_.size()) {
        dest_slots_.emplace_back();
      } else {
        LB_CHECK(free_dest_ids_[free_dest_head_] == id);
        ++free_dest_head_;
        dest_slots_[id] = DestSlot{};
      }
      dest_slots_[id].used = true;
      dest_slots_[id].svc = ps.id;
      dest_slots_[id].svc_key = s.service.key;
      dest_index_[DestKey{s.service.key, d.addr, d.port}] = id;
      ++service_refs_[ps.id];
      runtime_->zeroDest(id);
      break;
    case Plan::DestAction::kRecover: {
      // ip_vs_trash_get_dest: the same addr:port in a service with the same key comes back
      // with its id, counters and stats; stats restart if the service is a new one.
      DestSlot& slot = dest_slots_[id];
      old_u = slot.config.u_threshold;
      std::erase(trash_, id);
      if (slot.svc != ps.id) {
        releaseServiceRef(slot.svc);
        ++service_refs_[ps.id];
        slot.svc = ps.id;
        runtime_->zeroDest(id);
      }
      break;
    }
    case Plan::DestAction::kKeep:
      old_u = dest_slots_[id].config.u_threshold;
      if (dest_slots_[id].config == d)
        return;
      break;
  }
  DestSlot& slot = dest_slots_[id];
  slot.live = true;
  slot.config = d;
  slot.last_weight = ps.last_weights[j];
  // __ip_vs_update_dest: a lower or removed upper threshold no longer holds the dest.
  if (d.u_threshold == 0 || d.u_threshold > old_u) {
    runtime_->destCounters()[id].overloaded.store(false, std::memory_order_relaxed);
  }
}

void ServiceTable::retireService(ServiceId id) {
  if (service_refs_.contains(id)) {
    retired_services_.insert(id);
  } else {
    free_service_ids_.push_back(id);
  }
}

void ServiceTable::releaseServiceRef(ServiceId id) {
  auto it = service_refs_.find(id);
  if (it == service_refs_.end())
    return;
  if (--it->second != 0)
    return;
  service_refs_.erase(it);
  if (retired_services_.erase(id) != 0)
    free_service_ids_.push_back(id);
}

size_t ServiceTable::collectTrash() {
  absl::Span<DestCounters> counters = runtime_->destCounters();
  size_t freed = 0;
  std::erase_if(trash_, [&](DestId id) {
    const DestCounters& c = counters[id];
    if (c.active_conns.load(std::memory_order_relaxed) != 0 ||
        c.inact_conns.load(std::memory_order_relaxed) != 0 ||
        c.persist_conns.load(std::memory_order_relaxed) != 0) {
      return false;
    }
    DestSlot& slot = dest_slots_[id];
    dest_index_.erase(DestKey{slot.svc_key, slot.config.addr, slot.config.port});
    const ServiceId svc = slot.svc;
    slot = DestSlot{};
    counters[id].overloaded.store(false, std::memory_order_relaxed);
    free_dest_ids_.push_back(id);
    releaseServiceRef(svc);
    ++freed;
    return true;
  });
  // Keep the FIFOs from growing without bound.
  auto compact = [](auto& fifo, size_t& head) {
    if (head > 1024 && head * 2 > fifo.size()) {
      fifo.erase(fifo.begin(), fifo.begin() + static_cast<std::ptrdiff_t>(head));
      head = 0;
    }
  };
  compact(free_dest_ids_, free_dest_head_);
  compact(free_service_ids_, free_service_head_);
  runtime_->collectRetiredPools();
  return freed;
}

void ServiceTable::buildSnapshot(const Plan* plan, bool real_servers_changed) {
  auto snap = std::make_shared<ServiceSnapshot>();
  const size_t n = config_.services.size();
  snap->services_.reserve(n);
  snap->by_id_.reserve(n);
  snap->by_key_.reserve(n);
  snap->vips_.reserve(snapshot_ != nullptr ? snapshot_->vips_.size() : 0);
  for (size_t i = 0; i < n; ++i) {
    const ServiceWithDests& s = config_.services[i];
    const ServiceKey& key = s.service.key;
    SnapService ss;
    if (plan != nullptr && plan->services[i].unchanged) {
      // Same id, config, dest ids, scheduler instance and pool as in the current snapshot.
      ss = snapshot_->services_[plan->services[i].old_index];
    } else {
      ss.id = service_ids_.at(key);
      ss.config = s.service;
      ss.netmask_prefix = static_cast<int>(s.service.netmask);
      ss.dests.reserve(s.dests.size());
      for (const DestConfig& d : s.dests)
        ss.dests.push_back(dest_index_.at(DestKey{key, d.addr, d.port}));
      if (auto it = schedulers_.find(ss.id); it != schedulers_.end())
        ss.scheduler = it->second.scheduler;
      if (!s.service.local_addrs.empty())
        ss.laddr_pool = runtime_->poolFor(ss.id, s.service.local_addrs);
    }
    const uint32_t idx = static_cast<uint32_t>(snap->services_.size());
    snap->by_id_[ss.id] = idx;
    snap->by_key_[key] = idx;
    if (!key.isFwmark()) {
      snap->vips_[key.vaddr] = true;
      if (key.vport == 0)
        snap->has_port_zero_ = true;
      if (key.vport == 21)
        snap->has_ftp_ = true;
    }
    snap->services_.push_back(std::move(ss));
  }
  if (real_servers_changed || snapshot_ == nullptr || snapshot_->real_servers_ == nullptr) {
    auto rs = std::make_shared<ServiceSnapshot::RealServerSet>();
    rs->reserve(real_server_refs_.size());
    for (const auto& [k, refs] : real_server_refs_)
      rs->emplace(k, true);
    snap->real_servers_ = std::move(rs);
  } else {
    snap->real_servers_ = snapshot_->real_servers_;
  }
  snap->dests_.resize(dest_slots_.size());
  for (DestId id = 0; id < dest_slots_.size(); ++id) {
    const DestSlot& slot = dest_slots_[id];
    if (!slot.used)
      continue;
    snap->dests_[id] = SnapDest{id, slot.svc, slot.config, slot.live};
  }
  snap->rules_ = config_.fwmark_rules;
  for (FwmarkRule& r : snap->rules_)
    r.dst = r.dst.masked(r.prefix_len);
  snap->timeouts_ = ProtoTimeouts::fromConfig(config_.timeouts);
  snap->sysctls_ = config_.sysctls;
  snap->runtime_ = runtime_.get();
  snap->generation_ = generation_;
  snapshot_ = std::move(snap);
}

}  // namespace lb
