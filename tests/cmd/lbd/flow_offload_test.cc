// SPDX-License-Identifier: Apache-2.0
// FlowOffload's bookkeeping against a fake flow map and a real ConnTable and ServiceTable:
// which entries the workers put in, how the ticks feed the program's flags into the conn,
// fold its counts into the stats, re-arm timers, and when a conn goes back to the slow path.
// The tc program itself is tested in tests/io.
#include "cmd/lbd/dataplane/flow_offload.h"

#include "tests/cmd/lbd/flow_offload_fixture.h"

namespace lb::lbd::flow_offload_test {
namespace {

TEST_F(FlowOffloadTest, WorkerInstallsBothDirectionsTickAdopts) {
  offerConn(40000);
  ASSERT_EQ(map_.flows.size(), 2u);  // in place before the batch is sent
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
  EXPECT_FALSE(vi.reply);
  EXPECT_TRUE(vo.reply);
  EXPECT_EQ(vi.cookie, vo.cookie);
  EXPECT_EQ(static_cast<uint32_t>(vi.cookie), connIndex(40000));
  EXPECT_EQ(vi.cookie >> 32, connFrom(40000).generation);
  EXPECT_EQ(offload_->active(), 0u);
  tick();
  EXPECT_EQ(offload_->active(), 1u);
  EXPECT_EQ(offload_->counters().installed.value(), 1u);
  EXPECT_EQ(map_.flows.size(), 2u);  // nothing forwarded yet: nothing changes
}

TEST_F(FlowOffloadTest, FullNatRewritesTheSourceToTheLocalAddress) {
  offerConn(40000, /*full_nat=*/true);
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

TEST_F(FlowOffloadTest, RefusedInstallLeavesNothingHalfInstalled) {
  map_.fail_add = 1;  // the first entry is refused
  offerConn(40000);
  EXPECT_TRUE(map_.flows.empty());
  map_.adds = 0;
  map_.fail_add = 2;  // the second: the first is taken out again
  offerConn(40001);
  EXPECT_TRUE(map_.flows.empty());
  tick();
  EXPECT_EQ(offload_->counters().install_failed.value(), 2u);
  EXPECT_EQ(offload_->active(), 0u);
}

TEST_F(FlowOffloadTest, OldEntriesOfTheTupleRefuseTheInstall) {
  const io::FlowKey in = key(kClient, 40000, kVip, 80);
  map_.flows[in] = FakeFlowMap::Value{};  // an old conn's entry, not yet removed
  map_.flows[in].state.packets = 7;
  offerConn(40000);
  tick();
  EXPECT_EQ(offload_->counters().install_failed.value(), 1u);
  EXPECT_EQ(map_.flows.size(), 1u);
  EXPECT_EQ(map_.flows[in].state.packets, 7u);  // untouched
}

TEST_F(FlowOffloadTest, TickFoldsOnlyNewTrafficIntoTheStats) {
  offerConn(40000);
  tick();
  inState(40000) = io::FlowState{.packets = 10, .bytes = 1000, .last_ns = now_.ns, .ack = true};
  outState(40000) = io::FlowState{.packets = 20, .bytes = 30000, .last_ns = now_.ns};
  EXPECT_EQ(table_->runtime().workers(), 1u);
  tick();
  EXPECT_EQ(table_->runtime().workers(), 2u);  // the stats block, at the first fold
  EXPECT_EQ(destStats(), (StatsValues{0, 10, 20, 1000, 30000}));
  EXPECT_EQ(table_->runtime().serviceStats(svc_), (StatsValues{0, 10, 20, 1000, 30000}));
  inState(40000).packets = 11;
  inState(40000).bytes = 1100;
  tick();
  EXPECT_EQ(destStats(), (StatsValues{0, 11, 20, 1100, 30000}));
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, FlagsDriveTheConnAndTheTeardownGivesItBack) {
  offerConn(40000);
  tick();
  // The handshake's ACK and some data.
  inState(40000) = io::FlowState{.packets = 2, .bytes = 140, .last_ns = now_.ns, .ack = true};
  outState(40000) = io::FlowState{.packets = 1, .bytes = 60, .last_ns = now_.ns, .ack = true};
  tick();
  EXPECT_EQ(connFrom(40000).state, kTcpEstablished);
  const DestCounters& dc = table_->runtime().destCounters()[dest_];
  const int active = dc.active_conns.load(), inactive = dc.inact_conns.load();
  // The server closes first; the client's FIN is still to come: half-closed, kept.
  outState(40000).fin = true;
  outState(40000).packets = 2;
  outState(40000).last_ns = (now_ + seconds(1)).ns;
  tick();
  EXPECT_EQ(connFrom(40000).state, kTcpFinWait);
  EXPECT_EQ(map_.flows.size(), 2u);
  // Both FINs: TIME_WAIT, the entries go; the last ACK takes the slow path.
  inState(40000).fin = true;
  inState(40000).packets = 3;
  inState(40000).last_ns = (now_ + seconds(2)).ns;
  tick();
  const Conn c = connFrom(40000);
  EXPECT_EQ(c.state, kTcpTimeWait);
  EXPECT_EQ(c.expires, now_ + seconds(2) + table_->snapshot()->timeouts().tcp[kTcpTimeWait]);
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(offload_->counters().removed.value(), 1u);
  EXPECT_EQ(destStats(), (StatsValues{0, 3, 2, 140, 60}));
  EXPECT_EQ(dc.active_conns.load(), active - 1);  // left ESTABLISHED at the server's FIN
  EXPECT_EQ(dc.inact_conns.load(), inactive + 1);
}

TEST_F(FlowOffloadTest, ConnTheProgramFinishedIsTakenFromItsRecord) {
  offerConn(40000);
  offerConn(40001);
  tick();
  // A whole short conn between two ticks: handshake, data, both FINs, the last ACK.
  inState(40000) =
      io::FlowState{.packets = 4, .bytes = 300, .last_ns = now_.ns, .ack = true, .fin = true};
  outState(40000) = io::FlowState{
      .packets = 3, .bytes = 900, .last_ns = (now_ + seconds(1)).ns, .ack = true, .fin = true};
  map_.finish(key(kClient, 40000, kVip, 80), key(kRs, 8080, kClient, 40000));
  tick();
  const Conn c = connFrom(40000);
  EXPECT_EQ(c.state, kTcpTimeWait);
  EXPECT_EQ(c.expires, now_ + seconds(1) + table_->snapshot()->timeouts().tcp[kTcpTimeWait]);
  EXPECT_EQ(destStats(), (StatsValues{0, 4, 3, 300, 900}));
  EXPECT_EQ(offload_->counters().finished.value(), 1u);
  EXPECT_EQ(offload_->counters().removed.value(), 1u);
  EXPECT_EQ(offload_->active(), 1u);  // 40001 is still offloaded
  EXPECT_EQ(map_.flows.size(), 2u);
  // A record for a conn lbd no longer has (its slab entry reused since) is ignored.
  map_.done.push_back(io::FlowDone{uint64_t{999} << 32 | connIndex(40001), {}, {}});
  tick();
  EXPECT_EQ(offload_->counters().finished.value(), 1u);
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, ResetGivesTheConnBackClosed) {
  offerConn(40000);
  tick();
  outState(40000) = io::FlowState{.packets = 1, .bytes = 40, .last_ns = now_.ns, .rst = true};
  tick();
  EXPECT_EQ(connFrom(40000).state, kTcpClose);
  EXPECT_TRUE(map_.flows.empty());
}

TEST_F(FlowOffloadTest, NewSynOnTheTupleGivesTheConnBack) {
  offerConn(40000);
  tick();
  inState(40000) = io::FlowState{.packets = 5, .bytes = 500, .last_ns = now_.ns, .closed = true};
  tick();
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(offload_->counters().removed.value(), 1u);
  EXPECT_EQ(destStats().inpkts, 5u);
  // The conn itself stays: the slow path now sees the SYN.
  EXPECT_EQ(connFrom(40000).cport, 40000);
}

TEST_F(FlowOffloadTest, TimerIsRearmedFromTheLastForwardedPacket) {
  offerConn(40000);
  tick();
  inState(40000) = io::FlowState{.packets = 1, .bytes = 60, .last_ns = now_.ns, .ack = true};
  tick();
  const MonoTime last = now_ + seconds(500);
  outState(40000) = io::FlowState{.packets = 1, .bytes = 60, .last_ns = last.ns};
  tick(/*sweep=*/true);
  EXPECT_EQ(connFrom(40000).expires, last + seconds(900));  // ESTABLISHED's 15 min
  EXPECT_EQ(conns_->expire(now_ + seconds(901)), 0u);
  EXPECT_EQ(conns_->expire(last + seconds(901)), 1u);
}

TEST_F(FlowOffloadTest, OlderConnsAreOnlyLookedAtBySweeps) {
  offerConn(40000);
  for (int i = 0; i <= FlowOffload::kYoungTicks; ++i)
    tick();
  inState(40000) = io::FlowState{.packets = 1, .bytes = 60, .last_ns = now_.ns, .ack = true};
  tick();
  EXPECT_EQ(connFrom(40000).state, kTcpSynRecv);
  tick(/*sweep=*/true);
  EXPECT_EQ(connFrom(40000).state, kTcpEstablished);
}

TEST_F(FlowOffloadTest, ExpiredConnOrUnavailableDestIsGivenBack) {
  offerConn(40000);
  offerConn(40001);
  tick();
  ASSERT_EQ(map_.flows.size(), 4u);
  conns_->expireIf([](const Conn& c) { return c.cport == 40000; });
  tick();
  EXPECT_EQ(map_.flows.size(), 2u);
  EXPECT_FALSE(map_.flows.contains(key(kClient, 40000, kVip, 80)));
  ASSERT_TRUE(table_->deleteDest(key_, ip(kRs), 8080).ok());
  tick();
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
}

TEST_F(FlowOffloadTest, CommitDropsAnUnavailableDestsConnsAtOnce) {
  offerConn(40000);
  tick();
  offload_->dropUnavailable(map_, *table_->snapshot());
  EXPECT_EQ(map_.flows.size(), 2u);  // the dest is still there
  inState(40000) = io::FlowState{.packets = 3, .bytes = 300, .last_ns = now_.ns};
  ASSERT_TRUE(table_->deleteDest(key_, ip(kRs), 8080).ok());
  offload_->dropUnavailable(map_, *table_->snapshot());
  EXPECT_TRUE(map_.flows.empty());
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(destStats().inpkts, 3u);  // what it forwarded until then is counted
}

TEST_F(FlowOffloadTest, FullBatchOrRingRefusesOffers) {
  std::atomic<FlowInstaller*> none{nullptr};
  FlowOffloadPort port(none);
  Conn c;
  for (size_t i = 0; i < FlowOffloadPort::kPending; ++i)
    EXPECT_TRUE(port.offer(c, static_cast<uint32_t>(i)));
  EXPECT_FALSE(port.offer(c, 9999));  // the batch is full
  EXPECT_EQ(port.full(), 1u);
  size_t n = 0;
  for (size_t pushed = FlowOffloadPort::kPending; pushed < FlowOffloadPort::kSize;) {
    port.flush();
    for (size_t i = 0; i < FlowOffloadPort::kPending && pushed < FlowOffloadPort::kSize;
         ++i, ++pushed)
      EXPECT_TRUE(port.offer(c, static_cast<uint32_t>(i)));
  }
  port.flush();
  EXPECT_FALSE(port.offer(c, 1));  // the ring is full
  port.drain([&](const OffloadOffer& o) {
    EXPECT_EQ(o.err, EBADF);  // no installer: nothing went in
    ++n;
  });
  EXPECT_EQ(n, FlowOffloadPort::kSize);
  EXPECT_TRUE(port.offer(c, 1));
}

TEST_F(FlowOffloadTest, ReusedSlabEntryReplacesTheOldConnsEntries) {
  const uint32_t index = offerConn(40000);
  tick();
  conns_->expireIf([](const Conn&) { return true; });
  const uint32_t again = offerConn(40001);
  ASSERT_EQ(again, index);  // the slab's free list is LIFO
  tick();
  EXPECT_FALSE(map_.flows.contains(key(kClient, 40000, kVip, 80)));
  EXPECT_TRUE(map_.flows.contains(key(kClient, 40001, kVip, 80)));
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, ReusedSlabEntryWithTheSameTupleKeepsTheNewEntries) {
  const uint32_t index = offerConn(40000);
  tick();
  // The program closed the old conn's entries; the slow path expired it and a new conn on the
  // same tuple took the same slab entry before the next tick. (The fake drops the entries as the
  // tick would have.)
  map_.flows.clear();
  conns_->expireIf([](const Conn&) { return true; });
  ASSERT_EQ(offerConn(40000), index);
  tick();
  EXPECT_EQ(map_.flows.size(), 2u);
  EXPECT_EQ(offload_->active(), 1u);
}

TEST_F(FlowOffloadTest, ForgetStopsTheWorkersAndDropsEverythingWithoutTheMap) {
  offerConn(40000);
  tick();
  offload_->forget();
  EXPECT_EQ(offload_->active(), 0u);
  EXPECT_EQ(map_.flows.size(), 2u);  // untouched: the map is gone as far as lbd knows
  offerConn(40001);
  EXPECT_EQ(map_.flows.size(), 2u);  // no installer any more
  tick();
  EXPECT_EQ(offload_->counters().install_failed.value(), 1u);
  EXPECT_EQ(offload_->active(), 0u);
}

// A SYN flood must not fill the map: past half of it only handshaken conns go in, and
// conns still in SYN_RECV a second after their install are given back.
TEST_F(FlowOffloadTest, FloodOfSynsLeavesTheMapRoomForHandshakenConns) {
  offload_ = std::make_unique<FlowOffload>(1, *conns_, table_->runtime(), 1, /*map_conns=*/8);
  offload_->setInstaller(std::make_unique<FakeInstaller>(map_));
  auto offer = [&](uint16_t cport, bool handshaken) {
    ConnParams p;
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
    EXPECT_TRUE(g);
    g->state = handshaken ? kTcpEstablished : kTcpSynRecv;
    if (handshaken)
      g->flags |= kConnFAssured;
    const bool taken = offload_->port(0).offer(*g, g.index());
    if (taken)
      g->flags |= kConnFOffloaded;  // as the pipeline does
    g.release();
    offload_->port(0).flush();
    return taken;
  };
  for (uint16_t p = 1; p <= 4; ++p)
    EXPECT_TRUE(offer(p, false)) << p;  // the flood's SYNs, up to half the map
  EXPECT_FALSE(offer(5, false));        // a real client's SYN: not now
  EXPECT_EQ(offload_->held(), 1u);
  EXPECT_EQ(offload_->inMap(), 4);
  {
    // Its ACK comes through lbd: ESTABLISHED, and offloaded then.
    ConnTuple t{Af::kInet, L4Proto::kTcp, ip(kClient), ip(kVip), 5, 80};
    ConnGuard g = conns_->findIn(t);
    ASSERT_TRUE(g);
    g->state = kTcpEstablished;
    g->flags |= kConnFAssured;
    EXPECT_TRUE(offload_->port(0).offer(*g, g.index()));
    g.release();
    offload_->port(0).flush();
  }
  for (uint16_t p = 6; p <= 8; ++p)
    EXPECT_TRUE(offer(p, true)) << p;
  EXPECT_FALSE(offer(9, true));  // the map is full
  EXPECT_EQ(offload_->inMap(), 8);
  EXPECT_EQ(map_.flows.size(), 16u);
  tick();
  EXPECT_EQ(offload_->active(), 8u);

  // A second on, the sweep gives the four half-open conns back to the slow path.
  for (int i = 0; i < FlowOffload::kYoungTicks; ++i)
    tick();
  tick(/*sweep=*/true);
  EXPECT_EQ(offload_->counters().unhandshaken.value(), 4u);
  EXPECT_EQ(offload_->inMap(), 4);
  EXPECT_EQ(map_.flows.size(), 8u);
  for (uint16_t p = 1; p <= 4; ++p) {
    EXPECT_FALSE(map_.flows.contains(key(kClient, p, kVip, 80))) << p;
    EXPECT_EQ(connFrom(p).flags & kConnFOffloaded, 0u) << "may be offered again";
    EXPECT_EQ(connFrom(p).state, kTcpSynRecv);
  }
  for (uint16_t p = 5; p <= 8; ++p)
    EXPECT_TRUE(map_.flows.contains(key(kClient, p, kVip, 80))) << p;
  EXPECT_FALSE(offer(10, false));  // still at half: SYNs wait for their ACK
  EXPECT_TRUE(offer(11, true));
}

// At most kHalfOpenLimit conns still in SYN_RECV go in (each is polled every 20 ms until its
// handshake is seen); handshaken ones still do.
TEST_F(FlowOffloadTest, HalfOpenConnsAreLimited) {
  Conn c;
  c.proto = L4Proto::kTcp;
  c.caddr = ip(kClient);
  c.vaddr = ip(kVip);
  c.daddr = ip(kRs);
  c.vport = 80;
  c.dport = 8080;
  c.state = kTcpSynRecv;
  size_t taken = 0;
  for (uint32_t i = 0; i < FlowOffloadPort::kHalfOpenLimit + 100; ++i) {
    c.cport = static_cast<uint16_t>(1000 + i);
    if (offload_->port(0).offer(c, i))
      ++taken;
    if (i % 32 == 31)
      offload_->port(0).flush();
  }
  offload_->port(0).flush();
  EXPECT_EQ(taken, static_cast<size_t>(FlowOffloadPort::kHalfOpenLimit));
  EXPECT_EQ(offload_->held(), 100u);
  c.cport = 60000;
  c.state = kTcpEstablished;
  c.flags = kConnFAssured;
  EXPECT_TRUE(offload_->port(0).offer(c, 60000));
}

// A flood (kHalfOpenLimit conns in SYN_RECV in the map at a tick) holds every conn not yet
// handshaken out of the map for kFloodHoldTicks: the half-open ones go back 200 ms after their
// install, and no new one takes their place until the hold is over (issue 17: the map stayed at
// the limit, and polling it took a quarter of lbd's CPU). Handshaken conns still go in.
TEST_F(FlowOffloadTest, FloodHoldsHalfOpenConnsOutOfTheMap) {
  offload_.reset();
  ConnTable::Options opt;
  opt.capacity = 4096;
  opt.shards = 2;
  conns_ = std::make_unique<ConnTable>(opt, Pipeline::connEvents(table_->runtime()));
  offload_ = std::make_unique<FlowOffload>(1, *conns_, table_->runtime(), 1);
  offload_->setInstaller(std::make_unique<FakeInstaller>(map_));
  uint16_t next = 1;
  auto offer = [&](bool handshaken) {
    ConnParams p;
    p.caddr = ip(kClient);
    p.cport = next++;
    p.vaddr = ip(kVip);
    p.vport = 80;
    p.daddr = ip(kRs);
    p.dport = 8080;
    p.svc = svc_;
    p.dest = dest_;
    p.timeout = seconds(60);
    ConnGuard g = conns_->create(p, now_);
    EXPECT_TRUE(g);
    g->state = handshaken ? kTcpEstablished : kTcpSynRecv;
    if (handshaken)
      g->flags |= kConnFAssured;
    const bool taken = offload_->port(0).offer(*g, g.index());
    if (taken)
      g->flags |= kConnFOffloaded;
    g.release();
    offload_->port(0).flush();
    return taken;
  };
  for (int64_t i = 0; i < FlowOffloadPort::kHalfOpenLimit; ++i)
    ASSERT_TRUE(offer(false)) << i;
  tick();  // counts kHalfOpenLimit half-open conns: the hold starts
  EXPECT_FALSE(offer(false));
  EXPECT_TRUE(offer(true));
  for (int i = 0; i < FlowOffload::kHandshakeTicks; ++i)
    tick();
  EXPECT_EQ(offload_->counters().unhandshaken.value(),
            static_cast<uint64_t>(FlowOffloadPort::kHalfOpenLimit));
  EXPECT_EQ(offload_->inMap(), 1);
  EXPECT_FALSE(offer(false)) << "no half-open conn while the hold lasts";
  // The hold lasts kFloodHoldTicks from the last tick that saw the limit.
  int ticks = 0;
  while (ticks < 2 * FlowOffload::kFloodHoldTicks) {
    tick();
    ++ticks;
    if (offer(false))
      break;
  }
  EXPECT_GE(ticks, FlowOffload::kFloodHoldTicks - FlowOffload::kHandshakeTicks);
  EXPECT_LE(ticks, FlowOffload::kFloodHoldTicks);
}

// A UDP reply the fast path forwarded assures the conn (early drop keeps it).
TEST_F(FlowOffloadTest, ForwardedUdpReplyAssuresTheConn) {
  offerConn(5353, false, L4Proto::kUdp);
  tick();
  EXPECT_EQ(connFrom(5353).flags & kConnFAssured, 0u);
  io::FlowKey out{L4Proto::kUdp, ip(kRs), ip(kClient), 8080, 5353};
  ASSERT_TRUE(map_.flows.contains(out));
  map_.flows[out].state = io::FlowState{.packets = 1, .bytes = 60, .last_ns = now_.ns};
  tick();
  EXPECT_NE(connFrom(5353).flags & kConnFAssured, 0u);
}

}  // namespace
}  // namespace lb::lbd::flow_offload_test
