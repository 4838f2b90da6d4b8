// SPDX-License-Identifier: Apache-2.0
// The dataplane's one class, DataplaneImpl, internal to cmd/lbd/dataplane. Its jobs live in a
// file each: dataplane.cc (creation, lifecycle, hot restart, commits, metrics), worker.cc (the
// worker loop), egress.cc (where a processed packet leaves: TUN, direct egress, AF_PACKET),
// fast_path.cc (the tc ingress program: attach, its maps, the flow offload), housekeeping.cc
// (expiry, estimators, neighbours, defense timer) and decap.cc (decap mode's TUN writer).
#pragma once

#include <sys/eventfd.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"

#include "cmd/lbd/dataplane/dataplane.h"
#include "cmd/lbd/dataplane/flow_offload.h"
#include "cmd/lbd/dataplane/handover.h"
#include "cmd/lbd/dataplane/kernel_state.h"
#include "cmd/lbd/dataplane/neigh_cache.h"
#include "cmd/lbd/dataplane/published.h"
#include "core/base/log.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/syncookies.h"
#ifdef LB_HAVE_BPF
#include "io/bpf/ingress_redirect.h"
#endif
#include "io/netlink/netlink.h"
#include "io/raw/decap.h"
#include "io/raw/l2_sender.h"
#include "io/tun/tun_device.h"
#include "io/tun/udp_tunnel_tap.h"

namespace lb::lbd::dataplane_internal {

constexpr size_t kBatch = 64;
constexpr size_t kSinkBuffers = 16;
constexpr int64_t kHousekeepingTickMs = 100;
// With the flow offload on, the housekeeping thread also wakes this often for it alone: a short
// conn's FINs reach its state machine (and its entries leave the map, freeing the tuple for the
// client's next connection) within this.
constexpr int64_t kOffloadTickMs = 20;
// How often offloaded conns' counters are folded into the stats and their timers re-armed.
constexpr int64_t kOffloadSweepMs = 1000;
constexpr int64_t kEstimatorPeriodMs = 2000;
constexpr int64_t kDefensePeriodMs = 1000;  // ip_vs_ctl.c DEFENSE_TIMER_PERIOD
// FTP control conns whose helper state is kept at once (ftp::StateTable; 64 B each).
constexpr size_t kFtpControlConns = 16384;

// clang-format off
#define LB_DATAPLANE_COUNTERS(C) \
  C(rx_unsupported) C(rx_gso) C(tx_gso) C(tx_tun) C(tx_l2) C(tx_errors) C(to_host_delivered) \
  C(to_host_dropped) C(l2_no_neigh) C(tunnel_gso_dropped) C(decap_packets) C(defense_dropped) \
  C(nodest_expired) C(tx_direct) C(direct_fallback) C(tunnel_gso_split) C(tunnel_gso_segments) \
  C(decap_dropped) C(decap_csum_errors)

// clang-format on

struct DataplaneCounters {
  LB_DATAPLANE_COUNTERS(LB_DECLARE_COUNTER)
};

inline MonoTime monoNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return MonoTime{static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
}

// What the workers read: the snapshot plus the destinations lbd routes into its own TUN
// device (a kToHost packet to one of those written back would loop).
struct WorkerConfig {
  SnapshotPtr snap;
  absl::flat_hash_set<IpAddr> routed;
  std::vector<std::pair<IpAddr, int>> routed_prefixes;
  // Outer source of tunnel packets per family (unspecified: none needed / none found).
  IpAddr tunnel_src_v4, tunnel_src_v6;
};

class SinkPool : public PacketSink {
 public:
  SinkPool() {
    for (size_t i = 0; i < kSinkBuffers; ++i)
      bufs_.push_back(std::make_unique<PacketBuffer>());
  }

  PacketBuffer* allocate() noexcept override {
    if (used_ == bufs_.size())
      return nullptr;
    PacketBuffer* b = bufs_[used_++].get();
    b->reset();
    return b;
  }

  size_t used() const { return used_; }

  PacketBuffer& at(size_t i) { return *bufs_[i]; }

  void clear() { used_ = 0; }

 private:
  std::vector<std::unique_ptr<PacketBuffer>> bufs_;
  size_t used_ = 0;
};

struct Worker {
  size_t index = 0;
  std::unique_ptr<Pipeline> pipeline;
  std::vector<std::unique_ptr<PacketBuffer>> bufs;
  std::vector<PacketBuffer*> ptrs;
  SinkPool sink;
  std::unique_ptr<io::L2Sender> l2;
  FlowOffloadPort* offload = nullptr;  // set before the thread starts; null: no flow offload
  // Scratch for one wire packet of an encapsulated GSO packet (egress.cc, sendTunnelGso).
  std::unique_ptr<PacketBuffer> gso_seg = std::make_unique<PacketBuffer>();
  DataplaneCounters counters;
  std::thread thread;
};

class DataplaneImpl : public Dataplane {
 public:
  DataplaneImpl(const DataplaneOptions& options,
                ServiceTable& table,
                std::unique_ptr<io::TunDevice> tun,
                std::unique_ptr<io::Netlink> nl);
  ~DataplaneImpl() override;

  // `adopting`: a hot restart's first step (Dataplane::adopt): the kernel state is the old
  // lbd's, taken over by completeHandover().
  absl::Status init(bool adopting = false);

  absl::Status completeHandover(const DataplaneHandover& rest) override;
  absl::Status start() override;
  void stop() override;
  absl::StatusOr<DataplaneHandover> pauseForHandover() override;
  std::vector<int> tunFds() const override;
  absl::Status resumeAfterHandover() override;
  void abandon() override;
  absl::Status onCommit(const ServiceTable& table) override;
  const ConnTable* conns() const override;
  std::vector<std::pair<std::string, uint64_t>> metrics() const override;

 private:
  // dataplane.cc
  void joinThreads();
  absl::Status adoptConns(const DataplaneHandover& from);
  void publishConfig(SnapshotPtr snap, const FullConfig& cfg);

  // housekeeping.cc: the SYN-cookie governor (core/pipeline/syncookies.h), every full tick.
  void runSyncookies(const ServiceSnapshot& snap, MonoTime now);

  // fast_path.cc
  void startFastPath();
  void startFlowOffload();
  void updateFastPath(const FullConfig& cfg);
#ifdef LB_HAVE_BPF
  // The SYN proxy's services and cookie key in the tc program (kernel_mu_ held).
  absl::Status updateSynproxyFastPath(io::IngressRedirect& r);

  // The flow map of the tc program, for FlowOffload.
  class RedirectFlowMap final : public FlowMap {
   public:
    explicit RedirectFlowMap(io::IngressRedirect& r) : r_(r) {}

    absl::Status remove(const io::FlowKey& key) override { return r_.removeFlow(key); }

    absl::StatusOr<io::FlowState> state(const io::FlowKey& key) override {
      return r_.flowState(key);
    }

    size_t consumeDone(absl::FunctionRef<void(const io::FlowDone&)> f) override {
      return r_.consumeDone(f);
    }

   private:
    io::IngressRedirect& r_;
  };

  // The workers' side of the flow map: its own fd, so it outlives redirect_.
  class RedirectFlowInstaller final : public FlowInstaller {
   public:
    explicit RedirectFlowInstaller(io::FlowWriter w) : w_(std::move(w)) {}

    int add(const io::FlowKey& key,
            const io::FlowRewrite& rw,
            const io::FlowKey& reverse,
            uint64_t cookie,
            bool reply) noexcept override {
      return w_.add(key, rw, reverse, cookie, reply);
    }

    int remove(const io::FlowKey& key) noexcept override { return w_.remove(key); }

   private:
    io::FlowWriter w_;
  };

  void runFlowOffload(const ServiceSnapshot& snap, bool sweep);
  void attachFastPath();
#endif

  // worker.cc
  void workerLoop(Worker& w);
  static void applyWorkerConfig(Worker& w, const WorkerConfig& cfg);

  // egress.cc
  void transmit(Worker& w, PacketBuffer& p, const WorkerConfig& cfg, const NeighMap* neigh);
  bool sendDirect(Worker& w, PacketBuffer& p, const NeighMap* neigh);
  static bool fitsMtu(const PacketBuffer& p, uint32_t mtu);
  static bool encapsulated(const PacketBuffer& p);
  static bool isMulticastOrLinkLocal(const IpAddr& a);
  static bool isRouted(const WorkerConfig& cfg, const IpAddr& dst);
  void writeTun(Worker& w, PacketBuffer& p);
  void sendTunnelGso(Worker& w, const PacketBuffer& p, const NeighMap* neigh);
  bool sendGueGso(Worker& w, PacketBuffer& p);
  void startGueTap();

  // housekeeping.cc
  void housekeepingLoop();
  void expireNodestConns(const ServiceSnapshot& snap);
  void tickEstimators();

  // decap.cc
  void decapLoop();

  DataplaneOptions options_;
  ServiceTable& table_;
  std::unique_ptr<io::TunDevice> tun_;
  std::unique_ptr<io::Netlink> nl_;
  mutable std::mutex kernel_mu_;
  KernelState kernel_;
  NeighCache neigh_;
  Published<WorkerConfig> config_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<ftp::StateTable> ftp_;  // the FTP helper's per-control-conn state
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<io::DecapReceiver> decap_;
  // GUE super-packets handed to the kernel whole (egress.cc startGueTap); null: cut in userspace.
  std::unique_ptr<io::UdpTunnelTap> gue_tap_;
#ifdef LB_HAVE_BPF
  std::unique_ptr<io::IngressRedirect> redirect_;  // kernel_mu_
#endif
  std::unique_ptr<FlowOffload> offload_;  // null: off; used with kernel_mu_ held
  std::mutex lifecycle_mu_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> running_{false};
  std::mutex hk_mu_;
  std::condition_variable hk_cv_;
  std::thread housekeeping_;
  std::atomic<bool> hk_poked_{false};  // a commit wants a full housekeeping tick now
  DataplaneCounters hk_counters_;      // the housekeeping thread's
  SyncookieGovernor syncookies_;       // the housekeeping thread's
  uint64_t bpf_cookies_seen_ = 0;      // the tc program's SYN-ACK count at the last look
  std::thread decap_thread_;
  int wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // workers' poll; -1: 100 ms polls
};

}  // namespace lb::lbd::dataplane_internal
