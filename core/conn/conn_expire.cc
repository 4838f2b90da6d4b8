// SPDX-License-Identifier: Apache-2.0
// The connection table's timer wheel, flush and defences: ip_vs_conn.c's ip_vs_conn_expire /
// expire_later / ip_vs_conn_flush, ip_vs_ctl.c's ip_vs_random_dropentry, and early drop on a
// full table (nf_conntrack_core.c early_drop).
#include <algorithm>
#include <functional>
#include <vector>

#include "core/conn/conn_table.h"
#include "core/conn/conn_table_impl.h"

namespace lb {

namespace {

// Early drop looks at most this many entries of one shard's list before moving on (assured
// ones it meets at the head leave the list, so the walk is amortised O(1) per conn).
constexpr size_t kEarlyScan = 64;

}  // namespace

size_t ConnTable::Impl::expireShard(ConnShard& s, MonoTime now, size_t budget) noexcept {
  size_t fired = 0;
  uint32_t deferred = kNil;
  s.lock.lock();
  const int64_t now_sec = floorSec(now);
  int64_t from = std::max(s.cursor + 1, now_sec - static_cast<int64_t>(kWheelSlots) + 1);
  bool done = true;
  for (int64_t sec = from; sec <= now_sec && done; ++sec) {
    uint32_t idx = s.wheel[slotOf(sec)];
    while (idx != kNil) {
      uint32_t next = entries[idx].timer_next;
      if (entries[idx].conn.expires <= now) {
        if (fired == budget) {
          done = false;
          break;
        }
        fire(s, idx, now, &deferred);
        ++fired;
      } else {
        settle(s, idx);
      }
      idx = next;
    }
    // Second now_sec stays open: later calls in the same second rescan it.
    if (done)
      s.cursor = std::min(sec, now_sec - 1);
  }
  s.lock.unlock();
  finishDeferred(deferred);
  return fired;
}

// ip_vs_ctl.c todrop_entry: keep conns refreshed within the last 60 s and conns with more
// than 8 (or no) incoming packets; drop every n-th conn with n = in_pkts.
bool ConnTable::Impl::todropEntry(const Conn& c, MonoTime now) noexcept {
  if (now + c.timeout < c.expires + seconds(60))
    return false;
  if (c.in_pkts > 8 || c.in_pkts == 0)
    return false;
  std::atomic<int8_t>& counter = todrop_counter[c.in_pkts];
  int8_t left = static_cast<int8_t>(counter.fetch_sub(1, std::memory_order_relaxed) - 1);
  if (left > 0)
    return false;
  counter.store(static_cast<int8_t>(c.in_pkts), std::memory_order_relaxed);
  return true;
}

// ip_vs_ctl.c ip_vs_random_dropentry's choice for one entry (state values of
// ip_vs_proto_tcp.c / ip_vs_proto_sctp.c: TCP SYN_RECV 3, SYNACK 10, ESTABLISHED 1; SCTP
// INIT1 1, INIT 2, ESTABLISHED 8).
bool ConnTable::Impl::dropCandidate(const Conn& c, MonoTime now) noexcept {
  if (c.n_control.load(std::memory_order_relaxed) != 0)
    return false;
  if ((c.flags & kConnFTemplate) != 0) {
    // The kernel sends templates of one-packet services through todrop_entry instead
    // (ip_vs_conn_ops_mode looks at the service); the table cannot see service flags, so every
    // template follows the ASSURED rule here.
    return (c.state & kTemplateAssured) == 0;
  }
  if (c.proto == L4Proto::kTcp) {
    if (c.state == 3 || c.state == 10)
      return true;
    return c.state == 1 && todropEntry(c, now);
  }
  if (c.proto == L4Proto::kSctp) {
    if (c.state == 1 || c.state == 2)
      return true;
    return c.state == 8 && todropEntry(c, now);
  }
  return todropEntry(c, now);
}

size_t ConnTable::expire(MonoTime now, size_t budget) noexcept {
  Impl& m = *impl_;
  size_t fired = 0;
  size_t start = m.expire_rotor.fetch_add(1, std::memory_order_relaxed);
  for (size_t k = 0; k < m.shard_count && fired < budget; ++k) {
    ConnShard& s = m.shards[(start + k) & m.shard_mask];
    fired += m.expireShard(s, now, budget - fired);
  }
  if (m.can_trim && m.idle_chunks.load(std::memory_order_relaxed) > conn_internal::kSpareChunks)
    m.trimChunks(conn_internal::kTrimBudget);
  return fired;
}

void ConnTable::forEach(const std::function<void(const Conn&)>& fn) const {
  Impl& m = *impl_;
  std::vector<Conn> copies;
  for (ConnShard& s : m.shards) {
    copies.clear();
    s.lock.lock();
    m.forEachLocked(s, [&](uint32_t idx) {
      m.foldAssured(idx);
      copies.push_back(m.entries[idx].conn);
    });
    s.lock.unlock();
    for (const Conn& c : copies)
      fn(c);
  }
}

size_t ConnTable::expireIf(const std::function<bool(const Conn&)>& pred) {
  Impl& m = *impl_;
  size_t freed = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const bool templates = pass == 1;
    for (ConnShard& s : m.shards) {
      uint32_t deferred = kNil;
      s.lock.lock();
      m.forEachLocked(s, [&](uint32_t idx) {
        const Conn& c = m.entries[idx].conn;
        if (((c.flags & kConnFTemplate) != 0) != templates)
          return;
        if (templates && c.n_control.load(std::memory_order_relaxed) > 0)
          return;
        if (!pred(c))
          return;
        m.freeLocked(s, idx, &deferred);
        ++freed;
      });
      s.lock.unlock();
      m.finishDeferred(deferred);
    }
  }
  return freed;
}

size_t ConnTable::dropEntries(MonoTime now, uint64_t rand, size_t buckets) noexcept {
  Impl& m = *impl_;
  size_t dropped = 0;
  uint64_t x = rand;
  const size_t total = m.shard_count * m.buckets_per_shard;
  for (size_t n = 0; n < buckets; ++n) {
    x = mix64(x + 0x9e3779b97f4a7c15ull);
    size_t pos = static_cast<size_t>(x % total);
    ConnShard& s = m.shards[pos / m.buckets_per_shard];
    uint32_t deferred = kNil;
    s.lock.lock();
    uint32_t* link = &s.in_heads[pos % m.buckets_per_shard];
    while (*link != 0) {
      uint32_t idx = linkIdx(*link);
      m.foldAssured(idx);
      if (m.dropCandidate(m.entries[idx].conn, now)) {
        m.freeLocked(s, idx, &deferred);  // unlinks idx: *link now holds its successor
        ++dropped;
      } else {
        link = &m.entries[idx].in_next;
      }
    }
    s.lock.unlock();
    m.finishDeferred(deferred);
  }
  return dropped;
}

// nf_conntrack_core.c early_drop, on one shard: frees the oldest conn on its list that early
// drop may take; assured conns met on the way leave the list. True when one was freed.
bool ConnTable::Impl::earlyDropShard(ConnShard& s) noexcept {
  uint32_t deferred = kNil;
  bool dropped = false;
  s.lock.lock();
  for (size_t seen = 0; s.early_head != kNil && seen < kEarlyScan; ++seen) {
    const uint32_t idx = s.early_head;
    if (earlyDroppable(entries[idx].conn)) {
      freeLocked(s, idx, &deferred);
      dropped = true;
      break;
    }
    earlyUnlink(s, idx);
  }
  s.lock.unlock();
  finishDeferred(deferred);
  if (dropped)
    early_drops.fetch_add(1, std::memory_order_relaxed);
  return dropped;
}

// Unlike conntrack, which looks only near the new tuple's bucket and refuses when it finds
// nothing there, lbd walks every shard before refusing: a table full of assured conns and
// templates is the only reason to drop a new conn.
bool ConnTable::Impl::earlyDrop(size_t home) noexcept {
  for (size_t k = 0; k < shard_count; ++k) {
    if (early_count.load(std::memory_order_relaxed) == 0)
      return false;
    if (earlyDropShard(shards[(home + k) & shard_mask]))
      return true;
  }
  return false;
}

}  // namespace lb
