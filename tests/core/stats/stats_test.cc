// SPDX-License-Identifier: Apache-2.0
#include "core/stats/stats.h"

#include "gtest/gtest.h"

namespace lb {
namespace {

StatsValues conns(uint64_t n) {
  StatsValues v;
  v.conns = n;
  return v;
}

TEST(WorkerStatsTest, CountsServiceDestAndTotal) {
  WorkerStats ws(/*max_services=*/4, /*max_dests=*/8);
  ws.addConn(3, 7);
  ws.addIn(3, 7, 100);
  ws.addIn(3, 7, 60);
  ws.addOut(3, 7, 1500);
  StatsValues want{1, 2, 1, 160, 1500};
  EXPECT_EQ(ws.service(3), want);
  EXPECT_EQ(ws.dest(7), want);
  EXPECT_EQ(ws.service(kNoService), want);
  EXPECT_EQ(ws.service(2), StatsValues{});
  EXPECT_EQ(ws.dest(6), StatsValues{});
}

TEST(WorkerStatsTest, OutOfRangeIdsCountOnlyTowardsTotal) {
  WorkerStats ws(4, 8);
  ws.addConn(kNoService, kNoDest);
  ws.addIn(4, 8, 40);  // both one past the end
  EXPECT_EQ(ws.service(kNoService), (StatsValues{1, 1, 0, 40, 0}));
  EXPECT_EQ(ws.service(4), StatsValues{});
  EXPECT_EQ(ws.dest(8), StatsValues{});
  EXPECT_EQ(ws.dest(kNoDest), StatsValues{});
}

TEST(WorkerStatsTest, AddTrafficAddsPacketsAndBytesNotConns) {
  WorkerStats ws(4, 8);
  ws.addIn(3, 7, 100);
  ws.addTraffic(3, 7, StatsValues{/*conns=*/9, 10, 20, 1000, 2000});
  StatsValues want{0, 11, 20, 1100, 2000};
  EXPECT_EQ(ws.service(3), want);
  EXPECT_EQ(ws.dest(7), want);
  EXPECT_EQ(ws.service(kNoService), want);
}

// ip_vs_est.c by hand. 1000 conns in the first 2 s:
//   rate = 1000 << 9 = 512000; avg = 0 + (512000 - 0) >> 2 = 128000;
//   cps = (128000 + 0x1FF) >> 10 = 128511 >> 10 = 125.
// 1000 more in the next 2 s: avg = 128000 + (512000 - 128000) >> 2 = 224000;
//   cps = 224511 >> 10 = 219.
// None in the third: avg = 224000 + (0 - 224000) >> 2 = 168000; cps = 168511 >> 10 = 164.
TEST(RateEstimatorTest, ConnRateMatchesKernelArithmetic) {
  RateEstimator e;
  e.tick(conns(1000));
  EXPECT_EQ(e.rates().cps, 125u);
  e.tick(conns(2000));
  EXPECT_EQ(e.rates().cps, 219u);
  e.tick(conns(2000));
  EXPECT_EQ(e.rates().cps, 164u);
}

// Bytes are scaled by 2^5: 1,000,000 bytes in 2 s => rate = 16,000,000, avg = 4,000,000,
// bps = (4,000,000 + 0xF) >> 5 = 125000. Packets like conns: 3000 pkts => (384000 + 511) >> 10
// = 375. Out side: 1 pkt => avg 128 => (128 + 511) >> 10 = 0; 33 bytes => rate 528, avg 132,
// (132 + 15) >> 5 = 4.
TEST(RateEstimatorTest, PacketAndByteRates) {
  RateEstimator e;
  StatsValues v;
  v.inpkts = 3000;
  v.inbytes = 1000000;
  v.outpkts = 1;
  v.outbytes = 33;
  e.tick(v);
  RateValues r = e.rates();
  EXPECT_EQ(r.cps, 0u);
  EXPECT_EQ(r.inpps, 375u);
  EXPECT_EQ(r.inbps, 125000u);
  EXPECT_EQ(r.outpps, 0u);
  EXPECT_EQ(r.outbps, 4u);
}

// The decay uses an arithmetic shift (the kernel's s64): from avg 132 with no traffic the
// averages are 99, 74, 55, 41, 30, 22, 16 (e.g. -99 >> 2 = -25, not -24), reported as
// (avg + 15) >> 5 = 3, 2, 2, 1, 1, 1, 0. Truncating division would give 75, 57, 43, 33, 25, 19
// and report 1, not 0, at the end.
TEST(RateEstimatorTest, DecayRoundsTowardMinusInfinity) {
  RateEstimator e;
  StatsValues v;
  v.outbytes = 33;
  e.tick(v);
  const uint64_t want[] = {3, 2, 2, 1, 1, 1, 0};
  for (uint64_t w : want) {
    e.tick(v);
    EXPECT_EQ(e.rates().outbps, w);
  }
}

TEST(RateEstimatorTest, ZeroResetsRatesAndRebaselines) {
  RateEstimator e;
  e.tick(conns(1000));
  ASSERT_EQ(e.rates().cps, 125u);
  e.zero(conns(5000));
  EXPECT_EQ(e.rates(), RateValues{});
  // Only the 1000 after the zero count: the same 125 as from scratch.
  e.tick(conns(6000));
  EXPECT_EQ(e.rates().cps, 125u);
}

TEST(StatsValuesTest, AddAndSubtract) {
  StatsValues a{1, 2, 3, 4, 5};
  a += StatsValues{10, 20, 30, 40, 50};
  EXPECT_EQ(a, (StatsValues{11, 22, 33, 44, 55}));
  a -= StatsValues{1, 2, 3, 4, 5};
  EXPECT_EQ(a, (StatsValues{10, 20, 30, 40, 50}));
}

}  // namespace
}  // namespace lb
