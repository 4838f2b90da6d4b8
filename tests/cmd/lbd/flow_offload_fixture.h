// SPDX-License-Identifier: Apache-2.0
// The fixture of FlowOffload's bookkeeping tests (flow_offload_test.cc,
// flow_offload_tunnel_test.cc): a fake flow map and installer, a real ConnTable and ServiceTable. A
// named namespace, not an anonymous one: both files' TEST_Fs must see one FlowOffloadTest class.
#pragma once

#include <atomic>
#include <cerrno>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

#include "cmd/lbd/dataplane/flow_offload.h"
#include "core/pipeline/pipeline.h"
#include "core/proto/proto.h"
#include "core/service/service_table.h"

namespace lb::lbd::flow_offload_test {

inline IpAddr ip(const char* s) {
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
    uint64_t cookie = 0;
    bool reply = false;
  };

  absl::Status remove(const io::FlowKey& key) override {
    return flows.erase(key) == 1 ? absl::OkStatus() : absl::NotFoundError("no flow");
  }

  absl::StatusOr<io::FlowState> state(const io::FlowKey& key) override {
    auto it = flows.find(key);
    if (it == flows.end())
      return absl::NotFoundError("no flow");
    return it->second.state;
  }

  size_t consumeDone(absl::FunctionRef<void(const io::FlowDone&)> f) override {
    for (const io::FlowDone& d : done)
      f(d);
    const size_t n = done.size();
    done.clear();
    return n;
  }

  // The workers' side (FlowInstaller semantics: BPF_NOEXIST).
  int add(const io::FlowKey& key,
          const io::FlowRewrite& rw,
          const io::FlowKey& reverse,
          uint64_t cookie,
          bool reply) {
    ++adds;
    if (fail_add == adds)
      return ENOMEM;
    if (flows.contains(key))
      return EEXIST;
    flows[key] = Value{rw, reverse, {}, cookie, reply};
    return 0;
  }

  // What the program does when it forwards a conn's last ACK: a record, both entries gone.
  void finish(const io::FlowKey& in, const io::FlowKey& out) {
    done.push_back(io::FlowDone{flows[in].cookie, flows[in].state, flows[out].state});
    flows.erase(in);
    flows.erase(out);
  }

  int fail_add = 0;  // the n-th add() fails with ENOMEM
  int adds = 0;
  absl::flat_hash_map<io::FlowKey, Value> flows;
  std::vector<io::FlowDone> done;
};

class FakeInstaller : public FlowInstaller {
 public:
  explicit FakeInstaller(FakeFlowMap& m) : m_(m) {}

  int add(const io::FlowKey& key,
          const io::FlowRewrite& rw,
          const io::FlowKey& reverse,
          uint64_t cookie,
          bool reply) noexcept override {
    return m_.add(key, rw, reverse, cookie, reply);
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
    offload_->setInstaller(std::make_unique<FakeInstaller>(map_));
  }

  // A conn from kClient:cport just past its SYN (SYN_RECV), offered through worker 0's port
  // and installed by its flush().
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
    g->state = proto == L4Proto::kTcp ? kTcpSynRecv : 0;
    const uint32_t index = g.index();
    EXPECT_TRUE(offload_->port(0).offer(*g, index));
    g.release();
    offload_->port(0).flush();
    return index;
  }

  // A tunnel conn from kClient:cport (TCP: just past its SYN, inactive), offered through
  // worker 0's port with an outer source kLaddr, UDP source port cport + 9000 and the GUE port
  // 6080, and installed by its flush().
  // The one entry offerTunnelConn installed under `in`: tunnel source -> the real server, the
  // outer ports and kind given, no reverse.
  void expectTunnelEntry(const io::FlowKey& in,
                         uint16_t sport,
                         uint16_t dport,
                         io::FlowEncap encap) {
    ASSERT_TRUE(map_.flows.contains(in));
    const auto& v = map_.flows[in];
    EXPECT_EQ(v.rw.saddr, ip(kLaddr));
    EXPECT_EQ(v.rw.daddr, ip(kRs));
    EXPECT_EQ(v.rw.sport, sport);
    EXPECT_EQ(v.rw.dport, dport);
    EXPECT_EQ(v.rw.encap, encap);
    EXPECT_EQ(v.reverse, io::FlowKey{});
    EXPECT_FALSE(v.reply);
  }

  void offerTunnelConn(uint16_t cport,
                       L4Proto proto,
                       bool pmtu_disc,
                       TunType type = TunType::kGue) {
    const bool tcp = proto == L4Proto::kTcp;
    ConnParams p;
    p.proto = proto;
    p.flags =
        static_cast<uint32_t>(FwdMethod::kTunnel) | kConnFNoOutput | (tcp ? kConnFInactive : 0);
    p.caddr = ip(kClient);
    p.cport = cport;
    p.vaddr = ip(kVip);
    p.vport = 80;
    p.daddr = ip(kRs);
    p.dport = 80;
    p.svc = svc_;
    p.dest = dest_;
    p.timeout = seconds(tcp ? 900 : 300);
    ConnGuard g = conns_->create(p, now_);
    ASSERT_TRUE(g);
    if (tcp)
      g->state = kTcpSynRecv;
    TunnelOffer t;
    t.src = ip(kLaddr);
    t.type = type;
    if (type == TunType::kGue) {
      t.sport = static_cast<uint16_t>(cport + 9000);
      t.dport = 6080;
    }
    t.pmtu_disc = pmtu_disc;
    ASSERT_TRUE(offload_->port(0).offerTunnel(*g, g.index(), t));
    g.release();
    offload_->port(0).flush();
  }

  // An IPIP or GRE tunnel: a TCP conn from cport (pmtu_disc 1) and a UDP conn from cport + 1
  // (pmtu_disc 0) get one entry each, without outer ports, of kind `df` / `no_df`; the TCP one
  // follows the client's packets and is given back at the client's FIN.
  void expectPortlessTunnelConns(uint16_t cport,
                                 TunType type,
                                 io::FlowEncap df,
                                 io::FlowEncap no_df) {
    const auto uport = static_cast<uint16_t>(cport + 1);
    ASSERT_NO_FATAL_FAILURE(offerTunnelConn(cport, L4Proto::kTcp, true, type));
    ASSERT_NO_FATAL_FAILURE(offerTunnelConn(uport, L4Proto::kUdp, false, type));
    const io::FlowKey in = key(kClient, cport, kVip, 80);
    const io::FlowKey udp{L4Proto::kUdp, ip(kClient), ip(kVip), uport, 80};
    ASSERT_EQ(map_.flows.size(), 2u) << "one entry per conn";
    ASSERT_NO_FATAL_FAILURE(expectTunnelEntry(in, 0, 0, df));
    ASSERT_NO_FATAL_FAILURE(expectTunnelEntry(udp, 0, 0, no_df));
    tick();
    EXPECT_EQ(offload_->active(), 2u);
    EXPECT_EQ(offload_->counters().installed.value(), 2u);

    inState(cport) = io::FlowState{.packets = 4, .bytes = 400, .last_ns = now_.ns, .ack = true};
    tick();
    EXPECT_EQ(connFrom(cport).state, kTcpEstablished);
    EXPECT_EQ(map_.flows.size(), 2u);
    inState(cport).fin = true;
    inState(cport).packets = 5;
    inState(cport).last_ns = (now_ + seconds(1)).ns;
    tick();
    EXPECT_FALSE(map_.flows.contains(in)) << "the client's FIN gives the conn back";
    EXPECT_TRUE(map_.flows.contains(udp));
    EXPECT_EQ(offload_->counters().removed.value(), 1u);
    EXPECT_EQ(destStats().inpkts, 5u);
    EXPECT_EQ(destStats().outpkts, 0u);
  }

  void tick(bool sweep = false) { offload_->tick(map_, *table_->snapshot(), sweep); }

  io::FlowState& inState(uint16_t cport) { return map_.flows[key(kClient, cport, kVip, 80)].state; }

  io::FlowState& outState(uint16_t cport) {
    return map_.flows[key(kRs, 8080, kClient, cport)].state;
  }

  io::FlowKey key(const char* s, uint16_t sp, const char* d, uint16_t dp) {
    return io::FlowKey{L4Proto::kTcp, ip(s), ip(d), sp, dp};
  }

  uint32_t connIndex(uint16_t cport) {
    ConnTuple t;
    t.proto = L4Proto::kTcp;
    t.saddr = ip(kClient);
    t.sport = cport;
    t.daddr = ip(kVip);
    t.dport = 80;
    ConnGuard g = conns_->findIn(t);
    EXPECT_TRUE(g);
    return g ? g.index() : kNoConn;
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

  FakeFlowMap map_;  // before offload_, which holds an installer of it
  std::unique_ptr<ServiceTable> table_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<FlowOffload> offload_;
  ServiceKey key_;
  DestId dest_ = kNoDest;
  ServiceId svc_ = kNoService;
  MonoTime now_ = MonoTime::fromSeconds(1000);
};

}  // namespace lb::lbd::flow_offload_test
