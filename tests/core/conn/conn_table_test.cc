// SPDX-License-Identifier: Apache-2.0
#include "core/conn/conn_table.h"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "tests/testlib/alloc_counter.h"
#include "tests/testlib/fake_clock.h"

namespace lb {
namespace {

using testing::FakeClock;

IpAddr v4(uint32_t a) {
  return IpAddr::v4(a);
}

const IpAddr kClient = v4(0xc6120001);  // 198.18.0.1
const IpAddr kVip = v4(0xc6126401);     // 198.18.100.1
const IpAddr kRs = v4(0xc6120101);      // 198.18.1.1
const IpAddr kLocal = v4(0xc6120201);   // 198.18.2.1

// Counts frees and remembers the last freed conn's identity; never allocates.
class CountingEvents : public ConnEvents {
 public:
  void onConnFreed(const Conn& c) noexcept override {
    freed.fetch_add(1, std::memory_order_relaxed);
    last_cport.store(c.cport, std::memory_order_relaxed);
    last_generation.store(c.generation, std::memory_order_relaxed);
    if (table != nullptr && c.control != kNoConn)
      table->nControl(c.control).fetch_sub(1);
  }

  std::atomic<int> freed{0};
  std::atomic<uint16_t> last_cport{0};
  std::atomic<uint32_t> last_generation{0};
  ConnTable* table = nullptr;
};

ConnParams natParams(uint16_t cport, uint32_t extra_flags = 0) {
  ConnParams p;
  p.af = p.daf = Af::kInet;
  p.proto = L4Proto::kTcp;
  p.caddr = kClient;
  p.cport = cport;
  p.vaddr = kVip;
  p.vport = 80;
  p.daddr = kRs;
  p.dport = 8080;
  p.flags = static_cast<uint32_t>(FwdMethod::kMasq) | extra_flags;
  p.dest = 3;
  p.svc = 1;
  return p;
}

ConnTuple inTuple(uint16_t cport, L4Proto proto = L4Proto::kTcp) {
  return ConnTuple{Af::kInet, proto, kClient, kVip, cport, 80};
}

ConnTuple replyTuple(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) {
  return ConnTuple{Af::kInet, L4Proto::kTcp, src, dst, sport, dport};
}

ConnTable::Options opts(size_t capacity, size_t shards = 4) {
  ConnTable::Options o;
  o.capacity = capacity;
  o.shards = shards;
  return o;
}

TEST(ConnTableTest, MemoryPerEntry) {
  ConnTable t(opts(1 << 16, 64), nullptr);
  std::printf("sizeof(Conn)=%zu bytes_per_entry=%zu\n", sizeof(Conn), t.bytesPerEntry());
  EXPECT_LE(t.bytesPerEntry(), 256u);
  EXPECT_EQ(t.bucketCount(), size_t{1} << 16);  // load factor 1, power of two per shard
  // The fields an in-lookup compares fit in the slab entry's first cache line (8 bytes of
  // links precede the Conn).
  static_assert(offsetof(ConnParams, vaddr) + sizeof(IpAddr) <= 64 - 8);
}

TEST(ConnTableTest, NatConnFoundInAndOut) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  uint32_t idx, gen;
  {
    ConnGuard g = t.create(natParams(40000), clock.now());
    ASSERT_TRUE(g);
    EXPECT_NE(g->flags & kConnFHashed, 0u);
    EXPECT_EQ(g->expires, clock.now() + seconds(3));
    idx = g.index();
    gen = g->generation;
  }
  {
    ConnGuard g = t.findIn(inTuple(40000));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.index(), idx);
    EXPECT_EQ(g->daddr, kRs);
  }
  EXPECT_FALSE(t.findIn(inTuple(40001)));
  EXPECT_FALSE(t.findIn(inTuple(40000, L4Proto::kUdp)));
  EXPECT_FALSE(t.findTemplate(inTuple(40000)));
  {
    ConnGuard g = t.findOut(replyTuple(kRs, 8080, kClient, 40000));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.index(), idx);
  }
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 8081, kClient, 40000)));
  EXPECT_FALSE(t.findOut(replyTuple(kVip, 80, kClient, 40000)));  // NAT: src must be RS
  {
    ConnGuard g = t.get(idx, gen);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->cport, 40000);
  }
  EXPECT_FALSE(t.get(idx, gen + 1));
  EXPECT_FALSE(t.get(9999, gen));
  EXPECT_EQ(t.stats().entries, 1u);
}

TEST(ConnTableTest, DirectRouteReplyMatchesVip) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  ConnParams p = natParams(40000, kConnFNoOutput);
  p.flags = (p.flags & ~kConnFFwdMask) | static_cast<uint32_t>(FwdMethod::kDirectRoute);
  p.dport = 80;
  ASSERT_TRUE(t.create(p, clock.now()));
  // ip_vs_conn_out_get: non-MASQ conns match src vaddr:vport.
  EXPECT_TRUE(t.findOut(replyTuple(kVip, 80, kClient, 40000)));
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 80, kClient, 40000)));
}

TEST(ConnTableTest, FullNatOutLookupByLocalAddress) {
  FakeClock clock;
  ConnTable t(opts(64, 8), nullptr);
  std::vector<uint32_t> idx;
  for (uint16_t i = 0; i < 20; ++i) {
    ConnParams p = natParams(static_cast<uint16_t>(40000 + i), kConnFFullNat);
    p.laddr = kLocal;
    p.lport = static_cast<uint16_t>(5000 + i);
    ConnGuard g = t.create(p, clock.now());
    ASSERT_TRUE(g);
    idx.push_back(g.index());
  }
  for (uint16_t i = 0; i < 20; ++i) {
    ConnGuard g = t.findOut(replyTuple(kRs, 8080, kLocal, static_cast<uint16_t>(5000 + i)));
    ASSERT_TRUE(g) << i;
    EXPECT_EQ(g.index(), idx[i]);
    EXPECT_EQ(g->cport, 40000 + i);
  }
  // The client's own address is not where full-NAT replies go.
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 8080, kClient, 40000)));
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 8081, kLocal, 5000)));
  // Still found by the client side.
  EXPECT_TRUE(t.findIn(inTuple(40005)));
  // Freed: both indexes forget it, and the slot is reusable.
  {
    ConnGuard g = t.findIn(inTuple(40005));
    t.expireNow(g);
    EXPECT_FALSE(g);
  }
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 8080, kLocal, 5005)));
  EXPECT_FALSE(t.findIn(inTuple(40005)));
  EXPECT_EQ(t.stats().entries, 19u);
}

TEST(ConnTableTest, NoCportFallback) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  ConnParams p = natParams(0, kConnFNoCport);
  uint32_t idx;
  {
    ConnGuard g = t.create(p, clock.now());
    ASSERT_TRUE(g);
    idx = g.index();
  }
  // Any client port finds the NO_CPORT entry when nothing exact exists.
  {
    ConnGuard g = t.findIn(inTuple(1234));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.index(), idx);
  }
  // An exact entry wins over the fallback.
  uint32_t exact;
  {
    ConnGuard g = t.create(natParams(1234), clock.now());
    exact = g.index();
  }
  {
    ConnGuard g = t.findIn(inTuple(1234));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.index(), exact);
  }
  // A cport-0 lookup only sees NO_CPORT entries (the kernel's (!p->cport) ^ (!NO_CPORT)).
  {
    ConnGuard g = t.findIn(inTuple(0));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.index(), idx);
  }
}

TEST(ConnTableTest, TemplatesOnlyByFindTemplate) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  ConnParams p = natParams(0, kConnFTemplate);
  p.caddr = v4(0xc6120000);  // masked client net
  ASSERT_TRUE(t.create(p, clock.now()));
  ConnTuple q{Af::kInet, L4Proto::kTcp, v4(0xc6120000), kVip, 0, 80};
  EXPECT_TRUE(t.findTemplate(q));
  EXPECT_FALSE(t.findIn(q));
  EXPECT_FALSE(t.findOut(replyTuple(kRs, 8080, v4(0xc6120000), 0)));
  // fwmark template: proto IPPROTO_IP, vaddr = the mark.
  ConnParams f = p;
  f.proto = L4Proto::kNone;
  f.vaddr = v4(7);
  f.vport = 0;
  f.fwmark = 7;
  ASSERT_TRUE(t.create(f, clock.now()));
  EXPECT_TRUE(t.findTemplate(ConnTuple{Af::kInet, L4Proto::kNone, v4(0xc6120000), v4(7), 0, 0}));
  EXPECT_FALSE(t.findTemplate(ConnTuple{Af::kInet, L4Proto::kTcp, v4(0xc6120000), v4(7), 0, 0}));
  EXPECT_EQ(t.stats().templates, 2u);
  EXPECT_EQ(t.stats().entries, 2u);
}

TEST(ConnTableTest, OnePacketConnsAreNotHashed) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(16), &ev);
  ConnGuard g = t.create(natParams(40000, kConnFOnePacket), clock.now());
  ASSERT_TRUE(g);
  EXPECT_EQ(g->flags & kConnFHashed, 0u);
  g.release();
  EXPECT_FALSE(t.findIn(inTuple(40000)));
  EXPECT_EQ(t.stats().entries, 1u);
  // Its timer still frees it if the owner forgot.
  EXPECT_EQ(t.expire(clock.now() + seconds(3)), 1u);
  EXPECT_EQ(t.stats().entries, 0u);
}

// A table full of assured conns refuses a new one (early drop finds nothing to take).
TEST(ConnTableTest, FullTableReturnsEmptyGuardAndCounts) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(4, 2), &ev);
  for (uint16_t i = 0; i < 4; ++i)
    ASSERT_TRUE(t.create(natParams(i + 1, kConnFAssured), clock.now()));
  EXPECT_FALSE(t.create(natParams(100), clock.now()));
  EXPECT_FALSE(t.create(natParams(101), clock.now()));
  ConnTableStats st = t.stats();
  EXPECT_EQ(st.entries, 4u);
  EXPECT_EQ(st.capacity, 4u);
  EXPECT_EQ(st.table_full, 2u);
  EXPECT_EQ(st.early_drops, 0u);
  {
    ConnGuard g = t.findIn(inTuple(2));
    t.expireNow(g);
  }
  EXPECT_EQ(ev.freed.load(), 1);
  EXPECT_TRUE(t.create(natParams(100, kConnFAssured), clock.now()));
  EXPECT_FALSE(t.create(natParams(101), clock.now()));
}

// A half-open TCP conn: created, then moved to SYN_RECV as the pipeline would.
void createHalfOpen(ConnTable& t, uint16_t cport, MonoTime now) {
  ConnGuard g = t.create(natParams(cport), now);
  ASSERT_TRUE(g) << cport;
  g->state = 3;  // SYN_RECV
  g.setTimeout(seconds(60), now);
}

// nf_conntrack early_drop: a full table admits a new conn by freeing the oldest unassured one.
TEST(ConnTableTest, FullTableEarlyDropsTheOldestHalfOpenConn) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(8, 1), &ev);
  for (uint16_t i = 1; i <= 8; ++i) {
    createHalfOpen(t, i, clock.now());
    clock.advance(std::chrono::milliseconds(10));
  }
  for (uint16_t i = 9; i <= 20; ++i) {
    createHalfOpen(t, i, clock.now());
    ASSERT_EQ(ev.last_cport.load(), i - 8) << "the oldest goes first";
    for (uint16_t k = 1; k <= i; ++k)
      EXPECT_EQ(static_cast<bool>(t.findIn(inTuple(k))), k > i - 8) << k;
  }
  ConnTableStats st = t.stats();
  EXPECT_EQ(st.entries, 8u);
  EXPECT_EQ(st.early_drops, 12u);
  EXPECT_EQ(st.table_full, 0u);
  EXPECT_EQ(ev.freed.load(), 12);
}

// Early drop never takes a template, an assured conn or an ESTABLISHED one, wherever they sit
// in creation order; once only those are left, a new conn is refused.
TEST(ConnTableTest, EarlyDropNeverTakesEstablishedAssuredOrTemplates) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(6, 2), &ev);
  ev.table = &t;
  ConnParams tp = natParams(0, kConnFTemplate);
  tp.caddr = v4(0xc6120009);
  ASSERT_TRUE(t.create(tp, clock.now()));  // an unassured template: the oldest entry
  tp.caddr = v4(0xc612000a);
  {
    ConnGuard g = t.create(tp, clock.now());
    ASSERT_TRUE(g);
    g->n_control.fetch_add(1);  // a template controlling a conn
  }
  {
    ConnGuard g = t.create(natParams(1), clock.now());
    g->state = 1;  // ESTABLISHED, whoever forgot the flag
  }
  ASSERT_TRUE(t.create(natParams(2, kConnFAssured), clock.now()));
  {
    ConnParams u = natParams(3, kConnFAssured);
    u.proto = L4Proto::kUdp;  // a UDP conn that saw a reply
    ASSERT_TRUE(t.create(u, clock.now()));
  }
  createHalfOpen(t, 4, clock.now());
  ASSERT_EQ(t.stats().entries, 6u);

  createHalfOpen(t, 5, clock.now());  // takes conn 4, the only unassured one
  EXPECT_FALSE(t.findIn(inTuple(4)));
  EXPECT_TRUE(t.findIn(inTuple(5)));
  createHalfOpen(t, 6, clock.now());  // takes conn 5
  EXPECT_FALSE(t.findIn(inTuple(5)));
  {
    // Conn 6 becomes assured: nothing is left to take.
    ConnGuard g = t.findIn(inTuple(6));
    g->state = 1;
    g->flags |= kConnFAssured;
  }
  EXPECT_FALSE(t.create(natParams(7), clock.now()));
  ConnTableStats st = t.stats();
  EXPECT_EQ(st.early_drops, 2u);
  EXPECT_EQ(st.table_full, 1u);
  EXPECT_EQ(st.templates, 2u);
  for (uint16_t k : {1, 2, 6})
    EXPECT_TRUE(t.findIn(inTuple(k))) << k;
  EXPECT_TRUE(t.findIn(ConnTuple{Af::kInet, L4Proto::kUdp, kClient, kVip, 3, 80}));
}

// An unassured UDP conn (no reply seen) is taken like a half-open TCP one; a conn assured
// under a guard leaves the list when the guard is released, and with it the embryonic TCP
// count (the SYN-cookie trigger).
TEST(ConnTableTest, EarlyDropTakesUnassuredUdpAndSkipsAssuredOnes) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(4, 1), &ev);
  {
    ConnGuard g = t.create(natParams(1), clock.now());
    EXPECT_EQ(t.stats().early_droppable, 1u);
    g->state = 1;
    g->flags |= kConnFAssured;  // assured after creation: leaves the list with the guard
  }
  EXPECT_EQ(t.stats().early_droppable, 0u);
  ConnParams u = natParams(2);
  u.proto = L4Proto::kUdp;
  ASSERT_TRUE(t.create(u, clock.now()));
  ASSERT_TRUE(t.create(natParams(3, kConnFAssured), clock.now()));
  createHalfOpen(t, 4, clock.now());
  EXPECT_EQ(t.stats().early_droppable, 2u);  // 2 and 4
  EXPECT_EQ(t.embryonicTcp(), 1u);           // 4 (2 is UDP)
  createHalfOpen(t, 5, clock.now());
  EXPECT_EQ(ev.last_cport.load(), 2);
  EXPECT_TRUE(t.findIn(inTuple(1)));
  EXPECT_FALSE(t.findIn(ConnTuple{Af::kInet, L4Proto::kUdp, kClient, kVip, 2, 80}));
  EXPECT_EQ(t.stats().early_droppable, 2u);  // 4 and 5: conn 1 left the list
  createHalfOpen(t, 6, clock.now());
  EXPECT_EQ(ev.last_cport.load(), 4);
}

// A flood larger than the table, over many shards: every new conn is admitted, and the
// established conns made before it are all still there.
TEST(ConnTableTest, FloodOverManyShardsKeepsEstablishedConns) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(256, 16), &ev);
  for (uint16_t i = 1; i <= 64; ++i)
    ASSERT_TRUE(t.create(natParams(i, kConnFAssured), clock.now()));
  const uint64_t before = lb::testing::threadAllocations();
  for (uint32_t i = 0; i < 5000; ++i) {
    ConnParams p = natParams(static_cast<uint16_t>(1000 + i % 50000));
    p.caddr = v4(0xc6130000u + i);  // 198.19.x.y, spoofed
    ConnGuard g = t.create(p, clock.now());
    ASSERT_TRUE(g) << i;
    g->state = 3;
  }
  EXPECT_EQ(lb::testing::threadAllocations(), before);
  ConnTableStats st = t.stats();
  EXPECT_EQ(st.entries, 256u);
  EXPECT_EQ(st.early_drops, 5000u - 192u);
  EXPECT_EQ(st.table_full, 0u);
  for (uint16_t i = 1; i <= 64; ++i)
    EXPECT_TRUE(t.findIn(inTuple(i))) << i;
}

TEST(ConnTableTest, ExpiresAtExactSecondBoundaries) {
  FakeClock clock;  // starts at 1000 s
  CountingEvents ev;
  ConnTable t(opts(16), &ev);
  const MonoTime t0 = clock.now();
  t.create(natParams(1), t0);                // expires t0 + 3 s
  t.create(natParams(2), t0 + millis(500));  // expires t0 + 3.5 s
  EXPECT_EQ(t.expire(t0 + seconds(3) - Duration(1)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(3)), 1u);
  EXPECT_EQ(ev.last_cport.load(), 1);
  EXPECT_FALSE(t.findIn(inTuple(1)));
  EXPECT_TRUE(t.findIn(inTuple(2)));
  EXPECT_EQ(t.expire(t0 + millis(3499)), 0u);
  EXPECT_EQ(t.expire(t0 + millis(3500)), 1u);
  EXPECT_EQ(ev.freed.load(), 2);
  EXPECT_EQ(t.stats().entries, 0u);
}

TEST(ConnTableTest, SetTimeoutRearms) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  const MonoTime t0 = clock.now();
  t.create(natParams(1), t0);
  {
    ConnGuard g = t.findIn(inTuple(1));
    g.setTimeout(seconds(10), t0 + seconds(2));
    EXPECT_EQ(g->timeout, seconds(10));
    EXPECT_EQ(g->expires, t0 + seconds(12));
  }
  EXPECT_EQ(t.expire(t0 + seconds(3)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(12) - Duration(1)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(12)), 1u);
}

TEST(ConnTableTest, RefreshesAndShorteningsFireAtTheLatestExpiry) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(16, 1), &ev);
  const MonoTime t0 = clock.now();
  ConnParams p = natParams(1);
  p.timeout = seconds(900);
  t.create(p, t0);
  t.create(natParams(2), t0);
  EXPECT_EQ(t.expire(t0 + seconds(1)), 0u);  // the wheel has run past these slots
  // Conn 1: ESTABLISHED -> CLOSE shortens 900 s to 10 s at t0 + 5.
  {
    ConnGuard g = t.findIn(inTuple(1));
    g.setTimeout(seconds(10), t0 + seconds(5));
  }
  // Conn 2: refreshed every 2 s for 2000 s (lazy re-arms across wheel rounds), then left.
  for (int64_t s = 2; s <= 2000; s += 2) {
    {
      ConnGuard g = t.findIn(inTuple(2));
      ASSERT_TRUE(g) << s;
      g.setTimeout(seconds(3), t0 + seconds(s));
    }
    size_t fired = t.expire(t0 + seconds(s) + millis(500));
    // Only conn 1 fires: it expires at t0 + 15, first checked at t0 + 16.5.
    ASSERT_EQ(fired, s == 16 ? 1u : 0u) << s;
    if (s == 16) {
      EXPECT_EQ(ev.last_cport.load(), 1);
    }
  }
  EXPECT_EQ(t.expire(t0 + seconds(2003) - Duration(1)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(2003)), 1u);
}

TEST(ConnTableTest, LongTimeoutsSurviveWheelRounds) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  const MonoTime t0 = clock.now();
  ConnParams a = natParams(1);
  a.timeout = seconds(2500);  // more than two wheel rounds
  ConnParams b = natParams(2);
  b.timeout = seconds(31 * 24 * 3600);  // 31 days
  t.create(a, t0);
  t.create(b, t0);
  for (int64_t s = 1; s < 2500; s += 7)
    ASSERT_EQ(t.expire(t0 + seconds(s)), 0u) << s;
  EXPECT_EQ(t.expire(t0 + seconds(2500)), 1u);
  // A big jump (the whole wheel in one call) still fires nothing early.
  EXPECT_EQ(t.expire(t0 + seconds(31 * 24 * 3600) - Duration(1)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(31 * 24 * 3600)), 1u);
}

TEST(ConnTableTest, ExpireBudgetLimitsWork) {
  FakeClock clock;
  ConnTable t(opts(64, 2), nullptr);
  for (uint16_t i = 1; i <= 10; ++i)
    t.create(natParams(i), clock.now());
  const MonoTime later = clock.now() + seconds(5);
  EXPECT_EQ(t.expire(later, 3), 3u);
  EXPECT_EQ(t.stats().entries, 7u);
  EXPECT_EQ(t.expire(later, 4), 4u);
  EXPECT_EQ(t.expire(later), 3u);
  EXPECT_EQ(t.stats().entries, 0u);
}

TEST(ConnTableTest, TemplateWithControlledConnsExpiresLater) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(16), &ev);
  ev.table = &t;
  const MonoTime t0 = clock.now();
  ConnParams tp = natParams(0, kConnFTemplate);
  tp.timeout = seconds(360);
  uint32_t tidx;
  {
    ConnGuard g = t.create(tp, t0);
    tidx = g.index();
    g->n_control.fetch_add(1);
  }
  ConnParams cp = natParams(40000);
  cp.control = tidx;
  cp.timeout = seconds(900);
  ASSERT_TRUE(t.create(cp, t0));

  EXPECT_EQ(t.expire(t0 + seconds(360)), 1u);  // fired, but re-armed (expire_later)
  {
    ConnGuard g = t.findTemplate(inTuple(0));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->timeout, seconds(60));
    EXPECT_EQ(g->expires, t0 + seconds(420));
    // expireNow does not free a template that still controls conns.
    t.expireNow(g);
  }
  EXPECT_TRUE(t.findTemplate(inTuple(0)));
  EXPECT_EQ(ev.freed.load(), 0);
  // The child goes; its onConnFreed releases the template, which then expires normally.
  {
    ConnGuard g = t.findIn(inTuple(40000));
    t.expireNow(g);
  }
  EXPECT_EQ(t.nControl(tidx).load(), 0);
  EXPECT_EQ(t.expire(t0 + seconds(420) - Duration(1)), 0u);
  EXPECT_EQ(t.expire(t0 + seconds(420)), 1u);
  EXPECT_FALSE(t.findTemplate(inTuple(0)));
  EXPECT_EQ(ev.freed.load(), 2);
}

TEST(ConnTableTest, InvalidateTemplate) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  ConnParams tp = natParams(0, kConnFTemplate);
  tp.timeout = seconds(360);
  t.create(tp, clock.now());
  {
    ConnGuard g = t.findTemplate(inTuple(0));
    ASSERT_TRUE(g);
    t.invalidateTemplate(g);
    EXPECT_EQ(g->vport, 0xffff);
    EXPECT_EQ(g->dport, 0xffff);
    EXPECT_EQ(g->cport, 0);
  }
  EXPECT_FALSE(t.findTemplate(inTuple(0)));
  int seen = 0;
  t.forEach([&](const Conn& c) {
    ++seen;
    EXPECT_EQ(c.vport, 0xffff);
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(t.expire(clock.now() + seconds(360)), 1u);  // still on its timer
  EXPECT_EQ(t.stats().entries, 0u);
}

TEST(ConnTableTest, StaleHandlesNeverMatch) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(1, 1), &ev);
  uint32_t idx, gen;
  {
    ConnGuard g = t.create(natParams(1), clock.now());
    idx = g.index();
    gen = g->generation;
    t.expireNow(g);
  }
  EXPECT_EQ(ev.last_generation.load(), gen);  // reported before the bump
  EXPECT_FALSE(t.get(idx, gen));
  ConnGuard g2 = t.create(natParams(2), clock.now());
  ASSERT_TRUE(g2);
  EXPECT_EQ(g2.index(), idx);  // capacity 1: same slot
  EXPECT_EQ(g2->generation, gen + 1);
  uint32_t gen2 = g2->generation;
  g2.release();
  EXPECT_FALSE(t.get(idx, gen));
  EXPECT_TRUE(t.get(idx, gen2));
}

TEST(ConnTableTest, ForEachAndExpireIf) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(64, 4), &ev);
  ev.table = &t;
  ConnParams tp = natParams(0, kConnFTemplate);
  uint32_t tidx;
  {
    ConnGuard g = t.create(tp, clock.now());
    tidx = g.index();
    g->n_control.fetch_add(2);
  }
  for (uint16_t i = 1; i <= 6; ++i) {
    ConnParams p = natParams(i);
    p.dest = i % 2;
    p.control = i <= 2 ? tidx : kNoConn;
    t.create(p, clock.now());
  }
  std::set<uint16_t> ports;
  t.forEach([&](const Conn& c) { ports.insert(c.cport); });
  EXPECT_EQ(ports, (std::set<uint16_t>{0, 1, 2, 3, 4, 5, 6}));
  // Dest 1 (ports 1, 3, 5) plus the template; the template still controls port 2's conn.
  size_t n = t.expireIf([](const Conn& c) { return c.dest == 1 || c.cport == 0; });
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(t.nControl(tidx).load(), 1);
  EXPECT_TRUE(t.findTemplate(inTuple(0)));
  // Now the last child goes first, then the template in the same call.
  n = t.expireIf([](const Conn& c) { return c.cport == 2 || c.cport == 0; });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(t.stats().entries, 2u);
  EXPECT_EQ(t.stats().templates, 0u);
}

TEST(ConnTableTest, AssureTemplateFoldsIntoState) {
  FakeClock clock;
  ConnTable t(opts(16), nullptr);
  uint32_t tidx;
  {
    ConnGuard g = t.create(natParams(0, kConnFTemplate), clock.now());
    tidx = g.index();
    EXPECT_EQ(g->state, kTemplateNone);
  }
  t.assureTemplate(tidx);
  ConnGuard g = t.findTemplate(inTuple(0));
  EXPECT_EQ(g->state & kTemplateAssured, kTemplateAssured);
}

TEST(ConnTableTest, DropEntryFollowsRandomDropentryRules) {
  FakeClock clock;
  ConnTable t(opts(64, 1), nullptr);
  const MonoTime t0 = clock.now();
  auto make = [&](uint16_t cport, uint8_t state, uint32_t in_pkts, uint32_t flags = 0) {
    ConnParams p = natParams(cport, flags);
    p.timeout = seconds(900);
    ConnGuard g = t.create(p, t0);
    g->state = state;
    g->in_pkts = in_pkts;
  };
  make(1, 3, 0);                  // TCP SYN_RECV: always dropped
  make(2, 10, 0);                 // TCP SYNACK: always dropped
  make(3, 1, 0);                  // ESTABLISHED, in_pkts 0: never (rate 0)
  make(4, 1, 1);                  // ESTABLISHED, 1 packet, idle > 60 s: dropped (rate 1)
  make(5, 5, 1);                  // TIME_WAIT: TCP other states are kept
  make(6, 0, 1, kConnFTemplate);  // template not ASSURED: dropped
  make(7, kTemplateAssured, 1, kConnFTemplate);  // ASSURED template: kept
  // Refreshed within the last 60 s: kept.
  make(8, 1, 1);
  const MonoTime now = t0 + seconds(100);
  {
    ConnGuard g = t.findIn(inTuple(8));
    g.setTimeout(seconds(900), now - seconds(30));
  }
  size_t dropped = t.dropEntries(now, 12345, 4096);
  EXPECT_EQ(dropped, 4u);
  std::set<uint16_t> left;
  t.forEach([&](const Conn& c) { left.insert(c.cport); });
  EXPECT_EQ(left, (std::set<uint16_t>{3, 5, 7, 8}));
}

TEST(ConnTableTest, HotPathDoesNotAllocate) {
  FakeClock clock;
  CountingEvents ev;
  ConnTable t(opts(1024, 8), &ev);
  ev.table = &t;
  // Warm up (nothing should be lazily allocated, but be fair).
  {
    ConnGuard g = t.create(natParams(1), clock.now());
    t.expireNow(g);
  }
  const uint64_t before = lb::testing::threadAllocations();
  for (uint16_t i = 1; i <= 500; ++i) {
    ConnParams p = natParams(i, i % 3 == 0 ? kConnFFullNat : 0);
    p.laddr = kLocal;
    p.lport = i;
    ConnGuard g = t.create(p, clock.now());
    ASSERT_TRUE(g);
    g.setTimeout(seconds(i % 7 + 1), clock.now());
  }
  for (uint16_t i = 1; i <= 500; ++i) {
    ASSERT_TRUE(t.findIn(inTuple(i)));
    ConnGuard g = i % 3 == 0 ? t.findOut(replyTuple(kRs, 8080, kLocal, i))
                             : t.findOut(replyTuple(kRs, 8080, kClient, i));
    ASSERT_TRUE(g);
    if (i % 5 == 0)
      t.expireNow(g);
  }
  clock.advance(seconds(8));
  t.expire(clock.now());
  t.dropEntries(clock.now(), 1, 64);
  EXPECT_EQ(lb::testing::threadAllocations(), before);
  EXPECT_EQ(t.stats().entries, 0u);
  EXPECT_EQ(ev.freed.load(), 501);
}

// 4 threads create, look up (in and, from another thread's point of view, out), and free
// conns while a fifth expires and walks the table; the counts must add up exactly.
TEST(ConnTableTest, ConcurrentFindCreateExpire) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3000;
  CountingEvents ev;
  ConnTable t(opts(kThreads * kPerThread, 16), &ev);
  const MonoTime t0 = MonoTime::fromSeconds(1000);
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0};
  std::atomic<int> expired_now{0};
  auto client = [](int th) { return IpAddr::v4(0xc6130000u + static_cast<uint32_t>(th)); };
  auto worker = [&](int th) {
    for (int i = 0; i < kPerThread; ++i) {
      ConnParams p = natParams(static_cast<uint16_t>(i + 1), i % 2 ? kConnFFullNat : 0);
      p.caddr = client(th);
      p.laddr = kLocal;
      p.lport = static_cast<uint16_t>(th * kPerThread + i + 1);
      p.timeout = seconds(100 + i % 50);
      if (!t.create(p, t0))
        misses.fetch_add(1);
      // Look up a conn another thread made (the reply may arrive on any worker).
      int other = (th + 1) % kThreads;
      ConnTuple q{Af::kInet, L4Proto::kTcp, client(other), kVip, static_cast<uint16_t>(i + 1), 80};
      ConnGuard g = t.findIn(q);
      if (g && i % 4 == 0) {
        ConnTuple r =
            i % 2 ? replyTuple(kRs, 8080, kLocal, static_cast<uint16_t>(other * kPerThread + i + 1))
                  : replyTuple(kRs, 8080, client(other), static_cast<uint16_t>(i + 1));
        g.release();
        ConnGuard o = t.findOut(r);
        if (o) {
          t.expireNow(o);
          expired_now.fetch_add(1);
        }
      }
    }
  };
  std::thread housekeeping([&] {
    while (!stop.load()) {
      t.expire(t0 + seconds(99));  // nothing is due yet
      size_t n = 0;
      t.forEach([&](const Conn&) { ++n; });
      EXPECT_LE(n, static_cast<size_t>(kThreads * kPerThread));
    }
  });
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th)
    threads.emplace_back(worker, th);
  for (auto& th : threads)
    th.join();
  stop.store(true);
  housekeeping.join();

  EXPECT_EQ(misses.load(), 0);
  const size_t created = kThreads * kPerThread;
  EXPECT_EQ(t.stats().entries, created - static_cast<size_t>(expired_now.load()));
  EXPECT_EQ(ev.freed.load(), expired_now.load());
  // Everything left is found both ways, then expires at its exact time.
  size_t found = 0;
  for (int th = 0; th < kThreads; ++th) {
    for (int i = 0; i < kPerThread; ++i) {
      ConnTuple q{Af::kInet, L4Proto::kTcp, client(th), kVip, static_cast<uint16_t>(i + 1), 80};
      if (t.findIn(q))
        ++found;
    }
  }
  EXPECT_EQ(found, t.stats().entries);
  EXPECT_EQ(t.expire(t0 + seconds(149)), found);
  EXPECT_EQ(t.stats().entries, 0u);
  EXPECT_EQ(static_cast<size_t>(ev.freed.load()), created);
}

}  // namespace
}  // namespace lb
