// SPDX-License-Identifier: Apache-2.0
// The flow offload fast path (bpf_flow_offload_fixture.h), TCP state: a conn installed after
// the client's SYN forwarded from handshake to teardown, the ACK/FIN/RST bits the program
// records per entry, conns it finishes (a `done` record) and those it leaves for lbd.
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/io/bpf_flow_offload_fixture.h"

namespace lb::io::flow_offload_test {

// A conn installed right after the client's SYN, as lbd does (a worker's FlowWriter, a cookie,
// the reply flag): the whole rest of the handshake and the teardown is forwarded by the
// program, which records ACK and FIN per direction; the last ACK after both FINs finishes the
// conn: one `done` record with both entries' final state, both entries deleted.
void FlowOffloadTest::tcpLifecycle(bool v6) {
  const char* client = v6 ? kFarClient6 : kFarClient;
  const char* vip = v6 ? kVip6 : kVip;
  const char* rip = v6 ? kRip6 : kRip;
  const uint64_t cookie = 0xc00c1e0000000000ull | (v6 ? 6 : 4);
  const FlowKey in{L4Proto::kTcp, ip(client), ip(vip), 40100, 80};
  const FlowKey out{L4Proto::kTcp, ip(rip), ip(client), 8080, 40100};
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->add(in, {ip(client), ip(rip), 40100, 8080}, out, cookie, false), 0);
  ASSERT_EQ(w->add(out, {ip(vip), ip(client), 80, 40100}, in, cookie, true), 0);
  const int64_t before = monoNs();

  const struct {
    bool from_server;
    uint8_t flags;
    const char* name;
  } steps[] = {{true, 0x12, "SYN-ACK"},  {false, 0x10, "ACK"},    {false, 0x18, "request"},
               {true, 0x18, "response"}, {true, 0x11, "FIN-ACK"}, {false, 0x11, "FIN-ACK"},
               {true, 0x10, "last ACK"}};

  uint64_t bytes[2] = {};  // in, out
  for (const auto& st : steps) {
    SCOPED_TRACE(absl::StrCat(st.from_server ? "server " : "client ", st.name));
    Bytes seg = segment(v6, st.from_server, 40100, st.flags);
    bytes[st.from_server ? 1 : 0] += seg.size();
    auto p =
        st.from_server ? forwardTcp(true, seg, 80, 40100) : forwardTcp(false, seg, 40100, 8080);
    ASSERT_TRUE(p.has_value()) << "not forwarded";
    EXPECT_EQ(srcAddr(*p), ip(st.from_server ? vip : client));
    EXPECT_EQ(dstAddr(*p), ip(st.from_server ? client : rip));
    EXPECT_EQ(ttl(*p), 63);
    EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());
    if (st.flags == 0x12) {  // the SYN-ACK records nothing
      FlowState o = state(out);
      EXPECT_EQ(o.packets, 1u);
      EXPECT_FALSE(o.ack || o.fin || o.rst || o.closed);
    }
    if (st.flags != 0x10 || st.name != std::string("last ACK")) {
      EXPECT_TRUE(redirect_->flowState(in).ok() && redirect_->flowState(out).ok())
          << "only the last ACK finishes the conn";
      EXPECT_TRUE(done().empty());
    }
  }
  EXPECT_TRUE(gone(in)) << "the last ACK deleted the client's entry";
  EXPECT_TRUE(gone(out)) << "and the server's";
  std::vector<FlowDone> d = done();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cookie, cookie);
  const FlowState& a = d[0].in;
  const FlowState& b = d[0].out;
  EXPECT_EQ(a.packets, 3u);
  EXPECT_EQ(b.packets, 4u);
  EXPECT_EQ(a.bytes, bytes[0]);
  EXPECT_EQ(b.bytes, bytes[1]);
  EXPECT_GE(a.last_ns, before);
  EXPECT_GE(b.last_ns, a.last_ns) << "the server's last ACK came last";
  EXPECT_LE(b.last_ns, monoNs());
  EXPECT_TRUE(a.ack && a.fin && b.ack && b.fin);
  EXPECT_FALSE(a.rst || b.rst || a.closed || b.closed);
  EXPECT_TRUE(done().empty()) << "consumed once";
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, 7u);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_done, 1u);
  EXPECT_FALSE(tcpOnTun());
  // A retransmitted FIN after that is lbd's again (the old path: the VIP is in dsts). ICMP
  // errors from C (see tcpOnTun) may come first.
  const Bytes fin = segment(v6, false, 40100, 0x11);
  ASSERT_TRUE(net_.sendFrame(fin));
  std::optional<Bytes> got;
  while ((got = net_.readTun(kWait)) && l4Proto(*got) != IPPROTO_TCP) {
  }
  ASSERT_TRUE(got.has_value()) << "the retransmitted FIN did not reach the TUN device";
  EXPECT_EQ(*got, fin);
  EXPECT_TRUE(done().empty());
}

TEST_F(FlowOffloadTest, TcpV4HandshakeToTeardownForwarded) {
  tcpLifecycle(false);
}

TEST_F(FlowOffloadTest, TcpV6HandshakeToTeardownForwarded) {
  tcpLifecycle(true);
}

// Each forwarded segment ORs exactly its bits into the entry it matched: ACK iff ACK without
// SYN, FIN. The entry stays open and keeps forwarding (an RST finishes the conn: below).
TEST_F(FlowOffloadTest, ForwardedTcpFlagsAreRecordedPerEntry) {
  const struct {
    bool from_server;
    uint8_t flags;
    bool ack, fin, rst;
    const char* name;
  } cases[] = {
      {true, 0x12, false, false, false, "SYN-ACK"}, {false, 0x10, true, false, false, "ACK"},
      {false, 0x18, true, false, false, "PSH-ACK"}, {false, 0x01, false, true, false, "FIN"},
      {true, 0x11, true, true, false, "FIN-ACK"},
  };

  uint16_t cport = 41000;
  uint64_t forwarded = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(absl::StrCat(tc.from_server ? "server " : "client ", tc.name));
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out);
    auto build = [&](uint8_t flags) {
      return tc.from_server ? PacketBuilder::tcp(kRip, 8080, kFarClient, cport, flags).build()
                            : PacketBuilder::tcp(kFarClient, cport, kVip, 80, flags).build();
    };
    const uint16_t new_sport = tc.from_server ? 80 : cport;
    const uint16_t new_dport = tc.from_server ? cport : 8080;
    auto p = forwardTcp(tc.from_server, build(tc.flags), new_sport, new_dport);
    ASSERT_TRUE(p.has_value()) << "not forwarded";
    EXPECT_EQ(srcAddr(*p), ip(tc.from_server ? kVip : kFarClient));
    EXPECT_EQ(dstAddr(*p), ip(tc.from_server ? kFarClient : kRip));
    EXPECT_TRUE(checksumsValid(*p)) << hexDump(p->data(), p->size());
    const FlowKey& hit = tc.from_server ? out : in;
    const FlowKey& other = tc.from_server ? in : out;
    FlowState h = state(hit), o = state(other);
    EXPECT_EQ(h.packets, 1u);
    EXPECT_EQ(h.ack, tc.ack);
    EXPECT_EQ(h.fin, tc.fin);
    EXPECT_EQ(h.rst, tc.rst);
    EXPECT_FALSE(h.closed);
    EXPECT_EQ(o.packets, 0u);
    EXPECT_FALSE(o.ack || o.fin || o.rst || o.closed) << "the reverse entry is untouched";
    // Still open: a plain ACK after it is forwarded too and adds only ACK.
    ASSERT_TRUE(forwardTcp(tc.from_server, build(0x10), new_sport, new_dport).has_value());
    h = state(hit);
    EXPECT_EQ(h.packets, 2u);
    EXPECT_TRUE(h.ack);
    EXPECT_EQ(h.fin, tc.fin);
    EXPECT_EQ(h.rst, tc.rst);
    forwarded += 2;
  }
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, forwarded);
  EXPECT_EQ(c.flow_slow, 0u);
  EXPECT_EQ(c.flow_done, 0u);
  EXPECT_TRUE(done().empty());
  EXPECT_FALSE(tcpOnTun());
}

// An RST from either side, with or without ACK, in any state, is forwarded and finishes the
// conn at once: its record carries the RST on the direction that sent it, entries are gone.
TEST_F(FlowOffloadTest, RstIsForwardedAndFinishesTheConn) {
  const struct {
    bool from_server;
    uint8_t flags;
    bool data_first;  // established with data both ways first; else right after the SYN
    const char* name;
  } cases[] = {
      {false, 0x04, false, "client RST after the SYN"},
      {true, 0x14, false, "server RST-ACK refusing the SYN"},
      {false, 0x14, true, "client RST-ACK mid-conn"},
      {true, 0x04, true, "server RST mid-conn"},
  };

  uint16_t cport = 44000;
  uint64_t n = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    FlowKey in, out;
    const uint64_t cookie = 1000 + n;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out, cookie);
    uint64_t in_pkts = 0, out_pkts = 0;
    if (tc.data_first) {
      forwardSeg(false, true, cport, 0x12);
      forwardSeg(false, false, cport, 0x18);
      forwardSeg(false, true, cport, 0x18);
      in_pkts = 1;
      out_pkts = 2;
    }
    forwardSeg(false, tc.from_server, cport, tc.flags);
    (tc.from_server ? out_pkts : in_pkts) += 1;
    ++n;
    EXPECT_TRUE(gone(in));
    EXPECT_TRUE(gone(out));
    std::vector<FlowDone> d = done();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].cookie, cookie);
    const FlowState& rst_side = tc.from_server ? d[0].out : d[0].in;
    const FlowState& other = tc.from_server ? d[0].in : d[0].out;
    EXPECT_TRUE(rst_side.rst);
    EXPECT_FALSE(other.rst);
    EXPECT_FALSE(rst_side.fin || other.fin || rst_side.closed || other.closed);
    EXPECT_EQ(d[0].in.packets, in_pkts);
    EXPECT_EQ(d[0].out.packets, out_pkts);
    EXPECT_EQ(counters().flow_done, n);
  }
  EXPECT_EQ(counters().flow_slow, 0u);
  EXPECT_FALSE(tcpOnTun());
}

// A full ring: the program forwards the RST but leaves the entries (with their RST) for lbd's
// periodic reads, pushing nothing. Once lbd consumed the ring, conns finish again.
TEST_F(FlowOffloadTest, FullDoneRingLeavesTheEntries) {
  constexpr uint32_t kRecord = 8 + sizeof(lb_bpf_flow_done);  // ring header + record
  constexpr uint32_t kFits = LB_BPF_DONE_BYTES / kRecord;
  constexpr uint32_t kConns = kFits + 50;
  auto w = redirect_->flowWriter();
  ASSERT_TRUE(w.ok()) << w.status();
  auto keys = [](uint32_t i) {
    const uint16_t cport = static_cast<uint16_t>(10000 + i);
    return std::pair<FlowKey, FlowKey>{{L4Proto::kTcp, ip(kFarClient), ip(kVip), cport, 80},
                                       {L4Proto::kTcp, ip(kRip), ip(kFarClient), 8080, cport}};
  };
  for (uint32_t i = 0; i < kConns; ++i) {
    auto [in, out] = keys(i);
    ASSERT_EQ(w->add(in, {in.saddr, ip(kRip), in.sport, 8080}, out, i, false), 0);
    ASSERT_EQ(w->add(out, {ip(kVip), in.saddr, 80, in.sport}, in, i, true), 0);
  }
  for (uint32_t i = 0; i < kConns; ++i) {
    ASSERT_TRUE(net_.sendFrame(
        PacketBuilder::tcp(kFarClient, keys(i).first.sport, kVip, 80, 0x04).build()));
  }
  for (int t = 0; t < 500 && counters().flow_forwarded < kConns; ++t)
    usleep(10'000);
  IngressRedirectCounters c = counters();
  ASSERT_EQ(c.flow_forwarded, kConns) << "every RST is forwarded, ring full or not";
  EXPECT_EQ(c.flow_done, kFits);
  uint32_t left = 0, last_left = 0;
  for (uint32_t i = 0; i < kConns; ++i) {
    auto [in, out] = keys(i);
    auto s = redirect_->flowState(in);
    if (s.ok()) {
      EXPECT_TRUE(s->rst);
      EXPECT_TRUE(redirect_->flowState(out).ok());
      ++left;
      last_left = i;
    } else {
      EXPECT_TRUE(gone(out));
    }
  }
  EXPECT_EQ(left, kConns - kFits);
  std::vector<FlowDone> d = done();
  EXPECT_EQ(d.size(), kFits);
  // Room again: the next RST of a conn left behind finishes it.
  ASSERT_TRUE(net_.sendFrame(
      PacketBuilder::tcp(kFarClient, keys(last_left).first.sport, kVip, 80, 0x04).build()));
  for (int t = 0; t < 200 && counters().flow_done == kFits; ++t)
    usleep(10'000);
  d = done();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cookie, last_left);
  EXPECT_EQ(d[0].in.packets, 2u);
  EXPECT_TRUE(gone(keys(last_left).first));
}

// Closes the program does not finish: the entries stay (flags recorded) for lbd's periodic
// reads, and no record is pushed. The last ACK must come from a direction that sent its FIN,
// after the other direction's FIN, and carry neither FIN nor SYN.
TEST_F(FlowOffloadTest, CloseWithoutASeparateLastAckLeavesTheEntries) {
  const struct {
    std::vector<std::pair<bool, uint8_t>> segs;  // (from_server, flags)
    const char* name;
  } cases[] = {
      // Both FINs; the final ACK is never sent (or takes another path).
      {{{true, 0x18}, {false, 0x11}, {true, 0x11}}, "both FINs, no last ACK"},
      // One side closed; the other keeps ACKing and sending data.
      {{{false, 0x11}, {true, 0x10}, {true, 0x18}, {false, 0x10}}, "half-closed"},
      // A side ACKs after its own FIN, but the other side's FIN has not come.
      {{{true, 0x11}, {true, 0x10}, {false, 0x10}}, "ACK after own FIN only"},
      // The second FIN carries the ACK (FIN-ACK is not the last ACK).
      {{{false, 0x11}, {true, 0x11}, {false, 0x11}}, "FIN-ACK retransmitted"},
  };

  uint16_t cport = 45000;
  uint64_t fwd = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out, 7);
    for (const auto& [from_server, flags] : tc.segs) {
      forwardSeg(false, from_server, cport, flags);
      ++fwd;
    }
    FlowState a = state(in), b = state(out);
    EXPECT_EQ(a.packets + b.packets, tc.segs.size());
    EXPECT_FALSE(a.rst || b.rst || a.closed || b.closed);
    EXPECT_TRUE(done().empty());
  }
  IngressRedirectCounters c = counters();
  EXPECT_EQ(c.flow_forwarded, fwd);
  EXPECT_EQ(c.flow_done, 0u);
  EXPECT_FALSE(tcpOnTun());
}

// A SYN without ACK (a new connection on the tuple, or the client retransmitting its SYN)
// closes both directions and takes the old path, as do later packets of either direction.
TEST_F(FlowOffloadTest, SynWithoutAckClosesBothDirections) {
  uint16_t cport = 42000;
  uint64_t slow = 0;
  for (bool after_data : {false, true}) {
    SCOPED_TRACE(after_data ? "after data" : "retransmitted SYN");
    FlowKey in, out;
    addNat(L4Proto::kTcp, ip(kFarClient), ++cport, ip(kVip), 80, ip(kRip), 8080, &in, &out);
    uint64_t fwd = 0;
    if (after_data) {
      ASSERT_TRUE(
          forwardTcp(false,
                     PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x18).payload("a").build(),
                     cport, 8080)
              .has_value());
      fwd = 1;
    }
    EXPECT_FALSE(state(in).closed);
    expectOldPath(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x02).build());
    FlowState a = state(in), b = state(out);
    EXPECT_TRUE(a.closed);
    EXPECT_TRUE(b.closed) << "the reverse entry closes with it";
    EXPECT_FALSE(a.fin || a.rst || b.ack || b.fin || b.rst) << "the SYN records nothing else";
    EXPECT_EQ(a.ack, after_data);
    expectOldPath(PacketBuilder::tcp(kFarClient, cport, kVip, 80, 0x10).payload("b").build());
    // The server's SYN-ACK is not the program's either (no dsts/replies match here: the kernel).
    ASSERT_TRUE(
        net_.sendFrameFromServer(PacketBuilder::tcp(kRip, 8080, kFarClient, cport, 0x12).build()));
    slow += 3;
    for (int i = 0; i < 100 && counters().flow_slow < slow; ++i)
      usleep(10'000);
    EXPECT_EQ(counters().flow_slow, slow);
    EXPECT_EQ(state(in).packets, fwd);
    EXPECT_EQ(state(out).packets, 0u);
    EXPECT_FALSE(state(out).ack);
  }
}

}  // namespace lb::io::flow_offload_test
