// SPDX-License-Identifier: Apache-2.0
// lblc and lblcr: cache hits, rebinding, replication, shedding and expiry.
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

constexpr uint32_t kX = 0xc6120001u;  // destination addresses (cache keys)
constexpr uint32_t kY = 0xc6120002u;

SchedulerPtr makeWithExpiry(absl::string_view name,
                            const std::vector<DestInfo>& dests,
                            int64_t expiry_s) {
  SchedulerOptions opts;
  opts.lblc_expiration = seconds(expiry_s);
  absl::StatusOr<SchedulerPtr> s = findScheduler(name)->create(dests, opts);
  EXPECT_TRUE(s.ok());
  return *s;
}

PickContext at(uint32_t daddr, double t_s) {
  PickContext ctx = flow(0x0a0a0a0au, daddr);
  ctx.now = MonoTime{static_cast<int64_t>(t_s * 1e9)};
  return ctx;
}

TEST(LblcTest, CacheHitBeatsWlc) {
  Loads loads;
  SchedulerPtr s = make("lblc", {dest(kA, 1), dest(kB, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);  // wlc: tie, first
  loads.setActive(kA, 1);                           // wlc now prefers B, but 1 <= weight 1
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kA);
  EXPECT_EQ(s->pick(at(kY, 1), loads.view()), kB);  // a new address: wlc
}

TEST(LblcTest, RebindsOnlyWhenOverloadedAndSomeDestHasRoom) {
  Loads loads;
  SchedulerPtr s = make("lblc", {dest(kA, 1), dest(kB, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  loads.setActive(kA, 2);  // 2 > 1, but B: 1 * 2 < 1 is false: nobody has room
  loads.setActive(kB, 1);
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kA);
  loads.setActive(kB, 0);  // B: 0 < 1: A is overloaded -> wlc -> B, and the entry rebinds
  EXPECT_EQ(s->pick(at(kX, 2), loads.view()), kB);
  loads.setActive(kA, 0);
  loads.setActive(kB, 1);
  EXPECT_EQ(s->pick(at(kX, 3), loads.view()), kB);
}

TEST(LblcTest, OverloadFlagDoesNotInvalidateCachedDest) {
  // ip_vs_lblc_schedule checks weight and is_overloaded() for a cached dest, not the flag.
  Loads loads;
  SchedulerPtr s = make("lblc", {dest(kA, 1), dest(kB, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  loads.setOverloaded(kA, true);
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kA);
  EXPECT_EQ(s->pick(at(kY, 1), loads.view()), kB);  // a new address skips flagged A
}

TEST(LblcTest, QuiescedOrRemovedCachedDestRebinds) {
  Loads loads;
  SchedulerPtr s = make("lblc", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  ASSERT_TRUE(s->update({dest(kA, 0), dest(kB, 1), dest(kC, 1)}).ok());
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kB);
  ASSERT_TRUE(s->update({dest(kA, 1), dest(kC, 1)}).ok());
  EXPECT_EQ(s->pick(at(kX, 2), loads.view()), kA);
}

TEST(LblcTest, IdleEntryExpires) {
  Loads loads;
  SchedulerPtr s = makeWithExpiry("lblc", {dest(kA, 1), dest(kB, 1)}, 10);
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  loads.setActive(kA, 1);
  EXPECT_EQ(s->pick(at(kX, 9), loads.view()), kA);     // hit refreshes lastuse
  EXPECT_EQ(s->pick(at(kX, 18.9), loads.view()), kA);  // idle 9.9 s
  EXPECT_EQ(s->pick(at(kX, 29), loads.view()), kB);    // idle 10.1 s: forgotten, wlc
}

TEST(LblcTest, NegativeExpirationIsInvalid) {
  SchedulerOptions opts;
  opts.lblc_expiration = seconds(-1);
  EXPECT_EQ(findScheduler("lblc")->create({}, opts).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(findScheduler("lblcr")->create({}, opts).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LblcrTest, OverloadedMemberAddsReplica) {
  Loads loads;
  SchedulerPtr s = make("lblcr", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  loads.setActive(kA, 2);  // overloaded; B and C have room -> wlc over the service: B joins
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kB);
  // Set {B, A}: the weighted least-loaded member serves. Unlike lblc, A is still a member.
  loads.setActive(kA, 0);
  loads.setActive(kB, 1);
  EXPECT_EQ(s->pick(at(kX, 2), loads.view()), kA);
  // C is the service-wide least loaded, but not a member: not chosen.
  EXPECT_NE(s->pick(at(kX, 3), loads.view()), kC);
}

TEST(LblcrTest, StaleSetShedsMostLoadedMember) {
  Loads loads;
  SchedulerPtr s = makeWithExpiry("lblcr", {dest(kA, 1), dest(kB, 1)}, 10);
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  loads.setActive(kA, 2);
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kB);  // set {B, A}, lastmod 1
  loads.setActive(kA, 5);
  EXPECT_EQ(s->pick(at(kX, 6), loads.view()), kB);  // lastmod + 10 not passed yet
  // 11.5 > 1 + 10: A (most loaded) leaves the set; B (least) serves this pick.
  EXPECT_EQ(s->pick(at(kX, 11.5), loads.view()), kB);
  loads.setActive(kA, 0);
  loads.setActive(kB, 1);
  // With A still a member the least-loaded member would be A.
  EXPECT_EQ(s->pick(at(kX, 12), loads.view()), kB);
}

TEST(LblcrTest, RemovedMemberLeavesSet) {
  Loads loads;
  SchedulerPtr s = make("lblcr", {dest(kA, 1), dest(kB, 1)});
  EXPECT_EQ(s->pick(at(kX, 0), loads.view()), kA);
  ASSERT_TRUE(s->update({dest(kB, 1)}).ok());
  EXPECT_EQ(s->pick(at(kX, 1), loads.view()), kB);
  ASSERT_TRUE(s->update({}).ok());
  EXPECT_EQ(s->pick(at(kX, 2), loads.view()), std::nullopt);
}

}  // namespace
}  // namespace lb::sched::testing
