// SPDX-License-Identifier: Apache-2.0
// The connection table: bounded, sharded, slab-backed, with timer wheels driven by the passed-in
// clock. The analogue of ip_vs_conn.c (hash, lookups, timers) and the defence of ip_vs_ctl.c.
//
// Design (see conn_table.cc for details):
// - Every entry comes from a slab reserved at construction; nothing allocates afterwards. Its
//   pages become resident as entries are first used and go back when whole chunks are free
//   (conn_slab.cc, docs/memory.md).
// - A conn lives in its "home" shard, chosen like the kernel's conn_tab bucket by hashing the
//   client side (af, proto, caddr, cport). The home shard's spinlock guards the entry's mutable
//   fields, its in-chain link and its timer. Because a NAT or DR reply is addressed to
//   caddr:cport, findOut hashes the reply's destination and lands in the same shard: one lock.
// - Full-NAT conns (replies go to laddr:lport) also get an out-index node in the shard of
//   hash(laddr, lport). findOut locks that shard, finds the node, unlocks it, then locks the home
//   shard and re-checks the entry's generation. No code path holds two shard locks at once.
// - Each shard has a 1024-slot, 1-second timer wheel; an entry further out than 1024 s stays in
//   its slot for several rounds (ip_vs_conn.c uses one kernel timer per conn; any timeout up to
//   31 days works). Timers fire at the first expire(now) with now >= expires.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/base/page_provider.h"
#include "core/base/time.h"
#include "core/conn/conn.h"

namespace lb {

class ConnTable;

// Told about every conn the table frees (expiry, expireNow, flush, dropEntries), with the conn's
// shard lock held, so the owner can unbind it: dest counters, full-NAT port release, the
// template's n_control. It must not call any ConnTable method except nControl(): to release the
// controlling template use `table.nControl(conn.control).fetch_sub(1)`. Hot path.
class ConnEvents {
 public:
  virtual ~ConnEvents() = default;
  virtual void onConnFreed(const Conn& conn) noexcept = 0;
};

// A conn with its shard lock held; movable, not copyable. Empty when a lookup missed.
// Worker thread; hold it briefly and never two at once: release a template's guard before
// creating the conn it controls (see create()).
class ConnGuard {
 public:
  ConnGuard() = default;
  ConnGuard(ConnGuard&& o) noexcept;
  ConnGuard& operator=(ConnGuard&& o) noexcept;
  ConnGuard(const ConnGuard&) = delete;
  ConnGuard& operator=(const ConnGuard&) = delete;

  ~ConnGuard() { release(); }

  explicit operator bool() const { return conn_ != nullptr; }

  Conn* operator->() const { return conn_; }

  Conn& operator*() const { return *conn_; }

  // A stable handle for cp->control links (index into the slab).
  uint32_t index() const { return index_; }

  // Re-arms the conn's timer to fire at now + timeout and records the timeout. Moving the
  // expiry later is O(1) and touches no other entry (the wheel re-slots it lazily). Hot path.
  void setTimeout(Duration timeout, MonoTime now) noexcept;
  // Releases the lock early.
  void release() noexcept;

  // SYN proxy (core/pipeline/synproxy.h): lbd's ISN towards the client minus the real server's
  // ISN, added to the server's sequence numbers (and taken from the client's acks) for the
  // rest of the conn; while the handshake with the real server is pending, lbd's ISN itself.
  // 0 for a new conn. Kept beside the Conn in the slab entry (not in forEach's copies). Hot path.
  uint32_t seqDelta() const noexcept;
  void setSeqDelta(uint32_t delta) noexcept;

 private:
  friend class ConnTable;
  ConnTable* table_ = nullptr;
  Conn* conn_ = nullptr;
  uint32_t index_ = kNoConn;
  uint32_t shard_ = 0;
};

// Counts exposed as lb_conn_* metrics.
struct ConnTableStats {
  size_t entries = 0;
  size_t templates = 0;
  size_t capacity = 0;
  uint64_t table_full = 0;
  uint64_t early_drops = 0;    // unassured conns freed to make room (create on a full table)
  size_t early_droppable = 0;  // conns on the early-drop lists (assured ones leave lazily)
  size_t embryonic_tcp = 0;    // TCP conns among them (ConnTable::embryonicTcp)
  // Memory (docs/memory.md): slab bytes written since their chunk was last given back (what
  // the slab costs; the bucket arrays come on top), and chunks given back so far.
  size_t slab_bytes = 0;
  uint64_t chunks_released = 0;
};

class ConnTable {
 public:
  struct Options {
    size_t capacity = 1 << 20;              // max entries, templates included; reserved
    size_t shards = 64;                     // power of two, <= 65536
    uint64_t seed = 0x9e3779b97f4a7c15ull;  // hash key; lbd passes a random one
    // Where the slab and the bucket arrays live; nullptr: defaultPageProvider(). Must outlive
    // the table.
    PageProvider* pages = nullptr;
    // Service ids below this have their own embryonic TCP count and SYN-cookie state
    // (embryonicTcp(svc), syncookiesActive(svc)); lbd passes ServiceRuntime::maxServices().
    size_t max_services = 65536;
  };

  // Reserves address space for every entry and bucket; pages become resident as conns are
  // created (a fresh entry is written the first time create() hands it out) and go back to
  // the provider when whole chunks of entries are free again (expire()). May allocate (only
  // here). Control thread.
  ConnTable(const Options& options, ConnEvents* events);
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  // Worker thread. Hot path. Client->VIP lookup (ip_vs_conn_in_get): af, proto, caddr, cport,
  // vaddr, vport; NO_CPORT entries match with cport 0. Templates never match.
  ConnGuard findIn(const ConnTuple& t) noexcept;
  // Reply lookup (ip_vs_conn_out_get): the packet's src is daddr:dport and its dst is
  // caddr:cport, or laddr:lport for full NAT; for non-NAT conns src is vaddr:vport.
  ConnGuard findOut(const ConnTuple& t) noexcept;
  // Template lookup (ip_vs_ct_in_get): as findIn but TEMPLATE entries only; t.proto may be
  // kNone for fwmark templates.
  ConnGuard findTemplate(const ConnTuple& t) noexcept;
  // Re-finds a conn by slab index if it is still the same generation. Hot path.
  ConnGuard get(uint32_t index, uint32_t generation) noexcept;
  // Worker thread. Hot path. Locks the entry at slab index `control` (a conn's Conn::control)
  // while it is alive, whatever its generation: a template a live conn still controls is never
  // freed (see nControl). Empty for kNoConn or a free slot. For core/sync's control-chain walk.
  ConnGuard getControl(uint32_t control) noexcept;

  // Worker thread. Hot path. Creates and hashes a conn (ONE_PACKET conns are created unhashed
  // and must be freed with expireNow; their timer still runs as a safety net). The timer is
  // armed for p.timeout. When the table is full it first makes room by early drop, as
  // conntrack's early_drop does: it frees the oldest conn that never became ASSURED
  // (kConnFAssured: TCP SYN_RECV and other embryonic states, a UDP conn that saw no reply),
  // looking first in the new conn's home shard (conns there are in creation order), then in
  // the next shards; templates, assured and ESTABLISHED conns are never taken
  // (stats().early_drops). Empty guard when the table is full and nothing could be dropped
  // (counted in stats().table_full).
  // Must not be called while holding another guard. A controlled conn is created like this:
  // under the template's guard do `t->n_control.fetch_add(1)`, note t.index(), release the
  // guard, then create with control = that index; if create fails, undo through nControl().
  ConnGuard create(const ConnParams& p, MonoTime now) noexcept;
  // Expires the conn now: frees it (reporting onConnFreed) and empties the guard. A template
  // with n_control > 0 is not freed (the kernel's expire_now would end in expire_later): its
  // timer keeps running and expire() re-arms it for 60 s while it still controls conns.
  void expireNow(ConnGuard& g) noexcept;
  // Invalidates a template in place (ip_vs_check_template): vport = dport = 0xffff, cport = 0,
  // rehashed, so it shows as :65535 and no longer matches.
  void invalidateTemplate(ConnGuard& g) noexcept;

  // Any thread (workers or a housekeeping thread). Fires every timer due at `now`, at most
  // `budget` of them: templates with n_control > 0 are re-armed for 60 s (expire_later);
  // everything else is freed. Returns how many fired. Then gives whole empty slab chunks back
  // to the page provider (PageProvider::release, a syscall in lbd): call it off the packet
  // path (lbd: the housekeeping thread).
  size_t expire(MonoTime now, size_t budget = SIZE_MAX) noexcept;

  // Control thread. Calls fn on a copy of every entry (templates included), shard by shard,
  // without any lock held. May allocate.
  void forEach(const std::function<void(const Conn&)>& fn) const;
  // Control thread. As forEach, with each entry's slab index (what Conn::control holds), for
  // exportConns (conn_snapshot.h, where it is defined). May allocate.
  void forEachIndexed(const std::function<void(uint32_t index, const Conn&)>& fn) const;
  // Control thread. Frees every conn matching pred (called with the shard lock held; it must
  // not call the table), non-templates first, then templates whose n_control dropped to 0
  // (matching templates still controlling conns are left alone). Returns how many were freed.
  // May allocate.
  size_t expireIf(const std::function<bool(const Conn&)>& pred);

  // Any thread. The drop_entry defence (ip_vs_ctl.c ip_vs_random_dropentry), meant to run once
  // a second while the defence is on: scans `buckets` in-hash buckets at pseudo-random
  // positions derived from `rand` (the caller's RNG; the kernel scans bucketCount() / 32) and
  // frees the conns the kernel would drop: none with n_control > 0; templates not ASSURED
  // (the kernel's todrop rate for one-packet services' templates is not applied); TCP SYN_RECV and
  // SYNACK, SCTP INIT1 and INIT always; TCP and SCTP ESTABLISHED and every state of other
  // protocols by todrop_entry (idle >= 60 s, in_pkts 1..8, every in_pkts-th one). Returns how
  // many were freed. Hot path.
  size_t dropEntries(MonoTime now, uint64_t rand, size_t buckets) noexcept;

  // Any thread, no lock. The n_control counter of the slab entry `index` (a template's
  // Conn::control handle). Safe without a guard because a template with n_control > 0 is never
  // freed or reused (nor is its slab chunk given back): only its children touch it, each once
  // up (creation) and once down (onConnFreed). Hot path.
  std::atomic<int32_t>& nControl(uint32_t index) noexcept;

  // Any thread, no lock: marks the template at slab index `control` ASSURED
  // (ip_vs_control_assure_ct) when StateChange::assure_control says so. Call it while holding
  // the guard of a conn that template controls (that keeps the template alive). The bit is
  // folded into the template's `state` under its own lock: the next guard, forEach or
  // dropEntries sees it. Hot path.
  void assureTemplate(uint32_t control) noexcept;

  ConnTableStats stats() const;
  // Any thread: conns early drop has freed so far (stats().early_drops, one atomic load).
  uint64_t earlyDrops() const noexcept;
  // Any thread, one atomic load: embryonic TCP conns, those early drop may take (never
  // ASSURED nor ESTABLISHED, no template; the SYN-cookie trigger, core/pipeline/syncookies.h).
  // A conn leaves the count when the guard it became assured under is released, or when freed.
  size_t embryonicTcp() const noexcept;
  // Any thread, one atomic load: the same for one service's conns (Conn::svc; 0 for ids at or
  // above Options::max_services). The SYN-cookie trigger is per service, as the kernel's is per
  // listener (core/pipeline/syncookies.h).
  size_t embryonicTcp(ServiceId svc) const noexcept;
  // Any thread, no lock: a service's SYN-cookie state the dataplane's housekeeping thread
  // publishes (SyncookieGovernor) and the pipelines read per SYN. Off until set; ids at or
  // above Options::max_services are never on. syncookiesServices: how many are on.
  void setSyncookiesActive(ServiceId svc, bool on) noexcept;
  bool syncookiesActive(ServiceId svc) const noexcept;
  size_t syncookiesServices() const noexcept;
  // Any thread. Hot path: records that a SYN was answered with a cookie at `now` (one store a
  // second at most). lastCookieSent: the last such time (to within a second), nullopt if none.
  void noteCookieSent(MonoTime now) noexcept;
  std::optional<MonoTime> lastCookieSent() const noexcept;
  size_t capacity() const;
  // The table's hash key (Options::seed): a secret other per-process hashes may derive theirs
  // from (the SYN proxy's cookies). Any thread.
  uint64_t seed() const;
  // Number of in-hash buckets over all shards (the kernel's ip_vs_conn_tab_size).
  size_t bucketCount() const;
  // Bytes of table memory per entry: slab entry plus its share of both hash-bucket arrays
  // (timer links and index nodes are inside the slab entry).
  size_t bytesPerEntry() const;

 private:
  friend class ConnGuard;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb
