// SPDX-License-Identifier: Apache-2.0
// dh and sh: bucket fills and lookups worked out from the kernel's formulas.
#include <vector>

#include "gtest/gtest.h"

#include "core/sched/dh.h"
#include "core/sched/sh.h"
#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

// hash_32(v, 8) = (v * 0x61C88647) >> 24, computed by hand (python) for these inputs:
//   198.18.0.1 = 0xc6120001 -> 188     198.18.0.2 = 0xc6120002 -> 30
//   192.168.0.1 = 0xc0a80001 -> 192    0xc0a80001 + 40000 -> 100
TEST(DestinationHashingTest, BucketsRoundRobinOverListIgnoringWeights) {
  absl::StatusOr<DestinationHashing::Table> t =
      DestinationHashing::build({dest(kA, 1), dest(kB, 9), dest(kC, 0)}, 0);
  ASSERT_TRUE(t.ok());
  for (size_t i = 0; i < 256; ++i)
    EXPECT_EQ(t->buckets[i], static_cast<int32_t>(i % 3)) << i;
  EXPECT_EQ(DestinationHashing::bucketOf(IpAddr::v4(0xc6120001u)), 188u);
  EXPECT_EQ(DestinationHashing::bucketOf(IpAddr::v4(0xc6120002u)), 30u);
}

TEST(DestinationHashingTest, KeysOnPacketDestinationWithoutFallback) {
  Loads loads;
  SchedulerPtr s = make("dh", {dest(kA, 1), dest(kB, 1), dest(kC, 1)});
  // 188 % 3 = 2 -> C; 30 % 3 = 0 -> A; the source address does not matter.
  EXPECT_EQ(s->pick(flow(1, 0xc6120001u), loads.view()), kC);
  EXPECT_EQ(s->pick(flow(2, 0xc6120001u), loads.view()), kC);
  EXPECT_EQ(s->pick(flow(1, 0xc6120002u), loads.view()), kA);
  loads.setOverloaded(kC, true);
  EXPECT_EQ(s->pick(flow(1, 0xc6120001u), loads.view()), std::nullopt);
  ASSERT_TRUE(s->update({dest(kA, 1), dest(kB, 1), dest(kC, 0)}).ok());
  loads.setOverloaded(kC, false);
  EXPECT_EQ(s->pick(flow(1, 0xc6120001u), loads.view()), std::nullopt);  // weight 0
}

TEST(SourceHashingTest, WeightNDestTakesNConsecutiveBuckets) {
  absl::StatusOr<SourceHashing::Table> t =
      SourceHashing::build({dest(kA, 3), dest(kB, 1), dest(kC, 2)}, 0);
  ASSERT_TRUE(t.ok());
  const int32_t pattern[6] = {0, 0, 0, 1, 2, 2};
  for (size_t i = 0; i < 256; ++i)
    EXPECT_EQ(t->buckets[i], pattern[i % 6]) << i;
  // A weight-0 dest still takes one bucket.
  t = SourceHashing::build({dest(kA, 2), dest(kB, 0), dest(kC, 1)}, 0);
  ASSERT_TRUE(t.ok());
  const int32_t pattern0[4] = {0, 0, 1, 2};
  for (size_t i = 0; i < 256; ++i)
    EXPECT_EQ(t->buckets[i], pattern0[i % 4]) << i;
}

TEST(SourceHashingTest, KeysOnClientAddressAndPortOnlyWithShPort) {
  Loads loads;
  const std::vector<DestInfo> d = {dest(kA, 3), dest(kB, 1), dest(kC, 2)};
  SchedulerPtr plain = make("sh", d);
  SchedulerPtr port = make("sh", d, kSchedFlag2);
  // Bucket 192: 192 % 6 = 0 -> A. With the port: bucket 100, 100 % 6 = 4 -> C.
  EXPECT_EQ(plain->pick(flow(0xc0a80001u, 1, 40000), loads.view()), kA);
  EXPECT_EQ(plain->pick(flow(0xc0a80001u, 2, 12345), loads.view()), kA);
  EXPECT_EQ(port->pick(flow(0xc0a80001u, 1, 40000), loads.view()), kC);
  PickContext no_ports = flow(0xc0a80001u, 1, 40000);
  no_ports.has_ports = false;  // e.g. ICMP: port 0
  EXPECT_EQ(port->pick(no_ports, loads.view()), kA);
}

TEST(SourceHashingTest, FallbackRehashesFromTheOriginalBucket) {
  Loads loads;
  const std::vector<DestInfo> d = {dest(kA, 3), dest(kB, 1), dest(kC, 2)};
  SchedulerPtr plain = make("sh", d);
  SchedulerPtr fallback = make("sh", d, kSchedFlag1);
  loads.setOverloaded(kA, true);
  EXPECT_EQ(plain->pick(flow(0xc0a80001u), loads.view()), std::nullopt);
  // ihash 192. offset 0: (192 + 192) & 255 = 128 -> 128 % 6 = 2 -> A, unusable;
  // offset 1: (193 + 192) & 255 = 129 -> 129 % 6 = 3 -> B.
  EXPECT_EQ(fallback->pick(flow(0xc0a80001u), loads.view()), kB);
  loads.setOverloaded(kA, false);
  EXPECT_EQ(fallback->pick(flow(0xc0a80001u), loads.view()), kA);
}

TEST(SourceHashingTest, EmptyTableHasNoDest) {
  Loads loads;
  SchedulerPtr s = make("sh", {}, kSchedFlag1);
  EXPECT_EQ(s->pick(flow(1), loads.view()), std::nullopt);
}

}  // namespace
}  // namespace lb::sched::testing
