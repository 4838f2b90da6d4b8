// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_service.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cmd/lbd/health/check_logic.h"
#include "cmd/lbd/health/checkers.h"
#include "cmd/lbd/health/health_model.h"
#include "cmd/lbd/health/ipwrapper.h"
#include "core/base/log.h"

namespace lb::health {
namespace {

namespace asio = boost::asio;
namespace pb = ::lbd::v1;

constexpr std::chrono::milliseconds kFlushDelay{50};

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

struct VsRt;

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

struct CheckerRt {
  CheckerSpec spec;
  CheckerTiming timing;
  ProbeTarget target;
  RetryState retry{1, false};
  std::unique_ptr<asio::steady_timer> timer;
  std::string key;
  VsRt* vs = nullptr;
  size_t rs = 0;
  size_t index = 0;
  size_t slot = 0;  // its entry in status_snapshot
  bool stopped = false;
  // Stats (also copied into the status snapshot).
  uint64_t checks = 0, failures = 0, transitions = 0, last_latency_us = 0;
  std::string last_failure;
};

struct RsRt {
  RealServer cfg;
  pb::Dest dest;             // at the configured weight
  uint32_t file_weight = 0;  // what the file says (an operator's edit overrides it)
  std::vector<std::shared_ptr<CheckerRt>> checkers;
};

struct VsRt {
  VirtualServer cfg;
  VsPlan plan;
  std::vector<RsRt> rs;
  std::unique_ptr<VsHealth> health;
  std::string name;  // keyName of its first key
};

}  // namespace

struct HealthService::Impl {
  HealthOptions options;
  KeepalivedConfig conf;
  std::vector<std::unique_ptr<VsRt>> vss;

  asio::io_context io;
  // Commits run on their own thread: a commit costs the size of the whole configuration (the
  // snapshot), and the checks must not wait for it (a starved check times out falsely).
  asio::io_context commit_io;
  std::thread commit_thread;
  std::atomic<std::thread::id> commit_thread_id{};
  std::unique_ptr<asio::steady_timer> flush_timer;
  std::unique_ptr<Probes> probes;
  std::thread thread;
  std::atomic<std::thread::id> thread_id{};
  std::atomic<bool> started{false};
  bool stopped = false;
  std::mt19937_64 rng{std::random_device{}()};

  Pool applied;  // what this service last committed (or found) for its services
  bool flush_posted = false;
  absl::flat_hash_set<VsRt*> dirty_vs;  // changed since the last flush (cleared on reload)
  int fifo_fd = -1;

  // Shared with the control thread (observe) and readers of status()/metrics().
  mutable std::mutex mu;
  absl::flat_hash_set<std::string> managed;  // keyId()s
  std::vector<CheckerStatus> status_snapshot;
  std::atomic<uint64_t> own_commits{0};

  // --- building -----------------------------------------------------------------------------

  absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> build(const KeepalivedConfig& c) {
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
          auto ck = std::make_shared<CheckerRt>();
          ck->spec = rs.cfg.checkers[k];
          ck->timing = resolveTiming(vs->cfg, rs.cfg, ck->spec);
          ck->retry = RetryState(ck->timing.retry, ck->timing.alpha);
          alpha = alpha || ck->timing.alpha;
          ck->key = specKey(ck->spec);
          ck->vs = vs.get();
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
          t.timeout = ck->spec.type == CheckType::kMisc ? ck->timing.misc_timeout
                                                        : ck->timing.connect_timeout;
          t.vhost = !ck->spec.virtualhost.empty() ? ck->spec.virtualhost
                    : !rs.cfg.virtualhost.empty() ? rs.cfg.virtualhost
                                                  : vs->cfg.virtualhost;
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

  // Carries checker state, and an operator's weights, from the running model into `next` for
  // what did not change.
  void migrate(std::vector<std::unique_ptr<VsRt>>& next) {
    std::map<std::string, const VsRt*> old_vs;
    for (const auto& v : vss) {
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
            (void)v->health->setChecker(r, ck->index, oc.retry.up());
          }
        }
      }
      // The quorum state follows the migrated checkers silently (no notification).
    }
  }

  Pool desiredPool() const {
    Pool pool;
    for (const auto& v : vss)
      desiredFor(*v, pool);
    return pool;
  }

  // The services of one virtual server as its health wants them.
  static void desiredFor(const VsRt& vs, Pool& pool) {
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
          ps.dests.emplace(destId(dest), dest);
        }
        if (d.sorry && v->plan.sorry)
          ps.dests.emplace(destId(*v->plan.sorry), *v->plan.sorry);
        pool.emplace(keyId(k), std::move(ps));
      }
    }
  }

  void setManaged() {
    absl::flat_hash_set<std::string> m;
    for (const auto& v : vss) {
      for (const pb::ServiceKey& k : v->plan.keys)
        m.insert(keyId(k));
    }
    std::lock_guard<std::mutex> lock(mu);
    managed = std::move(m);
  }

  // --- committing ---------------------------------------------------------------------------

  // Everything (start, reload).
  absl::Status commit(const Pool& to) {
    absl::Status st = commitDiff(applied, to);
    applied = to;
    dirty_vs.clear();
    return st;
  }

  // `from` → `to` in one ApplyBatch, on the commit thread, in order. wait: until it is applied.
  absl::Status commitDiff(const Pool& from, const Pool& to, bool wait = true) {
    auto req = std::make_shared<pb::ApplyBatchRequest>(diffPools(from, to));
    if (req->operations_size() == 0)
      return absl::OkStatus();
    if (!commit_thread.joinable())
      return applyBatch(*req);  // not started yet (the first commit, tests)
    if (!wait) {
      asio::post(commit_io, [this, req] {
        if (absl::Status st = applyBatch(*req); !st.ok())
          LB_LOG(kError, "health: commit failed: %s", st.ToString());
      });
      return absl::OkStatus();
    }
    std::promise<absl::Status> done;
    std::future<absl::Status> result = done.get_future();
    asio::post(commit_io, [this, req, &done] { done.set_value(applyBatch(*req)); });
    return result.get();
  }

  absl::Status applyBatch(const pb::ApplyBatchRequest& req) {
    pb::ApplyBatchResponse resp;
    own_commits.fetch_add(1);
    absl::Status st = options.control.apply_batch(req, &resp);
    for (const pb::BatchFailure& f : resp.failures()) {
      LB_LOG(kWarn, "health: operation %d of %d refused: %s", f.index(), req.operations_size(),
             f.message());
    }
    return st;
  }

  // Coalesces the changes of kFlushDelay into one commit, which looks only at the virtual
  // servers that changed (a flap costs its own services, not all of them).
  void scheduleFlush(VsRt* vs) {
    dirty_vs.insert(vs);
    if (flush_posted)
      return;
    flush_posted = true;
    if (!flush_timer)
      flush_timer = std::make_unique<asio::steady_timer>(io);
    flush_timer->expires_after(kFlushDelay);
    flush_timer->async_wait([this](const boost::system::error_code& ec) {
      flush_posted = false;
      if (ec)
        return;
      Pool from, to;
      for (const VsRt* v : dirty_vs)
        desiredFor(*v, to);
      dirty_vs.clear();
      for (const auto& [id, ps] : to) {
        if (auto it = applied.find(id); it != applied.end())
          from.emplace(id, it->second);
      }
      (void)commitDiff(from, to, /*wait=*/false);  // logs its own failure
      for (auto& [id, ps] : to)
        applied[id] = std::move(ps);
    });
  }

  // --- notifications ------------------------------------------------------------------------

  void fifoWrite(const std::string& line) {
    if (fifo_fd >= 0 && ::write(fifo_fd, line.data(), line.size()) < 0) {
      LB_LOG_EVERY_N_SEC(kWarn, 10, "health: lvs_notify_fifo write: %s", std::strerror(errno));
    }
  }

  void openFifo() {
    const std::string& path = conf.globals.lvs_notify_fifo;
    if (path.empty())
      return;

    struct stat sb {};

    if (::stat(path.c_str(), &sb) != 0)
      ::mkfifo(path.c_str(), 0600);
    // O_RDWR: the open never blocks and writes never fail for want of a reader.
    fifo_fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fifo_fd < 0)
      LB_LOG(kWarn, "health: lvs_notify_fifo %s: %s", path, std::strerror(errno));
    if (!conf.globals.lvs_notify_fifo_script.empty())
      probes->processes().spawn(conf.globals.lvs_notify_fifo_script, {path});
  }

  void notify(VsRt& vs, const Transition& t) {
    const std::string proto = vs.cfg.protocol;
    if (t.what == Transition::What::kRealServer) {
      const RsRt& rs = vs.rs[t.rs];
      LB_LOG(kInfo, "health: real server %s:%d of %s is %s", rs.cfg.address, rs.dest.port(),
             vs.name, t.up ? "up" : "down");
      for (const std::string& n : vs.plan.fifo_names)
        fifoWrite(
            fifoRsLine(rs.cfg.address, proto, static_cast<uint16_t>(rs.dest.port()), n, t.up));
      const std::string& prog = t.up ? rs.cfg.notify_up : rs.cfg.notify_down;
      if (!prog.empty())
        probes->processes().spawn(prog, {});
      return;
    }
    LB_LOG(kInfo, "health: quorum of %s %s (alive weight %d, quorum %d, hysteresis %d)", vs.name,
           t.up ? "gained" : "lost", vs.health->aliveWeightSum(), vs.cfg.quorum, vs.cfg.hysteresis);
    for (const std::string& n : vs.plan.fifo_names)
      fifoWrite(fifoVsLine(n, t.up));
    const std::string& prog = t.up ? vs.cfg.quorum_up : vs.cfg.quorum_down;
    if (!prog.empty())
      probes->processes().spawn(prog, {});
  }

  // --- running checks -----------------------------------------------------------------------

  Micros firstDelay(const CheckerRt& ck) {
    if (ck.timing.warmup <= 0)
      return 0;
    return std::uniform_int_distribution<Micros>(0, ck.timing.warmup)(rng);
  }

  void arm(const std::shared_ptr<CheckerRt>& ck, Micros delay) {
    if (ck->stopped)
      return;
    ck->timer->expires_after(std::chrono::microseconds(delay));
    std::weak_ptr<CheckerRt> weak = ck;
    ck->timer->async_wait([this, weak](const boost::system::error_code& ec) {
      std::shared_ptr<CheckerRt> c = weak.lock();
      if (ec || !c || c->stopped)
        return;
      attempt(c);
    });
  }

  void attempt(const std::shared_ptr<CheckerRt>& ck) {
    const auto t0 = std::chrono::steady_clock::now();
    std::weak_ptr<CheckerRt> weak = ck;
    probes->run(ck->spec, ck->target, [this, weak, t0](ProbeResult r) {
      std::shared_ptr<CheckerRt> c = weak.lock();
      if (!c || c->stopped)
        return;
      c->last_latency_us =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                    std::chrono::steady_clock::now() - t0)
                                    .count());
      onResult(c, std::move(r));
    });
  }

  void onResult(const std::shared_ptr<CheckerRt>& ck, ProbeResult r) {
    ++ck->checks;
    VsRt& vs = *ck->vs;
    if (!r.up) {
      ++ck->failures;
      ck->last_failure = r.reason;
      if (ck->spec.log_all_failures || conf.globals.checker_log_all_failures) {
        LB_LOG(kInfo, "health: %s of %s:%d failed: %s", checkTypeName(ck->spec.type),
               vs.rs[ck->rs].cfg.address, vs.rs[ck->rs].dest.port(), r.reason);
      }
    }
    RetryState::Step step = ck->retry.onResult(r.up);
    bool dirty = false;
    if (step.changed) {
      ++ck->transitions;
      LB_LOG(kInfo, "health: %s of %s:%d (%s) %s%s", checkTypeName(ck->spec.type),
             vs.rs[ck->rs].cfg.address, vs.rs[ck->rs].dest.port(), vs.name,
             ck->retry.up() ? "succeeded" : "failed",
             ck->retry.up() ? "" : absl::StrCat(": ", r.reason));
      for (const Transition& t : vs.health->setChecker(ck->rs, ck->index, ck->retry.up()))
        notify(vs, t);
      dirty = true;
    }
    // misc_dynamic: the exit status sets the weight while the checker is up.
    if (r.up && r.weight.has_value() && *r.weight != vs.health->weight(ck->rs)) {
      for (const Transition& t : vs.health->setWeight(ck->rs, *r.weight))
        notify(vs, t);
      dirty = true;
    }
    if (dirty)
      scheduleFlush(&vs);
    updateStatus(*ck);
    arm(ck, step.retrying ? ck->timing.delay_before_retry : ck->timing.delay_loop);
  }

  void startCheckers(bool migrated) {
    for (auto& v : vss) {
      for (RsRt& rs : v->rs) {
        for (auto& ck : rs.checkers) {
          ck->timer = std::make_unique<asio::steady_timer>(io);
          arm(ck, migrated && ck->retry.hasRun() ? ck->timing.delay_loop : firstDelay(*ck));
        }
      }
    }
  }

  void stopCheckers() {
    for (auto& v : vss) {
      for (RsRt& rs : v->rs) {
        for (auto& ck : rs.checkers) {
          ck->stopped = true;
          if (ck->timer)
            ck->timer->cancel();
        }
      }
    }
  }

  CheckerStatus statusOf(const CheckerRt& ck) const {
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
    p.set_config(absl::StrCat(ck.spec.file, ":", ck.spec.line));
    return s;
  }

  // The whole snapshot (start, reload): every checker gets its slot.
  void updateStatus() {
    std::vector<CheckerStatus> out;
    for (const auto& v : vss) {
      for (const RsRt& rs : v->rs) {
        for (const auto& ck : rs.checkers) {
          ck->slot = out.size();
          out.push_back(statusOf(*ck));
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    status_snapshot = std::move(out);
  }

  // After one result: the checkers of that real server (its alive state and weight are
  // theirs too), O(checkers of one real server).
  void updateStatus(const CheckerRt& changed) {
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

  // An operator's commit seen by observe(): weights they set on managed real servers become
  // the weights those servers have when healthy; dests and services they removed are
  // forgotten (a later change of state adds them back).
  struct Seen {
    std::string key_id;
    bool present = false;
    std::map<std::string, uint32_t> weights;
  };

  void onOperatorCommit(const std::vector<Seen>& seen, uint64_t commits_then) {
    if (own_commits.load() != commits_then)
      return;  // this service committed since; what it saw is stale
    bool dirty = false;
    for (const Seen& s : seen) {
      auto it = applied.find(s.key_id);
      if (it == applied.end())
        continue;
      if (!s.present) {
        applied.erase(it);
        continue;
      }
      PoolService& ps = it->second;
      for (auto d = ps.dests.begin(); d != ps.dests.end();) {
        auto w = s.weights.find(d->first);
        if (w == s.weights.end()) {
          d = ps.dests.erase(d);
          continue;
        }
        if (w->second != d->second.weight()) {
          d->second.set_weight(w->second);
          // Which real server is it? Its healthy weight is now the operator's.
          for (auto& v : vss) {
            for (size_t r = 0; r < v->rs.size(); ++r) {
              if (v->plan.keys.empty() || destId(v->rs[r].dest) != d->first ||
                  keyId(v->plan.keys[0]) != s.key_id) {
                continue;
              }
              if (!v->health->alive(r) && w->second == 0)
                continue;  // our own quiescing
              LB_LOG(kInfo, "health: %s %s: weight %d set by the operator", v->name, d->first,
                     w->second);
              v->rs[r].dest.set_weight(w->second);
              for (const Transition& t : v->health->setWeight(r, w->second))
                notify(*v, t);
              dirty_vs.insert(v.get());
              dirty = true;
              if (!v->rs[r].checkers.empty())
                updateStatus(*v->rs[r].checkers[0]);
            }
          }
        }
        ++d;
      }
    }
    if (dirty)
      scheduleFlush(*dirty_vs.begin());
  }
};

HealthService::HealthService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HealthService::~HealthService() {
  stop();
}

absl::StatusOr<std::unique_ptr<HealthService>> HealthService::create(HealthOptions options) {
  auto impl = std::make_unique<Impl>();
  if (!options.reader.read)
    options.reader = fileSystemReader();
  impl->options = std::move(options);
  absl::StatusOr<KeepalivedConfig> conf =
      parseKeepalivedConf(impl->options.conf_path, impl->options.reader);
  if (!conf.ok())
    return conf.status();
  impl->conf = std::move(*conf);
  impl->probes = std::make_unique<Probes>(impl->io);
  absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> vss = impl->build(impl->conf);
  if (!vss.ok())
    return vss.status();
  impl->vss = std::move(*vss);
  if (!impl->conf.skipped.empty()) {
    LB_LOG(kInfo, "keepalived.conf %s: skipped (not LVS): %s", impl->options.conf_path,
           absl::StrJoin(impl->conf.skipped, "; "));
  }
  return std::unique_ptr<HealthService>(new HealthService(std::move(impl)));
}

void HealthService::setControl(ControlApi control) {
  impl_->options.control = std::move(control);
}

absl::Status HealthService::start() {
  Impl& m = *impl_;
  m.setManaged();
  // What the table already holds for these services (the state file) is the starting point.
  pb::GetConfigResponse cur;
  if (m.options.control.get_config && m.options.control.get_config(&cur).ok()) {
    Pool want = m.desiredPool();
    for (const pb::Service& s : cur.config().services()) {
      const std::string id = keyId(s.key());
      if (!want.contains(id))
        continue;
      PoolService ps;
      ps.key = s.key();
      ps.service = s;
      ps.service.clear_key();
      ps.service.clear_dests();
      for (const pb::Dest& d : s.dests())
        ps.dests.emplace(destId(d), d);
      m.applied.emplace(id, std::move(ps));
    }
  }
  if (absl::Status s = m.commit(m.desiredPool()); !s.ok())
    return s;
  size_t checkers = 0, rss = 0;
  for (const auto& v : m.vss) {
    rss += v->rs.size();
    for (const RsRt& r : v->rs)
      checkers += r.checkers.size();
  }
  LB_LOG(kInfo, "health: %s: %d virtual servers, %d real servers, %d checkers", m.options.conf_path,
         m.vss.size(), rss, checkers);
  m.openFifo();
  m.updateStatus();
  m.startCheckers(false);
  m.started = true;
  m.commit_thread = std::thread([this] {
    auto guard = asio::make_work_guard(impl_->commit_io);
    impl_->commit_io.run();
  });
  m.commit_thread_id = m.commit_thread.get_id();
  m.thread = std::thread([this] {
    auto guard = asio::make_work_guard(impl_->io);
    impl_->io.run();
  });
  m.thread_id = m.thread.get_id();
  return absl::OkStatus();
}

absl::Status HealthService::reload() {
  Impl& m = *impl_;
  absl::StatusOr<KeepalivedConfig> conf =
      parseKeepalivedConf(m.options.conf_path, m.options.reader);
  if (!conf.ok())
    return conf.status();
  std::promise<absl::Status> done;
  std::future<absl::Status> result = done.get_future();
  asio::post(m.io, [&m, &done, c = std::move(*conf)]() mutable {
    absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> next = m.build(c);
    if (!next.ok()) {
      done.set_value(next.status());
      return;
    }
    m.migrate(*next);
    m.stopCheckers();
    m.vss = std::move(*next);
    m.conf = std::move(c);
    m.setManaged();
    absl::Status st = m.commit(m.desiredPool());
    m.startCheckers(true);
    m.updateStatus();
    done.set_value(st);
  });
  if (!m.started) {
    // Not running yet (tests): run the posted work here.
    m.io.restart();
    m.io.poll();
  }
  absl::Status st = result.get();
  if (st.ok())
    LB_LOG(kInfo, "health: reloaded %s", m.options.conf_path);
  return st;
}

void HealthService::stop() {
  Impl& m = *impl_;
  if (m.stopped)
    return;
  m.stopped = true;
  if (m.started) {
    asio::post(m.io, [&m] { m.stopCheckers(); });
    m.io.stop();
    if (m.thread.joinable())
      m.thread.join();
    m.commit_io.stop();
    if (m.commit_thread.joinable())
      m.commit_thread.join();
  }
  if (m.fifo_fd >= 0)
    ::close(m.fifo_fd);
}

void HealthService::observe(const ServiceTable& table) {
  Impl& m = *impl_;
  if (!m.started || std::this_thread::get_id() == m.commit_thread_id ||
      std::this_thread::get_id() == m.thread_id)
    return;  // our own commit
  std::vector<Impl::Seen> seen;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.managed.empty())
      return;
    absl::flat_hash_set<std::string> present;
    for (const ServiceWithDests& sd : table.config().services) {
      std::string id = coreKeyId(sd.service.key);
      if (!m.managed.contains(id))
        continue;
      present.insert(id);
      Impl::Seen s;
      s.key_id = std::move(id);
      s.present = true;
      for (const DestConfig& d : sd.dests)
        s.weights.emplace(destId(d.addr.toString(), d.port), d.weight);
      seen.push_back(std::move(s));
    }
    for (const std::string& id : m.managed) {
      if (!present.contains(id))
        seen.push_back({id, false, {}});
    }
  }
  const uint64_t commits = m.own_commits.load();
  asio::post(m.io, [&m, seen = std::move(seen), commits] { m.onOperatorCommit(seen, commits); });
}

std::vector<CheckerStatus> HealthService::status() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->status_snapshot;
}

absl::Status HealthService::list(const pb::ListHealthChecksRequest& req,
                                 pb::ListHealthChecksResponse* resp) const {
  const std::string want = req.has_key() ? keyId(req.key()) : "";
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const CheckerStatus& s : impl_->status_snapshot) {
    if (want.empty() || keyId(s.proto.key()) == want)
      *resp->add_checks() = s.proto;
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, uint64_t>> HealthService::metrics() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const CheckerStatus& s : status()) {
    const std::string labels =
        absl::StrCat("{service=\"", s.service, "\",rs=\"", s.rs, "\",checker=\"", s.checker, "\"}");
    out.emplace_back(absl::StrCat("lb_health_checker_up", labels), s.up ? 1 : 0);
    out.emplace_back(absl::StrCat("lb_health_checks_total", labels), s.checks);
    out.emplace_back(absl::StrCat("lb_health_check_failures_total", labels), s.failures);
    out.emplace_back(absl::StrCat("lb_health_checker_transitions_total", labels), s.transitions);
    out.emplace_back(absl::StrCat("lb_health_check_latency_us", labels), s.last_latency_us);
  }
  return out;
}

}  // namespace lb::health
