// SPDX-License-Identifier: Apache-2.0
// Pipeline::process per packet. BM_PipelineHit/N: an established NAT flow's packet with N conns
// in the table (lookup, state, stats, DNAT). BM_PipelineNewConn: a SYN creating a NAT conn
// (service lookup, rr pick, conn create, bind, DNAT) with the SYN_RECV conns expiring behind it
// (clock +10 ms per batch of 32, expire() every batch: the steady state holds ~190k conns).
// Batches of 32; items are packets.
#include "core/pipeline/pipeline.h"

#include <memory>
#include <vector>

#include "benchmark/benchmark.h"

#include "core/conn/conn_table.h"
#include "core/service/service_table.h"
#include "tests/bench/bench_main.h"
#include "tests/testlib/alloc_counter.h"
#include "tests/testlib/packet_builder.h"

namespace {

using lb::testing::ip;
using lb::testing::PacketBuilder;

constexpr size_t kBatch = 32;

class NullSink : public lb::PacketSink {
 public:
  lb::PacketBuffer* allocate() noexcept override { return nullptr; }
};

struct Bench {
  explicit Bench(size_t capacity) {
    lb::ServiceTable::Limits limits;
    limits.max_services = 16;
    limits.max_dests = 64;
    table = std::make_unique<lb::ServiceTable>(limits);
    lb::ServiceConfig s;
    s.key.af = lb::Af::kInet;
    s.key.proto = lb::L4Proto::kTcp;
    s.key.vaddr = ip("198.18.100.1");
    s.key.vport = 80;
    s.scheduler = "rr";
    if (!table->addService(s).ok())
      std::abort();
    for (const char* rs : {"198.18.1.10", "198.18.1.11", "198.18.1.12", "198.18.1.13"}) {
      lb::DestConfig d;
      d.addr = ip(rs);
      d.port = 8080;
      d.fwd = lb::FwdMethod::kMasq;
      if (!table->addDest(s.key, d).ok())
        std::abort();
    }
    lb::ConnTable::Options opt;
    opt.capacity = capacity;
    conns = std::make_unique<lb::ConnTable>(opt, lb::Pipeline::connEvents(table->runtime()));
    pipe = std::make_unique<lb::Pipeline>(*conns, 0, 1);
    snap = table->snapshot();
    for (size_t i = 0; i < kBatch; ++i) {
      bufs.push_back(std::make_unique<lb::PacketBuffer>());
      ptrs.push_back(bufs.back().get());
    }
  }

  // Client i: address 198.18.<(i >> 16) & 0xff + 0>.<(i >> 8) & 0xff> ..., port from i.
  static std::vector<uint8_t> packet(uint32_t i, uint8_t flags) {
    uint32_t host = (198u << 24) | (19u << 16) | ((i >> 6) & 0xffff);
    lb::IpAddr a = lb::IpAddr::v4(host);
    std::string src = a.toString();
    auto port = static_cast<uint16_t>(1024 + (i & 63));
    return PacketBuilder::tcp(src.c_str(), port, "198.18.100.1", 80, flags).payloadSize(64).build();
  }

  void runBatch(const std::vector<std::vector<uint8_t>>& pkts, size_t first) {
    for (size_t k = 0; k < kBatch; ++k) {
      (void)bufs[k]->assign(pkts[(first + k) % pkts.size()]);
    }
    pipe->process(*snap, absl::MakeConstSpan(ptrs.data(), kBatch), sink, now);
  }

  std::unique_ptr<lb::ServiceTable> table;
  std::unique_ptr<lb::ConnTable> conns;
  std::unique_ptr<lb::Pipeline> pipe;
  lb::SnapshotPtr snap;
  std::vector<std::unique_ptr<lb::PacketBuffer>> bufs;
  std::vector<lb::PacketBuffer*> ptrs;
  NullSink sink;
  lb::MonoTime now = lb::MonoTime::fromSeconds(1000);
};

void BM_PipelineHit(benchmark::State& state) {
  auto n = static_cast<uint32_t>(state.range(0));
  Bench b(n + n / 4 + 1024);
  // Fill the table with n conns (SYNs), then time ACKs of established flows spread over it.
  std::vector<std::vector<uint8_t>> syns;
  for (uint32_t i = 0; i < n; i += kBatch) {
    syns.clear();
    for (uint32_t k = 0; k < kBatch; ++k)
      syns.push_back(Bench::packet(i + k, lb::kTcpSyn));
    b.runBatch(syns, 0);
  }
  std::vector<std::vector<uint8_t>> acks;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 8192; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    acks.push_back(Bench::packet(static_cast<uint32_t>(x % n), lb::kTcpAck));
  }
  size_t pos = 0;
  uint64_t allocs = lb::testing::threadAllocations();
  for (auto _ : state) {
    b.runBatch(acks, pos);
    pos += kBatch;
  }
  auto items = static_cast<int64_t>(state.iterations() * kBatch);
  state.SetItemsProcessed(items);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(lb::testing::threadAllocations() - allocs) / static_cast<double>(items));
  if (b.pipe->counters().tx_packets.value() < static_cast<uint64_t>(items)) {
    state.SkipWithError("packets were not forwarded");
  }
}

BENCHMARK(BM_PipelineHit)->Arg(1000)->Arg(1000000)->Unit(benchmark::kNanosecond);

void BM_PipelineNewConn(benchmark::State& state) {
  Bench b(1 << 20);
  // 2^22 distinct clients: each SYN is a new flow for the whole run.
  std::vector<std::vector<uint8_t>> syns;
  for (uint32_t i = 0; i < 65536; ++i)
    syns.push_back(Bench::packet(i * 61, lb::kTcpSyn));
  size_t pos = 0;
  uint32_t round = 0;
  uint64_t allocs = lb::testing::threadAllocations();
  for (auto _ : state) {
    if (pos >= syns.size()) {
      // A new round: shift every packet's source port so the flows are new again.
      state.PauseTiming();
      ++round;
      for (auto& p : syns) {
        p[20] = static_cast<uint8_t>(p[20] + 1);  // sport high byte (checksum not verified)
      }
      pos = 0;
      state.ResumeTiming();
    }
    b.runBatch(syns, pos);
    pos += kBatch;
    b.now = b.now + lb::millis(10);
    b.conns->expire(b.now);
  }
  auto items = static_cast<int64_t>(state.iterations() * kBatch);
  state.SetItemsProcessed(items);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(lb::testing::threadAllocations() - allocs) / static_cast<double>(items));
  state.counters["conns_created"] =
      benchmark::Counter(static_cast<double>(b.pipe->counters().conns_created.value()));
}

BENCHMARK(BM_PipelineNewConn)->Unit(benchmark::kNanosecond);

}  // namespace

// Exits nonzero when a run reports an error (bench_main.h).
int main(int argc, char** argv) {
  return lb::bench::runBenchmarks(argc, argv);
}
