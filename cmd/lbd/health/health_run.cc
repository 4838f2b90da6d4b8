// SPDX-License-Identifier: Apache-2.0
// HealthService: running the checks on the health thread (timers, attempts, results through
// the retry stepping and ipwrapper) and the notifications (programs, lvs_notify_fifo).
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "cmd/lbd/health/health_service_impl.h"
#include "core/base/log.h"

namespace lb::health {

void HealthService::Impl::fifoWrite(const std::string& line) {
  if (fifo_fd >= 0 && ::write(fifo_fd, line.data(), line.size()) < 0) {
    LB_LOG_EVERY_N_SEC(kWarn, 10, "health: lvs_notify_fifo write: %s", std::strerror(errno));
  }
}

void HealthService::Impl::openFifo() {
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

void HealthService::Impl::notify(VsRt& vs, const Transition& t) {
  const std::string proto = vs.cfg.protocol;
  if (t.what == Transition::What::kRealServer) {
    const RsRt& rs = vs.rs[t.rs];
    LB_LOG(kInfo, "health: real server %s:%d of %s is %s", rs.cfg.address, rs.dest.port(), vs.name,
           t.up ? "up" : "down");
    for (const std::string& n : vs.plan.fifo_names)
      fifoWrite(fifoRsLine(rs.cfg.address, proto, static_cast<uint16_t>(rs.dest.port()), n, t.up));
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

Micros HealthService::Impl::firstDelay(const CheckerRt& ck) {
  if (ck.timing.warmup <= 0)
    return 0;
  return std::uniform_int_distribution<Micros>(0, ck.timing.warmup)(rng);
}

void HealthService::Impl::arm(const std::shared_ptr<CheckerRt>& ck, Micros delay) {
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

void HealthService::Impl::attempt(const std::shared_ptr<CheckerRt>& ck) {
  const auto t0 = std::chrono::steady_clock::now();
  std::weak_ptr<CheckerRt> weak = ck;
  probes->run(ck->spec, ck->target, [this, weak, t0](ProbeResult r) {
    std::shared_ptr<CheckerRt> c = weak.lock();
    if (!c || c->stopped)
      return;
    c->last_latency_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    size_t b = 0;
    while (b < kLatencyBucketsUs.size() && c->last_latency_us > kLatencyBucketsUs[b])
      ++b;
    ++c->latency_counts[b];
    c->latency_sum_us += c->last_latency_us;
    onResult(c, std::move(r));
  });
}

void HealthService::Impl::onResult(const std::shared_ptr<CheckerRt>& ck, ProbeResult r) {
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

void HealthService::Impl::startCheckers(VsList& list, bool migrated) {
  if (checks_stopped) {  // stop() ran (a refresh or reload handler that was already queued)
    stopCheckers(list);
    return;
  }
  for (auto& v : list) {
    for (RsRt& rs : v->rs) {
      for (auto& ck : rs.checkers) {
        ck->timer = std::make_unique<asio::steady_timer>(io);
        arm(ck, migrated && ck->retry.hasRun() ? ck->timing.delay_loop : firstDelay(*ck));
      }
    }
  }
}

void HealthService::Impl::stopCheckers(VsList& list) {
  for (auto& v : list) {
    for (RsRt& rs : v->rs) {
      for (auto& ck : rs.checkers) {
        ck->stopped = true;
        if (ck->timer)
          ck->timer->cancel();
      }
    }
  }
}

void HealthService::Impl::stopAllCheckers() {
  checks_stopped = true;
  stopCheckers(vss);
  stopCheckers(api_vss);
}

}  // namespace lb::health
