// SPDX-License-Identifier: Apache-2.0
// ConnTable micro-benchmarks: lookups in a table holding 1,000,000 conns, and create+free.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>

#include "core/conn/conn_table.h"
#include "tests/bench/bench_main.h"
#include "tests/testlib/alloc_counter.h"

namespace lb {
namespace {

constexpr uint32_t kConns = 1'000'000;
const IpAddr kVip = IpAddr::v4(0xc6126401);
const IpAddr kRs = IpAddr::v4(0xc6120101);

// Conn i: client 198.19.0.(i >> 14), port 1024 + (i & 0x3fff): unique per i.
IpAddr clientOf(uint32_t i) {
  return IpAddr::v4(0xc6130000u + (i >> 14));
}

uint16_t cportOf(uint32_t i) {
  return static_cast<uint16_t>(1024 + (i & 0x3fff));
}

ConnParams paramsOf(uint32_t i) {
  ConnParams p;
  p.proto = L4Proto::kTcp;
  p.caddr = clientOf(i);
  p.cport = cportOf(i);
  p.vaddr = kVip;
  p.vport = 80;
  p.daddr = kRs;
  p.dport = 8080;
  p.dest = 1;
  p.timeout = seconds(900);
  return p;
}

ConnTable& fullTable() {
  static ConnTable* table = [] {
    ConnTable::Options o;
    o.capacity = kConns;
    o.shards = 64;
    auto* t = new ConnTable(o, nullptr);
    for (uint32_t i = 0; i < kConns; ++i) {
      if (!t->create(paramsOf(i), MonoTime::fromSeconds(1)))
        std::abort();
    }
    return t;
  }();
  return *table;
}

// Visits the conns in a scattered order (an odd stride modulo kConns hits every one).
uint32_t nextIndex(uint32_t i) {
  return static_cast<uint32_t>((i + 611953u) % kConns);
}

void BM_ConnLookupHit(benchmark::State& state) {
  ConnTable& t = fullTable();
  uint32_t i = 0;
  uint64_t misses = 0;
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    ConnTuple q{Af::kInet, L4Proto::kTcp, clientOf(i), kVip, cportOf(i), 80};
    ConnGuard g = t.findIn(q);
    if (!g)
      ++misses;
    benchmark::DoNotOptimize(g.operator->());
    i = nextIndex(i);
  }
  const uint64_t allocs = testing::threadAllocations() - allocs0;
  if (misses != 0)
    state.SkipWithError("lookup missed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allocs_per_op"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_ConnLookupHit);

void BM_ConnLookupOutHit(benchmark::State& state) {
  ConnTable& t = fullTable();
  uint32_t i = 0;
  uint64_t misses = 0;
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    ConnTuple q{Af::kInet, L4Proto::kTcp, kRs, clientOf(i), 8080, cportOf(i)};
    ConnGuard g = t.findOut(q);
    if (!g)
      ++misses;
    benchmark::DoNotOptimize(g.operator->());
    i = nextIndex(i);
  }
  const uint64_t allocs = testing::threadAllocations() - allocs0;
  if (misses != 0)
    state.SkipWithError("lookup missed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allocs_per_op"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_ConnLookupOutHit);

// The per-packet work of an established conn: findIn + setTimeout (refresh).
void BM_ConnLookupRefresh(benchmark::State& state) {
  ConnTable& t = fullTable();
  uint32_t i = 0;
  int64_t tick = 0;
  uint64_t misses = 0;
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    ConnTuple q{Af::kInet, L4Proto::kTcp, clientOf(i), kVip, cportOf(i), 80};
    ConnGuard g = t.findIn(q);
    if (!g) {
      ++misses;
    } else {
      g.setTimeout(seconds(900), MonoTime::fromSeconds(2) + Duration(++tick));
    }
    i = nextIndex(i);
  }
  const uint64_t allocs = testing::threadAllocations() - allocs0;
  if (misses != 0)
    state.SkipWithError("lookup missed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allocs_per_op"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_ConnLookupRefresh);

// create + expireNow, in a table sized for 1,000,000 conns that holds 100,000 others.
void BM_ConnCreate(benchmark::State& state) {
  ConnTable::Options o;
  o.capacity = kConns;
  o.shards = 64;
  ConnTable t(o, nullptr);
  for (uint32_t i = 0; i < 100'000; ++i)
    t.create(paramsOf(i), MonoTime::fromSeconds(1));
  uint32_t i = 100'000;
  uint64_t failures = 0;
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    ConnGuard g = t.create(paramsOf(i), MonoTime::fromSeconds(2));
    if (!g)
      ++failures;
    t.expireNow(g);
    i = i + 1 == kConns ? 100'000 : i + 1;
  }
  const uint64_t allocs = testing::threadAllocations() - allocs0;
  if (failures != 0)
    state.SkipWithError("create failed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allocs_per_op"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_ConnCreate);

}  // namespace
}  // namespace lb

// Exits nonzero when a run reports an error (bench_main.h).
int main(int argc, char** argv) {
  return lb::bench::runBenchmarks(argc, argv);
}
