// SPDX-License-Identifier: Apache-2.0
// Established-flow offload, lbd's side (core/pipeline/offload.h is the pipeline's): conns the
// workers offer are installed as two entries (one per direction) in the tc program's flow map
// (io/bpf), which from then on rewrites and forwards their packets in the kernel. The
// housekeeping thread does the work; a commit may call dropUnavailable() from the control thread,
// so every method but the ports' runs under one lock of the caller's (lbd's kernel_mu_):
//   - every tick it installs what the workers offered, if the conn is still there and still
//     ESTABLISHED (a short conn is over before the tick and costs nothing);
//   - every sweep it folds the entries' packet and byte counts into the service and dest
//     stats, re-arms the conn's timer from the last forwarded packet (so -Lnc's expiry and the
//     idle timeout behave as if lbd had seen each packet), and removes both entries once the
//     program closed them (it saw a SYN, FIN or RST and sent that packet the slow way), the conn
//     is gone, has left ESTABLISHED, or its dest is no longer available.
// Between sweeps the stats lag by at most one sweep period.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "cmd/lbd/dataplane/spsc_ring.h"
#include "core/base/counters.h"
#include "core/conn/conn_table.h"
#include "core/pipeline/offload.h"
#include "core/service/runtime.h"
#include "core/service/snapshot.h"
#include "core/stats/stats.h"
#include "io/bpf/ingress_redirect.h"

namespace lb::lbd {

// The flow map as FlowOffload uses it: io::IngressRedirect's flow methods, behind an interface
// so the bookkeeping is tested without BPF.
class FlowMap {
 public:
  virtual ~FlowMap() = default;
  virtual absl::Status add(const io::FlowKey& key,
                           const io::FlowRewrite& rw,
                           const io::FlowKey& reverse) = 0;
  virtual absl::Status remove(const io::FlowKey& key) = 0;
  virtual absl::StatusOr<io::FlowState> state(const io::FlowKey& key) = 0;
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
};

// One worker's end: a single-producer ring the housekeeping thread drains.
class FlowOffloadPort final : public FlowOffloader {
 public:
  static constexpr size_t kSize = 1024;

  // Worker thread. Hot path. False when the ring is full (the conn is offered again later).
  bool offer(const Conn& conn, uint32_t index) noexcept override;

  // Housekeeping thread.
  template <typename F>
  void drain(F&& f) {
    ring_.drain(std::forward<F>(f));
  }

  uint64_t full() const { return full_.value(); }

 private:
  SpscRing<OffloadOffer, kSize> ring_;
  Counter full_;  // offers refused for a full ring (worker-owned)
};

// Counts exposed as lb_dataplane_offload_* metrics. Housekeeping-owned.
struct FlowOffloadCounters {
  Counter installed;       // conns whose two entries went in
  Counter skipped;         // offered, but over (or not ESTABLISHED) by the time of install
  Counter install_failed;  // the map refused an entry (full, or an error)
  Counter removed;         // conns given back to the slow path
};

class FlowOffload {
 public:
  // Offloaded traffic is counted in `runtime`'s stats block `stats_block`, which no worker
  // writes. It is allocated (ServiceRuntime::setWorkers) when the first packets are folded, not
  // before: a balancer that never offloads does not pay for it (a block is 40 bytes per service
  // and dest limit).
  FlowOffload(size_t workers, ConnTable& conns, ServiceRuntime& runtime, size_t stats_block);
  ~FlowOffload();
  FlowOffload(const FlowOffload&) = delete;
  FlowOffload& operator=(const FlowOffload&) = delete;

  // Worker `w`'s offloader, for Pipeline::setOffloader.
  FlowOffloadPort& port(size_t w) { return *ports_[w]; }

  // Housekeeping thread. Installs every conn offered since the last call.
  void install(FlowMap& map, const ServiceSnapshot& snap);
  // Housekeeping thread. Folds counters, re-arms timers, removes what is over (see above).
  void sweep(FlowMap& map, const ServiceSnapshot& snap);
  // Control thread, at a commit: gives back the conns whose dest is no longer available now,
  // so a removed real server's packets stop at once, as the kernel drops them (ip_vs_in with
  // expire_nodest_conn=0) or flushes their conns (=1), instead of at the next sweep.
  void dropUnavailable(FlowMap& map, const ServiceSnapshot& snap);
  // Housekeeping thread. Forgets every conn without touching the map (the map is gone, e.g.
  // the fast path was torn down); pending offers are dropped.
  void forget();

  // Offloaded conns now. Any thread.
  size_t active() const { return active_.load(std::memory_order_relaxed); }

  const FlowOffloadCounters& counters() const { return counters_; }

  uint64_t ringFull() const;

  // The two map entries of a conn: what arrives from the client (to the VIP) and what
  // arrives from the real server (to the client, or to the local address for full NAT).
  static io::FlowKey inKey(const OffloadOffer& o);
  static io::FlowKey outKey(const OffloadOffer& o);
  static io::FlowRewrite inRewrite(const OffloadOffer& o);
  static io::FlowRewrite outRewrite(const OffloadOffer& o);

 private:
  struct Entry {
    OffloadOffer offer;
    io::FlowState in, out;  // as of the last sweep (what is already in the stats)
  };

  // Removes both entries of `e` and folds what they forwarded since the last sweep.
  void removeEntry(FlowMap& map, Entry& e);
  void fold(Entry& e, const io::FlowState& in, const io::FlowState& out);
  bool stillOffloadable(const OffloadOffer& o, const ServiceSnapshot& snap);

  ConnTable& conns_;
  ServiceRuntime& runtime_;
  const size_t stats_block_;
  WorkerStats* stats_ = nullptr;
  std::vector<std::unique_ptr<FlowOffloadPort>> ports_;
  absl::flat_hash_map<uint32_t, Entry> entries_;  // by conn slab index
  std::atomic<size_t> active_{0};
  FlowOffloadCounters counters_;
};

}  // namespace lb::lbd
