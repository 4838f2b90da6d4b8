// SPDX-License-Identifier: Apache-2.0
// The master's send rules (ip_vs_sync_conn_needed, ip_vs_sync_conn's control chain) and the
// backup's insertion (ip_vs_proc_conn), with a fake clock and synthetic messages.
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/conn/conn_table.h"
#include "core/pipeline/conn_events.h"
#include "core/proto/proto.h"
#include "core/service/service_table.h"
#include "core/sync/sync_backup.h"
#include "core/sync/sync_master.h"
#include "tests/testlib/fake_clock.h"

namespace lb {
namespace {

using testing::FakeClock;

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

Conn tcpConn(uint8_t state, uint8_t old_state) {
  Conn c;
  c.af = Af::kInet;
  c.proto = L4Proto::kTcp;
  c.flags = kConnFInactive;
  c.caddr = ip("198.18.0.1");
  c.cport = 40000;
  c.vaddr = ip("198.18.100.1");
  c.vport = 80;
  c.daddr = ip("198.19.0.2");
  c.dport = 8080;
  c.timeout = seconds(900);
  c.state = state;
  c.old_state = old_state;
  return c;
}

// --- master ---

TEST(SyncMasterTest, TcpOnlySyncedStatesAndEveryPeriodAtThreshold) {
  FakeClock clock;
  SyncSysctls s;  // threshold 3, period 50
  Conn c = tcpConn(kTcpSynRecv, kTcpSynRecv);
  EXPECT_FALSE(syncConnNeeded(c, 3, s, clock.now()));  // SYN_RECV is never synced
  c = tcpConn(kTcpEstablished, kTcpEstablished);
  std::vector<uint32_t> sent;
  for (uint32_t pkts = 1; pkts <= 110; ++pkts) {
    if (syncConnNeeded(c, pkts, s, clock.now()))
      sent.push_back(pkts);
  }
  EXPECT_EQ(sent, (std::vector<uint32_t>{3, 53, 103}));
}

TEST(SyncMasterTest, StateChangeOtherThanEstablishedIsSentAtOnce) {
  FakeClock clock;
  SyncSysctls s;
  Conn c = tcpConn(kTcpFinWait, kTcpEstablished);
  EXPECT_TRUE(syncConnNeeded(c, 7, s, clock.now()));  // forced: pkts does not matter
  EXPECT_EQ(c.old_state, kTcpFinWait);
  EXPECT_FALSE(syncConnNeeded(c, 8, s, clock.now()));  // no change any more
  c.state = kTcpTimeWait;
  EXPECT_TRUE(syncConnNeeded(c, 9, s, clock.now()));
  c.state = kTcpClose;
  EXPECT_TRUE(syncConnNeeded(c, 10, s, clock.now()));
  c.state = kTcpCloseWait;
  EXPECT_TRUE(syncConnNeeded(c, 11, s, clock.now()));
  // Becoming ESTABLISHED is not forced: it waits for pkts % period == threshold.
  c = tcpConn(kTcpEstablished, kTcpSynRecv);
  EXPECT_FALSE(syncConnNeeded(c, 1, s, clock.now()));
  EXPECT_EQ(c.old_state, kTcpSynRecv);  // still pending
  EXPECT_TRUE(syncConnNeeded(c, 3, s, clock.now()));
  EXPECT_EQ(c.old_state, kTcpEstablished);
}

TEST(SyncMasterTest, SctpStates) {
  FakeClock clock;
  SyncSysctls s;
  Conn c = tcpConn(kSctpCookieEchoed, kSctpCookieEchoed);
  c.proto = L4Proto::kSctp;
  EXPECT_FALSE(syncConnNeeded(c, 3, s, clock.now()));
  c.state = kSctpEstablished;
  EXPECT_FALSE(syncConnNeeded(c, 4, s, clock.now()));  // not forced
  EXPECT_TRUE(syncConnNeeded(c, 3, s, clock.now()));
  c.state = kSctpShutdownSent;
  EXPECT_TRUE(syncConnNeeded(c, 4, s, clock.now()));  // forced
  c.state = kSctpClosed;
  EXPECT_TRUE(syncConnNeeded(c, 5, s, clock.now()));
}

TEST(SyncMasterTest, UdpByPacketCountOnly) {
  FakeClock clock;
  SyncSysctls s;
  Conn c = tcpConn(kUdpStateNormal, kUdpStateNormal);
  c.proto = L4Proto::kUdp;
  EXPECT_FALSE(syncConnNeeded(c, 1, s, clock.now()));
  EXPECT_TRUE(syncConnNeeded(c, 3, s, clock.now()));
  EXPECT_TRUE(syncConnNeeded(c, 53, s, clock.now()));
}

TEST(SyncMasterTest, TemplatesSkipThePacketTest) {
  FakeClock clock;
  SyncSysctls s;
  Conn t = tcpConn(kTemplateNone, kTemplateNone);
  t.flags = kConnFTemplate;
  t.timeout = seconds(360);
  for (uint32_t pkts = 1; pkts < 6; ++pkts)
    EXPECT_TRUE(syncConnNeeded(t, pkts, s, clock.now())) << pkts;
}

TEST(SyncMasterTest, PeriodZeroSyncsOnceAtThreshold) {
  FakeClock clock;
  SyncSysctls s;
  s.sync_period = 0;
  Conn c = tcpConn(kTcpEstablished, kTcpEstablished);
  std::vector<uint32_t> sent;
  for (uint32_t pkts = 1; pkts <= 200; ++pkts) {
    if (syncConnNeeded(c, pkts, s, clock.now()))
      sent.push_back(pkts);
  }
  EXPECT_EQ(sent, (std::vector<uint32_t>{3}));
}

// sync_refresh_period: resend only when the reported expiry moved by the period (or half the
// timeout); with period 0 the packet count no longer matters.
TEST(SyncMasterTest, RefreshPeriod) {
  FakeClock clock;
  SyncSysctls s;
  s.sync_period = 0;
  s.sync_refresh_period_s = 10;
  Conn c = tcpConn(kTcpEstablished, kTcpEstablished);
  EXPECT_TRUE(syncConnNeeded(c, 100, s, clock.now()));
  clock.advance(seconds(5));
  EXPECT_FALSE(syncConnNeeded(c, 101, s, clock.now()));
  clock.advance(seconds(5));
  EXPECT_TRUE(syncConnNeeded(c, 102, s, clock.now()));
  // A timeout change moves the expiry too: 900 -> 120 s (FIN_WAIT is forced anyway; use UDP).
  Conn u = tcpConn(kUdpStateNormal, kUdpStateNormal);
  u.proto = L4Proto::kUdp;
  u.timeout = seconds(300);
  EXPECT_TRUE(syncConnNeeded(u, 1, s, clock.now()));
  EXPECT_FALSE(syncConnNeeded(u, 2, s, clock.now()));
  u.timeout = seconds(100);
  EXPECT_TRUE(syncConnNeeded(u, 3, s, clock.now()));
}

// sync_retries: within the refresh window, up to `retries` resends, each refresh/8 apart.
TEST(SyncMasterTest, RetriesEveryEighthOfTheRefreshPeriod) {
  FakeClock clock;
  SyncSysctls s;
  s.sync_period = 0;
  s.sync_refresh_period_s = 80;
  s.sync_retries = 2;
  Conn c = tcpConn(kTcpEstablished, kTcpEstablished);
  ASSERT_TRUE(syncConnNeeded(c, 1, s, clock.now()));
  std::vector<int> sent;
  for (int t = 1; t <= 100; ++t) {
    clock.advance(seconds(1));
    if (syncConnNeeded(c, 1, s, clock.now()))
      sent.push_back(t);
  }
  // Retry 1 at 10 s (80/8 after the first), retry 2 at 20 s, then nothing until the expiry
  // moved by 80 s from the last send (20 + 80 = 100).
  EXPECT_EQ(sent, (std::vector<int>{10, 20, 100}));
}

TEST(SyncMasterTest, PersistModeOneePacketAndV0Ipv6) {
  FakeClock clock;
  SyncSysctls s;
  s.sync_persist_mode = true;
  Conn c = tcpConn(kTcpFinWait, kTcpEstablished);
  c.control = 5;  // under a persistence template
  EXPECT_FALSE(syncConnNeeded(c, 3, s, clock.now()));
  c.control = kNoConn;
  EXPECT_TRUE(syncConnNeeded(c, 3, s, clock.now()));

  SyncSysctls d;
  Conn u = tcpConn(kUdpStateNormal, kUdpStateNormal);
  u.proto = L4Proto::kUdp;
  u.flags |= kConnFOnePacket;
  EXPECT_FALSE(syncConnNeeded(u, 3, d, clock.now()));

  d.sync_version = 0;
  Conn v6 = tcpConn(kTcpFinWait, kTcpEstablished);
  v6.af = Af::kInet6;
  EXPECT_FALSE(syncConnNeeded(v6, 3, d, clock.now()));
  d.sync_version = 1;
  EXPECT_TRUE(syncConnNeeded(v6, 3, d, clock.now()));
}

// syncPktsInRange: the count at which one of the packets the fast path forwarded would have
// passed pkts % period == threshold (the latest), else the new count.
TEST(SyncMasterTest, PktsInRangeForFastPathReports) {
  SyncSysctls s;  // 3, 50
  EXPECT_EQ(syncPktsInRange(1, 5, s), 3u);
  EXPECT_EQ(syncPktsInRange(3, 5, s), 5u);  // 3 was this side of the range
  EXPECT_EQ(syncPktsInRange(5, 45, s), 45u);
  EXPECT_EQ(syncPktsInRange(45, 60, s), 53u);
  EXPECT_EQ(syncPktsInRange(1, 200, s), 153u);
  EXPECT_EQ(syncPktsInRange(7, 7, s), 7u);
  s.sync_period = 0;  // once, at the threshold
  EXPECT_EQ(syncPktsInRange(1, 5, s), 3u);
  EXPECT_EQ(syncPktsInRange(3, 500, s), 500u);
  // Every count the pipeline would have seen one by one agrees with the range's answer.
  s = SyncSysctls{};
  s.sync_threshold = 4;
  s.sync_period = 5;
  for (uint32_t b = 0; b < 40; ++b) {
    for (uint32_t a = b; a < 45; ++a) {
      uint32_t want = a;
      for (uint32_t p = b + 1; p <= a; ++p)
        if (p % 5 == 4)
          want = p;
      EXPECT_EQ(syncPktsInRange(b, a, s), want) << b << " " << a;
    }
  }
}

TEST(SyncMasterTest, SysctlValidation) {
  EXPECT_TRUE(validateSyncSysctls(SyncSysctls{}).ok());
  SyncSysctls s;
  s.sync_threshold = 50;
  EXPECT_FALSE(validateSyncSysctls(s).ok());
  s.sync_period = 0;  // "sync once": any threshold
  EXPECT_TRUE(validateSyncSysctls(s).ok());
  s = {};
  s.sync_retries = 4;
  EXPECT_FALSE(validateSyncSysctls(s).ok());
  s = {};
  s.sync_ports = 3;
  EXPECT_FALSE(validateSyncSysctls(s).ok());
  s.sync_ports = 64;
  EXPECT_TRUE(validateSyncSysctls(s).ok());
  s.sync_version = 2;
  EXPECT_FALSE(validateSyncSysctls(s).ok());
}

TEST(SyncMasterTest, SyncConnFromCopiesFieldsAndFullNat) {
  Conn c = tcpConn(kTcpEstablished, kTcpEstablished);
  c.flags = kConnFFullNat | kConnFInactive | kConnFHashed | kConnFAssured | kConnFSynproxy;
  c.laddr = ip("198.18.200.1");
  c.lport = 2048;
  c.fwmark = 9;
  SyncConn s = syncConnFrom(c, 1234);
  EXPECT_EQ(s.flags, kConnFInactive);  // no HASHED, no lbd bits, MASQ method bits
  EXPECT_EQ(s.protocol, 6);
  EXPECT_EQ(s.state, kTcpEstablished);
  EXPECT_EQ(s.cport, 40000);
  EXPECT_EQ(s.vport, 80);
  EXPECT_EQ(s.dport, 8080);
  EXPECT_EQ(s.fwmark, 9u);
  EXPECT_EQ(s.timeout_s, 900u);
  EXPECT_EQ(s.caddr, c.caddr);
  EXPECT_EQ(s.vaddr, c.vaddr);
  EXPECT_EQ(s.daddr, c.daddr);
  ASSERT_TRUE(s.has_lbd);
  EXPECT_EQ(s.lbd.flags, kSyncLbdFullNat | kSyncLbdSynproxy);
  EXPECT_EQ(s.lbd.laddr, c.laddr);
  EXPECT_EQ(s.lbd.lport, 2048);
  EXPECT_EQ(s.lbd.seq_delta, 1234u);
  Conn plain = tcpConn(kTcpEstablished, kTcpEstablished);
  EXPECT_FALSE(syncConnFrom(plain, 0).has_lbd);
}

// The control chain: the conn, then its template with pkts = ++template.in_pkts.
class SyncChainTest : public ::testing::Test {
 protected:
  SyncChainTest() : table_(ConnTable::Options{256, 4, 1}, nullptr) {}

  // A template and a conn under it; returns the conn's guard.
  ConnGuard makePair(uint8_t conn_state, uint8_t old_state) {
    ConnParams t;
    t.proto = L4Proto::kTcp;
    t.flags = kConnFTemplate | kConnFInactive;
    t.caddr = ip("198.18.0.0");
    t.vaddr = ip("198.18.100.1");
    t.vport = 80;
    t.daddr = ip("198.19.0.2");
    t.dport = 8080;
    t.timeout = seconds(360);
    ConnGuard tg = table_.create(t, clock_.now());
    tg->n_control.fetch_add(1);
    const uint32_t ti = tg.index();
    tg.release();
    Conn c = tcpConn(conn_state, old_state);
    ConnParams p = c;
    p.control = ti;
    ConnGuard g = table_.create(p, clock_.now());
    g->state = conn_state;
    g->old_state = old_state;
    return g;
  }

  FakeClock clock_;
  ConnTable table_;
};

TEST_F(SyncChainTest, ConnThenTemplate) {
  ConnGuard g = makePair(kTcpFinWait, kTcpEstablished);
  const uint32_t control = g->control;
  std::vector<SyncConn> out;
  syncConnChain(table_, g, 7, SyncSysctls{}, clock_.now(),
                [&](const SyncConn& s) { out.push_back(s); });
  EXPECT_FALSE(g);  // released
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].flags & kConnFTemplate, 0u);
  EXPECT_EQ(out[0].cport, 40000);
  EXPECT_EQ(out[1].flags & kConnFTemplate, kConnFTemplate);
  EXPECT_EQ(out[1].timeout_s, 360u);
  ConnGuard t = table_.getControl(control);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->in_pkts, 1u);
}

// v1 walks the chain even when the conn itself is not sent; v0 only after sending it.
TEST_F(SyncChainTest, V1WalksAlwaysV0OnlyAfterASend) {
  std::vector<SyncConn> out;
  auto emit = [&](const SyncConn& s) { out.push_back(s); };
  ConnGuard g = makePair(kTcpEstablished, kTcpEstablished);
  syncConnChain(table_, g, 4, SyncSysctls{}, clock_.now(), emit);  // conn not due
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].flags & kConnFTemplate, 0u);

  out.clear();
  SyncSysctls v0;
  v0.sync_version = 0;
  ConnGuard g2 = table_.findIn(
      ConnTuple{Af::kInet, L4Proto::kTcp, ip("198.18.0.1"), ip("198.18.100.1"), 40000, 80});
  ASSERT_TRUE(g2);
  syncConnChain(table_, g2, 4, v0, clock_.now(), emit);
  EXPECT_TRUE(out.empty());
}

// --- backup ---

class SyncBackupTest : public ::testing::Test {
 protected:
  SyncBackupTest()
      : events_(connEventsFor(services_.runtime())),
        table_(ConnTable::Options{1024, 4, 1}, &events_) {
    events_.attachTable(&table_);
    ServiceConfig svc;
    svc.key.af = Af::kInet;
    svc.key.proto = L4Proto::kTcp;
    svc.key.vaddr = ip("198.18.100.1");
    svc.key.vport = 80;
    svc.scheduler = "rr";
    key_ = svc.key;
    EXPECT_TRUE(services_.addService(svc).ok());
    EXPECT_TRUE(services_.addDest(key_, dest("198.19.0.2", 8080)).ok());
    EXPECT_TRUE(services_.addDest(key_, dest("198.19.0.3", 8080)).ok());
  }

  static DestConfig dest(const char* a, uint16_t port, FwdMethod fwd = FwdMethod::kMasq) {
    DestConfig d;
    d.addr = ip(a);
    d.port = port;
    d.fwd = fwd;
    return d;
  }

  // An ESTABLISHED, active TCP conn to 198.19.0.2:8080 as a v1 message carries it.
  static SyncConn msg() {
    SyncConn s;
    s.af = Af::kInet;
    s.protocol = 6;
    s.flags = 0;  // MASQ, active
    s.state = kTcpEstablished;
    s.caddr = ip("198.18.0.1");
    s.cport = 40000;
    s.vaddr = ip("198.18.100.1");
    s.vport = 80;
    s.daddr = ip("198.19.0.2");
    s.dport = 8080;
    s.timeout_s = 900;
    return s;
  }

  SyncApplyResult apply(const SyncConn& s) {
    return applySyncConn(table_, *services_.snapshot(), &services_.runtime(), s, sys_, clock_.now(),
                         counters_);
  }

  DestCounters& counters(const char* addr) {
    DestId id = *services_.destId(key_, ip(addr), 8080);
    return services_.runtime().destCounters()[id];
  }

  ConnGuard find(const SyncConn& s) {
    return table_.findIn(
        ConnTuple{s.af, static_cast<L4Proto>(s.protocol), s.caddr, s.vaddr, s.cport, s.vport});
  }

  FakeClock clock_;
  ServiceTable services_;
  PipelineConnEvents& events_;
  ConnTable table_;
  ServiceKey key_;
  SyncSysctls sys_;
  SyncBackupCounters counters_;
};

TEST_F(SyncBackupTest, CreatesBoundConnWithMessageStateAndTimeout) {
  EXPECT_EQ(apply(msg()), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.created, 1u);
  ConnGuard g = find(msg());
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, kTcpEstablished);
  EXPECT_EQ(g->old_state, kTcpEstablished);
  EXPECT_EQ(g->in_pkts, 3u);  // sync_threshold
  EXPECT_EQ(g->timeout, seconds(900));
  EXPECT_EQ(g->expires, clock_.now() + seconds(900));
  EXPECT_NE(g->flags & kConnFSync, 0u);
  EXPECT_EQ(g->flags & kConnFInactive, 0u);
  EXPECT_EQ(g->dest, *services_.destId(key_, ip("198.19.0.2"), 8080));
  EXPECT_EQ(g->svc, *services_.serviceId(key_));
  g.release();
  EXPECT_EQ(counters("198.19.0.2").active_conns.load(), 1);
  EXPECT_EQ(counters("198.19.0.2").inact_conns.load(), 0);
  // The timer is the message's: gone after 900 s, and the dest's count with it.
  clock_.advance(seconds(899));
  table_.expire(clock_.now());
  EXPECT_TRUE(find(msg()));
  clock_.advance(seconds(2));
  table_.expire(clock_.now());
  EXPECT_FALSE(find(msg()));
  EXPECT_EQ(counters("198.19.0.2").active_conns.load(), 0);
}

// BACKUP_MASK: only the forwarding method, NOOUTPUT, INACTIVE, SEQ, NO_CPORT and TEMPLATE are
// taken from the message.
TEST_F(SyncBackupTest, MasksFlags) {
  SyncConn s = msg();
  s.flags = 0xffff & ~(kConnFTemplate | kConnFNoCport | kConnFFwdMask);
  apply(s);
  ConnGuard g = find(s);
  ASSERT_TRUE(g);
  // (HASHED is the table's own: it hashed the new conn.)
  EXPECT_EQ(g->flags & ~(kConnFAssured | kConnFHashed),
            kConnFSync | kConnFNoOutput | kConnFInactive | kSyncConnFSeqMask);
}

TEST_F(SyncBackupTest, UpdateMovesActiveInactiveCountsAndTimer) {
  SyncConn s = msg();
  s.flags = kConnFInactive;
  s.state = kTcpSynRecv;  // as a v0 master could send it
  apply(s);
  EXPECT_EQ(counters("198.19.0.2").inact_conns.load(), 1);
  clock_.advance(seconds(30));
  s.flags = 0;
  s.state = kTcpEstablished;
  EXPECT_EQ(apply(s), SyncApplyResult::kUpdated);
  EXPECT_EQ(counters_.updated, 1u);
  EXPECT_EQ(counters("198.19.0.2").inact_conns.load(), 0);
  EXPECT_EQ(counters("198.19.0.2").active_conns.load(), 1);
  ConnGuard g = find(s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, kTcpEstablished);
  EXPECT_EQ(g->expires, clock_.now() + seconds(900));
  g.release();
  s.flags = kConnFInactive;
  s.state = kTcpFinWait;
  s.timeout_s = 120;
  apply(s);
  EXPECT_EQ(counters("198.19.0.2").inact_conns.load(), 1);
  EXPECT_EQ(counters("198.19.0.2").active_conns.load(), 0);
}

// The same client port now goes to another real server: an active message replaces the conn;
// an INACTIVE one is the old conn's expiry report and is ignored.
TEST_F(SyncBackupTest, ReplacedAndStaleMessages) {
  apply(msg());
  SyncConn other = msg();
  other.daddr = ip("198.19.0.3");
  other.flags = kConnFInactive;
  EXPECT_EQ(apply(other), SyncApplyResult::kIgnored);
  EXPECT_EQ(counters_.stale_ignored, 1u);
  other.flags = 0;
  EXPECT_EQ(apply(other), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.replaced, 1u);
  ConnGuard g = find(other);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->daddr, ip("198.19.0.3"));
  g.release();
  EXPECT_EQ(counters("198.19.0.2").active_conns.load(), 0);
  EXPECT_EQ(counters("198.19.0.3").active_conns.load(), 1);
}

// No such real server yet: the conn is created unbound, then bound by a later message once
// the server exists (ip_vs_try_bind_dest), and counted then.
TEST_F(SyncBackupTest, UnboundThenBoundLater) {
  SyncConn s = msg();
  s.daddr = ip("198.19.0.9");
  EXPECT_EQ(apply(s), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.unbound, 1u);
  {
    ConnGuard g = find(s);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->dest, kNoDest);
  }
  ASSERT_TRUE(services_.addDest(key_, dest("198.19.0.9", 8080)).ok());
  EXPECT_EQ(apply(s), SyncApplyResult::kUpdated);
  EXPECT_EQ(counters_.bound_later, 1u);
  ConnGuard g = find(s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->dest, *services_.destId(key_, ip("198.19.0.9"), 8080));
  g.release();
  EXPECT_EQ(counters("198.19.0.9").active_conns.load(), 1);
}

TEST_F(SyncBackupTest, TryBindDestOnItsOwn) {
  SyncConn s = msg();
  s.daddr = ip("198.19.0.9");
  apply(s);
  ConnGuard g = find(s);
  ASSERT_TRUE(g);
  EXPECT_FALSE(syncTryBindDest(*g, *services_.snapshot(), &services_.runtime()));
  g.release();
  ASSERT_TRUE(services_.addDest(key_, dest("198.19.0.9", 8080)).ok());
  g = find(s);
  EXPECT_TRUE(syncTryBindDest(*g, *services_.snapshot(), &services_.runtime()));
  EXPECT_FALSE(syncTryBindDest(*g, *services_.snapshot(), &services_.runtime()));  // bound
}

// A v0 message carries no timeout: the protocol's table for the state; templates 180 s.
TEST_F(SyncBackupTest, V0TimeoutsAndTemplates) {
  SyncConn s = msg();
  s.timeout_s = 0;
  s.state = kTcpFinWait;
  apply(s);
  {
    ConnGuard g = find(s);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->timeout, seconds(120));  // TCP FIN_WAIT's default
  }
  SyncConn t = msg();
  t.flags = kConnFTemplate | kConnFInactive;
  t.state = kTemplateNone;
  t.caddr = ip("198.18.0.0");
  t.cport = 0;
  t.timeout_s = 0;
  EXPECT_EQ(apply(t), SyncApplyResult::kCreated);
  ConnGuard tg = table_.findTemplate(
      ConnTuple{Af::kInet, L4Proto::kTcp, ip("198.18.0.0"), ip("198.18.100.1"), 0, 80});
  ASSERT_TRUE(tg);
  EXPECT_EQ(tg->timeout, seconds(180));
  EXPECT_EQ(tg->flags & kConnFAssured, 0u);
  tg.release();
  EXPECT_EQ(counters("198.19.0.2").persist_conns.load(), 1);
  // A second message updates the same template.
  t.timeout_s = 360;
  EXPECT_EQ(apply(t), SyncApplyResult::kUpdated);
  EXPECT_EQ(counters("198.19.0.2").persist_conns.load(), 1);
}

TEST_F(SyncBackupTest, PeDataIsSkipped) {
  SyncConn s = msg();
  s.pe_data = "call-id";
  s.pe_name = "sip";
  EXPECT_EQ(apply(s), SyncApplyResult::kIgnored);
  EXPECT_EQ(counters_.pe_unsupported, 1u);
  EXPECT_FALSE(find(s));
}

// Full NAT: the lbd option's laddr:lport is reserved in the service's pool, the conn answers
// replies addressed to it, and the pair goes back to the pool with the conn.
TEST_F(SyncBackupTest, FullNatKeepsLocalAddressAndPort) {
  ServiceConfig svc;
  svc.key.af = Af::kInet;
  svc.key.proto = L4Proto::kTcp;
  svc.key.vaddr = ip("198.18.100.2");
  svc.key.vport = 443;
  svc.scheduler = "rr";
  svc.local_addrs = {ip("198.18.200.1")};
  ASSERT_TRUE(services_.addService(svc).ok());
  ASSERT_TRUE(services_.addDest(svc.key, dest("198.19.0.4", 8443, FwdMethod::kFullNat)).ok());
  SyncConn s = msg();
  s.vaddr = svc.key.vaddr;
  s.vport = 443;
  s.daddr = ip("198.19.0.4");
  s.dport = 8443;
  s.has_lbd = true;
  s.lbd.flags = kSyncLbdFullNat;
  s.lbd.laddr = ip("198.18.200.1");
  s.lbd.lport = 5000;
  EXPECT_EQ(apply(s), SyncApplyResult::kCreated);
  {
    ConnGuard g = find(s);
    ASSERT_TRUE(g);
    EXPECT_NE(g->flags & kConnFFullNat, 0u);
    EXPECT_EQ(g->laddr, ip("198.18.200.1"));
    EXPECT_EQ(g->lport, 5000);
  }
  // The real server's reply: 198.19.0.4:8443 -> 198.18.200.1:5000.
  ConnGuard r = table_.findOut(
      ConnTuple{Af::kInet, L4Proto::kTcp, ip("198.19.0.4"), ip("198.18.200.1"), 8443, 5000});
  EXPECT_TRUE(r);
  r.release();
  const SnapService* ss =
      services_.snapshot()->findService(Af::kInet, L4Proto::kTcp, svc.key.vaddr, 443, 0);
  ASSERT_NE(ss, nullptr);
  ASSERT_NE(ss->laddr_pool, nullptr);
  EXPECT_EQ(ss->laddr_pool->inUse(), 1u);
  // A second conn claiming the same pair is refused.
  SyncConn dup = s;
  dup.cport = 40001;
  EXPECT_EQ(apply(dup), SyncApplyResult::kIgnored);
  EXPECT_EQ(counters_.laddr_unavailable, 1u);
  // Expiry gives the pair back.
  clock_.advance(seconds(901));
  table_.expire(clock_.now());
  EXPECT_EQ(ss->laddr_pool->inUse(), 0u);
}

// A fwmark service: found by the message's fwmark; a non-NAT dest is looked up with port 0
// first, then with the conn's dport (ip_vs_find_dest).
TEST_F(SyncBackupTest, FwmarkServiceDirectRoute) {
  ServiceConfig svc;
  svc.key.af = Af::kInet;
  svc.key.fwmark = 7;
  svc.scheduler = "rr";
  ASSERT_TRUE(services_.addService(svc).ok());
  ASSERT_TRUE(services_.addDest(svc.key, dest("198.19.0.5", 0, FwdMethod::kDirectRoute)).ok());
  SyncConn s = msg();
  s.vaddr = ip("198.18.100.7");
  s.vport = 22;
  s.daddr = ip("198.19.0.5");
  s.dport = 22;
  s.fwmark = 7;
  s.flags = kConnFNoOutput | static_cast<uint32_t>(FwdMethod::kDirectRoute);
  EXPECT_EQ(apply(s), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.unbound, 0u);
  ConnGuard g = find(s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->dest, *services_.destId(svc.key, ip("198.19.0.5"), 0));
  EXPECT_EQ(connFwd(*g), FwdMethod::kDirectRoute);
}

// End to end: a master's conn, through syncConnFrom, the encoder and the decoder, into the
// backup's table with the same fields.
TEST_F(SyncBackupTest, MasterToBackupThroughTheWire) {
  Conn c = tcpConn(kTcpEstablished, kTcpEstablished);
  c.flags = kConnFHashed;  // active, MASQ
  c.cport = 41000;
  std::vector<uint8_t> buf(1500);
  SyncMessageBuilder b(absl::MakeSpan(buf), 1472, 5);
  ASSERT_EQ(b.add(syncConnFrom(c, 0)), SyncMessageBuilder::AddResult::kAdded);
  SyncDecodeCounters dc;
  size_t n = decodeSyncMessage(
      b.bytes(), 5, [&](const SyncConn& s) { EXPECT_EQ(apply(s), SyncApplyResult::kCreated); }, dc);
  EXPECT_EQ(n, 1u);
  ConnGuard g = table_.findIn(ConnTuple{Af::kInet, L4Proto::kTcp, c.caddr, c.vaddr, 41000, 80});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->daddr, c.daddr);
  EXPECT_EQ(g->dport, c.dport);
  EXPECT_EQ(g->state, c.state);
  EXPECT_EQ(g->timeout, c.timeout);
  EXPECT_EQ(g->flags & (kConnFSync | kConnFInactive | kConnFFwdMask), kConnFSync);
}

}  // namespace
}  // namespace lb
