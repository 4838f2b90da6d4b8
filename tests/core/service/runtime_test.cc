// SPDX-License-Identifier: Apache-2.0
#include "core/service/runtime.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lb {
namespace {

using ::testing::ElementsAreArray;

// Drives a dest's inactconns up to `peak` then back to 0 the way the pipeline does (count, then
// update overload), recording the overload flag after each step.
std::vector<bool> bindThenUnbind(ServiceRuntime& rt, DestId d, int peak, uint32_t u, uint32_t l) {
  std::vector<bool> seen;
  DestCounters& c = rt.destCounters()[d];
  for (int i = 0; i < peak; ++i) {
    c.inact_conns.fetch_add(1);
    rt.updateOverloadOnBind(d, u);
    seen.push_back(c.overloaded.load());
  }
  for (int i = 0; i < peak; ++i) {
    c.inact_conns.fetch_sub(1);
    rt.updateOverloadOnUnbind(d, u, l);
    seen.push_back(c.overloaded.load());
  }
  return seen;
}

// u = 4, no l: set when total reaches 4; cleared when total * 4 < 12, i.e. at total 2.
TEST(OverloadTest, UpperOnlyClearsBelowThreeQuarters) {
  ServiceRuntime rt(4, 8, 1);
  const bool want[] = {false, false, false, true, /*unbind: 3*/ true, /*2*/ false, false, false};
  EXPECT_THAT(bindThenUnbind(rt, 3, 4, 4, 0), ElementsAreArray(want));
}

// u = 4, l = 2: cleared only when total < 2, i.e. at 1.
TEST(OverloadTest, LowerThresholdClearsBelowIt) {
  ServiceRuntime rt(4, 8, 1);
  const bool want[] = {false, false, false, true, /*3*/ true, /*2*/ true, /*1*/ false, false};
  EXPECT_THAT(bindThenUnbind(rt, 3, 4, 4, 2), ElementsAreArray(want));
}

// u = 3: 3 * 4 = 12 vs 9: total 2 => 8 < 9 clears.
TEST(OverloadTest, UpperThreeClearsAtTwo) {
  ServiceRuntime rt(4, 8, 1);
  const bool want[] = {false, false, true, /*2*/ false, false, false};
  EXPECT_THAT(bindThenUnbind(rt, 0, 3, 3, 0), ElementsAreArray(want));
}

// Active conns count too; no thresholds: never set, and unbind always clears.
TEST(OverloadTest, ActiveCountsAndNoThresholdClears) {
  ServiceRuntime rt(4, 8, 1);
  DestCounters& c = rt.destCounters()[1];
  c.active_conns.store(2);
  c.inact_conns.store(0);
  rt.updateOverloadOnBind(1, 2);
  EXPECT_TRUE(c.overloaded.load());
  c.persist_conns.store(100);          // templates are not part of the total
  rt.updateOverloadOnUnbind(1, 2, 0);  // total 2: 8 < 6 is false
  EXPECT_TRUE(c.overloaded.load());
  rt.updateOverloadOnUnbind(1, 0, 0);
  EXPECT_FALSE(c.overloaded.load());
  rt.updateOverloadOnBind(1, 0);
  EXPECT_FALSE(c.overloaded.load());
  EXPECT_TRUE(rt.destLoad().active(1) == 2 && !rt.destLoad().overloaded(1));
}

TEST(RuntimeStatsTest, SumsWorkersMinusZeroBaseline) {
  ServiceRuntime rt(4, 8, 1);
  rt.setWorkers(3);
  ASSERT_EQ(rt.workers(), 3u);
  rt.workerStats(0).addConn(2, 5);
  rt.workerStats(1).addConn(2, 5);
  rt.workerStats(2).addIn(2, 5, 100);
  rt.workerStats(2).addOut(1, 6, 40);
  EXPECT_EQ(rt.serviceStats(2), (StatsValues{2, 1, 0, 100, 0}));
  EXPECT_EQ(rt.destStats(5), (StatsValues{2, 1, 0, 100, 0}));
  EXPECT_EQ(rt.serviceStats(kNoService), (StatsValues{2, 1, 1, 100, 40}));

  const DestId dests[] = {5};
  rt.zeroService(2, dests);
  EXPECT_EQ(rt.serviceStats(2), StatsValues{});
  EXPECT_EQ(rt.destStats(5), StatsValues{});
  EXPECT_EQ(rt.serviceStats(1), (StatsValues{0, 0, 1, 0, 40}));  // untouched
  EXPECT_EQ(rt.serviceStats(kNoService), (StatsValues{2, 1, 1, 100, 40}));
  rt.workerStats(1).addConn(2, 5);
  EXPECT_EQ(rt.serviceStats(2), (StatsValues{1, 0, 0, 0, 0}));

  rt.zeroService(kNoService, {});
  EXPECT_EQ(rt.serviceStats(kNoService), StatsValues{});
  EXPECT_EQ(rt.serviceStats(1), StatsValues{});
  EXPECT_EQ(rt.serviceStats(2), StatsValues{});
  EXPECT_EQ(rt.destStats(6), StatsValues{});
  rt.workerStats(0).addOut(1, 6, 10);
  EXPECT_EQ(rt.serviceStats(kNoService), (StatsValues{0, 0, 1, 0, 10}));
  EXPECT_EQ(rt.destStats(6), (StatsValues{0, 0, 1, 0, 10}));
}

// 1000 conns on a service in 2 s: (((1000 << 9) >> 2) + 0x1FF) >> 10 = 125 cps.
TEST(RuntimeStatsTest, EstimatorsPerServiceDestAndTotal) {
  ServiceRuntime rt(4, 8, 2);
  const ServiceId svcs[] = {1};
  const DestId dests[] = {3};
  rt.tickEstimators(svcs, dests);  // first sighting: baseline only
  for (int i = 0; i < 1000; ++i)
    rt.workerStats(static_cast<size_t>(i % 2)).addConn(1, 3);
  rt.tickEstimators(svcs, dests);
  EXPECT_EQ(rt.serviceRates(1).cps, 125u);
  EXPECT_EQ(rt.destRates(3).cps, 125u);
  EXPECT_EQ(rt.serviceRates(kNoService).cps, 125u);
  EXPECT_EQ(rt.serviceRates(2).cps, 0u);
  rt.zeroService(1, dests);
  EXPECT_EQ(rt.serviceRates(1), RateValues{});
  EXPECT_EQ(rt.destRates(3), RateValues{});
  EXPECT_EQ(rt.serviceRates(kNoService).cps, 125u);
  // An id no longer listed loses its estimator.
  rt.tickEstimators({}, {});
  EXPECT_EQ(rt.destRates(3), RateValues{});
}

TEST(RuntimeStatsTest, PoolForReusesAndRetires) {
  ServiceRuntime rt(4, 8, 1);
  std::vector<IpAddr> addrs = {IpAddr::v4(0xc6120901)};
  LocalAddrPool* p = rt.poolFor(2, addrs);
  EXPECT_EQ(rt.poolFor(2, addrs), p);
  IpAddr a;
  uint16_t port = 0;
  ASSERT_TRUE(p->acquire(L4Proto::kTcp, 0, &a, &port));
  rt.dropPool(2);
  EXPECT_EQ(rt.collectRetiredPools(), 0u);  // a conn still holds a port
  p->release(L4Proto::kTcp, a, port);
  EXPECT_EQ(rt.collectRetiredPools(), 1u);
  EXPECT_NE(rt.poolFor(2, addrs), nullptr);
}

}  // namespace
}  // namespace lb
