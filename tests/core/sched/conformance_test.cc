// SPDX-License-Identifier: Apache-2.0
// Invariants every registered scheduler must keep (STYLE.md §3): a new scheduler is covered
// without editing this file.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"
#include "tests/testlib/alloc_counter.h"

namespace lb::sched::testing {
namespace {

// What share of flows each dest should get, per algorithm. Unknown names get no share check.
enum class Share { kWeighted, kEqual, kNone };

Share expectedShare(absl::string_view name) {
  static const std::map<std::string, Share, std::less<>> kShares = {
      {"rr", Share::kEqual},      {"wrr", Share::kWeighted},   {"lc", Share::kEqual},
      {"wlc", Share::kWeighted},  {"sed", Share::kWeighted},   {"nq", Share::kWeighted},
      {"lblc", Share::kWeighted}, {"lblcr", Share::kWeighted}, {"dh", Share::kEqual},
      {"sh", Share::kWeighted},   {"mh", Share::kWeighted},    {"twos", Share::kWeighted},
      {"fo", Share::kNone},       {"ovf", Share::kNone},       {"none", Share::kNone}};
  auto it = kShares.find(name);
  return it == kShares.end() ? Share::kNone : it->second;
}

bool isHash(absl::string_view name) {
  return name == "dh" || name == "sh" || name == "mh";
}

// A varied flow: random client, destination, port and random value.
PickContext randomFlow(std::mt19937_64& rng) {
  PickContext ctx = flow(static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                         static_cast<uint16_t>(rng()));
  ctx.random = rng();
  return ctx;
}

bool doesSchedule(absl::string_view name) {
  return name != "none";
}

// The registered schedulers a property applies to: a property is instantiated only for those,
// never skipped at run time (CI requires 0 skipped tests).
template <typename Pred>
std::vector<const SchedulerFactory*> schedulersWhere(Pred pred) {
  std::vector<const SchedulerFactory*> out;
  for (const SchedulerFactory* f : allSchedulers()) {
    if (pred(f->name()))
      out.push_back(f);
  }
  return out;
}

std::string paramName(const ::testing::TestParamInfo<const SchedulerFactory*>& info) {
  return std::string(info.param->name());
}

// Every registered scheduler.
class ConformanceTest : public ::testing::TestWithParam<const SchedulerFactory*> {
 protected:
  absl::string_view name() const { return GetParam()->name(); }

  bool schedules() const { return doesSchedule(name()); }
};

// Every scheduler that schedules (all but "none").
class SchedulingConformanceTest : public ConformanceTest {};

// Every scheduler with a share invariant (expectedShare != kNone).
class ShareConformanceTest : public ConformanceTest {};

// The hash schedulers: dh, sh, mh.
class HashConformanceTest : public ConformanceTest {};

TEST_P(ConformanceTest, EmptyGivesNoDest) {
  Loads loads;
  SchedulerPtr s = make(name(), {});
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(s->pick(randomFlow(rng), loads.view()), std::nullopt);
  ASSERT_TRUE(s->update({dest(kA, 1)}).ok());
  ASSERT_TRUE(s->update({}).ok());
  EXPECT_EQ(s->pick(randomFlow(rng), loads.view()), std::nullopt);
}

TEST_P(ConformanceTest, ZeroWeightNeverPicked) {
  Loads loads;
  ConnSim sim(loads, 100);
  SchedulerPtr s = make(name(), {dest(kA, 2), dest(kB, 0), dest(kC, 1), dest(kD, 0)});
  std::mt19937_64 rng(2);
  for (int i = 0; i < 10000; ++i) {
    std::optional<DestId> d = s->pick(randomFlow(rng), loads.view());
    if (!d)
      continue;
    ASSERT_NE(*d, kB);
    ASSERT_NE(*d, kD);
    sim.opened(*d);
  }
}

TEST_P(SchedulingConformanceTest, EveryLiveDestReachable) {
  const std::vector<DestInfo> dests = {dest(kA, 1), dest(kB, 3), dest(kC, 2), dest(kD, 5)};
  for (const DestInfo& target : dests) {
    // Every other dest is overloaded: a scheduler must never return one of them, and must be
    // able to return the target.
    Loads loads;
    for (const DestInfo& d : dests)
      loads.setOverloaded(d.id, d.id != target.id);
    SchedulerPtr s = make(name(), dests);
    std::mt19937_64 rng(3);
    bool reached = false;
    for (int i = 0; i < 2000 && !reached; ++i) {
      std::optional<DestId> d = s->pick(randomFlow(rng), loads.view());
      if (!d)
        continue;
      ASSERT_EQ(*d, target.id) << "picked an overloaded dest";
      reached = true;
    }
    EXPECT_TRUE(reached) << "dest " << target.id;
  }
}

TEST_P(ShareConformanceTest, SharesWithinFivePercent) {
  const Share share = expectedShare(name());
  ASSERT_NE(share, Share::kNone);
  const std::vector<DestInfo> dests = {dest(kA, 1), dest(kB, 2), dest(kC, 3), dest(kD, 4)};
  Loads loads;
  ConnSim sim(loads, 1000);
  SchedulerPtr s = make(name(), dests);
  std::mt19937_64 rng(4);
  constexpr int kFlows = 100000;
  std::map<DestId, int> got;
  for (int i = 0; i < kFlows; ++i) {
    std::optional<DestId> d = s->pick(randomFlow(rng), loads.view());
    ASSERT_TRUE(d.has_value());
    ++got[*d];
    sim.opened(*d);
  }
  for (const DestInfo& d : dests) {
    const double expected = share == Share::kEqual ? 0.25 : d.weight / 10.0;
    const double observed = static_cast<double>(got[d.id]) / kFlows;
    EXPECT_NEAR(observed, expected, 0.05 * expected) << "dest weight " << d.weight;
  }
}

TEST_P(HashConformanceTest, HashSameFlowSameDest) {
  Loads loads;
  std::vector<DestInfo> dests;
  for (DestId i = 0; i < 10; ++i)
    dests.push_back(dest(i, 1 + static_cast<int32_t>(i % 3)));
  SchedulerPtr s = make(name(), dests);
  SchedulerPtr twin = make(name(), dests);
  std::mt19937_64 rng(5);
  std::vector<PickContext> flows;
  for (int i = 0; i < 2000; ++i)
    flows.push_back(randomFlow(rng));
  std::vector<std::optional<DestId>> first;
  for (const PickContext& f : flows)
    first.push_back(s->pick(f, loads.view()));
  for (size_t i = 0; i < flows.size(); ++i) {
    ASSERT_TRUE(first[i].has_value());
    EXPECT_EQ(s->pick(flows[i], loads.view()), first[i]);
    EXPECT_EQ(twin->pick(flows[i], loads.view()), first[i]);  // a rebuilt table agrees
  }
}

// Fraction of flows whose dest differs between two schedulers.
double moved(Scheduler& before, Scheduler& after, const Loads& lb, const Loads& la) {
  std::mt19937_64 rng(6);
  int changed = 0;
  constexpr int kFlows = 20000;
  for (int i = 0; i < kFlows; ++i) {
    const PickContext f = randomFlow(rng);
    if (before.pick(f, lb.view()) != after.pick(f, la.view()))
      ++changed;
  }
  return static_cast<double>(changed) / kFlows;
}

TEST_P(HashConformanceTest, HashRemovalDisruption) {
  constexpr int kN = 10;
  std::vector<DestInfo> dests;
  for (DestId i = 0; i < kN; ++i)
    dests.push_back(dest(i, 1));
  std::vector<DestInfo> fewer(dests.begin(), dests.end());
  fewer.erase(fewer.begin() + 4);
  Loads loads;
  if (name() == "mh") {
    // Maglev: removing one of N moves about 1/N of flows (its own) plus a little more.
    SchedulerPtr before = make(name(), dests);
    SchedulerPtr after = make(name(), fewer);
    EXPECT_LE(moved(*before, *after, loads, loads), 1.0 / kN + 0.05);
  }
  // sh and dh refill buckets by list position, so removing a dest reshuffles most buckets: the
  // kernel guarantees nothing there. What it does guarantee, with sh-fallback/mh-fallback
  // (dh has none), is that taking a dest out of service by overload or weight 0 moves only
  // that dest's flows.
  if (name() == "dh")
    return;
  SchedulerPtr s = make(name(), dests, kSchedFlag1);
  Loads out;
  out.setOverloaded(4, true);
  std::mt19937_64 rng(7);
  int on_removed = 0;
  for (int i = 0; i < 20000; ++i) {
    const PickContext f = randomFlow(rng);
    const std::optional<DestId> b = s->pick(f, loads.view());
    const std::optional<DestId> a = s->pick(f, out.view());
    ASSERT_TRUE(b.has_value() && a.has_value());
    if (*b == 4) {
      ++on_removed;
      EXPECT_NE(*a, 4u);
    } else {
      EXPECT_EQ(*a, *b);
    }
  }
  EXPECT_NEAR(on_removed / 20000.0, 1.0 / kN, 0.3 / kN);
}

TEST_P(SchedulingConformanceTest, UpdateToSameListKeepsWorking) {
  Loads loads;
  const std::vector<DestInfo> dests = {dest(kA, 1), dest(kB, 1)};
  SchedulerPtr s = make(name(), dests);
  ASSERT_TRUE(s->update(dests).ok());
  std::mt19937_64 rng(8);
  int picked = 0;
  for (int i = 0; i < 100; ++i)
    picked += s->pick(randomFlow(rng), loads.view()).has_value();
  EXPECT_EQ(picked, 100);
}

TEST_P(ConformanceTest, PickDoesNotAllocate) {
  Loads loads;
  std::vector<DestInfo> dests;
  for (DestId i = 0; i < 100; ++i)
    dests.push_back(dest(i, 1 + static_cast<int32_t>(i % 4)));
  SchedulerPtr s = make(name(), dests, kSchedFlag1 | kSchedFlag2);
  std::mt19937_64 rng(9);
  std::vector<PickContext> flows;
  for (int i = 0; i < 1000; ++i)
    flows.push_back(randomFlow(rng));
  loads.setOverloaded(3, true);  // exercise fallback paths
  const uint64_t before = lb::testing::threadAllocations();
  int picked = 0;
  for (PickContext& f : flows) {
    f.now = MonoTime{picked * 1000};
    picked += s->pick(f, loads.view()).has_value();
  }
  EXPECT_EQ(lb::testing::threadAllocations() - before, 0u);
  if (schedules()) {
    EXPECT_GT(picked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchedulers,
                         ConformanceTest,
                         ::testing::ValuesIn(allSchedulers()),
                         paramName);
INSTANTIATE_TEST_SUITE_P(Scheduling,
                         SchedulingConformanceTest,
                         ::testing::ValuesIn(schedulersWhere(doesSchedule)),
                         paramName);
INSTANTIATE_TEST_SUITE_P(WithShare,
                         ShareConformanceTest,
                         ::testing::ValuesIn(schedulersWhere([](absl::string_view n) {
                           return expectedShare(n) != Share::kNone;
                         })),
                         paramName);
INSTANTIATE_TEST_SUITE_P(Hash,
                         HashConformanceTest,
                         ::testing::ValuesIn(schedulersWhere(isHash)),
                         paramName);

}  // namespace
}  // namespace lb::sched::testing
