// SPDX-License-Identifier: Apache-2.0
// lc, wlc, sed, nq, fo, ovf and twos: exact choices for hand-picked counters.
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

std::optional<DestId> pickOnce(absl::string_view name,
                               const std::vector<DestInfo>& dests,
                               const Loads& loads,
                               const PickContext& ctx = PickContext{}) {
  SchedulerPtr s = make(name, dests);
  return s->pick(ctx, loads.view());
}

TEST(LeastConnectionTest, OverheadIsActiveTimes256PlusInactiveFirstWinsTies) {
  Loads loads;
  loads.setActive(kA, 1);      // 256
  loads.setInactive(kB, 256);  // 256
  loads.setInactive(kC, 300);  // 300
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  EXPECT_EQ(pickOnce("lc", d, loads), kA);
  loads.setInactive(kB, 255);
  EXPECT_EQ(pickOnce("lc", d, loads), kB);
  // Weights do not matter to lc, except that weight 0 is never picked: B (overhead 0) is
  // quiesced, so A (256) beats C (300); weights 1 and 100 play no part.
  loads.setInactive(kB, 0);
  EXPECT_EQ(pickOnce("lc", {dest(kB, 0), dest(kC, 1), dest(kA, 100)}, loads), kA);
  loads.setOverloaded(kA, true);
  EXPECT_EQ(pickOnce("lc", {dest(kB, 0), dest(kC, 1), dest(kA, 100)}, loads), kC);
}

TEST(WeightedLeastConnectionTest, StrictGreaterKeepsFirstOnTie) {
  Loads loads;
  loads.setActive(kA, 1);  // loh 256, w 1
  loads.setActive(kB, 2);  // doh 512
  // 256 * 2 > 512 * 1 is false: A stays.
  EXPECT_EQ(pickOnce("wlc", {dest(kA, 1), dest(kB, 2)}, loads), kA);
  // 256 * 3 > 512 * 1: B.
  EXPECT_EQ(pickOnce("wlc", {dest(kA, 1), dest(kB, 3)}, loads), kB);
  // List order decides: B first and tied, B wins.
  EXPECT_EQ(pickOnce("wlc", {dest(kB, 2), dest(kA, 1)}, loads), kB);
}

TEST(WeightedLeastConnectionTest, InactiveCountsOneTwoHundredFiftySixth) {
  Loads loads;
  loads.setInactive(kA, 255);  // 255 < 256
  loads.setActive(kB, 1);
  EXPECT_EQ(pickOnce("wlc", {dest(kB, 1), dest(kA, 1)}, loads), kA);
  loads.setInactive(kA, 257);
  EXPECT_EQ(pickOnce("wlc", {dest(kB, 1), dest(kA, 1)}, loads), kB);
}

TEST(WeightedLeastConnectionTest, SkipsZeroWeightAndOverloaded) {
  Loads loads;
  loads.setActive(kB, 50);
  loads.setActive(kC, 1);
  // A is idle but quiesced; C is lighter but overloaded.
  loads.setOverloaded(kC, true);
  EXPECT_EQ(pickOnce("wlc", {dest(kA, 0), dest(kC, 1), dest(kB, 1)}, loads), kB);
  loads.setOverloaded(kB, true);
  EXPECT_EQ(pickOnce("wlc", {dest(kA, 0), dest(kC, 1), dest(kB, 1)}, loads), std::nullopt);
}

TEST(ShortestExpectedDelayTest, ActivePlusOneIgnoresInactive) {
  Loads loads;
  loads.setInactive(kA, 1000);
  EXPECT_EQ(pickOnce("sed", {dest(kA, 1), dest(kB, 1)}, loads), kA);  // 1 vs 1: first
  loads.setActive(kA, 1);                                             // 2 * 2 > 3 * 1
  loads.setActive(kB, 2);
  EXPECT_EQ(pickOnce("sed", {dest(kA, 1), dest(kB, 2)}, loads), kB);
  // (1+1) * 1 > (2+1) * 1 is false: A.
  EXPECT_EQ(pickOnce("sed", {dest(kA, 1), dest(kB, 1)}, loads), kA);
}

TEST(NeverQueueTest, FirstIdleDestWinsOutright) {
  Loads loads;
  loads.setActive(kA, 2);
  loads.setInactive(kB, 500);  // idle: inactive conns do not count
  EXPECT_EQ(pickOnce("nq", {dest(kA, 100), dest(kB, 1), dest(kC, 50)}, loads), kB);
  // A quiesced or overloaded idle dest does not count.
  loads.setOverloaded(kB, true);
  EXPECT_EQ(pickOnce("nq", {dest(kD, 0), dest(kA, 100), dest(kB, 1), dest(kC, 50)}, loads), kC);
}

TEST(NeverQueueTest, NoIdleDestFallsBackToSed) {
  Loads loads;
  loads.setActive(kA, 1);  // (1+1) w1
  loads.setActive(kB, 2);  // (2+1) w3: 2 * 3 > 3 * 1
  loads.setActive(kC, 5);  // (5+1) w1
  EXPECT_EQ(pickOnce("nq", {dest(kA, 1), dest(kB, 3), dest(kC, 1)}, loads), kB);
  EXPECT_EQ(pickOnce("nq", {dest(kA, 1), dest(kB, 1), dest(kC, 1)}, loads), kA);
}

TEST(WeightedFailoverTest, HighestWeightFirstOfEquals) {
  Loads loads;
  loads.setActive(kB, 1000);  // load is ignored
  EXPECT_EQ(pickOnce("fo", {dest(kA, 2), dest(kB, 5), dest(kC, 5)}, loads), kB);
  loads.setOverloaded(kB, true);
  EXPECT_EQ(pickOnce("fo", {dest(kA, 2), dest(kB, 5), dest(kC, 5)}, loads), kC);
  EXPECT_EQ(pickOnce("fo", {dest(kA, 0), dest(kC, 0)}, loads), std::nullopt);
}

TEST(WeightedOverflowTest, SpillsWhenActiveExceedsWeight) {
  Loads loads;
  loads.setActive(kA, 6);  // 6 > 5: out
  loads.setActive(kB, 3);  // 3 <= 3: eligible
  loads.setInactive(kC, 99);
  const std::vector<DestInfo> d = {dest(kA, 5), dest(kB, 3), dest(kC, 3)};
  EXPECT_EQ(pickOnce("ovf", d, loads), kB);  // B and C tie on weight 3: first
  loads.setActive(kB, 4);
  EXPECT_EQ(pickOnce("ovf", d, loads), kC);
  loads.setActive(kA, 5);
  EXPECT_EQ(pickOnce("ovf", d, loads), kA);
  loads.setActive(kA, 6);
  loads.setActive(kC, 4);
  EXPECT_EQ(pickOnce("ovf", d, loads), std::nullopt);
}

TEST(TwoChoicesTest, DrawsFromLowAndHighHalvesOfRandom) {
  Loads loads;
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 2), dest(kC, 3)};
  // total = 1 + 2 + 3 + 1 = 7. r1 = 0: A (0 - 1 <= 0). r2 = 5: 4, 2, -1: C.
  PickContext ctx;
  ctx.random = (uint64_t{5} << 32) | 0;
  // Equal overhead 0: 3 * 0 > 1 * 0 is false, choice 1.
  EXPECT_EQ(pickOnce("twos", d, loads, ctx), kA);
  loads.setActive(kA, 1);  // overhead1 256: 3 * 256 > 1 * 0: choice 2
  EXPECT_EQ(pickOnce("twos", d, loads, ctx), kC);
  // r1 = 7 % 7 = 0 again; r2 = 3: 2, 0: B.
  ctx.random = (uint64_t{3} << 32) | 7;
  EXPECT_EQ(pickOnce("twos", d, loads, ctx), kB);
  loads.setOverloaded(kA, true);
  loads.setOverloaded(kB, true);
  loads.setOverloaded(kC, true);
  EXPECT_EQ(pickOnce("twos", d, loads, ctx), std::nullopt);
}

}  // namespace
}  // namespace lb::sched::testing
