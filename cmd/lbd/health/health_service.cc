// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_service.h"

#include <algorithm>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "cmd/lbd/health/health_service_impl.h"
#include "core/base/log.h"

namespace lb::health {

HealthService::HealthService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HealthService::~HealthService() {
  stop();
  // The checkers' timers belong to impl_->io, which Impl declares after vss (and so destroys
  // first): free them while it lives (ThreadSanitizer: heap-use-after-free in the timers'
  // cancel at shutdown).
  impl_->vss.clear();
  impl_->api_vss.clear();
}

absl::StatusOr<std::unique_ptr<HealthService>> HealthService::create(HealthOptions options) {
  auto impl = std::make_unique<Impl>();
  if (!options.reader.read)
    options.reader = fileSystemReader();
  impl->options = std::move(options);
  if (!impl->options.conf_path.empty()) {
    absl::StatusOr<KeepalivedConfig> conf =
        parseKeepalivedConf(impl->options.conf_path, impl->options.reader);
    if (!conf.ok())
      return conf.status();
    impl->conf = std::move(*conf);
  }
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
  if (!m.options.conf_path.empty()) {
    LB_LOG(kInfo, "health: %s: %d virtual servers, %d real servers, %d checkers",
           m.options.conf_path, m.vss.size(), rss, checkers);
  }
  m.openFifo();
  m.updateStatus();
  m.startCheckers(m.vss, false);
  // The checks of the committed configuration (the state file, --config): from now on every
  // operator's commit refreshes them (observe).
  m.apiRefresh();
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
  if (m.options.conf_path.empty())
    return absl::FailedPreconditionError("no --keepalived-conf to re-read");
  absl::StatusOr<KeepalivedConfig> conf =
      parseKeepalivedConf(m.options.conf_path, m.options.reader);
  if (!conf.ok())
    return conf.status();
  if (m.stopped.load())
    return absl::FailedPreconditionError("the health checks are stopped");
  // Shared with the handler: a reload that gives up waiting (stop() below) must not leave the
  // handler a dangling promise.
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  asio::post(m.io, [&m, done, c = std::move(*conf)]() mutable {
    absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> next = m.build(c);
    if (!next.ok()) {
      done->set_value(next.status());
      return;
    }
    m.migrate(*next, m.vss);
    m.stopCheckers(m.vss);
    m.vss = std::move(*next);
    m.conf = std::move(c);
    m.setManaged();
    absl::Status st = m.commit(m.desiredPool());
    m.startCheckers(m.vss, true);
    m.updateStatus();
    done->set_value(st);
  });
  if (!m.started) {
    // Not running yet (tests): run the posted work here.
    m.io.restart();
    m.io.poll();
  }
  // stop() after the post (from another thread, or on the health thread itself) may stop the
  // io_context before the handler runs: then nothing will ever answer.
  while (result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (m.stopped.load() && m.io.stopped())
      return absl::UnavailableError("the health checks stopped before the reload ran");
  }
  absl::Status st = result.get();
  if (st.ok())
    LB_LOG(kInfo, "health: reloaded %s", m.options.conf_path);
  return st;
}

void HealthService::stop() {
  Impl& m = *impl_;
  const std::thread::id self = std::this_thread::get_id();
  if (!m.stopped.exchange(true) && m.started) {
    // The checkers belong to the health thread: they are stopped there, and only then is its
    // io_context stopped (a handler posted just before io.stop() may never run). Called on that
    // thread itself (from a handler), they are stopped right here.
    if (self == m.thread_id.load()) {
      m.stopAllCheckers();
    } else {
      std::promise<void> done;
      std::future<void> checkers_stopped = done.get_future();
      asio::post(m.io, [&m, &done] {
        m.stopAllCheckers();
        done.set_value();
      });
      checkers_stopped.wait();
    }
    m.io.stop();
  }
  // A thread cannot join itself: stop() on the health thread leaves it to the next stop() or
  // the destructor. The health thread may be waiting for a commit: its thread goes first.
  if (m.thread.joinable() && m.thread.get_id() != self)
    m.thread.join();
  if (m.started && !m.thread.joinable())
    m.commit_io.stop();
  if (m.commit_thread.joinable() && m.commit_thread.get_id() != self && !m.thread.joinable())
    m.commit_thread.join();
  if (m.fifo_fd >= 0 && !m.thread.joinable()) {
    ::close(m.fifo_fd);
    m.fifo_fd = -1;
  }
}

void HealthService::observe(const ServiceTable& table) {
  Impl& m = *impl_;
  if (!m.started || std::this_thread::get_id() == m.commit_thread_id ||
      std::this_thread::get_id() == m.thread_id)
    return;  // our own commit
  // Checks in the committed configuration (lbctl --check, the API): rebuilt from it on the
  // health thread, coalesced (one refresh waiting at a time).
  bool api = m.api_present.load();
  for (size_t i = 0; !api && i < table.config().services.size(); ++i) {
    const ServiceWithDests& sd = table.config().services[i];
    api = !sd.service.health.empty() ||
          std::any_of(sd.dests.begin(), sd.dests.end(),
                      [](const DestConfig& d) { return !d.health.empty(); });
  }
  if (api && !m.api_refresh_posted.exchange(true))
    asio::post(m.io, [&m] { m.apiRefresh(); });
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

size_t HealthService::runningCheckersForTest() const {
  size_t n = 0;
  for (const VsList* list : {&impl_->vss, &impl_->api_vss}) {
    for (const auto& v : *list) {
      for (const RsRt& rs : v->rs) {
        for (const auto& ck : rs.checkers)
          n += ck->stopped ? 0 : 1;
      }
    }
  }
  return n;
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
    // A histogram of every attempt's duration (cumulative buckets, as Prometheus reads them).
    const std::string l = labels.substr(0, labels.size() - 1);  // without its '}'
    uint64_t cum = 0;
    for (size_t b = 0; b < s.latency_counts.size(); ++b) {
      cum += s.latency_counts[b];
      const std::string le =
          b < kLatencyBucketsUs.size() ? absl::StrCat(kLatencyBucketsUs[b]) : "+Inf";
      out.emplace_back(absl::StrCat("lb_health_check_latency_us_bucket", l, ",le=\"", le, "\"}"),
                       cum);
    }
    out.emplace_back(absl::StrCat("lb_health_check_latency_us_sum", labels), s.latency_sum_us);
    out.emplace_back(absl::StrCat("lb_health_check_latency_us_count", labels), cum);
  }
  return out;
}

}  // namespace lb::health
