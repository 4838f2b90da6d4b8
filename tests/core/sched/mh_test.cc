// SPDX-License-Identifier: Apache-2.0
#include "core/sched/mh.h"

#include <map>
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

// Pinned from this implementation (see TableIsDeterministicAndOrderMatters).
constexpr uint32_t kMhGoldenDigest = 4192009959u;

std::map<int32_t, int> slotCounts(const MaglevHashing::Table& t) {
  std::map<int32_t, int> counts;
  for (int32_t s : t.slots)
    ++counts[s];
  return counts;
}

uint32_t preferred(const DestInfo& d, const HsipKey& key, uint32_t mod) {
  return MaglevHashing::hashKey(d.addr, d.port, key, 0) % mod;
}

TEST(MaglevHashingTest, FirstRoundDestsOwnTheirFirstPreference) {
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->slots.size(), 4093u);
  // Round 1: A claims offset(A) = hsiphash(port + addr, key1) % 4093; B and C theirs unless
  // already taken.
  const uint32_t a = preferred(d[0], MaglevHashing::kHash1, 4093);
  const uint32_t b = preferred(d[1], MaglevHashing::kHash1, 4093);
  EXPECT_EQ(t->slots[a], 0);
  if (b != a) {
    EXPECT_EQ(t->slots[b], 1);
  }
  for (int32_t s : t->slots)
    EXPECT_GE(s, 0);  // every slot filled
}

TEST(MaglevHashingTest, TableIsDeterministicAndOrderMatters) {
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 2), dest(kC, 3)};
  absl::StatusOr<MaglevHashing::Table> t1 = MaglevHashing::build(d, 0);
  absl::StatusOr<MaglevHashing::Table> t2 = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->slots, t2->slots);
  // Golden digest of this table (FNV-1a over slot owners), pinned so that a change to the hash,
  // permutation or population shows up.
  uint32_t fnv = 2166136261u;
  for (int32_t s : t1->slots)
    fnv = (fnv ^ static_cast<uint32_t>(s)) * 16777619u;
  EXPECT_EQ(fnv, kMhGoldenDigest);
  // List order decides who claims a contested slot first.
  absl::StatusOr<MaglevHashing::Table> reversed =
      MaglevHashing::build({dest(kC, 3), dest(kB, 2), dest(kA, 1)}, 0);
  ASSERT_TRUE(reversed.ok());
  int differ = 0;
  for (size_t i = 0; i < t1->slots.size(); ++i) {
    differ += t1->dests[static_cast<size_t>(t1->slots[i])].id !=
              reversed->dests[static_cast<size_t>(reversed->slots[i])].id;
  }
  EXPECT_GT(differ, 0);
}

TEST(MaglevHashingTest, SlotsProportionalToWeight) {
  absl::StatusOr<MaglevHashing::Table> t =
      MaglevHashing::build({dest(kA, 1), dest(kB, 2), dest(kC, 3)}, 0);
  ASSERT_TRUE(t.ok());
  // Each round gives A 1, B 2, C 3 slots: 682 full rounds and one partial.
  std::map<int32_t, int> c = slotCounts(*t);
  EXPECT_NEAR(c[0], 4093.0 / 6, 1.5);
  EXPECT_NEAR(c[1], 4093.0 * 2 / 6, 2.5);
  EXPECT_NEAR(c[2], 4093.0 * 3 / 6, 3.5);
}

TEST(MaglevHashingTest, LargeWeightsAreShiftedDown) {
  // max / gcd = 128: fls 8 - 6 = rshift 2. Turns: A (1 >> 2) = 0 -> 1, B 128 >> 2 = 32.
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build({dest(kA, 1), dest(kB, 128)}, 0);
  ASSERT_TRUE(t.ok());
  std::map<int32_t, int> c = slotCounts(*t);
  EXPECT_NEAR(c[0], 4093.0 / 33, 1.5);
}

TEST(MaglevHashingTest, QuiescedDestKeepsSlotsByLastWeight) {
  DestInfo b0 = dest(kB, 0);
  b0.last_weight = 2;
  absl::StatusOr<MaglevHashing::Table> live =
      MaglevHashing::build({dest(kA, 1), dest(kB, 2), dest(kC, 3)}, 0);
  absl::StatusOr<MaglevHashing::Table> quiesced =
      MaglevHashing::build({dest(kA, 1), b0, dest(kC, 3)}, 0);
  ASSERT_TRUE(live.ok() && quiesced.ok());
  EXPECT_EQ(live->slots, quiesced->slots);
  // A never-weighted dest (last_weight 0) gets no slot.
  absl::StatusOr<MaglevHashing::Table> fresh =
      MaglevHashing::build({dest(kA, 1), dest(kB, 0), dest(kC, 3)}, 0);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(slotCounts(*fresh).count(1), 0u);
  // No weighted dest at all: an empty table.
  absl::StatusOr<MaglevHashing::Table> none = MaglevHashing::build({dest(kA, 0)}, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(slotCounts(*none)[-1], 4093);
}

TEST(MaglevHashingTest, MoreDestsThanSlotsIsInvalid) {
  std::vector<DestInfo> d;
  for (DestId i = 0; i < 4094; ++i)
    d.push_back(dest(i, 1));
  EXPECT_EQ(findScheduler("mh")->create(d, {}).status().code(), absl::StatusCode::kInvalidArgument);
  d.pop_back();
  EXPECT_TRUE(findScheduler("mh")->create(d, {}).ok());
}

// The dest that owns `ctx`'s slot, computed from the table.
DestId owner(const MaglevHashing::Table& t, const PickContext& ctx, uint16_t port) {
  const uint32_t slot = MaglevHashing::hashKey(ctx.saddr, port, MaglevHashing::kHash1, 0) % 4093;
  return t.dests[static_cast<size_t>(t.slots[slot])].id;
}

TEST(MaglevHashingTest, LookupFallbackAndPort) {
  Loads loads;
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t.ok());
  SchedulerPtr plain = make("mh", d);
  SchedulerPtr fallback = make("mh", d, kSchedFlag1);
  SchedulerPtr port = make("mh", d, kSchedFlag2);
  int port_differs = 0;
  for (uint32_t client = 1; client <= 200; ++client) {
    const PickContext ctx = flow(0xc0a80000u + client, 1, static_cast<uint16_t>(1000 + client));
    const DestId o = owner(*t, ctx, 0);
    EXPECT_EQ(plain->pick(ctx, loads.view()), o);
    EXPECT_EQ(port->pick(ctx, loads.view()), owner(*t, ctx, ctx.sport));
    if (owner(*t, ctx, ctx.sport) != o)
      ++port_differs;
    loads.setOverloaded(o, true);
    EXPECT_EQ(plain->pick(ctx, loads.view()), std::nullopt);
    std::optional<DestId> f = fallback->pick(ctx, loads.view());
    ASSERT_TRUE(f.has_value());
    EXPECT_NE(*f, o);
    loads.setOverloaded(o, false);
  }
  EXPECT_GT(port_differs, 50);
}

}  // namespace
}  // namespace lb::sched::testing
