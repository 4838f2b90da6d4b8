// SPDX-License-Identifier: Apache-2.0
// The conn table's memory follows use (docs/memory.md): entries are written only when first
// handed out, lowest chunk first, recycled before untouched, and whole empty chunks go back to
// the page provider. A fake provider records what the table reserves and gives back.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "gtest/gtest.h"

#include "core/base/page_provider.h"
#include "core/conn/conn_table.h"
#include "tests/testlib/fake_clock.h"

namespace lb {
namespace {

using testing::FakeClock;

constexpr size_t kEntry = 192;
constexpr size_t kChunk = 512;  // entries per slab chunk (conn_table_impl.h)

// Zero-filled memory as the contract says (calloc: large blocks are zero pages until written),
// released by zeroing it, as MADV_DONTNEED does; records every reservation and release.
class FakePages : public PageProvider {
 public:
  void* reserve(size_t bytes) noexcept override {
    void* raw = std::calloc(bytes + 4096, 1);
    auto a = (reinterpret_cast<uintptr_t>(raw) + 4095) & ~uintptr_t{4095};
    void* p = reinterpret_cast<void*>(a);
    raw_[p] = raw;
    reserved[p] = bytes;
    return p;
  }

  void release(void* p, size_t bytes) noexcept override {
    std::memset(p, 0, bytes);
    releases.emplace_back(static_cast<char*>(p), bytes);
    released_bytes += bytes;
  }

  void unreserve(void* p, size_t bytes) noexcept override {
    EXPECT_EQ(reserved[p], bytes);
    reserved.erase(p);
    std::free(raw_[p]);
    raw_.erase(p);
  }

  size_t pageSize() const noexcept override { return 4096; }

  std::map<void*, size_t> reserved;
  std::vector<std::pair<char*, size_t>> releases;
  size_t released_bytes = 0;

 private:
  std::map<void*, void*> raw_;
};

ConnParams udp(uint32_t client, uint16_t cport) {
  ConnParams p;
  p.proto = L4Proto::kUdp;
  p.caddr = IpAddr::v4(0xc6120000 | client);
  p.cport = cport;
  p.vaddr = IpAddr::v4(0xc6126401);
  p.vport = 53;
  p.daddr = IpAddr::v4(0xc6120101);
  p.dport = 53;
  p.flags = static_cast<uint32_t>(FwdMethod::kMasq);
  p.timeout = seconds(10);
  return p;
}

ConnTable::Options opts(size_t capacity, PageProvider* pages) {
  ConnTable::Options o;
  o.capacity = capacity;
  o.shards = 8;
  o.pages = pages;
  return o;
}

TEST(ConnMemoryTest, NothingWrittenUntilConnsAreCreated) {
  FakePages pages;
  {
    ConnTable t(opts(1 << 20, &pages), nullptr);
    EXPECT_EQ(t.stats().slab_bytes, 0u);
    FakeClock clock;
    for (uint32_t i = 0; i < 1000; ++i)
      ASSERT_TRUE(t.create(udp(i, 1000), clock.now()));
    EXPECT_EQ(t.stats().slab_bytes, 1000 * kEntry);
    EXPECT_EQ(t.stats().entries, 1000u);
    EXPECT_EQ(pages.reserved.size(), 2u);  // the slab and the bucket arrays
  }
  EXPECT_TRUE(pages.reserved.empty());  // all given back with the table
}

TEST(ConnMemoryTest, EntriesComeLowestFirstAndRecycledBeforeFresh) {
  FakePages pages;
  ConnTable t(opts(4 * kChunk, &pages), nullptr);
  FakeClock clock;
  std::set<uint32_t> first;
  for (uint32_t i = 0; i < 700; ++i) {
    ConnGuard g = t.create(udp(i, 1), clock.now());
    ASSERT_TRUE(g);
    first.insert(g.index());
  }
  EXPECT_EQ(*first.rbegin(), 699u);  // indices 0..699, in order
  // Free 100 of them; the next 100 conns reuse those slots and touch nothing new.
  for (uint32_t i = 100; i < 200; ++i) {
    ConnGuard g = t.findIn(ConnTuple{Af::kInet, L4Proto::kUdp, IpAddr::v4(0xc6120000 | i),
                                     IpAddr::v4(0xc6126401), 1, 53});
    ASSERT_TRUE(g);
    t.expireNow(g);
  }
  for (uint32_t i = 0; i < 100; ++i) {
    ConnGuard g = t.create(udp(5000 + i, 2), clock.now());
    ASSERT_TRUE(g);
    EXPECT_GE(g.index(), 100u);
    EXPECT_LT(g.index(), 200u);
  }
  EXPECT_EQ(t.stats().slab_bytes, 700 * kEntry);
}

TEST(ConnMemoryTest, EmptyChunksGoBackAfterExpiry) {
  FakePages pages;
  ConnTable t(opts(16 * kChunk, &pages), nullptr);
  FakeClock clock;
  const uint32_t n = 10 * kChunk + 7;
  for (uint32_t i = 0; i < n; ++i)
    ASSERT_TRUE(t.create(udp(i, static_cast<uint16_t>(1 + i % 60000)), clock.now()));
  EXPECT_EQ(t.stats().slab_bytes, n * kEntry);
  EXPECT_EQ(t.expire(clock.now() + seconds(11)), n);
  // 11 chunks were touched; one empty chunk is kept as a spare, the other 10 go back.
  EXPECT_EQ(t.stats().entries, 0u);
  EXPECT_EQ(t.stats().chunks_released, 10u);
  EXPECT_EQ(t.stats().slab_bytes, kChunk * kEntry);
  EXPECT_EQ(pages.releases.size(), 10u);
  // The last chunk held 7 entries: only its written pages (7 * 192 B: one page) went back.
  size_t full = 0, partial = 0;
  for (const auto& [p, bytes] : pages.releases) {
    if (bytes == kChunk * kEntry)
      ++full;
    if (bytes == 4096)
      ++partial;
  }
  EXPECT_EQ(full, 9u);
  EXPECT_EQ(partial, 1u);
  // The table grows again into the given-back chunks.
  clock.advance(seconds(11));
  for (uint32_t i = 0; i < 3 * kChunk; ++i)
    ASSERT_TRUE(t.create(udp(i, 7), clock.now()));
  EXPECT_EQ(t.stats().entries, 3 * kChunk);
  EXPECT_EQ(t.stats().slab_bytes, 3 * kChunk * kEntry);
}

TEST(ConnMemoryTest, StaleHandlesNeverMatchAfterTheChunkWentBack) {
  FakePages pages;
  ConnTable t(opts(4 * kChunk, &pages), nullptr);
  FakeClock clock;
  std::vector<std::pair<uint32_t, uint32_t>> handles;
  for (uint32_t i = 0; i < 2 * kChunk; ++i) {
    ConnGuard g = t.create(udp(i, 9), clock.now());
    ASSERT_TRUE(g);
    handles.emplace_back(g.index(), g->generation);
    EXPECT_NE(g->generation, 0u);  // 0 is what a given-back (zero) page reads as
  }
  clock.advance(seconds(11));
  t.expire(clock.now());
  ASSERT_EQ(t.stats().chunks_released, 1u);  // chunk 1; chunk 0 is the spare
  for (const auto& [idx, gen] : handles)
    EXPECT_FALSE(t.get(idx, gen)) << idx;
  // Refill: chunk 1's fresh entries get generations above every earlier one.
  for (uint32_t i = 0; i < 2 * kChunk; ++i) {
    ConnGuard g = t.create(udp(i, 10), clock.now());
    ASSERT_TRUE(g);
    const auto& [idx, gen] = handles[g.index()];
    EXPECT_GT(g->generation, gen) << g.index();
  }
  for (const auto& [idx, gen] : handles)
    EXPECT_FALSE(t.get(idx, gen)) << idx;
}

TEST(ConnMemoryTest, CapacityIsExactWhenNotAWholeNumberOfChunks) {
  FakePages pages;
  ConnTable t(opts(kChunk + 3, &pages), nullptr);
  FakeClock clock;
  for (uint32_t i = 0; i < kChunk + 3; ++i)
    ASSERT_TRUE(t.create(udp(i, 11), clock.now())) << i;
  // Full of unassured UDP conns: early drop makes room for the next one (the oldest goes).
  ConnGuard g = t.create(udp(99999, 12), clock.now());
  ASSERT_TRUE(g);
  EXPECT_EQ(t.stats().early_drops, 1u);
  EXPECT_EQ(t.stats().entries, kChunk + 3);
  EXPECT_LT(g.index(), kChunk + 3);
}

TEST(ConnMemoryTest, BytesPerEntryAtOneMillion) {
  FakePages pages;
  ConnTable t(opts(1 << 20, &pages), nullptr);
  EXPECT_LE(t.bytesPerEntry(), 256u);
}

}  // namespace
}  // namespace lb
