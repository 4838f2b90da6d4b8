// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/control_ops.h"

#include <time.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "cmd/lbd/control/api_convert.h"
#include "cmd/lbd/control/config_file.h"
#include "core/base/log.h"
#include "core/pipeline/pe_sip.h"
#include "core/proto/proto.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

// ipvsadm prints the kernel's conn hash size; without a dataplane there is no table at all.
constexpr uint32_t kDefaultConnTableSize = 4096;

// The dataplane's clock (CLOCK_MONOTONIC, as cmd/lbd/dataplane uses for MonoTime).
MonoTime monoNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return MonoTime{static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
}

uint32_t nonNegative(int32_t v) {
  return v < 0 ? 0u : static_cast<uint32_t>(v);
}

std::string promEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

std::string ownerText(const std::string& owner) {
  return owner.empty() ? std::string("an operator (no owner)")
                       : absl::StrCat("owner \"", owner, "\"");
}

// ReplaceConfig with an owner: `live` with the services of `owner` replaced by `desired`'s
// services (stamped with `owner`); everything else of `live` as it is. A desired service whose
// key another owner holds refuses the whole request. Owned services that stay keep their
// place in the creation order; new ones come after the rest.
absl::StatusOr<FullConfig> ownerScoped(const FullConfig& live,
                                       FullConfig desired,
                                       const std::string& owner) {
  absl::flat_hash_map<ServiceKey, size_t> wanted;
  for (size_t i = 0; i < desired.services.size(); ++i) {
    desired.services[i].service.owner = owner;
    wanted.emplace(desired.services[i].service.key, i);
  }
  FullConfig out{{}, live.timeouts, live.sysctls, live.fwmark_rules};
  std::vector<bool> placed(desired.services.size(), false);
  for (const ServiceWithDests& sd : live.services) {
    auto it = wanted.find(sd.service.key);
    if (sd.service.owner != owner) {
      if (it != wanted.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("service ", sd.service.key.toString(), " belongs to ",
                         ownerText(sd.service.owner), ", not to owner \"", owner, "\""));
      }
      out.services.push_back(sd);
    } else if (it != wanted.end() && !placed[it->second]) {
      placed[it->second] = true;
      out.services.push_back(std::move(desired.services[it->second]));
    }
  }
  for (size_t i = 0; i < desired.services.size(); ++i) {
    if (!placed[i])
      out.services.push_back(std::move(desired.services[i]));
  }
  return out;
}

}  // namespace

ControlOps::ControlOps(ServiceTable& table,
                       DataplaneHooks* hooks,
                       std::string state_file,
                       std::function<MonoTime()> clock)
    : table_(table),
      hooks_(hooks),
      state_file_(std::move(state_file)),
      clock_(clock ? std::move(clock) : std::function<MonoTime()>(monoNow)) {}

absl::Status ControlOps::publishLocked() {
  ++commits_;
  // The state file first: a change it cannot record (a full disk, a read-only mount) is not
  // applied, so that what lbd runs is always what it would come back with after a restart.
  if (!state_file_.empty()) {
    absl::Status w = writeStateFile(state_file_, table_.config(), syncDaemonsLocked());
    ++state_writes_;
    if (!w.ok()) {
      ++state_write_failures_;
      w = rollbackLocked(w);
      LB_LOG(kError, "state file %s: %s", state_file_, w.ToString());
      publishDataplaneLocked().IgnoreError();  // logged there
      return w;
    }
    state_written_ = true;
  }
  return publishDataplaneLocked();
}

absl::Status ControlOps::publishDataplaneLocked() {
  if (hooks_ == nullptr)
    return absl::OkStatus();
  absl::Status st = hooks_->onCommit(table_);
  if (!st.ok())
    LB_LOG(kError, "dataplane commit failed: %s", st.ToString());
  return st;
}

// writeStateFile writes a temporary file and renames it over the state file only once it is
// complete and fsynced: after a failed write, the state file is the configuration before this
// change. Reading it back costs nothing on the path that succeeds.
absl::Status ControlOps::rollbackLocked(const absl::Status& write_error) {
  absl::StatusOr<FullConfig> prev = readStateFile(state_file_);
  if (absl::IsNotFound(prev.status()) && !state_written_)
    prev = FullConfig{};  // never written: lbd started empty
  absl::Status back = prev.ok() ? table_.replace(*prev) : prev.status();
  if (!back.ok()) {
    return absl::Status(write_error.code(),
                        absl::StrCat(write_error.message(),
                                     "; the change is applied but NOT saved (the previous "
                                     "configuration could not be restored: ",
                                     back.message(), ")"));
  }
  return absl::Status(write_error.code(),
                      absl::StrCat(write_error.message(), "; the change is not applied (",
                                   state_file_, " keeps the previous configuration)"));
}

absl::Status ControlOps::frozenError() {
  return absl::UnavailableError(
      "lbd is handing over to a new process (lbd --takeover): no changes until it has; retry");
}

std::string ControlOps::freeze() {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = true;
  pb::Config c = configToProto(table_.config());
  for (const pb::SyncDaemon& d : syncDaemonsLocked())  // the new lbd starts them again
    *c.add_sync_daemons() = d;
  return c.SerializeAsString();
}

void ControlOps::startSyncDaemons(const std::vector<pb::SyncDaemon>& daemons) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const pb::SyncDaemon& d : daemons) {
    absl::Status st = sync_ == nullptr ? syncUnavailable() : sync_->start(d);
    if (!st.ok())
      LB_LOG(kError, "takeover: sync daemon not started again: %s", st.ToString());
  }
}

void ControlOps::thaw() {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = false;
}

absl::Status ControlOps::mutate(absl::string_view what, const std::function<absl::Status()>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_)
    return frozenError();
  absl::Status st = fn();
  if (!st.ok()) {
    ++rejected_;
    LB_LOG(kWarn, "rejected %s: %s", what, st.ToString());
    return st;
  }
  ++accepted_;
  LB_LOG(kInfo, "applied %s", what);
  return publishLocked();
}

absl::Status ControlOps::requireServiceLocked(const ServiceKey& key) const {
  return requireService(table_, key);
}

absl::Status ControlOps::requireService(const ServiceTable& table, const ServiceKey& key) {
  if (table.serviceId(key).ok())
    return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("no such service: ", key.toString()));
}

// The mutations on a given table: table_ for the single RPCs, a batch's scratch table for
// ApplyBatch (control_batch.cc). One code path, so a batch checks each operation exactly as
// its RPC does.

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::CreateServiceRequest& req) {
  if (req.service().dests_size() > 0) {
    return absl::InvalidArgumentError("service.dests: add real servers with CreateDest");
  }
  absl::StatusOr<ServiceConfig> s = serviceFromProto(req.service());
  if (!s.ok())
    return s.status();
  return t.addService(*s);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::UpdateServiceRequest& req) {
  absl::StatusOr<ServiceConfig> s = serviceFromProto(req.service());
  if (!s.ok())
    return s.status();
  if (absl::Status st = requireService(t, s->key); !st.ok())
    return st;
  for (const ServiceWithDests& sd : t.config().services) {
    if (sd.service.key != s->key)
      continue;
    // -E from ipvsadm's syntax cannot name the pool: keep it (DeleteLocalAddress clears).
    if (req.service().local_addresses_size() == 0)
      s->local_addrs = sd.service.local_addrs;
    s->owner = sd.service.owner;  // who created it stays its owner
  }
  return t.editService(*s);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::DeleteServiceRequest& req) {
  absl::StatusOr<ServiceKey> k = serviceKeyFromProto(req.key());
  if (!k.ok())
    return k.status();
  if (absl::Status st = requireService(t, *k); !st.ok())
    return st;
  return t.deleteService(*k);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::FlushServicesRequest&) {
  return t.flush();
}

// The shape of the dest and local-address RPCs: parse req.key() and one more value with
// `parse`, check the service exists, then apply one ServiceTable mutation.
template <typename Req, typename Parse, typename Apply>
absl::Status ControlOps::applyKeyed(ServiceTable& t, const Req& req, Parse parse, Apply apply) {
  absl::StatusOr<ServiceKey> k = serviceKeyFromProto(req.key());
  if (!k.ok())
    return k.status();
  auto value = parse(req);
  if (!value.ok())
    return value.status();
  if (absl::Status st = requireService(t, *k); !st.ok())
    return st;
  return apply(*k, *value);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::CreateDestRequest& req) {
  return applyKeyed(
      t, req, [](const auto& r) { return destFromProto(r.dest()); },
      [&t](const ServiceKey& k, const DestConfig& d) { return t.addDest(k, d); });
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::UpdateDestRequest& req) {
  return applyKeyed(
      t, req, [](const auto& r) { return destFromProto(r.dest()); },
      [&t](const ServiceKey& k, const DestConfig& d) { return t.editDest(k, d); });
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::DeleteDestRequest& req) {
  absl::StatusOr<ServiceKey> k = serviceKeyFromProto(req.key());
  if (!k.ok())
    return k.status();
  absl::StatusOr<IpAddr> a = addrFromProto(req.address(), "address");
  if (!a.ok())
    return a.status();
  if (req.port() > 65535)
    return absl::InvalidArgumentError("port: out of range 0..65535");
  if (absl::Status st = requireService(t, *k); !st.ok())
    return st;
  return t.deleteDest(*k, *a, static_cast<uint16_t>(req.port()));
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::CreateLocalAddressRequest& req) {
  return applyKeyed(
      t, req, [](const auto& r) { return addrFromProto(r.address(), "address"); },
      [&t](const ServiceKey& k, const IpAddr& a) { return t.addLocalAddr(k, a); });
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::DeleteLocalAddressRequest& req) {
  return applyKeyed(
      t, req, [](const auto& r) { return addrFromProto(r.address(), "address"); },
      [&t](const ServiceKey& k, const IpAddr& a) { return t.deleteLocalAddr(k, a); });
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::SetTimeoutsRequest& req) {
  absl::StatusOr<Timeouts> v = timeoutsFromProto(req.timeouts());
  if (!v.ok())
    return v.status();
  return t.setTimeouts(*v);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::SetSysctlsRequest& req) {
  absl::StatusOr<Sysctls> s = sysctlsFromProto(req.sysctls());
  if (!s.ok())
    return s.status();
  return t.setSysctls(*s);
}

absl::Status ControlOps::applyOp(ServiceTable& t, const pb::SetFwmarkRulesRequest& req) {
  std::vector<FwmarkRule> rules;
  for (const pb::FwmarkRule& r : req.rules()) {
    absl::StatusOr<FwmarkRule> c = fwmarkRuleFromProto(r);
    if (!c.ok())
      return c.status();
    rules.push_back(*c);
  }
  return t.setFwmarkRules(rules);
}

template <typename Req>
absl::Status ControlOps::mutateOp(absl::string_view rpc, const Req& req) {
  return mutate(absl::StrCat(rpc, " ", req.ShortDebugString()),
                [&] { return applyOp(table_, req); });
}

absl::Status ControlOps::createService(const pb::CreateServiceRequest& req) {
  return mutateOp("CreateService", req);
}

absl::Status ControlOps::updateService(const pb::UpdateServiceRequest& req) {
  return mutateOp("UpdateService", req);
}

absl::Status ControlOps::deleteService(const pb::DeleteServiceRequest& req) {
  return mutateOp("DeleteService", req);
}

absl::Status ControlOps::flushServices() {
  return mutate("FlushServices", [&] { return table_.flush(); });
}

absl::Status ControlOps::createDest(const pb::CreateDestRequest& req) {
  return mutateOp("CreateDest", req);
}

absl::Status ControlOps::updateDest(const pb::UpdateDestRequest& req) {
  return mutateOp("UpdateDest", req);
}

absl::Status ControlOps::deleteDest(const pb::DeleteDestRequest& req) {
  return mutateOp("DeleteDest", req);
}

absl::Status ControlOps::createLocalAddress(const pb::CreateLocalAddressRequest& req) {
  return mutateOp("CreateLocalAddress", req);
}

absl::Status ControlOps::deleteLocalAddress(const pb::DeleteLocalAddressRequest& req) {
  return mutateOp("DeleteLocalAddress", req);
}

absl::Status ControlOps::setTimeouts(const pb::SetTimeoutsRequest& req) {
  return mutateOp("SetTimeouts", req);
}

absl::Status ControlOps::setSysctls(const pb::SetSysctlsRequest& req) {
  return mutateOp("SetSysctls", req);
}

absl::Status ControlOps::setFwmarkRules(const pb::SetFwmarkRulesRequest& req) {
  return mutateOp("SetFwmarkRules", req);
}

absl::Status ControlOps::replaceConfig(const pb::ReplaceConfigRequest& req) {
  const std::string what =
      req.owner().empty()
          ? absl::StrCat("ReplaceConfig (", req.config().services_size(), " services)")
          : absl::StrCat("ReplaceConfig (", req.config().services_size(), " services of owner \"",
                         req.owner(), "\")");
  return mutate(what, [&]() -> absl::Status {
    absl::StatusOr<FullConfig> c = configFromProto(req.config());
    if (!c.ok())
      return c.status();
    if (req.owner().empty())
      return table_.replace(*c);
    absl::StatusOr<FullConfig> scoped = ownerScoped(table_.config(), std::move(*c), req.owner());
    if (!scoped.ok())
      return scoped.status();
    return table_.replace(*scoped);
  });
}

size_t ControlOps::collectTrash() {
  std::lock_guard<std::mutex> lock(mu_);
  return table_.collectTrash();
}

absl::Status ControlOps::zeroStats(const pb::ZeroStatsRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_)
    return frozenError();
  if (!req.has_key()) {
    table_.runtime().zeroService(kNoService, {});
    LB_LOG(kInfo, "applied ZeroStats (all)");
    return absl::OkStatus();
  }
  absl::StatusOr<ServiceKey> k = serviceKeyFromProto(req.key());
  if (!k.ok())
    return k.status();
  if (absl::Status st = requireServiceLocked(*k); !st.ok())
    return st;
  std::vector<DestId> dests;
  for (const ServiceWithDests& sd : table_.config().services) {
    if (!(sd.service.key == *k))
      continue;
    for (const DestConfig& d : sd.dests) {
      if (absl::StatusOr<DestId> id = table_.destId(*k, d.addr, d.port); id.ok()) {
        dests.push_back(*id);
      }
    }
  }
  table_.runtime().zeroService(*table_.serviceId(*k), dests);
  LB_LOG(kInfo, "applied ZeroStats %s", k->toString());
  return absl::OkStatus();
}

pb::ServiceStatus ControlOps::serviceStatusLocked(const ServiceWithDests& sd) {
  pb::ServiceStatus st;
  *st.mutable_service() = serviceToProto(sd.service);
  const ServiceKey& key = sd.service.key;
  ServiceRuntime& rt = table_.runtime();
  if (absl::StatusOr<ServiceId> sid = table_.serviceId(key); sid.ok()) {
    *st.mutable_stats() = statsToProto(rt.serviceStats(*sid));
    *st.mutable_rates() = ratesToProto(rt.serviceRates(*sid));
  }
  absl::Span<DestCounters> counters = rt.destCounters();
  for (const DestConfig& d : sd.dests) {
    pb::DestStatus* ds = st.add_dests();
    *ds->mutable_dest() = destToProto(d);
    absl::StatusOr<DestId> did = table_.destId(key, d.addr, d.port);
    if (!did.ok() || *did >= counters.size())
      continue;
    const DestCounters& c = counters[*did];
    ds->set_active_conns(nonNegative(c.active_conns.load(std::memory_order_relaxed)));
    ds->set_inactive_conns(nonNegative(c.inact_conns.load(std::memory_order_relaxed)));
    ds->set_persistent_conns(nonNegative(c.persist_conns.load(std::memory_order_relaxed)));
    *ds->mutable_stats() = statsToProto(rt.destStats(*did));
    *ds->mutable_rates() = ratesToProto(rt.destRates(*did));
  }
  return st;
}

template <typename Req>
absl::StatusOr<std::optional<ServiceKey>> ControlOps::filterKeyLocked(const Req& req) const {
  if (!req.has_key())
    return std::optional<ServiceKey>();
  absl::StatusOr<ServiceKey> k = serviceKeyFromProto(req.key());
  if (!k.ok())
    return k.status();
  if (absl::Status st = requireServiceLocked(*k); !st.ok())
    return st;
  return std::optional<ServiceKey>(*k);
}

absl::Status ControlOps::listServices(const pb::ListServicesRequest& req,
                                      pb::ListServicesResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::optional<ServiceKey>> filter = filterKeyLocked(req);
  if (!filter.ok())
    return filter.status();
  const std::optional<ServiceKey>& only = *filter;
  for (const ServiceWithDests& sd : table_.config().services) {
    if (only && !(sd.service.key == *only))
      continue;
    *resp->add_services() = serviceStatusLocked(sd);
  }
  const ConnTable* conns = hooks_ != nullptr ? hooks_->conns() : nullptr;
  resp->set_conn_table_size(conns != nullptr ? static_cast<uint32_t>(conns->capacity())
                                             : kDefaultConnTableSize);
  return absl::OkStatus();
}

absl::Status ControlOps::listLocalAddresses(const pb::ListLocalAddressesRequest& req,
                                            pb::ListLocalAddressesResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::optional<ServiceKey>> filter = filterKeyLocked(req);
  if (!filter.ok())
    return filter.status();
  const std::optional<ServiceKey>& only = *filter;
  const SnapshotPtr snap = table_.snapshot();
  for (const ServiceWithDests& sd : table_.config().services) {
    if (only ? !(sd.service.key == *only) : sd.service.local_addrs.empty())
      continue;
    // The pool the workers use: pairs in use and port conflicts per address (DPVS -G).
    const LocalAddrPool* pool = nullptr;
    for (const SnapService& ss : snap->services()) {
      if (ss.config.key == sd.service.key)
        pool = ss.laddr_pool;
    }
    pb::ListLocalAddressesResponse::Entry* e = resp->add_services();
    *e->mutable_key() = serviceKeyToProto(sd.service.key);
    for (const IpAddr& a : sd.service.local_addrs) {
      pb::LocalAddressStatus* st = e->add_addresses();
      st->set_address(a.toString());
      if (pool != nullptr) {
        const LocalAddrPool::AddrUse u = pool->use(a);
        st->set_conns(u.conns);
        st->set_port_conflicts(u.conflicts);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ControlOps::listConnections(pb::ListConnectionsResponse* resp) {
  const ConnTable* conns = hooks_ != nullptr ? hooks_->conns() : nullptr;
  if (conns == nullptr)
    return absl::OkStatus();
  const MonoTime now = clock_();

  // A --pe sip template's pe_data is its Call-ID (/proc/net/ip_vs_conn appends " sip
  // <callid>", ip_vs_sip_show_pe_data), kept beside the table by core/pipeline/pe_sip.h.
  struct PeRecord {
    PeTemplateKey key;
    std::string callid;
  };

  absl::flat_hash_map<uint64_t, PeRecord> pe_data;
  peTemplatesFor(*conns).forEach(
      [&](uint32_t index, uint32_t gen, const PeTemplateKey& key, absl::string_view id) {
        pe_data[(uint64_t{index} << 32) | gen] = PeRecord{key, std::string(id)};
      });
  conns->forEachIndexed([&](uint32_t index, const Conn& c) {
    pb::Connection* pc = resp->add_connections();
    *pc = connToProto(c, connStateName(c), now);
    if ((c.flags & kConnFTemplate) == 0 || pe_data.empty())
      return;
    auto it = pe_data.find((uint64_t{index} << 32) | c.generation);
    if (it == pe_data.end())
      return;
    const PeTemplateKey& k = it->second.key;
    if (k.af == c.af && k.proto == c.proto && k.caddr == c.caddr && k.vaddr == c.vaddr &&
        k.vport == c.vport) {
      pc->set_engine(std::string(kPeSipName));
      pc->set_engine_data(it->second.callid);
    }
  });
  return absl::OkStatus();
}

absl::Status ControlOps::getStats(pb::GetStatsResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  *resp->mutable_total() = statsToProto(table_.runtime().serviceStats(kNoService));
  *resp->mutable_total_rates() = ratesToProto(table_.runtime().serviceRates(kNoService));
  auto add = [&](std::string name, uint64_t v) {
    pb::Metric* m = resp->add_metrics();
    m->set_name(std::move(name));
    m->set_value(v);
  };
  add("lb_control_mutations_total{result=\"accepted\"}", accepted_);
  add("lb_control_mutations_total{result=\"rejected\"}", rejected_);
  add("lb_control_commits_total", commits_);
  add("lb_control_state_file_writes_total", state_writes_);
  add("lb_control_state_file_write_failures_total", state_write_failures_);
  add("lb_services", table_.config().services.size());
  if (hooks_ != nullptr) {
    for (auto& [name, v] : hooks_->metrics())
      add(name, v);
  }
  return absl::OkStatus();
}

absl::Status ControlOps::getTimeouts(pb::GetTimeoutsResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  *resp->mutable_timeouts() = timeoutsToProto(table_.config().timeouts);
  return absl::OkStatus();
}

absl::Status ControlOps::getSysctls(pb::GetSysctlsResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  *resp->mutable_sysctls() = sysctlsToProto(table_.config().sysctls);
  return absl::OkStatus();
}

absl::Status ControlOps::getConfig(pb::GetConfigResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  *resp->mutable_config() = configToProto(table_.config());
  return absl::OkStatus();
}

absl::Status ControlOps::loadInitial(const std::string& config_file) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<FullConfig> cfg;
  std::vector<pb::SyncDaemon> sync_daemons;  // the state file's
  if (!config_file.empty()) {
    cfg = loadConfigFile(config_file, [this](const FullConfig& c) { return table_.validate(c); });
  } else if (!state_file_.empty()) {
    cfg = readStateFile(state_file_, &sync_daemons);
    if (absl::IsNotFound(cfg.status()))
      return absl::OkStatus();  // first start
  } else {
    return absl::OkStatus();
  }
  if (!cfg.ok())
    return cfg.status();
  if (absl::Status st = table_.replace(*cfg); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(config_file.empty() ? state_file_ : config_file,
                                                ": ", st.message()));
  }
  LB_LOG(kInfo, "loaded %d services from %s", table_.config().services.size(),
         config_file.empty() ? state_file_ : config_file);
  // The sync daemons the state file keeps start again; one that cannot (its interface is
  // gone) is logged and left out, as a failed --start-daemon would be.
  for (const pb::SyncDaemon& d : sync_daemons) {
    absl::Status st = sync_ == nullptr ? syncUnavailable() : sync_->start(d);
    if (!st.ok())
      LB_LOG(kError, "state file %s: sync daemon not started: %s", state_file_, st.ToString());
  }
  return publishLocked();
}

std::vector<pb::SyncDaemon> ControlOps::syncDaemonsLocked() const {
  return sync_ == nullptr ? std::vector<pb::SyncDaemon>{} : sync_->configured();
}

absl::Status ControlOps::syncUnavailable() const {
  return absl::UnimplementedError("connection synchronisation is not available in this lbd");
}

absl::Status ControlOps::startSyncDaemon(const pb::StartSyncDaemonRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_)
    return frozenError();
  if (sync_ == nullptr)
    return syncUnavailable();
  absl::Status st = sync_->start(req.daemon());
  if (!st.ok()) {
    ++rejected_;
    LB_LOG(kWarn, "StartSyncDaemon refused: %s", st.ToString());
    return st;
  }
  if (!state_file_.empty()) {
    ++state_writes_;
    absl::Status w = writeStateFile(state_file_, table_.config(), sync_->configured());
    if (!w.ok()) {
      ++state_write_failures_;
      sync_->stop(req.daemon().role()).IgnoreError();
      LB_LOG(kError, "state file %s: %s", state_file_, w.ToString());
      return absl::Status(w.code(), absl::StrCat(w.message(), "; the daemon is not started"));
    }
    state_written_ = true;
  }
  ++accepted_;
  LB_LOG(kInfo, "StartSyncDaemon %s", req.daemon().ShortDebugString());
  return absl::OkStatus();
}

absl::Status ControlOps::stopSyncDaemon(const pb::StopSyncDaemonRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_)
    return frozenError();
  if (sync_ == nullptr)
    return syncUnavailable();
  std::optional<pb::SyncDaemon> was;
  for (const pb::SyncDaemon& d : sync_->configured()) {
    if (d.role() == req.role())
      was = d;
  }
  absl::Status st = sync_->stop(req.role());
  if (!st.ok()) {
    ++rejected_;
    return st;
  }
  if (!state_file_.empty()) {
    ++state_writes_;
    absl::Status w = writeStateFile(state_file_, table_.config(), sync_->configured());
    if (!w.ok()) {
      ++state_write_failures_;
      if (was)
        sync_->start(*was).IgnoreError();  // back to what the file still holds
      LB_LOG(kError, "state file %s: %s", state_file_, w.ToString());
      return absl::Status(w.code(), absl::StrCat(w.message(), "; the daemon is not stopped"));
    }
    state_written_ = true;
  }
  ++accepted_;
  LB_LOG(kInfo, "StopSyncDaemon %s", pb::SyncDaemonRole_Name(req.role()));
  return absl::OkStatus();
}

absl::Status ControlOps::listSyncDaemons(pb::ListSyncDaemonsResponse* resp) {
  if (sync_ == nullptr)
    return absl::OkStatus();  // none runs: ipvsadm -L --daemon prints nothing
  for (const pb::SyncDaemon& d : sync_->running())
    *resp->add_daemons() = d;
  return absl::OkStatus();
}

std::string ControlOps::renderMetrics() {
  pb::GetStatsResponse stats;
  (void)getStats(&stats);
  std::string out;
  for (const pb::Metric& m : stats.metrics())
    absl::StrAppend(&out, m.name(), " ", m.value(), "\n");
  std::lock_guard<std::mutex> lock(mu_);
  for (const ServiceWithDests& sd : table_.config().services) {
    absl::StatusOr<ServiceId> sid = table_.serviceId(sd.service.key);
    if (!sid.ok())
      continue;
    const StatsValues v = table_.runtime().serviceStats(*sid);
    const std::string label =
        absl::StrFormat("{service=\"%s\"}", promEscape(sd.service.key.toString()));
    absl::StrAppend(&out, "lb_service_conns_total", label, " ", v.conns, "\n",
                    "lb_service_in_packets_total", label, " ", v.inpkts, "\n",
                    "lb_service_out_packets_total", label, " ", v.outpkts, "\n",
                    "lb_service_in_bytes_total", label, " ", v.inbytes, "\n",
                    "lb_service_out_bytes_total", label, " ", v.outbytes, "\n");
  }
  return out;
}

}  // namespace lb::lbd
