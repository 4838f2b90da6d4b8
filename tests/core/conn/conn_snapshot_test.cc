// SPDX-License-Identifier: Apache-2.0
#include "core/conn/conn_snapshot.h"

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

#include "core/conn/conn_table.h"

namespace lb {
namespace {

const IpAddr kClient = IpAddr::v4(0xc6120001);  // 198.18.0.1
const IpAddr kVip = IpAddr::v4(0xc6126401);     // 198.18.100.1
const IpAddr kRs = IpAddr::v4(0xc6120101);      // 198.18.1.1
const IpAddr kRs2 = IpAddr::v4(0xc6120102);     // 198.18.1.2

class Events : public ConnEvents {
 public:
  void onConnFreed(const Conn& c) noexcept override {
    ++freed;
    if (table != nullptr && c.control != kNoConn)
      table->nControl(c.control).fetch_sub(1);
  }

  int freed = 0;
  ConnTable* table = nullptr;
};

ConnParams params(uint16_t cport, uint32_t flags, Duration timeout) {
  ConnParams p;
  p.af = p.daf = Af::kInet;
  p.proto = L4Proto::kTcp;
  p.caddr = kClient;
  p.cport = cport;
  p.vaddr = kVip;
  p.vport = 80;
  p.daddr = kRs;
  p.dport = 8080;
  p.flags = static_cast<uint32_t>(FwdMethod::kMasq) | flags;
  p.svc = 1;
  p.dest = 3;
  p.timeout = timeout;
  return p;
}

// A table holding a persistence template and two conns it controls, one conn without
// template (IPv6 to see both families), and a one-packet conn.
struct Fixture {
  Fixture() : table({.capacity = 64, .shards = 4}, &events) {
    events.table = &table;
    ConnParams tp = params(0, kConnFTemplate, seconds(360));
    tp.proto = L4Proto::kTcp;
    ConnGuard t = table.create(tp, MonoTime::fromSeconds(100));
    t->state = kTemplateAssured;
    const uint32_t ti = t.index();
    t.release();
    for (uint16_t port : {1000, 1001}) {
      table.nControl(ti).fetch_add(1);
      ConnParams p = params(port, 0, seconds(900));
      p.control = ti;
      ConnGuard g = table.create(p, MonoTime::fromSeconds(100));
      g->state = 3;  // some TCP state
      g->in_pkts = port;
      g.setTimeout(seconds(900), MonoTime::fromSeconds(101));
    }
    ConnParams p6 = params(2000, kConnFInactive, seconds(120));
    p6.af = p6.daf = Af::kInet6;
    p6.caddr = IpAddr::fromBytes(Af::kInet6, kV6Client);
    p6.vaddr = IpAddr::fromBytes(Af::kInet6, kV6Vip);
    p6.daddr = IpAddr::fromBytes(Af::kInet6, kV6Rs);
    p6.proto = L4Proto::kUdp;
    table.create(p6, MonoTime::fromSeconds(100));
    ConnGuard one =
        table.create(params(3000, kConnFOnePacket, seconds(1)), MonoTime::fromSeconds(100));
  }

  static constexpr uint8_t kV6Client[16] = {0x20, 0x01, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  static constexpr uint8_t kV6Vip[16] = {0x20, 0x01, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  static constexpr uint8_t kV6Rs[16] = {0x20, 0x01, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11};

  Events events;
  ConnTable table;
};

// What -Lnc would show of a table: identity, state, expiry, template link (by identity).
using Row = std::tuple<std::string,
                       std::string,
                       uint16_t,
                       uint16_t,
                       uint32_t,
                       uint8_t,
                       int64_t,
                       uint32_t,
                       int32_t,
                       std::string>;

std::vector<Row> rows(const ConnTable& t) {
  std::map<uint32_t, std::string> tmpl;
  t.forEachIndexed([&](uint32_t idx, const Conn& c) {
    if ((c.flags & kConnFTemplate) != 0)
      tmpl[idx] = c.caddr.toString() + ":" + std::to_string(c.cport);
  });
  std::vector<Row> out;
  t.forEach([&](const Conn& c) {
    const uint32_t flags = c.flags & ~kConnFHashed;
    out.emplace_back(c.caddr.toString(), c.daddr.toString(), c.cport, c.dport, flags, c.state,
                     c.expires.ns, c.in_pkts, c.n_control.load(),
                     c.control == kNoConn ? "-" : tmpl[c.control]);
  });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ConnSnapshotTest, RoundTripKeepsStatesTimersAndTemplateLinks) {
  Fixture f;
  const std::vector<ConnRecord> exported = exportConns(f.table);
  ASSERT_EQ(exported.size(), 5u);
  EXPECT_NE(exported[0].params.flags & kConnFTemplate, 0u) << "templates come first";
  auto decoded = decodeConns(encodeConns(exported));
  ASSERT_TRUE(decoded.ok()) << decoded.status();

  Events events;
  ConnTable copy({.capacity = 64, .shards = 8, .seed = 7}, &events);
  events.table = &copy;
  int bound = 0;
  const ConnImportResult res = importConns(
      copy, *decoded, [](ConnParams&) { return true; }, [&](const Conn&) { ++bound; },
      MonoTime::fromSeconds(500));
  EXPECT_EQ(res.imported, 4u);
  EXPECT_EQ(res.skipped, 1u) << "the one-packet conn is not carried over";
  EXPECT_EQ(bound, 4);

  std::vector<Row> want = rows(f.table);
  std::erase_if(want, [](const Row& r) { return std::get<2>(r) == 3000; });
  EXPECT_EQ(rows(copy), want);

  // The template still controls both conns: a new conn of that client finds it.
  ConnTuple t{Af::kInet, L4Proto::kTcp, kClient, kVip, 0, 80};
  ConnGuard tg = copy.findTemplate(t);
  ASSERT_TRUE(tg);
  EXPECT_EQ(tg->n_control.load(), 2);
  EXPECT_EQ(tg->daddr, kRs);
  tg.release();
  // Timers fire at the same instants: the UDP conn (expires 220 s) goes first, the template only
  // after its conns (1001 s) are gone.
  EXPECT_EQ(copy.expire(MonoTime::fromSeconds(221)), 1u);
  EXPECT_EQ(copy.stats().entries, 3u);
  copy.expire(MonoTime::fromSeconds(1002));
  EXPECT_EQ(copy.stats().entries, 1u) << "the template outlives its conns by its own timer";
}

TEST(ConnSnapshotTest, SynproxySequenceOffsetComesAlong) {
  Events events;
  ConnTable table({.capacity = 16, .shards = 2}, &events);
  ConnGuard sp =
      table.create(params(4000, kConnFSynproxy, seconds(900)), MonoTime::fromSeconds(100));
  sp.setSeqDelta(0xdeadbeef);
  sp.release();
  auto decoded = decodeConns(encodeConns(exportConns(table)));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0].seq_delta, 0xdeadbeefu);
  Events events2;
  ConnTable copy({.capacity = 16, .shards = 4}, &events2);
  const ConnImportResult res = importConns(
      copy, *decoded, [](ConnParams&) { return true; }, [](const Conn&) {},
      MonoTime::fromSeconds(100));
  EXPECT_EQ(res.imported, 1u);
  ConnGuard g = copy.findIn(ConnTuple{Af::kInet, L4Proto::kTcp, kClient, kVip, 4000, 80});
  ASSERT_TRUE(g);
  EXPECT_NE(g->flags & kConnFSynproxy, 0u);
  EXPECT_EQ(g.seqDelta(), 0xdeadbeefu);
}

TEST(ConnSnapshotTest, RebindRewritesIdsAndLeavesOutRefused) {
  Fixture f;
  auto decoded = decodeConns(encodeConns(exportConns(f.table)));
  ASSERT_TRUE(decoded.ok());
  Events events;
  ConnTable copy({.capacity = 64, .shards = 4}, &events);
  events.table = &copy;
  // The template's real server is gone in the new configuration: its conns stay, unlinked;
  // the others get new ids.
  const ConnImportResult res = importConns(
      copy, *decoded,
      [](ConnParams& p) {
        if ((p.flags & kConnFTemplate) != 0)
          return false;
        p.dest = 42;
        return true;
      },
      [](const Conn& c) { EXPECT_EQ(c.dest, 42u); }, MonoTime::fromSeconds(100));
  EXPECT_EQ(res.imported, 3u);
  EXPECT_EQ(res.skipped, 2u);
  copy.forEach([](const Conn& c) { EXPECT_EQ(c.control, kNoConn); });
}

TEST(ConnSnapshotTest, FullTableNeverOverflows) {
  Fixture f;
  auto decoded = decodeConns(encodeConns(exportConns(f.table)));
  ASSERT_TRUE(decoded.ok());
  Events events;
  ConnTable tiny({.capacity = 2, .shards = 1}, &events);
  events.table = &tiny;
  const ConnImportResult res = importConns(
      tiny, *decoded, [](ConnParams&) { return true; }, [](const Conn&) {},
      MonoTime::fromSeconds(100));
  // What a full table refuses (or drops early to make room) is the table's policy; the import
  // never holds more than the capacity and accounts for every record.
  EXPECT_EQ(res.imported + res.skipped, 5u);
  EXPECT_GE(res.skipped, 1u);
  EXPECT_LE(tiny.stats().entries, 2u);
}

TEST(ConnSnapshotTest, DecodeRefusesWhatItDidNotWrite) {
  Fixture f;
  const std::string good = encodeConns(exportConns(f.table));
  EXPECT_FALSE(decodeConns("").ok());
  EXPECT_FALSE(decodeConns("LBDCONNX").ok());
  EXPECT_FALSE(decodeConns(good.substr(0, good.size() - 1)).ok()) << "truncated";
  EXPECT_FALSE(decodeConns(good + "x").ok()) << "trailing";
  std::string wrong_version = good;
  wrong_version[8] = 9;
  EXPECT_FALSE(decodeConns(wrong_version).ok());
  // A conn whose template link points at itself (not a template).
  std::vector<ConnRecord> recs = exportConns(f.table);
  recs.back().params.control = static_cast<uint32_t>(recs.size() - 1);
  EXPECT_FALSE(decodeConns(encodeConns(recs)).ok());
  recs.back().params.control = 999;
  EXPECT_FALSE(decodeConns(encodeConns(recs)).ok());
  EXPECT_TRUE(decodeConns(encodeConns({})).ok());
}

}  // namespace
}  // namespace lb
