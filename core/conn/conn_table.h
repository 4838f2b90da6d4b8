// SPDX-License-Identifier: Apache-2.0
// The connection table: bounded, sharded, slab-backed, with timer wheels driven by the passed-in
// clock. The analogue of ip_vs_conn.c (hash, lookups, timers) and the defence of ip_vs_ctl.c.
#ifndef LBD_CORE_CONN_CONN_TABLE_H_
#define LBD_CORE_CONN_CONN_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/base/time.h"
#include "core/conn/conn.h"

namespace lb {

class ConnTable;

// Told about every conn the table frees (expiry, expireNow, flush), with the shard lock held,
// so the owner can unbind it: dest counters, full-NAT port release, the template's n_control.
// Must not call back into the table for the same shard. Hot path.
class ConnEvents {
 public:
  virtual ~ConnEvents() = default;
  virtual void onConnFreed(const Conn& conn) noexcept = 0;
};

// A conn with its shard lock held; movable, not copyable. Empty when a lookup missed.
// Worker thread; hold it briefly and never two at once (except as create() documents).
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
  // Re-arms the conn's timer to fire at now + timeout and records the timeout. Hot path.
  void setTimeout(Duration timeout, MonoTime now) noexcept;
  // Releases the lock early.
  void release() noexcept;

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
};

class ConnTable {
 public:
  struct Options {
    size_t capacity = 1 << 20;  // max entries, templates included; preallocated
    size_t shards = 64;         // power of two
  };

  // Preallocates every entry and bucket. May allocate (only here). Control thread.
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

  // Worker thread. Hot path. Creates and hashes a conn (ONE_PACKET conns are created unhashed
  // and must be freed with expireNow). Empty guard when the table is full.
  ConnGuard create(const ConnParams& p, MonoTime now) noexcept;
  // Expires the conn now: frees it (reporting onConnFreed) and empties the guard.
  void expireNow(ConnGuard& g) noexcept;
  // Invalidates a template in place (ip_vs_check_template): vport = dport = 0xffff, cport = 0,
  // rehashed, so it shows as :65535 and no longer matches.
  void invalidateTemplate(ConnGuard& g) noexcept;

  // Any thread (workers or a housekeeping thread). Fires every timer due at `now`, at most
  // `budget` of them: templates with n_control > 0 are re-armed for 60 s (expire_later);
  // everything else is freed. Returns how many fired.
  size_t expire(MonoTime now, size_t budget = SIZE_MAX) noexcept;

  // Control thread. Calls fn on a copy of every entry (templates included), shard by shard.
  // May allocate.
  void forEach(const std::function<void(const Conn&)>& fn) const;
  // Control thread. Frees every conn matching pred (flush on service delete with
  // expire_nodest_conn, tests).
  size_t expireIf(const std::function<bool(const Conn&)>& pred);

  ConnTableStats stats() const;
  size_t capacity() const;

 private:
  friend class ConnGuard;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb

#endif  // LBD_CORE_CONN_CONN_TABLE_H_
