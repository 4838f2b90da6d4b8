// SPDX-License-Identifier: Apache-2.0
// Flow offload, lbd's side (core/pipeline/offload.h is the pipeline's): the conns the pipeline
// offers are installed as two entries (one per direction) in the tc program's flow map (io/bpf),
// which from then on rewrites and forwards their packets in the kernel.
//   - The worker installs them itself, right after the batch that offered them was processed
//     and before it is transmitted: a TCP conn's entries are in place before its SYN leaves, so
//     the SYN-ACK, the handshake's ACK, the data and the FINs all stay in the kernel.
//   - The worker then hands the conn to the housekeeping thread, which owns the bookkeeping.
//     Every tick (20 ms) for conns installed in the last second, and every sweep (1 s) for all,
//     it reads both entries and:
//       - feeds the TCP flags the program forwarded into the conn's state machine
//         (applyFastPathFlags), so -Lnc, the active/inactive counts and the timeouts follow;
//       - folds the packet and byte counts into the service and dest stats;
//       - re-arms the conn's timer from the last forwarded packet;
//       - removes both entries once the conn is over (both FINs or an RST forwarded, a new SYN
//         on the tuple, the conn gone or its dest unavailable). Later packets (the last ACK, a
//         retransmission) take the slow path, where the conn is in TIME_WAIT or CLOSE.
// The housekeeping methods run under one lock of the caller's (lbd's kernel_mu_): a commit may
// call dropUnavailable() from the control thread.
//
// A SYN flood must not fill the map (conns offloaded from the SYN that never complete their
// handshake stay until they expire or the conn table drops them): a worker offloads a conn that
// is not yet assured (TCP SYN_RECV) only while fewer than half the map's conns and fewer than
// kHalfOpenLimit half-open ones are in it, and any conn only while the map has room; a refused
// conn is offered again with its next packet (the handshake's ACK, through lbd: it is then
// ESTABLISHED). While the map is past either limit, conns still in SYN_RECV 200 ms after their
// install go back to the slow path. Once the half-open limit is reached, no conn still in
// SYN_RECV goes in for kFloodHoldTicks (a flood's hold). A real client's conn is therefore
// offloaded from its SYN, or at worst from its ACK.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "cmd/lbd/dataplane/spsc_ring.h"
#include "core/base/counters.h"
#include "core/conn/conn_table.h"
#include "core/pipeline/offload.h"
#include "core/pipeline/pipeline.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"
#include "core/stats/stats.h"
#include "io/bpf/ingress_redirect.h"

namespace lb::lbd {

// The flow map as the housekeeping thread uses it: io::IngressRedirect's flow methods, behind
// an interface so the bookkeeping is tested without BPF.
class FlowMap {
 public:
  virtual ~FlowMap() = default;
  virtual absl::Status remove(const io::FlowKey& key) = 0;
  virtual absl::StatusOr<io::FlowState> state(const io::FlowKey& key) = 0;
  // The conns the program finished itself (forwarded their last ACK or an RST, deleted both
  // entries) since the last call: f(record) each. No syscall (io::IngressRedirect::consumeDone).
  virtual size_t consumeDone(absl::FunctionRef<void(const io::FlowDone&)> f) = 0;
};

// The flow map as the workers use it (io::FlowWriter): adds an entry unless its key is there
// already, removes one. Any thread; never allocates or throws. 0 or an errno.
class FlowInstaller {
 public:
  virtual ~FlowInstaller() = default;
  // `cookie` comes back in the program's records (FlowOffload::cookie); `reply`: the real
  // server -> client entry.
  virtual int add(const io::FlowKey& key,
                  const io::FlowRewrite& rw,
                  const io::FlowKey& reverse,
                  uint64_t cookie,
                  bool reply) noexcept = 0;
  virtual int remove(const io::FlowKey& key) noexcept = 0;
};

// What a worker hands over: the parts of the conn the two entries are made of.
struct OffloadOffer {
  uint32_t index = kNoConn;
  uint32_t generation = 0;
  L4Proto proto = L4Proto::kTcp;
  bool full_nat = false;
  IpAddr caddr, vaddr, daddr, laddr;
  uint16_t cport = 0, vport = 0, dport = 0, lport = 0;
  ServiceId svc = kNoService;
  DestId dest = kNoDest;
  int err = 0;             // the worker's install: 0, or the errno of the entry that failed
  bool half_open = false;  // TCP in SYN_RECV when offered
  // A GUE, IPIP or GRE tunnel conn (offerTunnel): ONE entry, client -> VIP, encapsulated towards
  // daddr; the real server answers the client directly. kNone: NAT or full NAT, two entries.
  io::FlowEncap encap = io::FlowEncap::kNone;
  IpAddr tunnel_src;                            // the outer source
  uint16_t tunnel_sport = 0, tunnel_dport = 0;  // the outer UDP ports (GUE; IPIP, GRE: 0)
};

// One worker's end: the conns offered in the current batch, and a single-producer ring of
// installed conns the housekeeping thread drains.
class FlowOffloadPort final : public FlowOffloader {
 public:
  static constexpr size_t kSize =
      4096;  // ring: installs between two ticks (20 ms; 100 ms at worst)
  static constexpr size_t kPending = 64;  // offers per batch (one per packet at most)

  // `in_map` counts the conns whose entries are in the map (workers add, the housekeeping
  // thread subtracts); null: no limits. `map_conns`: the conns the map holds.
  // `half_open`: the conns in the map still in SYN_RECV (the housekeeping thread's count as of
  // its last tick, plus the workers' installs since).
  explicit FlowOffloadPort(const std::atomic<FlowInstaller*>& installer,
                           std::atomic<int64_t>* in_map = nullptr,
                           size_t map_conns = 0,
                           std::atomic<int64_t>* half_open = nullptr)
      : installer_(installer),
        in_map_(in_map),
        half_open_(half_open),
        map_conns_(static_cast<int64_t>(map_conns)) {}

  // Worker thread, shard lock held. Hot path. Queues the conn for flush(); false when the batch
  // or the ring is full, or the map has no room for it (see above; counted in held()): the conn
  // is offered again with its next packet.
  bool offer(const Conn& conn, uint32_t index) noexcept override;
  // A GUE, IPIP or GRE tunnel conn: as offer(), one entry.
  bool offerTunnel(const Conn& conn, uint32_t index, const TunnelOffer& t) noexcept override;
  // Worker thread, no lock held, after the pipeline processed a batch and before it is sent:
  // installs each queued conn's two entries and hands the conn to the housekeeping thread.
  void flush() noexcept;

  // Housekeeping thread.
  template <typename F>
  void drain(F&& f) {
    ring_.drain(std::forward<F>(f));
  }

  uint64_t full() const { return full_.value(); }

  uint64_t held() const { return held_.value(); }

  // Below this many conns in the map a conn is offloaded from its SYN.
  static int64_t synLimit(int64_t map_conns) { return map_conns / 2; }

  // ... and below this many conns in the map still in SYN_RECV: each costs the housekeeping
  // thread two map lookups every 20 ms until its handshake is seen. Above it (a flood, or
  // over 50,000 new conns a second), conns are offloaded at their handshake's end.
  static constexpr int64_t kHalfOpenLimit = 1024;

  // Conns the map keeps free for what the workers have queued but not installed yet.
  static int64_t margin(int64_t map_conns) { return std::min<int64_t>(1024, map_conns / 16); }

 private:
  const std::atomic<FlowInstaller*>& installer_;
  std::atomic<int64_t>* in_map_;
  std::atomic<int64_t>* half_open_;
  const int64_t map_conns_;
  OffloadOffer pending_[kPending];
  size_t npending_ = 0;
  SpscRing<OffloadOffer, kSize> ring_;
  Counter full_;  // offers refused for a full batch or ring (worker-owned)
  Counter held_;  // offers refused for want of room in the map (worker-owned)
};

// Counts exposed as lb_dataplane_offload_* metrics. Housekeeping-owned.
struct FlowOffloadCounters {
  Counter installed;       // conns whose two entries went in
  Counter install_failed;  // the map refused an entry (full, the tuple's old entries still
                           // there, or the fast path gone)
  Counter removed;         // conns given back to the slow path
  Counter finished;        // of those, conns the program finished itself (no map update)
  Counter unhandshaken;    // of those, conns given back still in SYN_RECV (map past half)
};

class FlowOffload {
 public:
  // Offloaded traffic is counted in `runtime`'s stats block `stats_block`, which no worker
  // writes. It is allocated (ServiceRuntime::setWorkers) when the first packets are folded, not
  // before: a balancer that never offloads does not pay for it (a block is 40 bytes per service
  // and dest limit).
  // `map_conns`: the conns the flow map holds (two entries each; 0: LB_BPF_MAX_FLOWS / 2).
  FlowOffload(size_t workers,
              ConnTable& conns,
              ServiceRuntime& runtime,
              size_t stats_block,
              size_t map_conns = 0);
  ~FlowOffload();
  FlowOffload(const FlowOffload&) = delete;
  FlowOffload& operator=(const FlowOffload&) = delete;

  // Worker `w`'s offloader, for Pipeline::setOffloader.
  FlowOffloadPort& port(size_t w) { return *ports_[w]; }

  // Control thread, before the workers offer anything: what they install with. Kept until
  // the FlowOffload is destroyed (a worker may be using it when forget() runs).
  void setInstaller(std::unique_ptr<FlowInstaller> installer);

  // Control thread, before the first tick: connection sync's hook for the conns the fast path
  // forwards (ip_vs_sync_conn with the state it last reported); null: none.
  void setSyncHook(ConnSyncHook* hook) { sync_hook_ = hook; }

  // Housekeeping thread, every tick: takes over what the workers installed, then brings the
  // young conns (installed less than kYoungTicks ago) or, on a sweep, all of them up to date
  // (see above).
  void tick(FlowMap& map, const ServiceSnapshot& snap, bool sweep);
  static constexpr int kYoungTicks = 50;      // at lbd's 20 ms tick: the first second
  static constexpr int kHandshakeTicks = 10;  // 200 ms: a half-open conn's grace when crowded
  // A tick that finds kHalfOpenLimit conns in SYN_RECV in the map (a SYN flood) holds every
  // conn not yet handshaken out of the map for this long (5 s, re-armed while it lasts), and
  // gives the half-open ones back kHandshakeTicks after their install. Without the hold, each
  // half-open conn given back freed a place that the flood's next SYN took at once: the map
  // stayed at the limit, and the housekeeping thread spent a quarter of lbd's CPU polling
  // 1,024 spoofed conns every 20 ms (issue 17's profile). Real clients' conns are offloaded at
  // their handshake's end meanwhile.
  static constexpr int kFloodHoldTicks = 250;
  // Control thread, at a commit: gives back the conns whose dest is no longer available now,
  // so a removed real server's packets stop at once, as the kernel drops them (ip_vs_in with
  // expire_nodest_conn=0) or flushes their conns (=1), instead of at the next sweep.
  void dropUnavailable(FlowMap& map, const ServiceSnapshot& snap);
  // Housekeeping thread. Forgets every conn without touching the map (the map is gone, e.g.
  // the fast path was torn down) and stops the workers' installs.
  void forget();

  // Offloaded conns now. Any thread.
  size_t active() const { return active_.load(std::memory_order_relaxed); }

  const FlowOffloadCounters& counters() const { return counters_; }

  uint64_t ringFull() const;
  // Offers the workers refused for want of room in the map (SYN_RECV conns past the half).
  uint64_t held() const;

  // Conns in the map, or being installed now. Any thread.
  int64_t inMap() const { return in_map_.load(std::memory_order_relaxed); }

  // The two map entries of a conn: what arrives from the client (to the VIP) and what
  // arrives from the real server (to the client, or to the local address for full NAT).
  static io::FlowKey inKey(const OffloadOffer& o);
  static io::FlowKey outKey(const OffloadOffer& o);
  static io::FlowRewrite inRewrite(const OffloadOffer& o);
  static io::FlowRewrite outRewrite(const OffloadOffer& o);

  // A tunnel conn has only its in entry (outKey is not in the map).
  static bool oneEntry(const OffloadOffer& o) { return o.encap != io::FlowEncap::kNone; }

  // What identifies the conn in the program's records: its slab index and generation.
  static uint64_t cookie(const OffloadOffer& o) { return (uint64_t{o.generation} << 32) | o.index; }

 private:
  ConnSyncHook* sync_hook_ = nullptr;  // setSyncHook

  struct Entry {
    OffloadOffer offer;
    io::FlowState in, out;  // as of the last look (what is already in the stats and the conn)
    int young = kYoungTicks;
    bool retry = false;      // given back in SYN_RECV: may be offered again
    bool half_open = false;  // in SYN_RECV as of the last look (counted in half_open_count_)
  };

  void forgetEntry(const Entry& e) {
    if (e.half_open)
      --half_open_count_;
  }

  void adopt(FlowMap& map);
  // Takes the conns the program finished: their last states, no entries left to remove.
  void takeFinished(FlowMap& map, const ServiceSnapshot& snap, bool secure_tcp);
  // Brings `e` up to date; true when it is over (its entries are then removed).
  bool refresh(FlowMap& map, Entry& e, const ServiceSnapshot& snap, bool secure_tcp);
  // Feeds the entries' states `in` and `out` into the conn, its stats and timer; true when the
  // conn is over for the fast path.
  bool update(Entry& e,
              const io::FlowState& in,
              const io::FlowState& out,
              const ServiceSnapshot& snap,
              bool secure_tcp);
  // Removes both entries of `e` and folds what they forwarded since the last look; `in` and
  // `out` are the entries' states when the caller has them.
  void removeEntry(FlowMap& map,
                   Entry& e,
                   const io::FlowState* in = nullptr,
                   const io::FlowState* out = nullptr);
  void fold(Entry& e, const io::FlowState& in, const io::FlowState& out);

  ConnTable& conns_;
  ServiceRuntime& runtime_;
  const size_t stats_block_;
  WorkerStats* stats_ = nullptr;
  std::unique_ptr<FlowInstaller> installer_owned_;
  std::atomic<FlowInstaller*> installer_{nullptr};
  std::vector<std::unique_ptr<FlowOffloadPort>> ports_;
  absl::flat_hash_map<uint32_t, Entry> entries_;  // by conn slab index
  std::vector<uint32_t> young_;                   // slab indexes of the young entries
  std::atomic<size_t> active_{0};
  std::atomic<int64_t> in_map_{0};     // installed by a worker and not yet removed
  std::atomic<int64_t> half_open_{0};  // half_open_count_ as of the last tick, + installs since
  size_t half_open_count_ = 0;         // entries in SYN_RECV (housekeeping-owned)
  int flood_hold_ = 0;                 // ticks left of a flood's hold (housekeeping-owned)
  size_t map_conns_;
  FlowOffloadCounters counters_;
};

}  // namespace lb::lbd
