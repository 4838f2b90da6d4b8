// SPDX-License-Identifier: Apache-2.0
// FlowOffload's bookkeeping against a fake flow map and a real ConnTable and ServiceTable:
// which entries go in, what the sweep folds into the stats, how it re-arms timers and when it
// gives a conn back to the slow path. The tc program itself is tested in tests/io.
#include "cmd/lbd/dataplane/flow_offload.h"

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

#include "core/pipeline/pipeline.h"
#include "core/proto/proto.h"
#include "core/service/service_table.h"

namespace lb::lbd {
namespace {

IpAddr ip(const char* s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(IpAddr());
}

class FakeFlowMap : public FlowMap {
 public:
  struct Value {
    io::FlowRewrite rw;
    io::FlowKey reverse;
    io::FlowState state;
  };

  absl::Status add(const io::FlowKey& key,
                   const io::FlowRewrite& rw,
                   const io::FlowKey& reverse) override {
    if (fail_adds > 0) {
      --fail_adds;
      return absl::ResourceExhaustedError("full");
    }
    flows[key] = Value{rw, reverse, {}};
    return absl::OkStatus();
  }

  absl::Status remove(const io::FlowKey& key) override {
    return flows.erase(key) == 1 ? absl::OkStatus() : absl::NotFoundError("no flow");
  }

  absl::StatusOr<io::FlowState> state(const io::FlowKey& key) override {
    auto it = flows.find(key);
    if (it == flows.end())
      return absl::NotFoundError("no flow");
    return it->second.state;
  }

  int fail_adds = 0;
  absl::flat_hash_map<io::FlowKey, Value> flows;
};

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs = "198.18.1.10";
constexpr const char* kLaddr = "198.18.1.1";

class FlowOffloadTest : public ::testing::Test {
 protected:
  FlowOffloadTest() {
    ServiceTable::Limits limits;
    limits.max_services = 8;
    limits.max_dests = 16;
    table_ = std::make_unique<ServiceTable>(limits);
    table_->runtime().setWorkers(1);  // FlowOffload adds block 1 when it first counts
    ConnTable::Options opt;
    opt.capacity = 64;
    opt.shards = 2;
    conns_ = std::make_unique<ConnTable>(opt, Pipeline::connEvents(table_->runtime()));
    key_.af = Af::kInet;
    key_.proto = L4Proto::kTcp;
    key_.vaddr = ip(kVip);
    key_.vport = 80;
    ServiceConfig s;
    s.key = key_;
    s.scheduler = "rr";
    s.local_addrs = {ip(kLaddr)};
    EXPECT_TRUE(table_->addService(s).ok());
    DestConfig d;
    d.addr = ip(kRs);
    d.port = 8080;
    d.fwd = FwdMethod::kMasq;
    d.weight = 1;
    EXPECT_TRUE(table_->addDest(key_, d).ok());
    dest_ = *table_->destId(key_, ip(kRs), 8080);
    svc_ = *table_->serviceId(key_);
    offload_ = std::make_unique<FlowOffload>(1, *conns_, table_->runtime(), 1);
  }

  // An ESTABLISHED conn from kClient:cport, offered through worker 0's port.
  uint32_t offerConn(uint16_t cport, bool full_nat = false, L4Proto proto = L4Proto::kTcp) {
    ConnParams p;
    p.proto = proto;
    p.flags = full_nat ? kConnFFullNat : 0;
    p.caddr = ip(kClient);
    p.cport = cport;
    p.vaddr = ip(kVip);
    p.vport = 80;
    p.daddr = ip(kRs);
    p.dport = 8080;
    if (full_nat) {
      p.laddr = ip(kLaddr);
      p.lport = 2000;
    }
    p.svc = svc_;
    p.dest = dest_;
    p.timeout = seconds(900);
    ConnGuard g = conns_->create(p, now_);
    EXPECT_TRUE(g);
    g->state = proto == L4Proto::kTcp ? kTcpEstablished : 0;
    const uint32_t index = g.index();
    EXPECT_TRUE(offload_->port(0).offer(*g, index));
    return index;
  }

  io::FlowKey key(const char* s, uint16_t sp, const char* d, uint16_t dp) {
    return io::FlowKey{L4Proto::kTcp, ip(s), ip(d), sp, dp};
  }

  Conn connFrom(uint16_t cport) {
    Conn out;
    conns_->forEach([&](const Conn& c) {
      if (c.cport == cport)
        out = c;
    });
    return out;
  }

  StatsValues destStats() { return table_->runtime().destStats(dest_); }

  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<FlowOffload> offload_;
  ServiceKey key_;
  DestId dest_ = kNoDest;
  ServiceId svc_ = kNoService;
  MonoTime now_ = MonoTime::fromSeconds(1000);
  FakeFlowMap map_;
};

TEST_F(FlowOffloadTest, NatConnGetsBothDirections) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  ASSERT_EQ(map_.flows.size(), 2u);
  const io::FlowKey in = key(kClient, 40000, kVip, 80);
  const io::FlowKey out = key(kRs, 8080, kClient, 40000);
  ASSERT_TRUE(map_.flows.contains(in));
  ASSERT_TRUE(map_.flows.contains(out));
  const auto& vi = map_.flows[in];
  EXPECT_EQ(vi.rw.saddr, ip(kClient));
  EXPECT_EQ(vi.rw.daddr, ip(kRs));
  EXPECT_EQ(vi.rw.sport, 40000);
  EXPECT_EQ(vi.rw.dport, 8080);
  EXPECT_EQ(vi.reverse, out);
  const auto& vo = map_.flows[out];
  EXPECT_EQ(vo.rw.saddr, ip(kVip));
  EXPECT_EQ(vo.rw.daddr, ip(kClient));
  EXPECT_EQ(vo.rw.sport, 80);
  EXPECT_EQ(vo.rw.dport, 40000);
  EXPECT_EQ(vo.reverse, in);
  EXPECT_EQ(offload_->active(), 1u);
  EXPECT_EQ(offload_->counters().installed.value(), 1u);
}

TEST_F(FlowOffloadTest, FullNatRewritesTheSourceToTheLocalAddress) {
  offerConn(40000, /*full_nat=*/true);
  offload_->install(map_, *table_->snapshot());
  const io::FlowKey in = key(kClient, 40000, kVip, 80);
  const io::FlowKey out = key(kRs, 8080, kLaddr, 2000);
  ASSERT_TRUE(map_.flows.contains(in));
  ASSERT_TRUE(map_.flows.contains(out));
  EXPECT_EQ(map_.flows[in].rw.saddr, ip(kLaddr));
  EXPECT_EQ(map_.flows[in].rw.sport, 2000);
  EXPECT_EQ(map_.flows[out].rw.saddr, ip(kVip));
  EXPECT_EQ(map_.flows[out].rw.daddr, ip(kClient));
  EXPECT_EQ(map_.flows[out].rw.dport, 40000);
}

TEST_F(FlowOffloadTest, ConnThatEndedOrLeftEstablishedBeforeInstallIsSkipped) {
  offerConn(40000);
  offerConn(40001);
  conns_->expireIf([](const Conn& c) { return c.cport == 40000; });
  conns_->expireIf([](const Conn&) { return false; });
  {
    ConnTuple t;
    t.proto = L4Proto::kTcp;
    t.saddr = ip(kClient);
    t.sport = 40001;
    t.daddr = ip(kVip);
    t.dport = 80;
    ConnGuard g = conns_->findIn(t);
    ASSERT_TRUE(g);
    g->state = kTcpFinWait;
  }
  offload_->install(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->counters().skipped.value(), 2u);
  EXPECT_EQ(offload_->active(), 0u);
}

TEST_F(FlowOffloadTest, SweepFoldsOnlyNewTrafficIntoTheStats) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  const io::FlowKey in = key(kClient, 40000, kVip, 80);
  const io::FlowKey out = key(kRs, 8080, kClient, 40000);
  map_.flows[in].state = io::FlowState{10, 1000, now_.ns, false};
  map_.flows[out].state = io::FlowState{20, 30000, now_.ns, false};
  EXPECT_EQ(table_->runtime().workers(), 1u);
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_EQ(table_->runtime().workers(), 2u);
  EXPECT_EQ(destStats(), (StatsValues{0, 10, 20, 1000, 30000}));
  EXPECT_EQ(table_->runtime().serviceStats(svc_), (StatsValues{0, 10, 20, 1000, 30000}));
  map_.flows[in].state = io::FlowState{11, 1100, now_.ns, false};
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_EQ(destStats(), (StatsValues{0, 11, 20, 1100, 30000}));
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, SweepRearmsTheTimerFromTheLastForwardedPacket) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  EXPECT_EQ(connFrom(40000).expires, now_ + seconds(900));
  const MonoTime last = now_ + seconds(500);
  map_.flows[key(kRs, 8080, kClient, 40000)].state = io::FlowState{1, 60, last.ns, false};
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_EQ(connFrom(40000).expires, last + seconds(900));
  // The conn outlives its original expiry: at +901 s nothing fires.
  EXPECT_EQ(conns_->expire(now_ + seconds(901)), 0u);
  EXPECT_EQ(conns_->expire(last + seconds(901)), 1u);
}

TEST_F(FlowOffloadTest, ClosedFlowIsGivenBackWithItsLastCounts) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  const io::FlowKey in = key(kClient, 40000, kVip, 80);
  map_.flows[in].state = io::FlowState{5, 500, now_.ns, true};
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(offload_->counters().removed.value(), 1u);
  EXPECT_EQ(destStats().inpkts, 5u);
  // The conn itself stays: the slow path now handles its FIN.
  EXPECT_EQ(connFrom(40000).cport, 40000);
}

TEST_F(FlowOffloadTest, ExpiredConnOrUnavailableDestIsGivenBack) {
  offerConn(40000);
  offerConn(40001);
  offload_->install(map_, *table_->snapshot());
  ASSERT_EQ(map_.flows.size(), 4u);
  conns_->expireIf([](const Conn& c) { return c.cport == 40000; });
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_EQ(map_.flows.size(), 2u);
  EXPECT_FALSE(map_.flows.contains(key(kClient, 40000, kVip, 80)));
  ASSERT_TRUE(table_->deleteDest(key_, ip(kRs), 8080).ok());
  offload_->sweep(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
}

TEST_F(FlowOffloadTest, CommitDropsAnUnavailableDestsConnsAtOnce) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  offload_->dropUnavailable(map_, *table_->snapshot());
  EXPECT_EQ(map_.flows.size(), 2u);  // the dest is still there
  map_.flows[key(kClient, 40000, kVip, 80)].state = io::FlowState{3, 300, now_.ns, false};
  ASSERT_TRUE(table_->deleteDest(key_, ip(kRs), 8080).ok());
  offload_->dropUnavailable(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(destStats().inpkts, 3u);  // what it forwarded until then is counted
}

TEST_F(FlowOffloadTest, MapRefusalLeavesNoHalfInstalledConn) {
  offerConn(40000);
  map_.fail_adds = 1;
  offload_->install(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  offerConn(40001);

  // The first entry goes in, the second is refused: the first is taken out again.
  struct SecondFails : FakeFlowMap {
    absl::Status add(const io::FlowKey& k,
                     const io::FlowRewrite& rw,
                     const io::FlowKey& rev) override {
      if (++calls == 2)
        return absl::ResourceExhaustedError("full");
      return FakeFlowMap::add(k, rw, rev);
    }

    int calls = 0;
  } second;

  offload_->install(second, *table_->snapshot());
  EXPECT_TRUE(second.flows.empty());
  EXPECT_EQ(offload_->counters().install_failed.value(), 2u);
  EXPECT_EQ(offload_->active(), 0u);
}

TEST_F(FlowOffloadTest, FullRingRefusesOffers) {
  FlowOffloadPort port;
  Conn c;
  for (size_t i = 0; i < FlowOffloadPort::kSize; ++i)
    EXPECT_TRUE(port.offer(c, static_cast<uint32_t>(i)));
  EXPECT_FALSE(port.offer(c, 9999));
  EXPECT_EQ(port.full(), 1u);
  size_t n = 0;
  port.drain([&](const OffloadOffer&) { ++n; });
  EXPECT_EQ(n, FlowOffloadPort::kSize);
  EXPECT_TRUE(port.offer(c, 1));
}

TEST_F(FlowOffloadTest, ReusedSlabEntryReplacesTheOldConnsEntries) {
  const uint32_t index = offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  conns_->expireIf([](const Conn&) { return true; });
  const uint32_t again = offerConn(40001);
  ASSERT_EQ(again, index);  // the slab's free list is LIFO
  offload_->install(map_, *table_->snapshot());
  EXPECT_FALSE(map_.flows.contains(key(kClient, 40000, kVip, 80)));
  EXPECT_TRUE(map_.flows.contains(key(kClient, 40001, kVip, 80)));
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, ForgetDropsEverythingWithoutTheMap) {
  offerConn(40000);
  offload_->install(map_, *table_->snapshot());
  offerConn(40001);
  offload_->forget();
  EXPECT_EQ(offload_->active(), 0u);
  offload_->install(map_, *table_->snapshot());
  EXPECT_EQ(map_.flows.size(), 2u);  // 40001's offer was dropped, 40000's entries untouched
}

}  // namespace
}  // namespace lb::lbd
