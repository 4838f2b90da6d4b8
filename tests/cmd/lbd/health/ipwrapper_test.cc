// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/ipwrapper.h"

#include "gtest/gtest.h"

namespace lb::health {
namespace {

using W = std::optional<uint32_t>;

TEST(VsHealthTest, DownRemovesAndHealRestoresWeight) {
  VsHealth vs({{5, false, 2, false}, {3, false, 1, false}}, 1, 0, false);
  EXPECT_TRUE(vs.quorumUp());
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{5u, 3u}));
  std::vector<Transition> t = vs.setChecker(0, 1, false);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].what, Transition::What::kRealServer);
  EXPECT_FALSE(t[0].up);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{std::nullopt, 3u}));
  // The other checker failing too changes nothing more; the server needs both back.
  EXPECT_TRUE(vs.setChecker(0, 0, false).empty());
  EXPECT_TRUE(vs.setChecker(0, 1, true).empty());
  EXPECT_FALSE(vs.alive(0));
  t = vs.setChecker(0, 0, true);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(t[0].up);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{5u, 3u}));
}

TEST(VsHealthTest, InhibitOnFailureQuiesces) {
  VsHealth vs({{4, true, 1, false}}, 1, 0, false);
  vs.setChecker(0, 0, false);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{0u}));
  vs.setChecker(0, 0, true);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{4u}));
  // The operator's weight is what it returns to.
  vs.setChecker(0, 0, false);
  vs.setWeight(0, 9);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{0u}));
  vs.setChecker(0, 0, true);
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{9u}));
}

TEST(VsHealthTest, AlphaStartsFailed) {
  VsHealth vs({{1, false, 1, true}}, 1, 0, true);
  EXPECT_FALSE(vs.alive(0));
  EXPECT_FALSE(vs.quorumUp());
  EXPECT_TRUE(vs.desired().sorry);
  std::vector<Transition> t = vs.setChecker(0, 0, true);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].what, Transition::What::kQuorum);
  EXPECT_TRUE(t[1].up);
  EXPECT_FALSE(vs.desired().sorry);
}

TEST(VsHealthTest, QuorumWithHysteresisAndSorryServer) {
  // quorum 4, hysteresis 1: lost below 3, regained at 5.
  VsHealth vs({{2, false, 1, false}, {2, false, 1, false}, {2, false, 1, false}}, 4, 1, true);
  EXPECT_TRUE(vs.quorumUp());
  std::vector<Transition> t = vs.setChecker(0, 0, false);  // sum 4: still up
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(vs.quorumUp());
  t = vs.setChecker(1, 0, false);  // sum 2 < 3: lost
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].what, Transition::What::kQuorum);
  EXPECT_FALSE(t[1].up);
  VsHealth::Desired d = vs.desired();
  EXPECT_TRUE(d.sorry);
  EXPECT_EQ(d.rs, (std::vector<W>{std::nullopt, std::nullopt, std::nullopt}));
  t = vs.setChecker(1, 0, true);  // sum 4 < 5: still lost
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(vs.quorumUp());
  t = vs.setChecker(0, 0, true);  // sum 6 >= 5: back
  ASSERT_EQ(t.size(), 2u);
  EXPECT_TRUE(t[1].up);
  d = vs.desired();
  EXPECT_FALSE(d.sorry);
  EXPECT_EQ(d.rs, (std::vector<W>{2u, 2u, 2u}));
}

TEST(VsHealthTest, QuorumLostWithoutSorryServerKeepsThePool) {
  VsHealth vs({{1, false, 1, false}, {1, false, 1, false}}, 2, 0, false);
  std::vector<Transition> t = vs.setChecker(0, 0, false);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_FALSE(vs.quorumUp());
  EXPECT_EQ(vs.desired().rs, (std::vector<W>{std::nullopt, 1u}));
  EXPECT_FALSE(vs.desired().sorry);
}

TEST(VsHealthTest, FifoLinesAsKeepalivedWritesThem) {
  const std::string vs = fifoVsName("198.18.0.1", "TCP", 80, 0);
  EXPECT_EQ(fifoVsLine(vs, true), "VS [198.18.0.1]:tcp:80 UP\n");
  EXPECT_EQ(fifoRsLine("198.18.1.1", "TCP", 8080, vs, false),
            "RS [198.18.1.1]:tcp:8080 [198.18.0.1]:tcp:80 DOWN\n");
  EXPECT_EQ(fifoVsLine(fifoVsName("", "TCP", 0, 7), false), "VS FWM 7 DOWN\n");
}

}  // namespace
}  // namespace lb::health
