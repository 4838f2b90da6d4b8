// SPDX-License-Identifier: Apache-2.0
// Conns the flow offload's fast path forwards are synced (issue 15): FlowOffload feeds what the
// fast path reported into the conn and then lbd's SyncWorkerHook, which puts on its ring what
// core/sync's rules would have sent had the packets gone through the pipeline one by one: the
// conn once the client's packets cross sync_threshold in ESTABLISHED, nothing for more data
// short of the next sync_period multiple, and a change of state (FIN_WAIT) at once.
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

#include "cmd/lbd/dataplane/flow_offload.h"
#include "cmd/lbd/sync/sync_master_daemon.h"
#include "cmd/lbd/sync/sync_worker_hook.h"
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

// The flow map as the tc program leaves it: states by key; installs through FakeInstaller.
class FakeFlowMap : public FlowMap {
 public:
  absl::Status remove(const io::FlowKey& key) override {
    return flows.erase(key) == 1 ? absl::OkStatus() : absl::NotFoundError("no flow");
  }

  absl::StatusOr<io::FlowState> state(const io::FlowKey& key) override {
    auto it = flows.find(key);
    if (it == flows.end())
      return absl::NotFoundError("no flow");
    return it->second;
  }

  size_t consumeDone(absl::FunctionRef<void(const io::FlowDone&)>) override { return 0; }

  absl::flat_hash_map<io::FlowKey, io::FlowState> flows;
};

class FakeInstaller : public FlowInstaller {
 public:
  explicit FakeInstaller(FakeFlowMap& m) : m_(m) {}

  int add(const io::FlowKey& key,
          const io::FlowRewrite&,
          const io::FlowKey&,
          uint64_t,
          bool) noexcept override {
    return m_.flows.try_emplace(key).second ? 0 : EEXIST;
  }

  int remove(const io::FlowKey& key) noexcept override {
    return m_.flows.erase(key) == 1 ? 0 : ENOENT;
  }

 private:
  FakeFlowMap& m_;
};

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs = "198.18.1.10";

class SyncOffloadTest : public ::testing::Test {
 protected:
  SyncOffloadTest() {
    ServiceTable::Limits limits;
    limits.max_services = 8;
    limits.max_dests = 16;
    table_ = std::make_unique<ServiceTable>(limits);
    table_->runtime().setWorkers(1);
    ConnTable::Options opt;
    opt.capacity = 64;
    opt.shards = 2;
    conns_ = std::make_unique<ConnTable>(opt, Pipeline::connEvents(table_->runtime()));
    ServiceKey key;
    key.af = Af::kInet;
    key.proto = L4Proto::kTcp;
    key.vaddr = ip(kVip);
    key.vport = 80;
    ServiceConfig s;
    s.key = key;
    s.scheduler = "rr";
    EXPECT_TRUE(table_->addService(s).ok());
    DestConfig d;
    d.addr = ip(kRs);
    d.port = 8080;
    d.fwd = FwdMethod::kMasq;
    d.weight = 1;
    EXPECT_TRUE(table_->addDest(key, d).ok());
    dest_ = *table_->destId(key, ip(kRs), 8080);
    svc_ = *table_->serviceId(key);
    offload_ = std::make_unique<FlowOffload>(1, *conns_, table_->runtime(), 1);
    offload_->setInstaller(std::make_unique<FakeInstaller>(map_));
    hook_.attach(&queue_, &sys_);
    offload_->setSyncHook(&hook_);
  }

  ~SyncOffloadTest() override { hook_.detach(); }

  // A conn past its SYN (SYN_RECV, one client packet through the pipeline), offered and
  // installed.
  void offerConn(uint16_t cport) {
    ConnParams p;
    p.proto = L4Proto::kTcp;
    p.caddr = ip(kClient);
    p.cport = cport;
    p.vaddr = ip(kVip);
    p.vport = 80;
    p.daddr = ip(kRs);
    p.dport = 8080;
    p.svc = svc_;
    p.dest = dest_;
    p.timeout = seconds(60);
    ConnGuard g = conns_->create(p, now_);
    ASSERT_TRUE(g);
    g->state = kTcpSynRecv;
    g->in_pkts = 1;
    ASSERT_TRUE(offload_->port(0).offer(*g, g.index()));
    g.release();
    offload_->port(0).flush();
  }

  void tick() { offload_->tick(map_, *table_->snapshot(), true); }

  io::FlowState& in(uint16_t cport) {
    return map_.flows[io::FlowKey{L4Proto::kTcp, ip(kClient), ip(kVip), cport, 80}];
  }

  io::FlowState& out(uint16_t cport) {
    return map_.flows[io::FlowKey{L4Proto::kTcp, ip(kRs), ip(kClient), 8080, cport}];
  }

  std::vector<SyncConn> sent() {
    std::vector<SyncConn> v;
    queue_.drain([&](const sync::SyncEvent& e) { v.push_back(e.conn); });
    return v;
  }

  FakeFlowMap map_;
  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<FlowOffload> offload_;
  SyncSysctls sys_;  // threshold 3, period 50
  sync::SyncWorkerQueue queue_;
  sync::SyncWorkerHook hook_;
  DestId dest_ = kNoDest;
  ServiceId svc_ = kNoService;
  MonoTime now_ = MonoTime::fromSeconds(1000);
};

TEST_F(SyncOffloadTest, FastPathConnIsSyncedWithTheStateItReported) {
  offerConn(40000);
  tick();
  EXPECT_TRUE(sent().empty());
  // The handshake's ACK and data: 4 client packets (in_pkts 1 -> 5 crosses 3), ESTABLISHED.
  in(40000) =
      io::FlowState{.packets = 4, .bytes = 400, .last_ns = (now_ + seconds(1)).ns, .ack = true};
  out(40000) =
      io::FlowState{.packets = 3, .bytes = 3000, .last_ns = (now_ + seconds(1)).ns, .ack = true};
  tick();
  std::vector<SyncConn> v = sent();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, kTcpEstablished);
  EXPECT_EQ(v[0].caddr, ip(kClient));
  EXPECT_EQ(v[0].cport, 40000);
  EXPECT_EQ(v[0].daddr, ip(kRs));
  EXPECT_EQ(v[0].dport, 8080);
  EXPECT_EQ(v[0].flags & kConnFInactive, 0u);
  // More data, in_pkts 5 -> 45: no multiple of 50 plus 3 crossed, nothing sent.
  in(40000).packets = 44;
  in(40000).last_ns = (now_ + seconds(2)).ns;
  tick();
  EXPECT_TRUE(sent().empty());
  // 45 -> 60 crosses 53: sent again (the kernel's every-50th-packet refresh).
  in(40000).packets = 59;
  in(40000).last_ns = (now_ + seconds(3)).ns;
  tick();
  v = sent();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, kTcpEstablished);
  // The server's FIN: FIN_WAIT, a change of state, sent at once with no client packet.
  out(40000).fin = true;
  out(40000).packets = 4;
  out(40000).last_ns = (now_ + seconds(4)).ns;
  tick();
  v = sent();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, kTcpFinWait);
  Conn c;
  conns_->forEach([&](const Conn& x) { c = x; });
  EXPECT_EQ(c.in_pkts, 60u);
}

TEST_F(SyncOffloadTest, NoHookAttachedNothingQueued) {
  hook_.detach();
  offerConn(40001);
  tick();
  in(40001) =
      io::FlowState{.packets = 4, .bytes = 400, .last_ns = (now_ + seconds(1)).ns, .ack = true};
  tick();
  EXPECT_TRUE(sent().empty());
  Conn c;
  conns_->forEach([&](const Conn& x) { c = x; });
  EXPECT_EQ(c.state, kTcpEstablished);
}

}  // namespace
}  // namespace lb::lbd
