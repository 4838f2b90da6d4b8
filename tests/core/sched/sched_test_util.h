// SPDX-License-Identifier: Apache-2.0
// Helpers for the scheduler tests: dest lists, live counters and pick contexts.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

#include "core/sched/scheduler.h"

namespace lb::sched::testing {

inline constexpr DestId kA = 0;
inline constexpr DestId kB = 1;
inline constexpr DestId kC = 2;
inline constexpr DestId kD = 3;

// Dest `id` at 10.0.0.(id + 1):80 with the given weight (last_weight = weight).
inline DestInfo dest(DestId id, int32_t weight) {
  DestInfo d;
  d.id = id;
  d.addr = IpAddr::v4(0x0a000001u + id);
  d.port = 80;
  d.weight = weight;
  d.last_weight = weight;
  return d;
}

// Counters for up to `n` dests, with setters.
class Loads {
 public:
  explicit Loads(size_t n = 4096) : c_(n) {}

  DestLoad view() const { return DestLoad(absl::MakeConstSpan(c_.data(), c_.size())); }

  void setActive(DestId d, int32_t v) { c_[d].active_conns.store(v); }

  void setInactive(DestId d, int32_t v) { c_[d].inact_conns.store(v); }

  void setOverloaded(DestId d, bool v) { c_[d].overloaded.store(v); }

  int32_t active(DestId d) const { return c_[d].active_conns.load(); }

 private:
  std::vector<DestCounters> c_;
};

inline PickContext flow(uint32_t saddr, uint32_t daddr = 0xc6120001u, uint16_t sport = 40000) {
  PickContext ctx;
  ctx.saddr = IpAddr::v4(saddr);
  ctx.daddr = IpAddr::v4(daddr);
  ctx.sport = sport;
  ctx.dport = 80;
  ctx.has_ports = true;
  return ctx;
}

inline SchedulerPtr make(absl::string_view name,
                         const std::vector<DestInfo>& dests,
                         uint32_t flags = 0) {
  const SchedulerFactory* f = findScheduler(name);
  EXPECT_NE(f, nullptr) << name;
  if (f == nullptr)
    return nullptr;
  SchedulerOptions opts;
  opts.flags = flags;
  absl::StatusOr<SchedulerPtr> s = f->create(dests, opts);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : nullptr;
}

// `n` picks with the same context and load. nullopt is recorded as kNoDest.
inline std::vector<DestId> picks(Scheduler& s,
                                 int n,
                                 const DestLoad& load,
                                 const PickContext& ctx = PickContext{}) {
  std::vector<DestId> out;
  for (int i = 0; i < n; ++i)
    out.push_back(s.pick(ctx, load).value_or(kNoDest));
  return out;
}

// Simulates `outstanding` concurrent connections: every pick opens an active conn on the chosen
// dest and, once `outstanding` are open, the oldest one closes.
class ConnSim {
 public:
  ConnSim(Loads& loads, size_t outstanding) : loads_(loads), outstanding_(outstanding) {}

  void opened(DestId d) {
    loads_.setActive(d, loads_.active(d) + 1);
    open_.push_back(d);
    if (open_.size() > outstanding_) {
      const DestId old = open_.front();
      open_.pop_front();
      loads_.setActive(old, loads_.active(old) - 1);
    }
  }

 private:
  Loads& loads_;
  size_t outstanding_;
  std::deque<DestId> open_;
};

}  // namespace lb::sched::testing
