// SPDX-License-Identifier: Apache-2.0
// SYN cookies on their own (core/pipeline/syncookies.h): the governor's on / off with
// hysteresis on a fake clock, the embryonic TCP count it watches, and what the pipeline does
// with the published state for plain NAT, DR and UDP services under syncookies 0, 1 and 2.
#include "core/pipeline/syncookies.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/pipeline.h"
#include "core/pipeline/synproxy.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs = "198.18.1.10";
constexpr const char* kClient = "198.18.0.1";
constexpr Duration kSynRecv = std::chrono::seconds(60);

Sysctls mode(uint32_t syncookies, uint32_t threshold = 100) {
  Sysctls s;
  s.syncookies = syncookies;
  s.syncookies_threshold = threshold;
  return s;
}

using Change = SyncookieGovernor::Change;
using Sample = SyncookieGovernor::Sample;

constexpr ServiceId kA = 3, kB = 7;

TEST(SyncookieGovernorTest, OnAboveTheThresholdOffWithHysteresis) {
  // A flood on service A: A goes on and off with hysteresis; B (another eligible service, a
  // few real clients' embryonic conns) never comes on.
  FakeClock clock;
  SyncookieGovernor g(16);
  const Sysctls s = mode(1);
  auto tick = [&](size_t a, size_t b, Change want_a) {
    g.tick(Sample{}, clock.now());
    EXPECT_EQ(g.update(s, kA, a, kSynRecv, clock.now()), want_a);
    EXPECT_EQ(g.update(s, kB, b, kSynRecv, clock.now()), Change::kNone);
    g.sweep([](ServiceId id) { ADD_FAILURE() << "swept " << id; });
  };
  tick(100, 3, Change::kNone);
  EXPECT_FALSE(g.active(kA));
  tick(101, 3, Change::kOn);
  EXPECT_TRUE(g.active(kA));
  EXPECT_FALSE(g.active(kB));
  EXPECT_EQ(g.activeCount(), 1u);
  // Above half the threshold it stays on, however long.
  for (int i = 0; i < 60; ++i) {
    clock.advance(seconds(1));
    tick(51, 5, Change::kNone);
  }
  // Below half: on for the quiet period still, then off.
  clock.advance(seconds(1));
  tick(50, 5, Change::kNone);
  clock.advance(kSyncookiesQuietPeriod - seconds(2));
  tick(0, 0, Change::kNone);
  EXPECT_TRUE(g.active(kA));
  clock.advance(seconds(2));
  tick(0, 0, Change::kOff);
  EXPECT_FALSE(g.active(kA));
  EXPECT_FALSE(g.active(kB));
  EXPECT_EQ(g.activeCount(), 0u);
  // Off, half the threshold is not enough to go on again.
  tick(100, 0, Change::kNone);
}

TEST(SyncookieGovernorTest, StaysOnWhileCookiesGoUnreturned) {
  // A steady flood on A: once on, A's embryonic conns expire (no new one is made), but the
  // SYNs answered with cookies that nobody returns say the flood goes on: no flapping every
  // SYN_RECV timeout. They do not put B on (that takes B's own embryonic conns).
  FakeClock clock;
  SyncookieGovernor g(16);
  const Sysctls s = mode(1);
  g.tick(Sample{}, clock.now());
  EXPECT_EQ(g.update(s, kA, 101, kSynRecv, clock.now()), Change::kOn);
  uint64_t sent = 0, returned = 0;
  for (int i = 0; i < 300; ++i) {  // 5 minutes at 1,000 spoofed and 10 real SYNs a second
    clock.advance(millis(500));
    sent += 505;
    returned += 5;
    g.tick(Sample{sent, returned}, clock.now());
    ASSERT_EQ(g.update(s, kA, 0, kSynRecv, clock.now()), Change::kNone) << i;
    ASSERT_EQ(g.update(s, kB, 60, kSynRecv, clock.now()), Change::kNone) << i;
  }
  EXPECT_GT(g.unreturnedRate(), 900u);
  EXPECT_FALSE(g.active(kB));
  // Real clients alone (every cookie returned): off after the quiet period.
  for (int i = 0; i < 30 && g.active(kA); ++i) {
    clock.advance(millis(500));
    sent += 5;
    returned += 5;
    g.tick(Sample{sent, returned}, clock.now());
    (void)g.update(s, kA, 0, kSynRecv, clock.now());
  }
  EXPECT_FALSE(g.active(kA));
}

TEST(SyncookieGovernorTest, ModesZeroAndTwo) {
  FakeClock clock;
  SyncookieGovernor g(16);
  g.tick(Sample{}, clock.now());
  EXPECT_EQ(g.update(mode(0), kA, 100000, kSynRecv, clock.now()), Change::kNone);
  EXPECT_FALSE(g.active(kA));
  EXPECT_EQ(g.update(mode(2), kA, 0, kSynRecv, clock.now()), Change::kOn);
  EXPECT_EQ(g.update(mode(2), kB, 0, kSynRecv, clock.now()), Change::kOn);
  EXPECT_EQ(g.activeCount(), 2u);
  EXPECT_EQ(g.update(mode(0), kA, 0, kSynRecv, clock.now()), Change::kOff);
  EXPECT_EQ(g.activeCount(), 1u);
}

TEST(SyncookieGovernorTest, SweepTurnsOffServicesNotUpdated) {
  // A service on that is removed or no longer eligible (not updated in a tick) goes off.
  FakeClock clock;
  SyncookieGovernor g(16);
  g.tick(Sample{}, clock.now());
  EXPECT_EQ(g.update(mode(1), kA, 101, kSynRecv, clock.now()), Change::kOn);
  EXPECT_EQ(g.update(mode(1), kB, 101, kSynRecv, clock.now()), Change::kOn);
  g.sweep([](ServiceId id) { ADD_FAILURE() << "swept " << id; });
  g.tick(Sample{}, clock.now());
  EXPECT_EQ(g.update(mode(1), kB, 101, kSynRecv, clock.now()), Change::kNone);
  std::vector<ServiceId> off;
  g.sweep([&](ServiceId id) { off.push_back(id); });
  EXPECT_EQ(off, std::vector<ServiceId>{kA});
  EXPECT_FALSE(g.active(kA));
  EXPECT_TRUE(g.active(kB));
  EXPECT_EQ(g.activeCount(), 1u);
}

TEST(SyncookiesAcceptTest, WindowAfterTheLastCookie) {
  const MonoTime t = MonoTime::fromSeconds(1000);
  EXPECT_FALSE(syncookiesAccept(mode(1), false, std::nullopt, t));
  EXPECT_TRUE(syncookiesAccept(mode(1), true, std::nullopt, t));
  EXPECT_TRUE(syncookiesAccept(mode(2), false, std::nullopt, t));
  EXPECT_FALSE(syncookiesAccept(mode(0), true, t, t));
  EXPECT_TRUE(syncookiesAccept(mode(1), false, t, t + seconds(129)));
  EXPECT_FALSE(syncookiesAccept(mode(1), false, t, t + seconds(131)));
}

class SyncookiesPipelineTest : public PipelineFixture {
 protected:
  SyncookiesPipelineTest() : PipelineFixture(4096) {}

  void SetUp() override {
    addService(tcpKey(kVip, 80));
    addDest(tcpKey(kVip, 80), dest(kRs, 8080, FwdMethod::kMasq));
  }

  Result syn(const char* src, uint16_t port, uint16_t vport = 80) {
    return send(PacketBuilder::tcp(src, port, kVip, vport, kTcpSyn).seq(1000).build());
  }

  // A bare SYN was answered by lbd with a SYN-ACK (and made no conn).
  static bool answered(const Result& r) {
    return r.verdict == Verdict::kForward && r.out.size() >= 40 && r.out[33] == (kTcpSyn | kTcpAck);
  }

  uint32_t cookieOf(const Result& r) {
    return (uint32_t{r.out[24]} << 24) | (uint32_t{r.out[25]} << 16) | (uint32_t{r.out[26]} << 8) |
           r.out[27];
  }
};

TEST_F(SyncookiesPipelineTest, EmbryonicCountFollowsAssurance) {
  setSysctls(mode(0));
  EXPECT_EQ(syn(kClient, 40000).verdict, Verdict::kForward);
  EXPECT_EQ(syn(kClient, 40001).verdict, Verdict::kForward);
  EXPECT_EQ(conns_->embryonicTcp(), 2u);
  // The handshake's end (ESTABLISHED) takes the first out of the count at once.
  EXPECT_EQ(send(PacketBuilder::tcp(kRs, 8080, kClient, 40000, kTcpSyn | kTcpAck).build()).verdict,
            Verdict::kForward);
  EXPECT_EQ(conns_->embryonicTcp(), 2u);
  EXPECT_EQ(
      send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).seq(1001).ack(1).build()).verdict,
      Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(conns_->embryonicTcp(), 1u);
  clock_.advance(seconds(3600));
  (void)conns_->expire(clock_.now());
  EXPECT_EQ(conns_->embryonicTcp(), 0u);
}

TEST_F(SyncookiesPipelineTest, AutoAnswersOnlyWhileOnAndAcceptsCookiesAfter) {
  setSysctls(mode(1));
  // Off: a SYN is scheduled as always.
  Result r = syn(kClient, 40000);
  EXPECT_FALSE(answered(r));
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  // On: answered with a cookie, no conn.
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), true);
  r = syn(kClient, 40001);
  ASSERT_TRUE(answered(r));
  EXPECT_TRUE(checksumsValid(r.out));
  EXPECT_EQ(stateOf(kClient, 40001), "<none>");
  EXPECT_EQ(pipe_->counters().synproxy_syn_answered.value(), 1u);
  const uint32_t cookie = cookieOf(r);
  // The state goes off before the client's ACK comes: the cookie still opens the conn.
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), false);
  clock_.advance(seconds(5));
  r = send(PacketBuilder::tcp(kClient, 40001, kVip, 80, kTcpAck).seq(1001).ack(cookie + 1).build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(r.out[33], kTcpSyn);  // the SYN to the real server
  EXPECT_EQ(stateOf(kClient, 40001), "SYN_RECV");
  EXPECT_EQ(pipe_->counters().synproxy_conns_opened.value(), 1u);
  EXPECT_NE(connFrom(kClient, 40001).flags & kConnFSynproxy, 0u);
  // An ACK that returns no cookie keeps today's path (no conn, not a new conn).
  r = send(PacketBuilder::tcp(kClient, 40002, kVip, 80, kTcpAck).seq(1001).ack(77).build());
  EXPECT_EQ(r.reason, DropReason::kNotNewConn);
  // Off again: SYNs are scheduled.
  EXPECT_FALSE(answered(syn(kClient, 40003)));
  EXPECT_EQ(stateOf(kClient, 40003), "SYN_RECV");
}

TEST_F(SyncookiesPipelineTest, CookieAckReplacesAConnStillInItsHandshake) {
  // A conn made before the state went on; the client's SYN again is answered by the tc
  // program with a cookie (it sees no conn), and the client's ACK returns that cookie.
  setSysctls(mode(1));
  EXPECT_FALSE(answered(syn(kClient, 40010)));
  EXPECT_EQ(stateOf(kClient, 40010), "SYN_RECV");
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), true);
  const uint32_t cookie = synproxy::makeCookie(
      synproxy::secretOf(conns_->seed()), synproxy::CookieFlow{ip(kClient), ip(kVip), 40010, 80},
      1000, 0, clock_.now());
  Result r =
      send(PacketBuilder::tcp(kClient, 40010, kVip, 80, kTcpAck).seq(1001).ack(cookie + 1).build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(r.out[33], kTcpSyn);  // the cookie conn's SYN to the real server, not the ACK
  EXPECT_NE(connFrom(kClient, 40010).flags & kConnFSynproxy, 0u);
  EXPECT_EQ(pipe_->counters().conns_reused.value(), 1u);
  // A handshake's own last ACK (no cookie) goes through its conn as always.
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), false);
  (void)syn(kClient, 40012);
  EXPECT_EQ(
      send(PacketBuilder::tcp(kClient, 40012, kVip, 80, kTcpAck).seq(1001).ack(1).build()).verdict,
      Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40012), "ESTABLISHED");
}

TEST_F(SyncookiesPipelineTest, PipelineSeesTheThresholdBeforeTheGovernor) {
  // Between two housekeeping ticks the pipeline goes by the service's own count itself: a flood
  // on port 80 leaves port 5201 (another eligible NAT service) scheduling SYNs.
  addService(tcpKey(kVip, 5201));
  addDest(tcpKey(kVip, 5201), dest(kRs, 5201, FwdMethod::kMasq));
  setSysctls(mode(1, 3));
  EXPECT_FALSE(answered(syn(kClient, 39999, 5201)));
  for (uint16_t port = 40000; port < 40004; ++port)
    EXPECT_FALSE(answered(syn(kClient, port)));
  EXPECT_EQ(conns_->embryonicTcp(), 5u);
  EXPECT_EQ(conns_->embryonicTcp(svcId(tcpKey(kVip, 80))), 4u);
  EXPECT_EQ(conns_->embryonicTcp(svcId(tcpKey(kVip, 5201))), 1u);
  EXPECT_TRUE(answered(syn(kClient, 40004)));
  EXPECT_EQ(stateOf(kClient, 40004), "<none>");
  EXPECT_FALSE(answered(syn(kClient, 40005, 5201)));
  EXPECT_EQ(stateOf(kClient, 40005), "SYN_RECV");
  setSysctls(mode(0, 3));
  EXPECT_FALSE(answered(syn(kClient, 40006)));
}

TEST_F(SyncookiesPipelineTest, OnlyTheServiceOnAnswersWithCookies) {
  // The governor's state is per service: port 80 on, port 5201 (eligible NAT) scheduling.
  addService(tcpKey(kVip, 5201));
  addDest(tcpKey(kVip, 5201), dest(kRs, 5201, FwdMethod::kMasq));
  setSysctls(mode(1));
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), true);
  EXPECT_EQ(conns_->syncookiesServices(), 1u);
  EXPECT_TRUE(answered(syn(kClient, 40000)));
  EXPECT_EQ(stateOf(kClient, 40000), "<none>");
  EXPECT_FALSE(answered(syn(kClient, 40001, 5201)));
  EXPECT_EQ(stateOf(kClient, 40001), "SYN_RECV");
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), false);
  EXPECT_EQ(conns_->syncookiesServices(), 0u);
}

TEST_F(SyncookiesPipelineTest, ModeZeroNeverModeTwoAlways) {
  setSysctls(mode(0));
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), true);
  EXPECT_FALSE(answered(syn(kClient, 40000)));
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  setSysctls(mode(2));
  conns_->setSyncookiesActive(svcId(tcpKey(kVip, 80)), false);
  EXPECT_TRUE(answered(syn(kClient, 40001)));
  EXPECT_EQ(stateOf(kClient, 40001), "<none>");
}

TEST_F(SyncookiesPipelineTest, DrTunnelAndUdpNever) {
  addService(tcpKey(kVip, 81));
  addDest(tcpKey(kVip, 81), dest(kRs, 81, FwdMethod::kDirectRoute));
  addService(tcpKey(kVip, 82));  // a NAT and a DR real server: replies may bypass lbd
  addDest(tcpKey(kVip, 82), dest(kRs, 82, FwdMethod::kMasq));
  addDest(tcpKey(kVip, 82), dest("198.18.1.11", 82, FwdMethod::kDirectRoute));
  addService(udpKey(kVip, 53));
  addDest(udpKey(kVip, 53), dest(kRs, 53, FwdMethod::kMasq));
  setSysctls(mode(2));
  EXPECT_FALSE(answered(syn(kClient, 40000, 81)));
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_FALSE(answered(syn(kClient, 40001, 82)));
  EXPECT_EQ(stateOf(kClient, 40001), "SYN_RECV");
  Result r = send(PacketBuilder::udp(kClient, 40002, kVip, 53).payload("q").build());
  EXPECT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(pipe_->counters().synproxy_syn_answered.value(), 0u);
  // Full NAT is eligible.
  addService(tcpKey(kVip, 83), "rr", 0, 0, {ip("198.18.1.1")});
  addDest(tcpKey(kVip, 83), dest(kRs, 83, FwdMethod::kFullNat));
  EXPECT_TRUE(answered(syn(kClient, 40003, 83)));
}

}  // namespace
}  // namespace lb::testing
