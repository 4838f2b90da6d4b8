// SPDX-License-Identifier: Apache-2.0
// Internals of the connection table shared by conn_table.cc (lookups, create, free) and
// conn_expire.cc (timer wheel, flush, drop_entry). Not part of the public API.
//
// Locking rules (every one of them matters for correctness):
// 1. An entry's identity fields (af, proto, addresses, ports, flags' index-relevant bits) are
//    written only while the entry is unreachable: before it is linked, or (invalidateTemplate)
//    after it was unlinked from the in-chain under its home lock. Templates have no out node.
// 2. `tag` is the entry's generation while it is alive and kDeadTag otherwise. It is written
//    under the home lock and read (acquire) by findOut under the out shard's lock.
// 3. A full-NAT out node is linked and unlinked under the out shard's lock only, never while
//    the home lock is held; a freed entry goes back to the slab only after its out node is
//    unlinked, so a findOut walking an out chain only ever reads identity fields of entries
//    that are not being reused.
// 4. Nobody holds two shard locks at once. The slab lock is taken last (under a shard lock or
//    none) and nothing else is taken under it.
//
// Memory follows use (docs/memory.md): the slab and the bucket arrays are address space from a
// PageProvider whose pages cost nothing until written. The slab is cut into chunks of
// kChunkEntries entries; each chunk hands out its recycled entries first, then never-touched
// ones in index order, and entries come from the lowest chunk with room, so live conns pack
// into the low chunks and the high ones empty out. expire() gives whole empty chunks back
// (trimChunks). Chain links (bucket heads, in_next, out_next, the deferred-free list) hold
// index + 1, so that 0 ends a chain and a zero page is a page of empty buckets.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/base/check.h"
#include "core/base/page_provider.h"
#include "core/conn/conn_table.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lb {
namespace conn_internal {

inline constexpr uint32_t kNil = 0xffffffffu;
inline constexpr uint32_t kDeadTag = 0xffffffffu;
inline constexpr size_t kWheelSlots = 1024;  // power of two; 1-second slots
inline constexpr int64_t kNsPerSec = 1'000'000'000;
inline constexpr int64_t kCursorUnset = std::numeric_limits<int64_t>::min() / 2;
inline constexpr Duration kExpireLater = seconds(60);  // ip_vs_conn.c expire_later
// Slab chunks: 512 entries of 192 bytes, 96 KiB, a whole number of 4 KiB pages.
inline constexpr uint32_t kChunkShift = 9;
inline constexpr uint32_t kChunkEntries = 1u << kChunkShift;
// Empty chunks kept touched (not given back) so that a table hovering at a chunk boundary does
// not release and re-fault the same pages every second.
inline constexpr size_t kSpareChunks = 1;
// Chunks one expire() call gives back at most (each is one release() call).
inline constexpr size_t kTrimBudget = 256;

// Internal entry bits (Entry::bits).
inline constexpr uint8_t kInLinked = 0x1;
inline constexpr uint8_t kOutLinked = 0x2;
inline constexpr uint8_t kTimerLinked = 0x4;
inline constexpr uint8_t kEarlyLinked = 0x8;  // on its home shard's early-drop list

// A chain link to entry `idx` (kNil: the end, stored as 0), and back.
inline uint32_t linkTo(uint32_t idx) {
  return idx + 1;
}

inline uint32_t linkIdx(uint32_t link) {
  return link - 1;
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// Keyed hash of one side of a tuple, as the kernel's ip_vs_conn_hashkey (proto, addr, port).
inline uint64_t hashSide(uint64_t seed, Af af, L4Proto proto, const IpAddr& addr, uint16_t port) {
  uint64_t w[2];
  std::memcpy(w, addr.data(), sizeof(w));
  uint64_t h = seed ^ ((static_cast<uint64_t>(af) << 24) | (static_cast<uint64_t>(proto) << 16) |
                       static_cast<uint64_t>(port));
  h = mix64(h ^ w[0]);
  h = mix64(h ^ w[1] ^ seed);
  return h;
}

inline int64_t floorSec(MonoTime t) {
  int64_t s = t.ns / kNsPerSec;
  if (t.ns % kNsPerSec < 0)
    --s;
  return s;
}

class SpinLock {
 public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed))
        cpuRelax();
    }
  }

  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

// One slab slot: the public Conn plus the table's links, cache-line aligned so that a lookup
// reads one line per visited entry (in_next, tag and the compared Conn fields come first).
struct alignas(64) ConnEntry {
  uint32_t in_next = 0;  // in-chain link (home shard), also the deferred-free list
  std::atomic<uint32_t> tag{kDeadTag};
  Conn conn;
  uint32_t out_next = 0;       // full-NAT out chain link (out shard)
  uint32_t timer_prev = kNil;  // timer wheel slot list (home shard)
  uint32_t timer_next = kNil;
  uint32_t free_next = kNil;  // its chunk's free list (slab lock)
  std::atomic<uint16_t> home{0};
  std::atomic<bool> assure{false};  // assureTemplate() requests, folded into conn.state
  uint8_t bits = 0;
  uint16_t out_shard = 0;
  uint32_t out_bucket = 0;
  uint32_t early_prev = kNil;  // early-drop list (home shard), oldest first
  int64_t wheel_sec = 0;       // the wheel second whose slot holds the entry (<= its expiry)
  uint32_t early_next = kNil;
  uint32_t seq_delta = 0;  // ConnGuard::seqDelta (SYN proxy)
};

// Layout: in_next and tag take bytes 0..7, Conn starts at 8 (it is 8-aligned), and ConnParams'
// af/daf/proto/flags/ports/caddr/vaddr end at byte 50 of Conn: byte 58 of the entry. The
// early-drop links and the SYN proxy's sequence offset fill the padding the 64-byte alignment
// left: the entry stays 192 bytes.
static_assert(sizeof(ConnEntry) == 192, "a slab entry is three cache lines");

struct alignas(64) ConnShard {
  SpinLock lock;
  int64_t cursor = kCursorUnset;  // every wheel second <= cursor has been processed
  uint32_t* in_heads = nullptr;   // bucket heads (links), in the table's zeroed bucket array
  uint32_t* out_heads = nullptr;
  std::array<uint32_t, kWheelSlots> wheel{};
  // Conns early drop may take (not ASSURED, not templates), in creation order: the head is the
  // oldest. Assured conns leave it lazily, when early drop meets them at the head.
  uint32_t early_head = kNil;
  uint32_t early_tail = kNil;
};

// One slab chunk's bookkeeping (slab lock). Entries [0, used) of the chunk have been written
// since the chunk was last given back; the rest are untouched (zero pages or never mapped).
struct SlabChunk {
  uint32_t free_head = kNil;  // recycled entries, through ConnEntry::free_next
  uint32_t used = 0;
  uint32_t live = 0;      // handed out and not returned
  uint32_t gen_base = 1;  // generation of its next fresh entries: above every earlier one
  uint32_t gen_max = 0;   // highest generation returned to it
};

// What popFree hands out. `fresh`: never touched since the chunk was last given back; the
// caller constructs it with generation `gen`.
struct SlabPop {
  uint32_t idx = kNil;
  uint32_t gen = 0;
  bool fresh = false;
};

}  // namespace conn_internal

// The internals this module's two .cc files use unqualified.
using conn_internal::ConnEntry;
using conn_internal::ConnShard;
using conn_internal::floorSec;
using conn_internal::hashSide;
using conn_internal::kChunkEntries;
using conn_internal::kCursorUnset;
using conn_internal::kDeadTag;
using conn_internal::kEarlyLinked;
using conn_internal::kExpireLater;
using conn_internal::kInLinked;
using conn_internal::kNil;
using conn_internal::kOutLinked;
using conn_internal::kTimerLinked;
using conn_internal::kWheelSlots;
using conn_internal::linkIdx;
using conn_internal::linkTo;
using conn_internal::mix64;
using conn_internal::SlabChunk;
using conn_internal::SlabPop;

struct ConnTable::Impl {
  Impl(const Options& o, ConnEvents* ev)
      : events(ev),
        pages(o.pages != nullptr ? o.pages : &defaultPageProvider()),
        seed(o.seed),
        capacity(o.capacity),
        shard_count(o.shards),
        shard_mask(o.shards - 1),
        shards(o.shards),
        max_services(o.max_services),
        svc_cookies(o.max_services) {
    LB_CHECK(o.shards > 0 && (o.shards & (o.shards - 1)) == 0 && o.shards <= 65536);
    LB_CHECK(o.capacity > 0 && o.capacity < kNil - kChunkEntries);
    size_t per = 1;
    while (per * o.shards < o.capacity)
      per <<= 1;
    buckets_per_shard = per;
    bucket_mask = per - 1;
    heads = ZeroedArray<uint32_t>(2 * per * o.shards, pages);
    for (size_t i = 0; i < shards.size(); ++i) {
      shards[i].in_heads = heads.get() + i * per;
      shards[i].out_heads = heads.get() + (o.shards + i) * per;
      shards[i].wheel.fill(kNil);
    }
    const size_t nchunks = (capacity + kChunkEntries - 1) / kChunkEntries;
    slab_bytes = pageRound(*pages, nchunks * kChunkEntries * sizeof(ConnEntry));
    entries = static_cast<ConnEntry*>(reserveOrDie(*pages, slab_bytes));
    // Chunks are given back whole pages at a time (a 64 KiB-page system keeps them).
    can_trim = (size_t{kChunkEntries} * sizeof(ConnEntry)) % pages->pageSize() == 0;
    chunks.resize(nchunks);
    room.assign((nchunks + 63) / 64, 0);
    for (size_t c = 0; c < nchunks; ++c)
      room[c / 64] |= uint64_t{1} << (c % 64);
  }

  ~Impl() { pages->unreserve(entries, slab_bytes); }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // --- slab (conn_slab.cc) ---
  uint32_t chunkLimit(size_t c) const {
    return static_cast<uint32_t>(std::min<size_t>(kChunkEntries, capacity - c * kChunkEntries));
  }

  SlabPop popSlab() noexcept;
  // An entry for create(): constructed when fresh. kNil when every entry is live.
  uint32_t popFree() noexcept;
  void pushFree(uint32_t idx) noexcept;
  // Gives empty chunks back to the page provider, beyond kSpareChunks and at most `budget`.
  size_t trimChunks(size_t budget) noexcept;

  // --- hashing ---
  size_t shardOf(uint64_t h) const { return static_cast<size_t>(h >> 40) & shard_mask; }

  uint32_t bucketOf(uint64_t h) const { return static_cast<uint32_t>(h & bucket_mask); }

  uint64_t inHash(const Conn& c) const { return hashSide(seed, c.af, c.proto, c.caddr, c.cport); }

  uint64_t outHash(const Conn& c) const { return hashSide(seed, c.daf, c.proto, c.laddr, c.lport); }

  // --- matching (ip_vs_conn.c __ip_vs_conn_in_get, ip_vs_ct_in_get, ip_vs_conn_out_get) ---
  static bool inMatch(const Conn& c, const ConnTuple& t) {
    if ((c.flags & kConnFTemplate) != 0)
      return false;
    // (!p->cport) ^ (!(cp->flags & NO_CPORT)): a zero-cport lookup finds only NO_CPORT entries.
    if ((t.sport == 0) != ((c.flags & kConnFNoCport) != 0))
      return false;
    return c.cport == t.sport && c.vport == t.dport && c.af == t.af && c.proto == t.proto &&
           c.caddr == t.saddr && c.vaddr == t.daddr;
  }

  static bool templateMatch(const Conn& c, const ConnTuple& t) {
    return (c.flags & kConnFTemplate) != 0 && c.cport == t.sport && c.vport == t.dport &&
           c.af == t.af && c.proto == t.proto && c.caddr == t.saddr && c.vaddr == t.daddr;
  }

  // A reply to a NAT or non-NAT conn, found through the in-chain (dst is caddr:cport).
  static bool outMatchHome(const Conn& c, const ConnTuple& t) {
    if ((c.flags & (kConnFTemplate | kConnFFullNat)) != 0)
      return false;
    if (c.cport != t.dport || c.af != t.af || c.proto != t.proto || c.caddr != t.daddr) {
      return false;
    }
    if ((c.flags & kConnFFwdMask) == static_cast<uint32_t>(FwdMethod::kMasq)) {
      return c.dport == t.sport && c.daddr == t.saddr;
    }
    return c.vport == t.sport && c.vaddr == t.saddr;
  }

  // A reply to a full-NAT conn: src daddr:dport, dst laddr:lport.
  static bool outMatchFullNat(const Conn& c, const ConnTuple& t) {
    return c.lport == t.dport && c.dport == t.sport && c.daf == t.af && c.proto == t.proto &&
           c.laddr == t.daddr && c.daddr == t.saddr;
  }

  // --- timer wheel (home lock held) ---
  static size_t slotOf(int64_t sec) { return static_cast<size_t>(sec) & (kWheelSlots - 1); }

  void timerLink(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    int64_t sec = std::max(floorSec(e.conn.expires), s.cursor + 1);
    size_t slot = slotOf(sec);
    e.wheel_sec = sec;
    e.timer_prev = kNil;
    e.timer_next = s.wheel[slot];
    if (e.timer_next != kNil)
      entries[e.timer_next].timer_prev = idx;
    s.wheel[slot] = idx;
    e.bits |= kTimerLinked;
  }

  void timerUnlink(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    if ((e.bits & kTimerLinked) == 0)
      return;
    if (e.timer_prev != kNil) {
      entries[e.timer_prev].timer_next = e.timer_next;
    } else {
      s.wheel[slotOf(e.wheel_sec)] = e.timer_next;
    }
    if (e.timer_next != kNil)
      entries[e.timer_next].timer_prev = e.timer_prev;
    e.timer_prev = e.timer_next = kNil;
    e.bits &= static_cast<uint8_t>(~kTimerLinked);
  }

  void rearm(ConnShard& s, uint32_t idx, MonoTime expires) noexcept {
    timerUnlink(s, idx);
    entries[idx].conn.expires = expires;
    timerLink(s, idx);
  }

  // setTimeout's re-arm. Lazy when the timer moves later (the common case: every packet
  // refreshes it): the entry stays in its earlier slot and expireShard moves it when it gets
  // there, so a refresh touches no neighbouring entries.
  void retime(ConnShard& s, uint32_t idx, MonoTime expires) noexcept {
    ConnEntry& e = entries[idx];
    if ((e.bits & kTimerLinked) != 0 && floorSec(expires) >= e.wheel_sec) {
      e.conn.expires = expires;
      return;
    }
    rearm(s, idx, expires);
  }

  // expireShard found a linked entry that is not due: move it to the slot of its expiry.
  void settle(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    int64_t target = std::max(floorSec(e.conn.expires), s.cursor + 1);
    if (target == e.wheel_sec)
      return;
    if (slotOf(target) == slotOf(e.wheel_sec)) {
      e.wheel_sec = target;  // same list, a later round
      return;
    }
    timerUnlink(s, idx);
    timerLink(s, idx);
  }

  // --- in-chain (home lock held) ---
  void inUnlink(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    if ((e.bits & kInLinked) == 0)
      return;
    const uint32_t me = linkTo(idx);
    uint32_t* link = &s.in_heads[bucketOf(inHash(e.conn))];
    while (*link != 0 && *link != me)
      link = &entries[linkIdx(*link)].in_next;
    LB_DCHECK(*link == me);
    if (*link == me)
      *link = e.in_next;
    e.in_next = 0;
    e.bits &= static_cast<uint8_t>(~kInLinked);
  }

  // --- early-drop list (home lock held) ---
  void earlyLink(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    e.early_next = kNil;
    e.early_prev = s.early_tail;
    if (s.early_tail != kNil) {
      entries[s.early_tail].early_next = idx;
    } else {
      s.early_head = idx;
    }
    s.early_tail = idx;
    e.bits |= kEarlyLinked;
    early_count.fetch_add(1, std::memory_order_relaxed);
    if (e.conn.proto == L4Proto::kTcp) {
      embryonic_tcp.fetch_add(1, std::memory_order_relaxed);
      if (e.conn.svc < max_services)
        svc_cookies[e.conn.svc].embryonic.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void earlyUnlink(ConnShard& s, uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    if ((e.bits & kEarlyLinked) == 0)
      return;
    if (e.early_prev != kNil) {
      entries[e.early_prev].early_next = e.early_next;
    } else {
      s.early_head = e.early_next;
    }
    if (e.early_next != kNil) {
      entries[e.early_next].early_prev = e.early_prev;
    } else {
      s.early_tail = e.early_prev;
    }
    e.early_prev = e.early_next = kNil;
    e.bits &= static_cast<uint8_t>(~kEarlyLinked);
    early_count.fetch_sub(1, std::memory_order_relaxed);
    if (e.conn.proto == L4Proto::kTcp) {
      embryonic_tcp.fetch_sub(1, std::memory_order_relaxed);
      if (e.conn.svc < max_services)
        svc_cookies[e.conn.svc].embryonic.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Unlinks the entry everywhere it is reachable from its home shard, reports it and bumps its
  // generation. Returns true when the slot can go back to the slab now; false when its
  // full-NAT out node must first be unlinked by finishDeferred() (pushed on *deferred).
  bool freeLocked(ConnShard& s, uint32_t idx, uint32_t* deferred) noexcept {
    ConnEntry& e = entries[idx];
    e.tag.store(kDeadTag, std::memory_order_release);
    inUnlink(s, idx);
    timerUnlink(s, idx);
    earlyUnlink(s, idx);
    if (events != nullptr)
      events->onConnFreed(e.conn);
    // Generations are 31 bits and never 0 (a zero page reads as generation 0: see SlabChunk).
    e.conn.generation = (e.conn.generation + 1) & 0x7fffffffu;
    if (e.conn.generation == 0)
      e.conn.generation = 1;
    if ((e.conn.flags & kConnFTemplate) != 0)
      templates.fetch_sub(1, std::memory_order_relaxed);
    if ((e.conn.flags & kConnFNoCport) != 0)
      no_cport.fetch_sub(1, std::memory_order_relaxed);
    count.fetch_sub(1, std::memory_order_relaxed);
    if ((e.bits & kOutLinked) != 0) {
      e.in_next = linkTo(*deferred);
      *deferred = idx;
      return false;
    }
    pushFree(idx);
    return true;
  }

  // Unlinks the out nodes of entries freed under a home lock, then returns them to the slab.
  // No lock may be held by the caller.
  void finishDeferred(uint32_t list) noexcept {
    while (list != kNil) {
      ConnEntry& e = entries[list];
      uint32_t next = linkIdx(e.in_next);
      ConnShard& os = shards[e.out_shard];
      os.lock.lock();
      const uint32_t me = linkTo(list);
      uint32_t* link = &os.out_heads[e.out_bucket];
      while (*link != 0 && *link != me)
        link = &entries[linkIdx(*link)].out_next;
      LB_DCHECK(*link == me);
      if (*link == me)
        *link = e.out_next;
      e.out_next = 0;
      e.bits &= static_cast<uint8_t>(~kOutLinked);
      os.lock.unlock();
      e.in_next = 0;
      pushFree(list);
      list = next;
    }
  }

  // Fires one due timer (home lock held): expire_later for a template still controlling
  // conns, otherwise free.
  void fire(ConnShard& s, uint32_t idx, MonoTime now, uint32_t* deferred) noexcept {
    Conn& c = entries[idx].conn;
    if ((c.flags & kConnFTemplate) != 0 && c.n_control.load(std::memory_order_relaxed) > 0) {
      c.timeout = kExpireLater;
      rearm(s, idx, now + kExpireLater);
      return;
    }
    freeLocked(s, idx, deferred);
  }

  // Home lock held: applies a pending assureTemplate().
  void foldAssured(uint32_t idx) noexcept {
    ConnEntry& e = entries[idx];
    if ((e.conn.flags & kConnFTemplate) != 0 && e.assure.load(std::memory_order_relaxed)) {
      e.conn.state |= kTemplateAssured;
    }
  }

  size_t expireShard(ConnShard& s, MonoTime now, size_t budget) noexcept;
  bool dropCandidate(const Conn& c, MonoTime now) noexcept;
  bool earlyDropShard(ConnShard& s) noexcept;
  bool earlyDrop(size_t home) noexcept;

  // Whether early drop may take `c`: never a template, an assured conn or one that reached
  // ESTABLISHED (checked by state too, whoever set it).
  static bool earlyDroppable(const Conn& c) noexcept {
    if ((c.flags & (kConnFTemplate | kConnFAssured)) != 0)
      return false;
    if ((c.flags & kConnFPickedUp) != 0)
      return c.n_control.load(std::memory_order_relaxed) == 0;
    // TCP ESTABLISHED is 1 and SCTP ESTABLISHED 8 (ip_vs_proto_tcp.c, ip_vs_proto_sctp.c).
    if ((c.proto == L4Proto::kTcp && c.state == 1) || (c.proto == L4Proto::kSctp && c.state == 8))
      return false;
    return c.n_control.load(std::memory_order_relaxed) == 0;
  }

  bool todropEntry(const Conn& c, MonoTime now) noexcept;
  ConnGuard guardFor(ConnTable* table, size_t shard, uint32_t idx) noexcept;
  template <typename Fn>
  void forEachLocked(ConnShard& s, Fn&& fn);

  ConnEvents* events;
  PageProvider* pages;
  uint64_t seed;
  size_t capacity;
  size_t shard_count;
  size_t shard_mask;
  size_t buckets_per_shard = 1;
  size_t bucket_mask = 0;
  ConnEntry* entries = nullptr;  // slab_bytes of provider memory
  size_t slab_bytes = 0;
  ZeroedArray<uint32_t> heads;  // every shard's in_heads, then every shard's out_heads
  std::vector<ConnShard> shards;
  // The slab's chunks (slab_lock). room: bit c set when chunk c can hand out an entry;
  // room_hint: every word below it is 0. idle_chunks: chunks touched and holding no live entry.
  conn_internal::SpinLock slab_lock;
  std::vector<SlabChunk> chunks;
  std::vector<uint64_t> room;
  size_t room_hint = 0;
  std::atomic<size_t> idle_chunks{0};
  bool can_trim = true;
  std::atomic<size_t> touched_entries{0};  // sum of chunks' `used`
  std::atomic<uint64_t> chunks_released{0};
  std::atomic<size_t> count{0};
  std::atomic<size_t> templates{0};
  std::atomic<size_t> no_cport{0};
  std::atomic<uint64_t> table_full{0};
  std::atomic<size_t> early_count{0};  // entries on the early-drop lists
  // TCP entries on the early-drop lists: embryonic TCP conns (a guard's release takes a conn
  // off its list once it is no longer early-droppable, so the count follows assurance).
  std::atomic<size_t> embryonic_tcp{0};

  // Per service (index ServiceId < max_services): its embryonic TCP conns (as embryonic_tcp)
  // and its SYN-cookie state (ConnTable::setSyncookiesActive); syncookies_on: how many are on.
  // From the default page provider, not Options::pages (not conn memory: a fixed 8 B per id).
  struct SvcCookies {
    std::atomic<uint32_t> embryonic{0};
    std::atomic<bool> on{false};
  };

  size_t max_services;
  ZeroedArray<SvcCookies> svc_cookies;
  std::atomic<size_t> syncookies_on{0};
  // The last second cookies were sent in (nanoseconds of MonoTime; INT64_MIN: never).
  std::atomic<int64_t> cookie_sent_ns{INT64_MIN};
  std::atomic<uint64_t> early_drops{0};
  std::atomic<size_t> expire_rotor{0};
  std::array<std::atomic<int8_t>, 9> todrop_counter{};
};

template <typename Fn>
void ConnTable::Impl::forEachLocked(ConnShard& s, Fn&& fn) {
  for (uint32_t head : s.wheel) {
    for (uint32_t idx = head; idx != kNil;) {
      uint32_t next = entries[idx].timer_next;
      fn(idx);
      idx = next;
    }
  }
}

}  // namespace lb
