// SPDX-License-Identifier: Apache-2.0
// The defence strategies (ip_vs_ctl.c update_defense_level, ip_vs_todrop, ip_vs_random_dropentry)
// against the conn table's fill level: the pure level rule, drop_packet's exact drop sequence,
// secure_tcp's state table, and runDefenseTick's drop_entry.
#include <string>
#include <vector>

#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";

Sysctls sysctls(uint32_t drop_entry, uint32_t drop_packet, uint32_t secure_tcp) {
  Sysctls s;
  s.drop_entry = drop_entry;
  s.drop_packet = drop_packet;
  s.secure_tcp = secure_tcp;
  return s;
}

// capacity 1600: amemthresh = 100 free slots; under pressure from 1501 entries on.
TEST(DefenseLevelTest, OffDoesNothingEvenWhenFull) {
  DefenseLevel l = defenseLevel(Sysctls(), 1600, 1600);
  EXPECT_TRUE(l.nomem);
  EXPECT_EQ(l.drop_rate, 0u);
  EXPECT_FALSE(l.secure_tcp);
  EXPECT_FALSE(l.drop_entry);
}

TEST(DefenseLevelTest, AutomaticDropRateIsThreshOverThreshMinusAvailable) {
  for (uint32_t mode : {1u, 2u}) {
    Sysctls s = sysctls(0, mode, 0);
    EXPECT_EQ(defenseLevel(s, 0, 1600).drop_rate, 0u);
    EXPECT_FALSE(defenseLevel(s, 1500, 1600).nomem);  // available 100 == amemthresh
    EXPECT_EQ(defenseLevel(s, 1500, 1600).drop_rate, 0u);
    EXPECT_TRUE(defenseLevel(s, 1501, 1600).nomem);
    EXPECT_EQ(defenseLevel(s, 1501, 1600).drop_rate, 100u);  // 100 / (100 - 99)
    EXPECT_EQ(defenseLevel(s, 1550, 1600).drop_rate, 2u);    // 100 / 50
    EXPECT_EQ(defenseLevel(s, 1566, 1600).drop_rate, 1u);    // 100 / 66
    EXPECT_EQ(defenseLevel(s, 1600, 1600).drop_rate, 1u);    // full: every new conn
    EXPECT_EQ(defenseLevel(s, 1700, 1600).drop_rate, 1u);    // (cannot happen) clamped
  }
}

TEST(DefenseLevelTest, ModeThreeUsesAmDroprateAtAnyFill) {
  Sysctls s = sysctls(0, 3, 0);
  s.am_droprate = 7;
  EXPECT_EQ(defenseLevel(s, 0, 1600).drop_rate, 7u);
  EXPECT_FALSE(defenseLevel(s, 0, 1600).nomem);
  EXPECT_EQ(defenseLevel(s, 1600, 1600).drop_rate, 7u);
}

TEST(DefenseLevelTest, SecureTcpAndDropEntryFollowTheSameRule) {
  for (uint32_t mode : {1u, 2u}) {
    EXPECT_FALSE(defenseLevel(sysctls(mode, 0, mode), 1500, 1600).secure_tcp);
    EXPECT_FALSE(defenseLevel(sysctls(mode, 0, mode), 1500, 1600).drop_entry);
    EXPECT_TRUE(defenseLevel(sysctls(mode, 0, mode), 1501, 1600).secure_tcp);
    EXPECT_TRUE(defenseLevel(sysctls(mode, 0, mode), 1501, 1600).drop_entry);
  }
  EXPECT_TRUE(defenseLevel(sysctls(3, 0, 3), 0, 1600).secure_tcp);
  EXPECT_TRUE(defenseLevel(sysctls(3, 0, 3), 0, 1600).drop_entry);
  EXPECT_FALSE(defenseLevel(sysctls(0, 0, 0), 1600, 1600).secure_tcp);
}

TEST(DefenseLevelTest, TinyTableHasNoThreshold) {
  // capacity / 16 == 0: never under pressure, so automatic modes never engage.
  DefenseLevel l = defenseLevel(sysctls(1, 1, 1), 10, 10);
  EXPECT_FALSE(l.nomem);
  EXPECT_EQ(l.drop_rate, 0u);
  EXPECT_FALSE(l.secure_tcp);
  EXPECT_FALSE(l.drop_entry);
}

// 64 entries: amemthresh = 4, under pressure from 61 entries on.
class DefenseTest : public PipelineFixture {
 protected:
  DefenseTest() : PipelineFixture(64) {}

  void SetUp() override {
    addService(tcpKey(kVip, 80));
    addDest(tcpKey(kVip, 80), dest(kRs1, 8080, FwdMethod::kMasq));
    addService(udpKey(kVip, 53), "rr", kSvcOnePacket);  // one-packet: leaves no conn behind
    addDest(udpKey(kVip, 53), dest(kRs1, 53, FwdMethod::kMasq));
    d_ = destId(tcpKey(kVip, 80), kRs1, 8080);
  }

  // Client ports are 100 + n (port 20 would be FTP data, never scheduled).
  Result syn(uint16_t n) {
    return send(PacketBuilder::tcp(kClient, port(n), kVip, 80, kTcpSyn).build());
  }

  Result ack(uint16_t n) {
    return send(PacketBuilder::tcp(kClient, port(n), kVip, 80, kTcpAck).build());
  }

  std::string stateOfN(uint16_t n) const { return stateOf(kClient, port(n)); }

  static uint16_t port(uint16_t n) { return static_cast<uint16_t>(100 + n); }

  Result dns(uint16_t n) {
    return send(PacketBuilder::udp(kClient, port(n), kVip, 53).payload("q").build());
  }

  // "F" forwarded, "D" dropped by the defence, "?" anything else.
  static char mark(const Result& r) {
    if (r.verdict == Verdict::kForward)
      return 'F';
    return r.reason == DropReason::kDefense ? 'D' : '?';
  }

  DestId d_ = kNoDest;
};

TEST_F(DefenseTest, DropPacketAlwaysDropsFirstThenEveryAmDroprateth) {
  ASSERT_EQ(syn(999).verdict, Verdict::kForward);  // before the defence: a conn to hit
  Sysctls s = sysctls(0, 3, 0);
  s.am_droprate = 5;
  setSysctls(s);
  std::string got;
  for (uint16_t p = 1; p <= 12; ++p) {
    got += mark(syn(static_cast<uint16_t>(1000 + p)));
    // Conn hits and packets for no service never reach ip_vs_todrop.
    Result hit = ack(999);
    EXPECT_EQ(hit.verdict, Verdict::kForward);
    EXPECT_EQ(send(PacketBuilder::tcp(kClient, 5, kVip, 81, kTcpSyn).build()).verdict,
              Verdict::kToHost);
  }
  // drop_counter starts at 0: the first new conn is dropped, then every 5th.
  EXPECT_EQ(got, "DFFFFDFFFFDF");
  EXPECT_EQ(drops(DropReason::kDefense), 3u);
  EXPECT_EQ(conns().size(), 10u);
  EXPECT_EQ(pipe_->defense().drop_rate, 5u);
}

TEST_F(DefenseTest, DropPacketAutomaticFollowsTheTableFill) {
  setSysctls(sysctls(0, 1, 0));
  for (uint16_t p = 1; p <= 60; ++p)
    ASSERT_EQ(syn(p).verdict, Verdict::kForward) << p;  // at most 59 entries seen: no pressure
  std::string got;
  for (uint16_t p = 0; p < 5; ++p)
    got += mark(dns(p));  // 60 entries, 4 free == amemthresh: still no pressure
  EXPECT_EQ(got, "FFFFF");
  EXPECT_FALSE(pipe_->defense().nomem);

  EXPECT_EQ(mark(syn(61)), 'F');  // sees 60 entries
  // Sees 61 (3 free): rate 4 / (4 - 3) = 4, drop_counter reset to 4 -> 3: passes.
  EXPECT_EQ(mark(syn(62)), 'F');
  EXPECT_EQ(pipe_->defense().drop_rate, 4u);
  // 62 entries (2 free): rate 2; the counter is only reset once a second: 3 -> 2, 1, 0 (drop,
  // back to the rate 2), 1, 0 (drop).
  got.clear();
  for (uint16_t p = 10; p < 15; ++p)
    got += mark(dns(p));
  EXPECT_EQ(got, "FFDFD");
  EXPECT_EQ(pipe_->defense().drop_rate, 2u);
  EXPECT_TRUE(pipe_->defense().nomem);
  EXPECT_EQ(mark(dns(15)), 'F');  // counter 2 -> 1
  // A second later the counter is reset to the rate (2 -> 1 instead of 1 -> 0): the kernel's
  // defense_work resets it every second, so below `rate` new conns a second nothing drops.
  clock_.advance(seconds(1));
  EXPECT_EQ(mark(dns(16)), 'F');
  EXPECT_EQ(mark(syn(63)), 'D');  // 1 -> 0
  EXPECT_EQ(drops(DropReason::kDefense), 3u);
  EXPECT_EQ(conns().size(), 62u);

  // Mode 2 (the kernel's "automatic, currently active") behaves the same; mode 0 stops it.
  setSysctls(sysctls(0, 2, 0));
  EXPECT_EQ(mark(dns(20)), 'F');
  EXPECT_EQ(mark(dns(21)), 'D');
  setSysctls(sysctls(0, 0, 0));
  got.clear();
  for (uint16_t p = 30; p < 34; ++p)
    got += mark(dns(p));
  EXPECT_EQ(got, "FFFF");
  EXPECT_EQ(pipe_->defense().drop_rate, 0u);
}

TEST_F(DefenseTest, SecureTcpAlwaysHoldsNatConnsInSynRecvUntilTheServerAnswers) {
  // tcp_states_dos: a client ACK in SYN_RECV stays SYN_RECV (tcp_states gives ESTABLISHED).
  setSysctls(sysctls(0, 0, 3));
  syn(1000);
  ack(1000);
  EXPECT_EQ(stateOfN(1000), "SYN_RECV");
  // The server's SYN-ACK moves SYN_RECV to SYNACK, its ACK to ESTABLISHED.
  send(PacketBuilder::tcp(kRs1, 8080, kClient, port(1000), kTcpSyn | kTcpAck).build());
  EXPECT_EQ(stateOfN(1000), "SYNACK");
  send(PacketBuilder::tcp(kRs1, 8080, kClient, port(1000), kTcpAck).build());
  EXPECT_EQ(stateOfN(1000), "ESTABLISHED");

  setSysctls(sysctls(0, 0, 0));
  syn(1001);
  ack(1001);
  EXPECT_EQ(stateOfN(1001), "ESTABLISHED");
}

TEST_F(DefenseTest, SecureTcpAutomaticOnlyUnderPressure) {
  // Mode 2 without pressure is the normal table (the kernel would flip it back to 1).
  setSysctls(sysctls(0, 0, 2));
  syn(1);
  ack(1);
  EXPECT_EQ(stateOfN(1), "ESTABLISHED");
  EXPECT_FALSE(pipe_->defense().secure_tcp);
  for (uint16_t p = 2; p <= 61; ++p)
    ASSERT_EQ(syn(p).verdict, Verdict::kForward);
  ack(61);  // sees 61 entries
  EXPECT_TRUE(pipe_->defense().secure_tcp);
  EXPECT_EQ(stateOfN(61), "SYN_RECV");
  setSysctls(sysctls(0, 0, 1));
  ack(60);
  EXPECT_EQ(stateOfN(60), "SYN_RECV");
}

TEST_F(DefenseTest, DropEntryTickIsANoOpWhenOffOrWithoutPressure) {
  for (uint16_t p = 1; p <= 10; ++p)
    syn(p);
  for (uint32_t mode : {0u, 1u, 2u}) {
    for (uint64_t i = 0; i < 100; ++i) {
      DefenseTickResult r = runDefenseTick(*conns_, sysctls(mode, 0, 0), clock_.now(), i);
      EXPECT_EQ(r.dropped, 0u);
      EXPECT_FALSE(r.level.drop_entry);
    }
  }
  EXPECT_EQ(conns().size(), 10u);
}

TEST_F(DefenseTest, DropEntryAlwaysFreesEmbryonicConnsAndKeepsFreshEstablishedOnes) {
  for (uint16_t p = 1; p <= 10; ++p)
    syn(p);
  for (uint16_t p = 20; p < 22; ++p) {
    syn(p);
    ack(p);
  }
  EXPECT_EQ(active(d_), 12);  // SYN_RECV and ESTABLISHED both count as active
  size_t dropped = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    DefenseTickResult r = runDefenseTick(*conns_, sysctls(3, 0, 0), clock_.now(), i * 7919);
    EXPECT_TRUE(r.level.drop_entry);
    dropped += r.dropped;
  }
  EXPECT_EQ(dropped, 10u);
  std::vector<Conn> left = conns();
  ASSERT_EQ(left.size(), 2u);
  for (const Conn& c : left)
    EXPECT_EQ(c.state, kTcpEstablished);
  EXPECT_EQ(active(d_), 2);  // freed conns were unbound from their dest
}

TEST_F(DefenseTest, DropEntryAutomaticStartsUnderPressure) {
  for (uint16_t p = 1; p <= 61; ++p)
    syn(p);
  size_t dropped = 0;
  for (uint64_t i = 0; i < 1000 && conns().size() >= 61; ++i) {
    DefenseTickResult r = runDefenseTick(*conns_, sysctls(1, 0, 0), clock_.now(), i * 7919);
    EXPECT_TRUE(r.level.drop_entry);
    dropped += r.dropped;
  }
  EXPECT_GT(dropped, 0u);
  // Once below the threshold it stops.
  size_t now_left = conns().size();
  EXPECT_LT(now_left, 61u);
  DefenseTickResult r = runDefenseTick(*conns_, sysctls(1, 0, 0), clock_.now(), 1);
  EXPECT_FALSE(r.level.drop_entry);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(conns().size(), now_left);
}

}  // namespace
}  // namespace lb::testing
