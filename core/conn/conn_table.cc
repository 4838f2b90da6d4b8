// SPDX-License-Identifier: Apache-2.0
// The connection table; the analogue of ip_vs_conn.c (hash, lookups, create, free). Locking
// rules and the entry layout are described in conn_table_impl.h.
#include "core/conn/conn_table.h"

#include <utility>

#include "core/conn/conn_table_impl.h"

namespace lb {

namespace {

constexpr int kEarlyDropRounds = 4;

}  // namespace

ConnGuard ConnTable::Impl::guardFor(ConnTable* table, size_t shard, uint32_t idx) noexcept {
  foldAssured(idx);
  ConnGuard g;
  g.table_ = table;
  g.conn_ = &entries[idx].conn;
  g.index_ = idx;
  g.shard_ = static_cast<uint32_t>(shard);
  return g;
}

// --- ConnGuard ---

ConnGuard::ConnGuard(ConnGuard&& o) noexcept
    : table_(o.table_), conn_(o.conn_), index_(o.index_), shard_(o.shard_) {
  o.table_ = nullptr;
  o.conn_ = nullptr;
  o.index_ = kNoConn;
}

ConnGuard& ConnGuard::operator=(ConnGuard&& o) noexcept {
  if (this != &o) {
    release();
    table_ = o.table_;
    conn_ = o.conn_;
    index_ = o.index_;
    shard_ = o.shard_;
    o.table_ = nullptr;
    o.conn_ = nullptr;
    o.index_ = kNoConn;
  }
  return *this;
}

void ConnGuard::setTimeout(Duration timeout, MonoTime now) noexcept {
  if (conn_ == nullptr)
    return;
  conn_->timeout = timeout;
  ConnTable::Impl& impl = *table_->impl_;
  impl.retime(impl.shards[shard_], index_, now + timeout);
}

uint32_t ConnGuard::seqDelta() const noexcept {
  return conn_ != nullptr ? table_->impl_->entries[index_].seq_delta : 0;
}

void ConnGuard::setSeqDelta(uint32_t delta) noexcept {
  if (conn_ != nullptr)
    table_->impl_->entries[index_].seq_delta = delta;
}

void ConnGuard::release() noexcept {
  if (conn_ != nullptr) {
    ConnTable::Impl& m = *table_->impl_;
    // A conn that became assured (or ESTABLISHED) under this guard leaves the early-drop list
    // now rather than at early drop's next look, so embryonicTcp() follows it.
    if ((m.entries[index_].bits & conn_internal::kEarlyLinked) != 0 &&
        !ConnTable::Impl::earlyDroppable(*conn_)) {
      m.earlyUnlink(m.shards[shard_], index_);
    }
    m.shards[shard_].lock.unlock();
    conn_ = nullptr;
    table_ = nullptr;
    index_ = kNoConn;
  }
}

// --- ConnTable ---

ConnTable::ConnTable(const Options& options, ConnEvents* events)
    : impl_(std::make_unique<Impl>(options, events)) {}

ConnTable::~ConnTable() = default;

ConnGuard ConnTable::findIn(const ConnTuple& t) noexcept {
  Impl& m = *impl_;
  uint64_t h = hashSide(m.seed, t.af, t.proto, t.saddr, t.sport);
  size_t sh = m.shardOf(h);
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  for (uint32_t i = linkIdx(s.in_heads[m.bucketOf(h)]); i != kNil;
       i = linkIdx(m.entries[i].in_next)) {
    if (Impl::inMatch(m.entries[i].conn, t))
      return m.guardFor(this, sh, i);
  }
  s.lock.unlock();
  // ip_vs_conn_in_get: retry with cport 0 for NO_CPORT entries, if there are any.
  if (t.sport == 0 || m.no_cport.load(std::memory_order_relaxed) == 0)
    return {};
  ConnTuple z = t;
  z.sport = 0;
  return findIn(z);
}

ConnGuard ConnTable::findTemplate(const ConnTuple& t) noexcept {
  Impl& m = *impl_;
  uint64_t h = hashSide(m.seed, t.af, t.proto, t.saddr, t.sport);
  size_t sh = m.shardOf(h);
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  for (uint32_t i = linkIdx(s.in_heads[m.bucketOf(h)]); i != kNil;
       i = linkIdx(m.entries[i].in_next)) {
    if (Impl::templateMatch(m.entries[i].conn, t))
      return m.guardFor(this, sh, i);
  }
  s.lock.unlock();
  return {};
}

ConnGuard ConnTable::findOut(const ConnTuple& t) noexcept {
  Impl& m = *impl_;
  // The reply's destination is the conn's client side (or laddr:lport for full NAT).
  uint64_t h = hashSide(m.seed, t.af, t.proto, t.daddr, t.dport);
  size_t sh = m.shardOf(h);
  uint32_t b = m.bucketOf(h);
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  for (uint32_t i = linkIdx(s.in_heads[b]); i != kNil; i = linkIdx(m.entries[i].in_next)) {
    if (Impl::outMatchHome(m.entries[i].conn, t))
      return m.guardFor(this, sh, i);
  }
  uint32_t found = kNil;
  uint32_t gen = kDeadTag;
  for (uint32_t i = linkIdx(s.out_heads[b]); i != kNil; i = linkIdx(m.entries[i].out_next)) {
    const ConnEntry& e = m.entries[i];
    uint32_t tag = e.tag.load(std::memory_order_acquire);
    if (tag != kDeadTag && Impl::outMatchFullNat(e.conn, t)) {
      found = i;
      gen = tag;
      break;
    }
  }
  s.lock.unlock();
  if (found == kNil)
    return {};
  return get(found, gen);
}

ConnGuard ConnTable::get(uint32_t index, uint32_t generation) noexcept {
  Impl& m = *impl_;
  if (index >= m.capacity)
    return {};
  ConnEntry& e = m.entries[index];
  size_t sh = e.home.load(std::memory_order_acquire);
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  if (e.tag.load(std::memory_order_relaxed) == generation &&
      e.home.load(std::memory_order_relaxed) == sh) {
    return m.guardFor(this, sh, index);
  }
  s.lock.unlock();
  return {};
}

ConnGuard ConnTable::getControl(uint32_t control) noexcept {
  Impl& m = *impl_;
  if (control >= m.capacity)
    return {};
  ConnEntry& e = m.entries[control];
  size_t sh = e.home.load(std::memory_order_acquire);
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  // Alive: a generation (never 0; an untouched or given-back page reads 0), not kDeadTag.
  const uint32_t tag = e.tag.load(std::memory_order_relaxed);
  if (tag != kDeadTag && tag != 0 && e.home.load(std::memory_order_relaxed) == sh) {
    return m.guardFor(this, sh, control);
  }
  s.lock.unlock();
  return {};
}

ConnGuard ConnTable::create(const ConnParams& p, MonoTime now) noexcept {
  Impl& m = *impl_;
  uint32_t idx = m.popFree();
  // A full table first makes room by early drop (the oldest unassured conn goes); another
  // worker may take the freed slot first, so a few rounds are tried before refusing.
  for (int round = 0; idx == kNil && round < kEarlyDropRounds; ++round) {
    const uint16_t cport = (p.flags & kConnFNoCport) != 0 ? uint16_t{0} : p.cport;
    if (!m.earlyDrop(m.shardOf(hashSide(m.seed, p.af, p.proto, p.caddr, cport))))
      break;
    idx = m.popFree();
  }
  if (idx == kNil) {
    m.table_full.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  ConnEntry& e = m.entries[idx];
  Conn& c = e.conn;
  static_cast<ConnParams&>(c) = p;
  if ((c.flags & kConnFNoCport) != 0)
    c.cport = 0;
  c.flags &= ~kConnFHashed;
  c.state = 0;
  c.old_state = 0;
  c.in_pkts = 0;
  c.n_control.store(0, std::memory_order_relaxed);
  e.assure.store(false, std::memory_order_relaxed);
  e.seq_delta = 0;
  c.expires = now + p.timeout;
  const bool hashed = (c.flags & kConnFOnePacket) == 0;
  const bool full_nat = hashed && (c.flags & (kConnFFullNat | kConnFTemplate)) == kConnFFullNat;
  uint64_t h = m.inHash(c);
  size_t sh = m.shardOf(h);
  e.home.store(static_cast<uint16_t>(sh), std::memory_order_release);
  e.bits = 0;
  if (full_nat) {
    // Rule 3: link the out node first, without the home lock; tag is still dead.
    uint64_t oh = m.outHash(c);
    e.out_shard = static_cast<uint16_t>(m.shardOf(oh));
    e.out_bucket = m.bucketOf(oh);
    ConnShard& os = m.shards[e.out_shard];
    os.lock.lock();
    e.out_next = os.out_heads[e.out_bucket];
    os.out_heads[e.out_bucket] = linkTo(idx);
    e.bits |= kOutLinked;
    os.lock.unlock();
  }
  ConnShard& s = m.shards[sh];
  s.lock.lock();
  if (hashed) {
    c.flags |= kConnFHashed;
    uint32_t& head = s.in_heads[m.bucketOf(h)];
    e.in_next = head;
    head = linkTo(idx);
    e.bits |= kInLinked;
  }
  m.timerLink(s, idx);
  if (hashed && Impl::earlyDroppable(c))
    m.earlyLink(s, idx);
  e.tag.store(c.generation, std::memory_order_release);
  m.count.fetch_add(1, std::memory_order_relaxed);
  if ((c.flags & kConnFTemplate) != 0)
    m.templates.fetch_add(1, std::memory_order_relaxed);
  if ((c.flags & kConnFNoCport) != 0)
    m.no_cport.fetch_add(1, std::memory_order_relaxed);
  return m.guardFor(this, sh, idx);
}

void ConnTable::expireNow(ConnGuard& g) noexcept {
  if (!g)
    return;
  Impl& m = *impl_;
  ConnShard& s = m.shards[g.shard_];
  Conn& c = *g.conn_;
  if ((c.flags & kConnFTemplate) != 0 && c.n_control.load(std::memory_order_relaxed) > 0) {
    g.release();  // its timer keeps running; expire() re-arms it while n_control > 0
    return;
  }
  uint32_t deferred = kNil;
  m.freeLocked(s, g.index_, &deferred);
  // The slot may be back on the free list and already another thread's new conn (create()
  // writes it before taking any lock): unlock without release()'s look at the entry, which
  // freeLocked has already taken off the early-drop list.
  s.lock.unlock();
  g.conn_ = nullptr;
  g.table_ = nullptr;
  g.index_ = kNoConn;
  m.finishDeferred(deferred);
}

void ConnTable::invalidateTemplate(ConnGuard& g) noexcept {
  if (!g)
    return;
  Impl& m = *impl_;
  Conn& c = *g.conn_;
  if ((c.flags & kConnFTemplate) == 0 || c.vport == 0xffff)
    return;
  // ip_vs_check_template: unhash, ports := 0xffff, cport := 0, rehash. The rehashed key
  // (cport 0, vport 65535) lands in another shard, so the entry simply leaves its in-chain:
  // no real lookup could match it. It stays on its timer and in forEach.
  m.inUnlink(m.shards[g.shard_], g.index_);
  c.dport = 0xffff;
  c.vport = 0xffff;
  c.cport = 0;
}

void ConnTable::assureTemplate(uint32_t control) noexcept {
  if (control < impl_->capacity) {
    impl_->entries[control].assure.store(true, std::memory_order_relaxed);
  }
}

std::atomic<int32_t>& ConnTable::nControl(uint32_t index) noexcept {
  LB_CHECK(index < impl_->capacity);
  return impl_->entries[index].conn.n_control;
}

size_t ConnTable::embryonicTcp() const noexcept {
  return impl_->embryonic_tcp.load(std::memory_order_relaxed);
}

size_t ConnTable::embryonicTcp(ServiceId svc) const noexcept {
  if (svc >= impl_->max_services)
    return 0;
  return impl_->svc_cookies[svc].embryonic.load(std::memory_order_relaxed);
}

void ConnTable::setSyncookiesActive(ServiceId svc, bool on) noexcept {
  if (svc >= impl_->max_services)
    return;
  if (impl_->svc_cookies[svc].on.exchange(on, std::memory_order_relaxed) == on)
    return;
  if (on) {
    impl_->syncookies_on.fetch_add(1, std::memory_order_relaxed);
  } else {
    impl_->syncookies_on.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool ConnTable::syncookiesActive(ServiceId svc) const noexcept {
  return svc < impl_->max_services && impl_->svc_cookies[svc].on.load(std::memory_order_relaxed);
}

size_t ConnTable::syncookiesServices() const noexcept {
  return impl_->syncookies_on.load(std::memory_order_relaxed);
}

void ConnTable::noteCookieSent(MonoTime now) noexcept {
  // At most one store a second: every worker answering a flood would otherwise write this
  // cache line per SYN.
  std::atomic<int64_t>& last = impl_->cookie_sent_ns;
  const int64_t cur = last.load(std::memory_order_relaxed);
  if (cur == INT64_MIN || now.ns - cur >= 1'000'000'000 || now.ns < cur)
    last.store(now.ns, std::memory_order_relaxed);
}

std::optional<MonoTime> ConnTable::lastCookieSent() const noexcept {
  const int64_t ns = impl_->cookie_sent_ns.load(std::memory_order_relaxed);
  if (ns == INT64_MIN)
    return std::nullopt;
  return MonoTime{ns};
}

uint64_t ConnTable::earlyDrops() const noexcept {
  return impl_->early_drops.load(std::memory_order_relaxed);
}

ConnTableStats ConnTable::stats() const {
  ConnTableStats st;
  st.entries = impl_->count.load(std::memory_order_relaxed);
  st.templates = impl_->templates.load(std::memory_order_relaxed);
  st.capacity = impl_->capacity;
  st.table_full = impl_->table_full.load(std::memory_order_relaxed);
  st.early_drops = impl_->early_drops.load(std::memory_order_relaxed);
  st.early_droppable = impl_->early_count.load(std::memory_order_relaxed);
  st.embryonic_tcp = impl_->embryonic_tcp.load(std::memory_order_relaxed);
  st.slab_bytes = impl_->touched_entries.load(std::memory_order_relaxed) * sizeof(ConnEntry);
  st.chunks_released = impl_->chunks_released.load(std::memory_order_relaxed);
  return st;
}

size_t ConnTable::capacity() const {
  return impl_->capacity;
}

uint64_t ConnTable::seed() const {
  return impl_->seed;
}

size_t ConnTable::bucketCount() const {
  return impl_->shard_count * impl_->buckets_per_shard;
}

size_t ConnTable::bytesPerEntry() const {
  const Impl& m = *impl_;
  size_t buckets = 2 * sizeof(uint32_t) * m.buckets_per_shard * m.shard_count;
  size_t chunks = sizeof(SlabChunk) * m.chunks.size() + sizeof(uint64_t) * m.room.size();
  return sizeof(ConnEntry) + (buckets + chunks + m.capacity - 1) / m.capacity;
}

}  // namespace lb
