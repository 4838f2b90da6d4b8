// SPDX-License-Identifier: Apache-2.0
// Scheduler micro-benchmarks: BM_SchedulerPick/<name>/<dests> for every registered scheduler,
// and BM_MaglevBuild/<dests> (the control-plane cost of an mh table rebuild).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/sched/scheduler.h"
#include "tests/bench/bench_main.h"
#include "tests/testlib/alloc_counter.h"

namespace lb {
namespace {

std::vector<DestInfo> makeDests(int64_t n) {
  std::vector<DestInfo> dests;
  for (int64_t i = 0; i < n; ++i) {
    DestInfo d;
    d.id = static_cast<DestId>(i);
    d.addr = IpAddr::v4(0x0a000000u + static_cast<uint32_t>(i) + 1);
    d.port = 80;
    d.weight = static_cast<int32_t>(1 + i % 5);
    d.last_weight = d.weight;
    dests.push_back(d);
  }
  return dests;
}

void BM_SchedulerPick(benchmark::State& state, const SchedulerFactory* factory) {
  const std::vector<DestInfo> dests = makeDests(state.range(0));
  std::vector<DestCounters> counters(dests.size());
  std::mt19937_64 rng(42);
  for (DestCounters& c : counters) {
    c.active_conns.store(static_cast<int32_t>(rng() % 64));
    c.inact_conns.store(static_cast<int32_t>(rng() % 256));
  }
  const DestLoad load(absl::MakeConstSpan(counters));
  absl::StatusOr<SchedulerPtr> s = factory->create(dests, SchedulerOptions{});
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return;
  }
  constexpr size_t kFlows = 1024;
  std::vector<PickContext> flows(kFlows);
  for (PickContext& f : flows) {
    f.saddr = IpAddr::v4(static_cast<uint32_t>(rng()));
    f.daddr = IpAddr::v4(0xc6120000u + static_cast<uint32_t>(rng() % 4096));
    f.sport = static_cast<uint16_t>(rng());
    f.dport = 80;
    f.has_ports = true;
    f.random = rng();
  }
  for (size_t i = 0; i < kFlows; ++i)
    benchmark::DoNotOptimize((*s)->pick(flows[i], load));  // warm
  size_t i = 0;
  const uint64_t allocs_before = testing::threadAllocations();
  for (auto _ : state) {
    PickContext& f = flows[i++ & (kFlows - 1)];
    f.now.ns += 1000;
    benchmark::DoNotOptimize((*s)->pick(f, load));
  }
  const uint64_t allocs = testing::threadAllocations() - allocs_before;
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_op"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
}

void BM_MaglevBuild(benchmark::State& state) {
  const std::vector<DestInfo> dests = makeDests(state.range(0));
  const SchedulerFactory* mh = findScheduler("mh");
  uint64_t allocs = 0;
  for (auto _ : state) {
    const uint64_t before = testing::threadAllocations();
    absl::StatusOr<SchedulerPtr> s = mh->create(dests, SchedulerOptions{});
    allocs += testing::threadAllocations() - before;
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_op"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
}

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  for (const lb::SchedulerFactory* f : lb::allSchedulers()) {
    benchmark::RegisterBenchmark(("BM_SchedulerPick/" + std::string(f->name())).c_str(),
                                 lb::BM_SchedulerPick, f)
        ->Arg(1000);
  }
  benchmark::RegisterBenchmark("BM_MaglevBuild", lb::BM_MaglevBuild)
      ->Arg(1000)
      ->Unit(benchmark::kMicrosecond);
  return lb::bench::runBenchmarks(argc, argv);  // nonzero when a run reports an error
}
