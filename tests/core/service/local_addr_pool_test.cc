// SPDX-License-Identifier: Apache-2.0
#include <set>
#include <utility>

#include "gtest/gtest.h"

#include "core/service/runtime.h"
#include "tests/testlib/alloc_counter.h"

namespace lb {
namespace {

const IpAddr kA = IpAddr::v4(0xc6120901);  // 198.18.9.1
const IpAddr kB = IpAddr::v4(0xc6120902);  // 198.18.9.2

TEST(LocalAddrPoolTest, HintPicksTheStartingPair) {
  LocalAddrPool pool({kA, kB});
  IpAddr a;
  uint16_t p = 0;
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 5, &a, &p));
  EXPECT_EQ(a, kA);
  EXPECT_EQ(p, 1029);
  // 64512 + 7 lands on the second address, port 1024 + 7.
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 64512 + 7, &a, &p));
  EXPECT_EQ(a, kB);
  EXPECT_EQ(p, 1031);
  // Taken: the next free one after it.
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 5, &a, &p));
  EXPECT_EQ(a, kA);
  EXPECT_EQ(p, 1030);
  // Hints wrap modulo the pool size.
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 2 * 64512 + 100, &a, &p));
  EXPECT_EQ(a, kA);
  EXPECT_EQ(p, 1124);
  EXPECT_EQ(pool.inUse(), 4u);
}

// -G's CONNS per address: pairs in use there, every protocol; CONFLICTS stay 0 without races.
TEST(LocalAddrPoolTest, UsePerAddress) {
  LocalAddrPool pool({kA, kB});
  IpAddr a;
  uint16_t p = 0;
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 5, &a, &p));
  ASSERT_TRUE(pool.acquire(L4Proto::kUdp, 5, &a, &p));
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 64512 + 7, &a, &p));
  EXPECT_EQ(pool.use(kA).conns, 2u);
  EXPECT_EQ(pool.use(kB).conns, 1u);
  EXPECT_EQ(pool.use(kA).conflicts, 0u);
  pool.release(L4Proto::kTcp, kB, p);
  EXPECT_EQ(pool.use(kB).conns, 0u);
  EXPECT_EQ(pool.use(IpAddr::v4(0xc6120903)).conns, 0u);  // never in the pool
}

TEST(LocalAddrPoolTest, EveryPairOnceThenExhaustedThenReleased) {
  LocalAddrPool pool({kA});
  std::set<uint16_t> ports;
  IpAddr a;
  uint16_t p = 0;
  for (size_t i = 0; i < LocalAddrPool::kPorts; ++i) {
    ASSERT_TRUE(pool.acquire(L4Proto::kUdp, static_cast<uint32_t>(i * 7919), &a, &p)) << i;
    ASSERT_EQ(a, kA);
    ASSERT_GE(p, LocalAddrPool::kPortMin);
    ASSERT_TRUE(ports.insert(p).second) << "port " << p << " handed out twice";
  }
  EXPECT_EQ(pool.inUse(), LocalAddrPool::kPorts);
  EXPECT_FALSE(pool.acquire(L4Proto::kUdp, 123, &a, &p));
  // Protocols have separate port spaces.
  EXPECT_TRUE(pool.acquire(L4Proto::kTcp, 123, &a, &p));
  pool.release(L4Proto::kTcp, a, p);
  // Releasing one UDP pair makes exactly that pair available, whatever the hint.
  pool.release(L4Proto::kUdp, kA, 40000);
  ASSERT_TRUE(pool.acquire(L4Proto::kUdp, 9, &a, &p));
  EXPECT_EQ(p, 40000);
  EXPECT_FALSE(pool.acquire(L4Proto::kUdp, 9, &a, &p));
}

TEST(LocalAddrPoolTest, ReserveTakesThatPairOnce) {
  LocalAddrPool pool({kA});
  EXPECT_TRUE(pool.reserve(L4Proto::kTcp, kA, 1029));
  EXPECT_FALSE(pool.reserve(L4Proto::kTcp, kA, 1029)) << "taken already";
  EXPECT_TRUE(pool.reserve(L4Proto::kUdp, kA, 1029)) << "each protocol has its own ports";
  EXPECT_FALSE(pool.reserve(L4Proto::kTcp, kB, 1029)) << "not in the pool";
  EXPECT_FALSE(pool.reserve(L4Proto::kTcp, kA, 80)) << "below kPortMin";
  EXPECT_FALSE(pool.reserve(L4Proto::kIcmp, kA, 2000));
  // acquire() skips a reserved pair; release() frees it.
  IpAddr a;
  uint16_t p = 0;
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 5, &a, &p));
  EXPECT_EQ(p, 1030);
  pool.release(L4Proto::kTcp, kA, 1029);
  EXPECT_TRUE(pool.reserve(L4Proto::kTcp, kA, 1029));
  EXPECT_EQ(pool.inUse(), 3u);
}

TEST(LocalAddrPoolTest, OnlyPortProtocols) {
  LocalAddrPool pool({kA});
  IpAddr a;
  uint16_t p = 0;
  EXPECT_FALSE(pool.acquire(L4Proto::kIcmp, 0, &a, &p));
  EXPECT_TRUE(pool.acquire(L4Proto::kSctp, 0, &a, &p));
  LocalAddrPool empty({});
  EXPECT_FALSE(empty.acquire(L4Proto::kTcp, 0, &a, &p));
}

TEST(LocalAddrPoolTest, RemovedAddressStopsButReleasesWork) {
  LocalAddrPool pool({kA, kB});
  IpAddr a;
  uint16_t p = 0;
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 0, &a, &p));
  ASSERT_EQ(a, kA);
  pool.setAddrs({kB});
  EXPECT_EQ(pool.addrs(), std::vector<IpAddr>{kB});
  IpAddr b;
  uint16_t q = 0;
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 0, &b, &q));  // hint 0 is kA's range: skipped
  EXPECT_EQ(b, kB);
  EXPECT_EQ(q, 1024);
  EXPECT_EQ(pool.inUse(), 2u);
  pool.release(L4Proto::kTcp, a, p);
  EXPECT_EQ(pool.inUse(), 1u);
  pool.setAddrs({kA, kB});  // back again, with its bitmap
  ASSERT_TRUE(pool.acquire(L4Proto::kTcp, 0, &a, &p));
  EXPECT_EQ(a, kA);
  EXPECT_EQ(p, 1024);
}

TEST(LocalAddrPoolTest, AcquireAndReleaseDoNotAllocate) {
  LocalAddrPool pool({kA, kB});
  IpAddr a;
  uint16_t p = 0;
  uint64_t before = ::lb::testing::threadAllocations();
  for (uint32_t i = 0; i < 10000; ++i) {
    ASSERT_TRUE(pool.acquire(L4Proto::kTcp, i * 2654435761u, &a, &p));
    if (i % 3 != 0)
      pool.release(L4Proto::kTcp, a, p);
  }
  EXPECT_EQ(::lb::testing::threadAllocations(), before);
  EXPECT_EQ(pool.inUse(), 3334u);
}

}  // namespace
}  // namespace lb
