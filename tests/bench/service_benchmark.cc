// SPDX-License-Identifier: Apache-2.0
// ServiceTable micro-benchmarks: one control-plane mutation (one lbctl -a / -e) and its commit,
// with 10,000 services x 10 real servers loaded.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>

#include "core/service/service_table.h"
#include "tests/bench/bench_main.h"
#include "tests/testlib/alloc_counter.h"

namespace lb {
namespace {

constexpr uint32_t kServices = 10'000;
constexpr uint32_t kDestsPerService = 10;

// Service i: TCP 198.18.(i >> 8).(i & 0xff):80.
ServiceKey keyOf(uint32_t i) {
  ServiceKey k;
  k.af = Af::kInet;
  k.proto = L4Proto::kTcp;
  k.vaddr = IpAddr::v4(0xc6120000u + i);
  k.vport = 80;
  return k;
}

// Dest j of every service: 198.19.0.(j + 1):8080, NAT.
DestConfig destOf(uint32_t j, uint32_t weight = 1) {
  DestConfig d;
  d.addr = IpAddr::v4(0xc6130001u + j);
  d.port = 8080;
  d.fwd = FwdMethod::kMasq;
  d.weight = weight;
  return d;
}

ServiceTable& loadedTable() {
  static ServiceTable* table = [] {
    FullConfig cfg;
    cfg.services.reserve(kServices);
    for (uint32_t i = 0; i < kServices; ++i) {
      ServiceWithDests s;
      s.service.key = keyOf(i);
      s.service.scheduler = "wlc";
      for (uint32_t j = 0; j < kDestsPerService; ++j)
        s.dests.push_back(destOf(j));
      cfg.services.push_back(std::move(s));
    }
    auto* t = new ServiceTable();
    if (!t->replace(cfg).ok())
      std::abort();
    return t;
  }();
  return *table;
}

void report(benchmark::State& state, uint64_t allocs, int64_t commits) {
  state.SetItemsProcessed(commits);
  state.counters["allocs_per_op"] = static_cast<double>(allocs) / static_cast<double>(commits);
}

// lbctl -e: a weight edit of one dest of one service (rotating over the services).
void BM_EditDestWeight(benchmark::State& state) {
  ServiceTable& t = loadedTable();
  uint32_t i = 0;
  uint32_t weight = 2;
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    if (!t.editDest(keyOf(i), destOf(3, weight)).ok()) {
      state.SkipWithError("editDest failed");
      break;
    }
    i = (i + 7919) % kServices;
    weight = weight == 2 ? 1 : 2;
  }
  report(state, testing::threadAllocations() - allocs0, state.iterations());
}

BENCHMARK(BM_EditDestWeight)->Unit(benchmark::kMillisecond);

// lbctl -a then lbctl -d: a dest added to one service and removed again (two commits per
// iteration; items/s counts commits).
void BM_AddDeleteDest(benchmark::State& state) {
  ServiceTable& t = loadedTable();
  uint32_t i = 0;
  const DestConfig extra = destOf(kDestsPerService);
  const uint64_t allocs0 = testing::threadAllocations();
  for (auto _ : state) {
    if (!t.addDest(keyOf(i), extra).ok() || !t.deleteDest(keyOf(i), extra.addr, extra.port).ok()) {
      state.SkipWithError("addDest/deleteDest failed");
      break;
    }
    i = (i + 7919) % kServices;
  }
  report(state, testing::threadAllocations() - allocs0, 2 * state.iterations());
}

BENCHMARK(BM_AddDeleteDest)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lb

// Exits nonzero when a run reports an error (bench_main.h).
int main(int argc, char** argv) {
  return lb::bench::runBenchmarks(argc, argv);
}
