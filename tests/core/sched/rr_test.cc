// SPDX-License-Identifier: Apache-2.0
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

using V = std::vector<DestId>;

TEST(RoundRobinTest, AlternatesInListOrder) {
  Loads loads;
  SchedulerPtr s = make("rr", {dest(kA, 1), dest(kB, 5), dest(kC, 1)});
  EXPECT_EQ(picks(*s, 7, loads.view()), (V{kA, kB, kC, kA, kB, kC, kA}));
}

TEST(RoundRobinTest, SkipsZeroWeightAndOverloaded) {
  Loads loads;
  SchedulerPtr s = make("rr", {dest(kA, 1), dest(kB, 0), dest(kC, 1), dest(kD, 1)});
  loads.setOverloaded(kD, true);
  EXPECT_EQ(picks(*s, 4, loads.view()), (V{kA, kC, kA, kC}));
  loads.setOverloaded(kA, true);
  loads.setOverloaded(kC, true);
  EXPECT_EQ(s->pick({}, loads.view()), std::nullopt);
  loads.setOverloaded(kD, false);
  EXPECT_EQ(picks(*s, 2, loads.view()), (V{kD, kD}));
}

TEST(RoundRobinTest, RemovedCursorDestResumesAtItsSuccessor) {
  Loads loads;
  SchedulerPtr s = make("rr", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  EXPECT_EQ(picks(*s, 2, loads.view()), (V{kA, kB}));
  // ip_vs_rr_del_dest: the cursor steps back to A, so C (B's successor) is next, not A.
  ASSERT_TRUE(s->update({dest(kA, 1), dest(kC, 1)}).ok());
  EXPECT_EQ(picks(*s, 3, loads.view()), (V{kC, kA, kC}));
}

TEST(RoundRobinTest, RemovingFirstCursorDestGoesBackToHead) {
  Loads loads;
  SchedulerPtr s = make("rr", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  EXPECT_EQ(picks(*s, 1, loads.view()), (V{kA}));
  ASSERT_TRUE(s->update({dest(kB, 1), dest(kC, 1)}).ok());
  EXPECT_EQ(picks(*s, 3, loads.view()), (V{kB, kC, kB}));
}

TEST(RoundRobinTest, CursorSurvivesAddsAndOtherRemovals) {
  Loads loads;
  SchedulerPtr s = make("rr", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  EXPECT_EQ(picks(*s, 2, loads.view()), (V{kA, kB}));
  // A new dest goes to the head of the list; the cursor stays on B.
  ASSERT_TRUE(s->update({dest(kD, 1), dest(kA, 1), dest(kB, 1), dest(kC, 1)}).ok());
  EXPECT_EQ(picks(*s, 4, loads.view()), (V{kC, kD, kA, kB}));
  ASSERT_TRUE(s->update({dest(kD, 1), dest(kB, 1), dest(kC, 1)}).ok());  // A removed
  EXPECT_EQ(picks(*s, 2, loads.view()), (V{kC, kD}));
}

TEST(RoundRobinTest, EmptyAndAllZeroWeightGiveNoDest) {
  Loads loads;
  SchedulerPtr s = make("rr", {});
  EXPECT_EQ(s->pick({}, loads.view()), std::nullopt);
  ASSERT_TRUE(s->update({dest(kA, 0)}).ok());
  EXPECT_EQ(s->pick({}, loads.view()), std::nullopt);
}

}  // namespace
}  // namespace lb::sched::testing
