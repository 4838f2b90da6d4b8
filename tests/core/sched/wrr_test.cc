// SPDX-License-Identifier: Apache-2.0
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

using V = std::vector<DestId>;

TEST(WeightedRoundRobinTest, Weights432InListOrder) {
  Loads loads;
  SchedulerPtr s = make("wrr", {dest(kA, 4), dest(kB, 3), dest(kC, 2)});
  const V cycle = {kA, kA, kB, kA, kB, kC, kA, kB, kC};
  EXPECT_EQ(picks(*s, 9, loads.view()), cycle);
  EXPECT_EQ(picks(*s, 9, loads.view()), cycle);
}

TEST(WeightedRoundRobinTest, GcdStepsTheCurrentWeight) {
  Loads loads;
  // di = 2, mw = 4 - 1 = 3: cw runs 3, 1.
  SchedulerPtr s = make("wrr", {dest(kA, 4), dest(kB, 2)});
  EXPECT_EQ(picks(*s, 6, loads.view()), (V{kA, kA, kB, kA, kA, kB}));
}

TEST(WeightedRoundRobinTest, SkipsOverloadedAndZeroWeight) {
  Loads loads;
  SchedulerPtr s = make("wrr", {dest(kA, 4), dest(kB, 3), dest(kD, 0), dest(kC, 2)});
  loads.setOverloaded(kA, true);
  // cw 4: none; 3: B; 2: B C; 1: B C; then back to 4.
  EXPECT_EQ(picks(*s, 10, loads.view()), (V{kB, kB, kC, kB, kC, kB, kB, kC, kB, kC}));
}

TEST(WeightedRoundRobinTest, AllOverloadedOrZeroGiveNoDest) {
  Loads loads;
  SchedulerPtr s = make("wrr", {dest(kA, 2), dest(kB, 1)});
  loads.setOverloaded(kA, true);
  loads.setOverloaded(kB, true);
  EXPECT_EQ(s->pick({}, loads.view()), std::nullopt);
  loads.setOverloaded(kB, false);
  EXPECT_EQ(picks(*s, 3, loads.view()), (V{kB, kB, kB}));
  ASSERT_TRUE(s->update({dest(kA, 0), dest(kB, 0)}).ok());
  EXPECT_EQ(s->pick({}, loads.view()), std::nullopt);
}

TEST(WeightedRoundRobinTest, DestChangeResetsCursorAndRegridsCw) {
  Loads loads;
  // Weights 6,4: di = 2, mw = 5. A(cw 5), A(cw 3), B(cw 3): cw is now 3.
  SchedulerPtr s = make("wrr", {dest(kA, 6), dest(kB, 4)});
  EXPECT_EQ(picks(*s, 3, loads.view()), (V{kA, kA, kB}));
  // Edit B to 3: di = 3, mw = 4, and ip_vs_wrr_dest_changed sets cw = (3 / 3) * 3 + 1 = 4 and
  // the cursor to the head. So A(cw 4), A(cw 1), B(cw 1), A(cw 4). Keeping cw = 3 would have
  // given A, B first.
  ASSERT_TRUE(s->update({dest(kA, 6), dest(kB, 3)}).ok());
  EXPECT_EQ(picks(*s, 4, loads.view()), (V{kA, kA, kB, kA}));
}

TEST(WeightedRoundRobinTest, AddedDestStartsFromHead) {
  Loads loads;
  SchedulerPtr s = make("wrr", {dest(kA, 1), dest(kB, 1)});
  EXPECT_EQ(picks(*s, 1, loads.view()), (V{kA}));
  ASSERT_TRUE(s->update({dest(kC, 1), dest(kA, 1), dest(kB, 1)}).ok());
  EXPECT_EQ(picks(*s, 4, loads.view()), (V{kC, kA, kB, kC}));
}

}  // namespace
}  // namespace lb::sched::testing
