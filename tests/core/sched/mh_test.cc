// SPDX-License-Identifier: Apache-2.0
// mh against the kernel's algorithm written out here from net/netfilter/ipvs/ip_vs_mh.c and
// lib/siphash.c (BITS_PER_LONG == 64), sharing no code with core/sched: the lookup table of
// every dest set below must be the kernel's, slot for slot, and picks must be what
// ip_vs_mh_get / ip_vs_mh_get_fallback return on that table.
#include "core/sched/mh.h"

#include <array>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

#include "tests/core/sched/sched_test_util.h"

namespace lb::sched::testing {
namespace {

// ---- The kernel's algorithm, written out (no core/sched code below this line) ----

namespace kernel {

constexpr uint32_t kM = 4093;  // primes[CONFIG_IP_VS_MH_TAB_INDEX - 8], default index 12
constexpr int kTabBits = 12 / 2;

// hsiphash_key_t on a 64-bit kernel: unsigned long key[2].
struct Key {
  uint64_t key[2];
};

// generate_hash_secret().
constexpr Key kHash1{{2654435761UL, 2654435761UL}};
constexpr Key kHash2{{2654446892UL, 2654446892UL}};

uint64_t rol64(uint64_t w, int s) {
  return (w << s) | (w >> (64 - s));
}

// lib/siphash.c, BITS_PER_LONG == 64: HSIPROUND = SIPROUND, HPREAMBLE = PREAMBLE, HPOSTAMBLE;
// __hsiphash_unaligned with the byte switch for the tail.
uint32_t hsiphash(const uint8_t* data, size_t len, const Key& key) {
  uint64_t v0 = 0x736f6d6570736575ULL, v1 = 0x646f72616e646f6dULL;
  uint64_t v2 = 0x6c7967656e657261ULL, v3 = 0x7465646279746573ULL;
  uint64_t b = static_cast<uint64_t>(len) << 56;
  v3 ^= key.key[1];
  v2 ^= key.key[0];
  v1 ^= key.key[1];
  v0 ^= key.key[0];
  auto sipround = [&] {
    v0 += v1;
    v1 = rol64(v1, 13);
    v1 ^= v0;
    v0 = rol64(v0, 32);
    v2 += v3;
    v3 = rol64(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rol64(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rol64(v1, 17);
    v1 ^= v2;
    v2 = rol64(v2, 32);
  };
  const uint8_t* end = data + len - (len % 8);
  for (; data != end; data += 8) {
    uint64_t m = 0;
    for (int i = 7; i >= 0; --i)
      m = (m << 8) | data[i];  // get_unaligned_le64
    v3 ^= m;
    sipround();
    v0 ^= m;
  }
  for (size_t i = len % 8; i > 0; --i)
    b |= static_cast<uint64_t>(end[i - 1]) << (8 * (i - 1));
  v3 ^= b;
  sipround();
  v0 ^= b;
  v2 ^= 0xff;
  sipround();
  sipround();
  sipround();
  return static_cast<uint32_t>((v0 ^ v1) ^ (v2 ^ v3));
}

uint32_t ntohl(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// ip_vs_mh_hashkey: v = offset + ntohs(port) + ntohl(addr_fold), addr_fold the address (IPv4)
// or the XOR of its four 32-bit words (IPv6); hsiphash(&v, sizeof(v), key) hashes v's bytes
// as they lie in memory on a little-endian host.
uint32_t hashkey(const IpAddr& a, uint16_t port, const Key& key, uint32_t offset) {
  const uint8_t* w = a.data();
  uint32_t fold = ntohl(w);
  if (!a.isV4())
    fold = ntohl(w) ^ ntohl(w + 4) ^ ntohl(w + 8) ^ ntohl(w + 12);
  const uint32_t v = offset + port + fold;
  const uint8_t bytes[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                            static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
  return hsiphash(bytes, 4, key);
}

// A dest as the kernel's svc->destinations list holds it (list order = vector order).
struct Dest {
  IpAddr addr;
  uint16_t port;
  int weight;       // atomic_t weight: is_unavailable() when <= 0
  int last_weight;  // latest non-zero weight: the table is built from it
};

int gcd(int a, int b) {
  while (b != 0) {
    const int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int fls(unsigned x) {
  int r = 0;
  while (x != 0) {
    ++r;
    x >>= 1;
  }
  return r;
}

// ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight, ip_vs_mh_permutate and ip_vs_mh_populate: the
// lookup table as dest indices, -1 for a NULL entry.
std::vector<int> table(const std::vector<Dest>& dests) {
  std::vector<int> lookup(kM, -1);
  int g = 0;
  for (const Dest& d : dests) {
    if (d.last_weight > 0)
      g = g > 0 ? gcd(d.last_weight, g) : d.last_weight;
  }
  if (g < 1)
    return lookup;  // ip_vs_mh_reset
  int weight = 0;
  for (const Dest& d : dests)
    weight = std::max(weight, d.last_weight);
  const int shift = fls(static_cast<unsigned>(weight / g)) - kTabBits;
  const int rshift = shift >= 0 ? shift : 0;

  struct Setup {
    unsigned offset, skip, perm;
    int turns;
  };

  std::vector<Setup> ds(dests.size());
  for (size_t i = 0; i < dests.size(); ++i) {
    ds[i].offset = hashkey(dests[i].addr, dests[i].port, kHash1, 0) % kM;
    ds[i].skip = hashkey(dests[i].addr, dests[i].port, kHash2, 0) % (kM - 1) + 1;
    ds[i].perm = ds[i].offset;
    const int lw = dests[i].last_weight;
    const int t = (lw / g) >> rshift;
    ds[i].turns = t != 0 ? t : (lw != 0);
  }

  // The list walk of ip_vs_mh_populate: p runs over the list, wrapping at the head.
  std::vector<bool> taken(kM, false);
  unsigned n = 0;
  int dt_count = 0;
  while (n < kM) {
    size_t p = 0;
    while (p < dests.size()) {
      if (ds[p].turns < 1) {
        ++p;
        continue;
      }
      unsigned c = ds[p].perm;
      while (taken[c]) {
        ds[p].perm += ds[p].skip;
        if (ds[p].perm >= kM)
          ds[p].perm -= kM;
        c = ds[p].perm;
      }
      taken[c] = true;
      lookup[c] = static_cast<int>(p);
      if (++n == kM)
        return lookup;
      if (++dt_count >= ds[p].turns) {
        dt_count = 0;
        ++p;
      }
    }
  }
  return lookup;
}

// ip_vs_mh_schedule on the table: -1 for NULL. `overloaded[i]`: IP_VS_DEST_F_OVERLOAD.
int schedule(const std::vector<Dest>& dests,
             const std::vector<int>& lookup,
             const std::vector<bool>& overloaded,
             bool fallback,
             const IpAddr& saddr,
             uint16_t port) {
  auto unavailable = [&](int i) {
    return dests[static_cast<size_t>(i)].weight <= 0 || overloaded[static_cast<size_t>(i)];
  };
  const unsigned ihash = hashkey(saddr, port, kHash1, 0) % kM;
  int dest = lookup[ihash];
  if (!fallback)
    return dest < 0 || unavailable(dest) ? -1 : dest;
  if (dest < 0)
    return -1;
  if (!unavailable(dest))
    return dest;
  for (unsigned offset = 0; offset < kM; ++offset) {
    const unsigned roffset = (offset + ihash) % kM;
    const unsigned hash = hashkey(saddr, port, kHash1, roffset) % kM;
    dest = lookup[hash];
    if (dest < 0)
      break;
    if (!unavailable(dest))
      return dest;
  }
  return -1;
}

}  // namespace kernel

// ---- Tests ----

// FNV-1a over the slot owners of the kernel model's table for {A 1, B 2, C 3}: pins the model
// itself, so that an edit to it shows up (the tests below compare core against the model).
constexpr uint32_t kMhGoldenDigest = 4192009959u;

uint32_t digest(const std::vector<int32_t>& slots) {
  uint32_t fnv = 2166136261u;
  for (int32_t s : slots)
    fnv = (fnv ^ static_cast<uint32_t>(s)) * 16777619u;
  return fnv;
}

// The model's hsiphash is the kernel's: lib/siphash_kunit.c's test_vectors_hsiphash for
// BITS_PER_LONG == 64 (vector n: the bytes 0..n-1 under the key 00 01 .. 0f).
TEST(MaglevKernelModelTest, HsiphashMatchesKernelVectors) {
  const kernel::Key key{{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL}};
  constexpr std::array<uint32_t, 18> kVectors = {
      0x050fc4dcU, 0x7d57ca93U, 0x4dc7d44dU, 0xe7ddf7fbU, 0x88d38328U, 0x49533b67U,
      0xc59f22a7U, 0x9bb11140U, 0x8d299a8eU, 0x6c063de4U, 0x92ff097fU, 0xf94dc352U,
      0x57b4d9a2U, 0x1229ffa7U, 0xc0f95d34U, 0x2a519956U, 0x7d908b66U, 0x63dbd80cU,
  };
  uint8_t in[18];
  for (size_t i = 0; i < sizeof(in); ++i)
    in[i] = static_cast<uint8_t>(i);
  for (size_t n = 0; n < kVectors.size(); ++n)
    EXPECT_EQ(kernel::hsiphash(in, n, key), kVectors[n]) << "len " << n;
}

std::vector<kernel::Dest> kernelDests(const std::vector<DestInfo>& d) {
  std::vector<kernel::Dest> out;
  for (const DestInfo& x : d)
    out.push_back({x.addr, x.port, x.weight, x.last_weight});
  return out;
}

DestInfo destAt(DestId id, const char* addr, uint16_t port, int32_t weight, int32_t last) {
  DestInfo d;
  d.id = id;
  d.addr = *IpAddr::parse(addr);
  d.port = port;
  d.weight = weight;
  d.last_weight = last;
  return d;
}

// Dest sets covering every branch of the table build: equal and unequal weights, a gcd > 1,
// weights large enough to shift, quiesced dests (weight 0, last_weight kept), a never-weighted
// dest, no weighted dest, one dest, IPv6 (the address fold), the same address on other ports,
// and many dests with random weights.
std::map<std::string, std::vector<DestInfo>> destSets() {
  std::map<std::string, std::vector<DestInfo>> sets;
  sets["equal"] = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  sets["1-2-3"] = {dest(kA, 1), dest(kB, 2), dest(kC, 3)};
  sets["gcd 4"] = {dest(kA, 4), dest(kB, 8), dest(kC, 12), dest(kD, 4)};
  sets["shift 2"] = {dest(kA, 1), dest(kB, 128)};
  sets["shift large"] = {dest(kA, 3), dest(kB, 65535), dest(kC, 1000), dest(kD, 77)};
  DestInfo quiesced = dest(kB, 0);
  quiesced.last_weight = 2;
  sets["quiesced"] = {dest(kA, 1), quiesced, dest(kC, 3)};
  sets["never weighted"] = {dest(kA, 1), dest(kB, 0), dest(kC, 3)};
  sets["none weighted"] = {dest(kA, 0), dest(kB, 0)};
  sets["single"] = {dest(kA, 5)};
  sets["ipv6"] = {destAt(0, "2001:2::1", 443, 1, 1), destAt(1, "2001:2::a:2", 443, 3, 3),
                  destAt(2, "2001:2:ffff::1:3", 8443, 2, 2)};
  sets["ports"] = {destAt(0, "198.18.5.1", 80, 1, 1), destAt(1, "198.18.5.1", 81, 1, 1),
                   destAt(2, "198.18.5.1", 8080, 2, 2)};
  std::mt19937 rng(20);
  std::vector<DestInfo> many;
  for (DestId i = 0; i < 200; ++i) {
    const int32_t w = static_cast<int32_t>(rng() % 20);
    DestInfo d = destAt(i, "198.18.0.0", 80, w, w == 0 && i % 2 == 0 ? 7 : w);
    d.addr = IpAddr::v4(0xc6120000u + 3 * i + 1);
    many.push_back(d);
  }
  sets["200 random"] = many;
  return sets;
}

TEST(MaglevHashingTest, TableIsTheKernelsForEveryDestSet) {
  for (const auto& [name, dests] : destSets()) {
    SCOPED_TRACE(name);
    absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build(dests, 0);
    ASSERT_TRUE(t.ok()) << t.status();
    const std::vector<int> want = kernel::table(kernelDests(dests));
    ASSERT_EQ(t->slots.size(), want.size());
    int differ = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (t->slots[i] != want[i] && differ++ < 5)
        ADD_FAILURE() << "slot " << i << ": " << t->slots[i] << ", kernel " << want[i];
    }
    EXPECT_EQ(differ, 0);
  }
}

// Picks with and without mh-fallback and mh-port, some dests overloaded or quiesced, against
// ip_vs_mh_get / ip_vs_mh_get_fallback on the kernel's table.
TEST(MaglevHashingTest, PicksAreTheKernelsForEveryDestSet) {
  std::mt19937_64 rng(21);
  for (const auto& [name, dests] : destSets()) {
    SCOPED_TRACE(name);
    const std::vector<kernel::Dest> kd = kernelDests(dests);
    const std::vector<int> lookup = kernel::table(kd);
    for (uint32_t flags : {0u, kSchedFlag1, kSchedFlag2, kSchedFlag1 | kSchedFlag2}) {
      SCOPED_TRACE(flags);
      SchedulerPtr s = make("mh", dests, flags);
      ASSERT_NE(s, nullptr);
      Loads loads;
      std::vector<bool> overloaded(dests.size(), false);
      for (size_t i = 0; i < dests.size(); ++i) {
        overloaded[i] = i % 3 == 1;
        loads.setOverloaded(dests[i].id, overloaded[i]);
      }
      for (int i = 0; i < 500; ++i) {
        PickContext ctx =
            flow(static_cast<uint32_t>(rng()), 0xc6120001u, static_cast<uint16_t>(rng()));
        if (i % 4 == 0) {
          uint8_t b[16];
          for (uint8_t& x : b)
            x = static_cast<uint8_t>(rng());
          ctx.saddr = IpAddr::fromBytes(Af::kInet6, b);
        }
        const uint16_t port = (flags & kSchedFlag2) != 0 ? ctx.sport : 0;
        const int want =
            kernel::schedule(kd, lookup, overloaded, (flags & kSchedFlag1) != 0, ctx.saddr, port);
        const std::optional<DestId> got = s->pick(ctx, loads.view());
        if (want < 0) {
          EXPECT_EQ(got, std::nullopt) << ctx.saddr.toString() << " port " << port;
        } else {
          EXPECT_EQ(got, dests[static_cast<size_t>(want)].id)
              << ctx.saddr.toString() << " port " << port;
        }
      }
    }
  }
}

std::map<int32_t, int> slotCounts(const MaglevHashing::Table& t) {
  std::map<int32_t, int> counts;
  for (int32_t s : t.slots)
    ++counts[s];
  return counts;
}

// The kernel's first preference of a dest: ds->offset.
uint32_t preferred(const DestInfo& d) {
  return kernel::hashkey(d.addr, d.port, kernel::kHash1, 0) % kernel::kM;
}

TEST(MaglevHashingTest, FirstRoundDestsOwnTheirFirstPreference) {
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->slots.size(), 4093u);
  // Round 1: A claims offset(A) = hsiphash(port + addr, key1) % 4093; B and C theirs unless
  // already taken.
  const uint32_t a = preferred(d[0]);
  const uint32_t b = preferred(d[1]);
  EXPECT_EQ(t->slots[a], 0);
  if (b != a) {
    EXPECT_EQ(t->slots[b], 1);
  }
  for (int32_t s : t->slots)
    EXPECT_GE(s, 0);  // every slot filled
}

TEST(MaglevHashingTest, TableIsDeterministicAndOrderMatters) {
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 2), dest(kC, 3)};
  absl::StatusOr<MaglevHashing::Table> t1 = MaglevHashing::build(d, 0);
  absl::StatusOr<MaglevHashing::Table> t2 = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->slots, t2->slots);
  EXPECT_EQ(digest(t1->slots), kMhGoldenDigest);
  const std::vector<int> model = kernel::table(kernelDests(d));
  EXPECT_EQ(digest(std::vector<int32_t>(model.begin(), model.end())), kMhGoldenDigest);
  // List order decides who claims a contested slot first.
  absl::StatusOr<MaglevHashing::Table> reversed =
      MaglevHashing::build({dest(kC, 3), dest(kB, 2), dest(kA, 1)}, 0);
  ASSERT_TRUE(reversed.ok());
  int differ = 0;
  for (size_t i = 0; i < t1->slots.size(); ++i) {
    differ += t1->dests[static_cast<size_t>(t1->slots[i])].id !=
              reversed->dests[static_cast<size_t>(reversed->slots[i])].id;
  }
  EXPECT_GT(differ, 0);
}

TEST(MaglevHashingTest, SlotsProportionalToWeight) {
  absl::StatusOr<MaglevHashing::Table> t =
      MaglevHashing::build({dest(kA, 1), dest(kB, 2), dest(kC, 3)}, 0);
  ASSERT_TRUE(t.ok());
  // Each round gives A 1, B 2, C 3 slots: 682 full rounds and one partial.
  std::map<int32_t, int> c = slotCounts(*t);
  EXPECT_NEAR(c[0], 4093.0 / 6, 1.5);
  EXPECT_NEAR(c[1], 4093.0 * 2 / 6, 2.5);
  EXPECT_NEAR(c[2], 4093.0 * 3 / 6, 3.5);
}

TEST(MaglevHashingTest, LargeWeightsAreShiftedDown) {
  // max / gcd = 128: fls 8 - 6 = rshift 2. Turns: A (1 >> 2) = 0 -> 1, B 128 >> 2 = 32.
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build({dest(kA, 1), dest(kB, 128)}, 0);
  ASSERT_TRUE(t.ok());
  std::map<int32_t, int> c = slotCounts(*t);
  EXPECT_NEAR(c[0], 4093.0 / 33, 1.5);
}

TEST(MaglevHashingTest, QuiescedDestKeepsSlotsByLastWeight) {
  DestInfo b0 = dest(kB, 0);
  b0.last_weight = 2;
  absl::StatusOr<MaglevHashing::Table> live =
      MaglevHashing::build({dest(kA, 1), dest(kB, 2), dest(kC, 3)}, 0);
  absl::StatusOr<MaglevHashing::Table> quiesced =
      MaglevHashing::build({dest(kA, 1), b0, dest(kC, 3)}, 0);
  ASSERT_TRUE(live.ok() && quiesced.ok());
  EXPECT_EQ(live->slots, quiesced->slots);
  // A never-weighted dest (last_weight 0) gets no slot.
  absl::StatusOr<MaglevHashing::Table> fresh =
      MaglevHashing::build({dest(kA, 1), dest(kB, 0), dest(kC, 3)}, 0);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(slotCounts(*fresh).count(1), 0u);
  // No weighted dest at all: an empty table.
  absl::StatusOr<MaglevHashing::Table> none = MaglevHashing::build({dest(kA, 0)}, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(slotCounts(*none)[-1], 4093);
}

TEST(MaglevHashingTest, MoreDestsThanSlotsIsInvalid) {
  std::vector<DestInfo> d;
  for (DestId i = 0; i < 4094; ++i)
    d.push_back(dest(i, 1));
  EXPECT_EQ(findScheduler("mh")->create(d, {}).status().code(), absl::StatusCode::kInvalidArgument);
  d.pop_back();
  EXPECT_TRUE(findScheduler("mh")->create(d, {}).ok());
}

// The dest that owns `ctx`'s slot, computed from the table.
DestId owner(const MaglevHashing::Table& t, const PickContext& ctx, uint16_t port) {
  const uint32_t slot = kernel::hashkey(ctx.saddr, port, kernel::kHash1, 0) % kernel::kM;
  return t.dests[static_cast<size_t>(t.slots[slot])].id;
}

TEST(MaglevHashingTest, LookupFallbackAndPort) {
  Loads loads;
  const std::vector<DestInfo> d = {dest(kA, 1), dest(kB, 1), dest(kC, 1)};
  absl::StatusOr<MaglevHashing::Table> t = MaglevHashing::build(d, 0);
  ASSERT_TRUE(t.ok());
  SchedulerPtr plain = make("mh", d);
  SchedulerPtr fallback = make("mh", d, kSchedFlag1);
  SchedulerPtr port = make("mh", d, kSchedFlag2);
  int port_differs = 0;
  for (uint32_t client = 1; client <= 200; ++client) {
    const PickContext ctx = flow(0xc0a80000u + client, 1, static_cast<uint16_t>(1000 + client));
    const DestId o = owner(*t, ctx, 0);
    EXPECT_EQ(plain->pick(ctx, loads.view()), o);
    EXPECT_EQ(port->pick(ctx, loads.view()), owner(*t, ctx, ctx.sport));
    if (owner(*t, ctx, ctx.sport) != o)
      ++port_differs;
    loads.setOverloaded(o, true);
    EXPECT_EQ(plain->pick(ctx, loads.view()), std::nullopt);
    std::optional<DestId> f = fallback->pick(ctx, loads.view());
    ASSERT_TRUE(f.has_value());
    EXPECT_NE(*f, o);
    loads.setOverloaded(o, false);
  }
  EXPECT_GT(port_differs, 50);
}

}  // namespace
}  // namespace lb::sched::testing
