// SPDX-License-Identifier: Apache-2.0
// The dataplane: N workers, one per TUN queue, each reading a batch, running core::Pipeline
// on it with the latest published snapshot and writing the results (TUN, or AF_PACKET for
// direct routing); a housekeeping thread (conn expiry, estimators, neighbour MACs); the
// kernel state of the mode; and in decap mode a thread writing decapsulated packets to TUN.
#include "cmd/lbd/dataplane/dataplane.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd/dataplane/flow_offload.h"
#include "cmd/lbd/dataplane/handover.h"
#include "cmd/lbd/dataplane/kernel_state.h"
#include "cmd/lbd/dataplane/neigh_cache.h"
#include "cmd/lbd/dataplane/published.h"
#include "core/base/log.h"
#include "core/conn/conn_snapshot.h"
#include "core/pipeline/pipeline.h"
#ifdef LB_HAVE_BPF
#include "io/bpf/ingress_redirect.h"
#endif
#include "io/netlink/netlink.h"
#include "io/raw/decap.h"
#include "io/raw/l2_sender.h"
#include "io/tun/tun_device.h"
#include "io/tun/vnet_hdr.h"

namespace lb::lbd {
namespace {

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

// clang-format off
#define LB_DATAPLANE_COUNTERS(C) \
  C(rx_unsupported) C(rx_gso) C(tx_gso) C(tx_tun) C(tx_l2) C(tx_errors) C(to_host_delivered) \
  C(to_host_dropped) C(l2_no_neigh) C(tunnel_gso_dropped) C(decap_packets) C(defense_dropped) \
  C(nodest_expired) C(tx_direct) C(direct_fallback)

// clang-format on

struct DataplaneCounters {
  LB_DATAPLANE_COUNTERS(LB_DECLARE_COUNTER)
};

MonoTime monoNow() {
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

// The source address the kernel picks for a packet to `dst` (its route's preferred source, as
// ip_vs_xmit.c __ip_vs_get_out_rt gets for a tunnel's outer header): a connected UDP socket's
// local address. Unspecified when there is no route.
IpAddr routeSource(const IpAddr& dst) {
  const int fd = socket(dst.isV6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return IpAddr();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (dst.isV6()) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(9);
    std::memcpy(&sa->sin6_addr, dst.data(), 16);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(9);
    std::memcpy(&sa->sin_addr, dst.data(), 4);
    len = sizeof(*sa);
  }
  IpAddr out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    sockaddr_storage local{};
    socklen_t llen = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
      if (dst.isV6()) {
        out = IpAddr::fromBytes(
            Af::kInet6,
            reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr));
      } else {
        out = IpAddr::fromBytes(Af::kInet, reinterpret_cast<const uint8_t*>(
                                               &reinterpret_cast<sockaddr_in*>(&local)->sin_addr));
      }
    }
  }
  close(fd);
  return out;
}

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
  DataplaneCounters counters;
  std::thread thread;
};

// The destination address of an IP packet (no options parsing needed).
bool packetDst(const PacketBuffer& p, IpAddr& out) {
  const uint8_t* d = p.data();
  if (p.size() >= 20 && (d[0] >> 4) == 4) {
    out = IpAddr::fromBytes(Af::kInet, d + 16);
    return true;
  }
  if (p.size() >= 40 && (d[0] >> 4) == 6) {
    out = IpAddr::fromBytes(Af::kInet6, d + 24);
    return true;
  }
  return false;
}

class DataplaneImpl : public Dataplane {
 public:
  DataplaneImpl(const DataplaneOptions& options,
                ServiceTable& table,
                std::unique_ptr<io::TunDevice> tun,
                std::unique_ptr<io::Netlink> nl)
      : options_(options),
        table_(table),
        tun_(std::move(tun)),
        nl_(std::move(nl)),
        kernel_(*nl_,
                options.mode,
                tun_->name(),
                tun_->ifindex(),
                KernelState::journalPath(options.run_dir, tun_->name())),
        neigh_(*nl_, tun_->ifindex(), tun_->queues(), options.direct_egress) {}

  ~DataplaneImpl() override {
    stop();
    if (wake_fd_ >= 0)
      close(wake_fd_);
  }

  // `adopting`: a hot restart's first step (Dataplane::adopt): the kernel state is the old
  // lbd's, taken over by completeHandover().
  absl::Status init(bool adopting = false) {
    if (!adopting) {
      if (absl::Status s = kernel_.cleanupLeftovers(); !s.ok())
        return s;
      if (absl::Status s = kernel_.installBase(); !s.ok()) {
        kernel_.removeAll();
        return s;
      }
    }
    startFastPath();
    const size_t n = tun_->queues();
    table_.runtime().setWorkers(n);
    ConnTable::Options copts;
    copts.capacity = options_.conn_capacity;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != static_cast<ssize_t>(sizeof(seed)))
      seed = 0x5bd1e995;
    copts.seed = seed;
    conns_ = std::make_unique<ConnTable>(copts, Pipeline::connEvents(table_.runtime()));
    for (size_t i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->index = i;
      w->pipeline = std::make_unique<Pipeline>(*conns_, i, seed ^ (i * 0x9e3779b97f4a7c15ull));
      for (size_t b = 0; b < kBatch; ++b)
        w->bufs.push_back(std::make_unique<PacketBuffer>());
      w->ptrs.resize(kBatch);
      auto l2 = io::L2Sender::create();
      if (!l2.ok()) {
        LB_LOG(kWarn, "direct routing unavailable: %s", l2.status().ToString());
      } else {
        w->l2 = std::move(*l2);
      }
      workers_.push_back(std::move(w));
    }
    startFlowOffload();
    if (options_.mode == Mode::kDecap) {
      auto d = io::DecapReceiver::create(options_.gue_port);
      if (!d.ok()) {
        if (!adopting)
          kernel_.removeAll();
        return d.status();
      }
      decap_ = std::move(*d);
    }
    publishConfig(table_.snapshot(), table_.config());
    return absl::OkStatus();
  }

  absl::Status completeHandover(const DataplaneHandover& rest) override {
    {
      std::lock_guard<std::mutex> klock(kernel_mu_);
      if (absl::Status s = kernel_.importState(rest.kernel_state); !s.ok())
        return s;
    }
    if (absl::Status s = adoptConns(rest); !s.ok())
      return s;
    // TSO per tunnel dests, direct-routing neighbours, the fast path's sets: as after a commit
    // (the routes and rules are there already: the reconcile finds nothing to do).
    return onCommit(table_);
  }

  absl::Status start() override {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (running_.load())
      return absl::OkStatus();
    running_.store(true);
    for (auto& w : workers_) {
      Worker* wp = w.get();
      wp->thread = std::thread([this, wp] { workerLoop(*wp); });
    }
    housekeeping_ = std::thread([this] { housekeepingLoop(); });
    if (decap_ != nullptr)
      decap_thread_ = std::thread([this] { decapLoop(); });
    return absl::OkStatus();
  }

  void stop() override {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (stopped_)
      return;
    stopped_ = true;
    joinThreads();
    std::lock_guard<std::mutex> klock(kernel_mu_);
#ifdef LB_HAVE_BPF
    redirect_.reset();  // detaches from every device first: nothing is sent to a dead TUN
#endif
    kernel_.removeAll();
    LB_LOG(kInfo, "dataplane stopped; kernel state removed");
  }

  absl::StatusOr<DataplaneHandover> pauseForHandover() override {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (stopped_)
      return absl::FailedPreconditionError("dataplane stopped");
    joinThreads();
    DataplaneHandover h;
    {
      std::lock_guard<std::mutex> klock(kernel_mu_);
#ifdef LB_HAVE_BPF
      std::shared_ptr<const WorkerConfig> cfg = config_.get();
      if (offload_ != nullptr && redirect_ != nullptr && cfg != nullptr && cfg->snap != nullptr) {
        RedirectFlowMap map(*redirect_);
        offload_->tick(map, *cfg->snap, true);  // the conns as the program left them
      }
      redirect_.reset();
      if (offload_ != nullptr) {
        offload_->forget();
        for (auto& w : workers_) {
          w->offload = nullptr;
          w->pipeline->setOffloader(nullptr, options_.flow_offload_min_packets);
        }
      }
#endif
      h.kernel_state = kernel_.exportState();
    }
    h.tun_fds = tunFds();
    h.conns = encodeConns(exportConns(*conns_));
    if (std::shared_ptr<const WorkerConfig> cfg = config_.get(); cfg && cfg->snap)
      h.ids = handoverIds(*cfg->snap);
    return h;
  }

  std::vector<int> tunFds() const override {
    std::vector<int> fds;
    for (size_t q = 0; q < tun_->queues(); ++q)
      fds.push_back(tun_->fd(q));
    return fds;
  }

  absl::Status resumeAfterHandover() override {
    startFastPath();
    LB_LOG(kWarn, "hot restart failed: carrying on (flow offload off until the next restart)");
    return start();
  }

  void abandon() override {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    joinThreads();
    stopped_ = true;
#ifdef LB_HAVE_BPF
    std::lock_guard<std::mutex> klock(kernel_mu_);
    redirect_.reset();
#endif
    LB_LOG(kInfo, "dataplane handed over; kernel state left to the new lbd");
  }

  absl::Status onCommit(const ServiceTable& table) override {
    publishConfig(table.snapshot(), table.config());
    std::lock_guard<std::mutex> lock(kernel_mu_);
    if (stopped_)
      return absl::OkStatus();
    // Tunnel dests: IPIP-wrapped GSO writes are dropped by the kernel (ipip_gso_segment needs
    // SKB_GSO_IPXIP4, which virtio_net_hdr cannot express), so TSO/USO stay off while any
    // exists; reads then arrive segmented and only checksums are finished in software.
    const uint32_t want = KernelState::hasTunnelDests(table.config())
                              ? (tun_->fullOffloads() & io::kTunFCsum)
                              : tun_->fullOffloads();
    if (absl::Status s = tun_->setOffloads(want); !s.ok())
      LB_LOG(kWarn, "%s", s.ToString());
    std::vector<IpAddr> dr;
    for (const auto& sd : table.config().services) {
      for (const auto& d : sd.dests) {
        if (d.fwd == FwdMethod::kDirectRoute &&
            std::find(dr.begin(), dr.end(), d.addr) == dr.end()) {
          dr.push_back(d.addr);
        }
      }
    }
    neigh_.setWanted(std::move(dr));
    hk_poked_.store(true);
    hk_cv_.notify_all();
    updateFastPath(table.config());
#ifdef LB_HAVE_BPF
    if (offload_ != nullptr && redirect_ != nullptr) {
      RedirectFlowMap map(*redirect_);
      offload_->dropUnavailable(map, *table.snapshot());
    }
#endif
    return kernel_.reconcile(table.config());
  }

  const ConnTable* conns() const override {
    return conns_.get();
  }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override {
    std::vector<std::pair<std::string, uint64_t>> out;
    auto sum = [this](auto get) {
      uint64_t v = 0;
      for (const auto& w : workers_)
        v += get(*w);
      return v;
    };
#define LB_EMIT_DP(name)                                                             \
  out.emplace_back("lb_dataplane_" #name "_total", sum([](const Worker& w) {         \
                                                     return w.counters.name.value(); \
                                                   }) + hk_counters_.name.value());
    LB_DATAPLANE_COUNTERS(LB_EMIT_DP)
#undef LB_EMIT_DP
#ifdef LB_HAVE_BPF
    {
      std::lock_guard<std::mutex> lock(kernel_mu_);
      if (redirect_ != nullptr) {
        if (auto c = redirect_->counters(); c.ok()) {
          out.emplace_back("lb_dataplane_bpf_redirected_dst_total", c->redirected_dst);
          out.emplace_back("lb_dataplane_bpf_redirected_reply_total", c->redirected_reply);
          out.emplace_back("lb_dataplane_bpf_passed_total", c->passed);
          out.emplace_back("lb_dataplane_bpf_flow_forwarded_total", c->flow_forwarded);
          out.emplace_back("lb_dataplane_bpf_flow_slow_total", c->flow_slow);
          out.emplace_back("lb_dataplane_bpf_flow_dropped_total", c->flow_dropped);
          out.emplace_back("lb_dataplane_bpf_flow_done_total", c->flow_done);
        }
      }
    }
    if (offload_ != nullptr) {
      const FlowOffloadCounters& oc = offload_->counters();
      out.emplace_back("lb_dataplane_offload_active", offload_->active());
      out.emplace_back("lb_dataplane_offload_installed_total", oc.installed.value());
      out.emplace_back("lb_dataplane_offload_install_failed_total", oc.install_failed.value());
      out.emplace_back("lb_dataplane_offload_removed_total", oc.removed.value());
      out.emplace_back("lb_dataplane_offload_finished_total", oc.finished.value());
      out.emplace_back("lb_dataplane_offload_ring_full_total", offload_->ringFull());
      out.emplace_back("lb_dataplane_offload_held_total", offload_->held());
      out.emplace_back("lb_dataplane_offload_unhandshaken_total", oc.unhandshaken.value());
      out.emplace_back("lb_dataplane_offload_in_map",
                       static_cast<uint64_t>(std::max<int64_t>(offload_->inMap(), 0)));
    }
#endif
    if (conns_ != nullptr) {  // the conn table: fill, refusals, early drops (SYN floods)
      const ConnTableStats cs = conns_->stats();
      out.emplace_back("lb_conn_entries", cs.entries);
      out.emplace_back("lb_conn_templates", cs.templates);
      out.emplace_back("lb_conn_capacity", cs.capacity);
      out.emplace_back("lb_conn_table_full_total", cs.table_full);
      out.emplace_back("lb_conn_early_drops_total", cs.early_drops);
    }
#define LB_EMIT_PL(name)                          \
  out.emplace_back("lb_pipeline_" #name "_total", \
                   sum([](const Worker& w) { return w.pipeline->counters().name.value(); }));
    LB_PIPELINE_COUNTERS(LB_EMIT_PL)
#undef LB_EMIT_PL
    for (int r = 1; r < kDropReasonCount; ++r) {
      out.emplace_back(
          absl::StrCat("lb_pipeline_drops_total{reason=\"",
                       dropReasonName(static_cast<DropReason>(r)), "\"}"),
          sum([r](const Worker& w) { return w.pipeline->counters().drops[r].value(); }));
    }
    return out;
  }

 private:
  // lifecycle_mu_ held: stops the workers (at a batch boundary), housekeeping and decap
  // threads. start() runs them again.
  void joinThreads() {
    {
      std::lock_guard<std::mutex> hk(hk_mu_);
      running_.store(false);
    }
    hk_cv_.notify_all();
    const uint64_t one = 1;
    if (wake_fd_ >= 0)
      (void)!write(wake_fd_, &one, sizeof(one));
    for (auto& w : workers_) {
      if (w->thread.joinable())
        w->thread.join();
    }
    uint64_t drained = 0;
    if (wake_fd_ >= 0)
      (void)!read(wake_fd_, &drained, sizeof(drained));  // start() may run them again
    if (housekeeping_.joinable())
      housekeeping_.join();
    if (decap_thread_.joinable())
      decap_thread_.join();
  }

  // Control thread, before the workers start: the handed-over conns into conns_, bound to this
  // configuration's ids, counted in their dests' active/inactive/persistent conns.
  absl::Status adoptConns(const DataplaneHandover& from) {
    auto records = decodeConns(from.conns);
    if (!records.ok())
      return records.status();
    SnapshotPtr snap = table_.snapshot();
    const IdMap ids(from.ids, *snap);
    absl::Span<DestCounters> dc = table_.runtime().destCounters();
    // A full-NAT conn keeps its local address and port: taken in this side's pool (whose
    // addresses come from the same configuration), given back when the conn goes.
    const auto rebind = [&](ConnParams& p) {
      if (!ids.rebind(p))
        return false;
      if ((p.flags & kConnFFullNat) == 0 || (p.flags & kConnFTemplate) != 0)
        return true;
      const SnapService* svc = snap->service(p.svc);
      if (svc == nullptr || svc->laddr_pool == nullptr)
        return false;
      Pipeline::noteFullNatPool(table_.runtime(), p.svc, svc->laddr_pool);
      return svc->laddr_pool->reserve(p.proto, p.laddr, p.lport);
    };
    const ConnImportResult r = importConns(
        *conns_, *records, rebind,
        [dc](const Conn& c) {
          if (c.dest >= dc.size())
            return;
          if ((c.flags & kConnFTemplate) != 0)
            dc[c.dest].persist_conns.fetch_add(1, std::memory_order_relaxed);
          else if ((c.flags & kConnFInactive) != 0)
            dc[c.dest].inact_conns.fetch_add(1, std::memory_order_relaxed);
          else
            dc[c.dest].active_conns.fetch_add(1, std::memory_order_relaxed);
        },
        monoNow());
    LB_LOG(kInfo, "hot restart: %d conns taken over, %d left out (removed dests, pool changes)",
           static_cast<int>(r.imported), static_cast<int>(r.skipped));
    return absl::OkStatus();
  }

  // Control thread, at start: loads the tc ingress program and attaches it to every Ethernet
  // device. Not permitted (a container without CAP_BPF/CAP_SYS_ADMIN) or not built: the kernel
  // path, which needs nothing but the routes and rules, carries everything.
  void startFastPath() {
    if (!options_.bpf_fast_path || options_.mode == Mode::kDecap)
      return;
#ifdef LB_HAVE_BPF
    io::IngressRedirectOptions o;
    // Gateway: the local table (pref 0) comes before lbd's diversion rules, so a real server's
    // packet to one of the balancer's own sockets stays the kernel's; sidecar moves it after.
    o.local_sockets_first = options_.mode == Mode::kGateway;
    auto r = io::IngressRedirect::create(tun_->ifindex(), o);
    if (!r.ok()) {
      LB_LOG(kWarn, "tc ingress fast path off (the kernel path carries everything): %s",
             r.status().ToString());
      return;
    }
    std::lock_guard<std::mutex> lock(kernel_mu_);
    redirect_ = std::move(*r);
    attachFastPath();
    updateFastPath(table_.config());
    LB_LOG(kInfo, "tc ingress fast path on %d device(s)",
           static_cast<int>(redirect_->attached().size()));
#else
    LB_LOG(kInfo, "tc ingress fast path not built (no libbpf); the kernel path carries everything");
#endif
  }

  // Control thread, at start, after the workers exist: the flow offload rides on the
  // tc program, so it needs the fast path; sidecar clients are local sockets, whose packets
  // never cross a tc ingress hook.
  void startFlowOffload() {
#ifdef LB_HAVE_BPF
    if (!options_.flow_offload || options_.mode != Mode::kGateway)
      return;
    absl::StatusOr<io::FlowWriter> writer;
    {
      std::lock_guard<std::mutex> lock(kernel_mu_);
      if (redirect_ == nullptr)
        return;
      writer = redirect_->flowWriter();
    }
    if (!writer.ok()) {
      LB_LOG(kWarn, "flow offload off: %s", writer.status().ToString());
      return;
    }
    const size_t n = workers_.size();
    offload_ = std::make_unique<FlowOffload>(n, *conns_, table_.runtime(), n);
    offload_->setInstaller(std::make_unique<RedirectFlowInstaller>(std::move(*writer)));
    for (auto& w : workers_) {
      w->offload = &offload_->port(w->index);
      w->pipeline->setOffloader(w->offload, options_.flow_offload_min_packets);
    }
    LB_LOG(kInfo, "flow offload on (after %u client packets)", options_.flow_offload_min_packets);
#endif
  }

#ifdef LB_HAVE_BPF
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

  // Housekeeping thread: every tick, with a sweep of all offloaded conns every kOffloadSweepMs.
  void runFlowOffload(const ServiceSnapshot& snap, bool sweep) {
    if (offload_ == nullptr)
      return;
    std::lock_guard<std::mutex> lock(kernel_mu_);
    if (redirect_ == nullptr || stopped_) {
      offload_->forget();  // the fast path is gone: every conn is on the slow path again
      return;
    }
    RedirectFlowMap map(*redirect_);
    offload_->tick(map, snap, sweep);
  }

  // kernel_mu_ held. Attaches to Ethernet devices that appeared since the last scan.
  void attachFastPath() {
    if (redirect_ == nullptr)
      return;
    std::vector<int> have = redirect_->attached();
    struct if_nameindex* names = if_nameindex();
    if (names == nullptr)
      return;
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (struct if_nameindex* i = names; s >= 0 && i->if_index != 0; ++i) {
      const int idx = static_cast<int>(i->if_index);
      if (idx == tun_->ifindex() || std::find(have.begin(), have.end(), idx) != have.end())
        continue;
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, i->if_name, IFNAMSIZ - 1);
      if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0 || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
        continue;
      if (absl::Status st = redirect_->attach(idx); !st.ok())
        LB_LOG_EVERY_N_SEC(kWarn, 60, "tc ingress fast path on %s: %s", i->if_name, st.ToString());
    }
    if (s >= 0)
      close(s);
    if_freenameindex(names);
  }
#endif

  // Control thread (kernel_mu_ held): the fast path's sets follow the config: VIPs and full-NAT
  // local addresses by destination, NAT real servers' (address, protocol, port) by source: the
  // same traffic kernel_state.cc routes and diverts into the TUN device.
  void updateFastPath(const FullConfig& cfg) {
#ifdef LB_HAVE_BPF
    if (redirect_ == nullptr)
      return;
    std::vector<IpAddr> dsts;
    std::vector<io::ReplyKey> replies;
    for (const auto& sd : cfg.services) {
      for (const IpAddr& a : KernelState::ownAddrs(sd))
        dsts.push_back(a);
      for (const KernelState::NatReply& nr : KernelState::natReplies(sd))
        replies.push_back(io::ReplyKey{nr.addr, nr.proto, nr.port});
    }
    absl::Status s = redirect_->setDsts(dsts);
    if (s.ok())
      s = redirect_->setReplies(replies);
    if (!s.ok()) {
      // A partial set would still be right (what the maps lack takes the kernel path), but a
      // stale entry could divert a removed server's traffic: drop the fast path altogether.
      LB_LOG(kWarn, "tc ingress fast path off: %s", s.ToString());
      redirect_.reset();
    }
#else
    (void)cfg;
#endif
  }

  void publishConfig(SnapshotPtr snap, const FullConfig& cfg) {
    auto wc = std::make_shared<WorkerConfig>();
    wc->snap = std::move(snap);
    for (const auto& sd : cfg.services) {
      for (const IpAddr& a : KernelState::ownAddrs(sd))
        wc->routed.insert(a);
    }
    for (const auto& fr : cfg.fwmark_rules)
      wc->routed_prefixes.emplace_back(fr.dst, fr.prefix_len);
    // The kernel picks the outer source per dest; lbd's pipeline has one per family: the route
    // source towards the first tunnel dest of that family. (The VIP would be a martian source
    // at a real server that holds the VIP itself.)
    for (const auto& sd : cfg.services) {
      for (const auto& d : sd.dests) {
        if (d.fwd != FwdMethod::kTunnel)
          continue;
        IpAddr& src = d.addr.isV6() ? wc->tunnel_src_v6 : wc->tunnel_src_v4;
        if (src.isUnspecified())
          src = routeSource(d.addr);
      }
    }
    config_.publish(std::move(wc));
  }

  // Worker thread. Hot path.
  void workerLoop(Worker& w) {
    std::shared_ptr<const WorkerConfig> cfg;
    uint64_t gen = 0;
    std::shared_ptr<const NeighMap> neigh;
    uint64_t neigh_gen = 0;
    // The TUN queue, and the eventfd joinThreads() writes so that an idle worker stops at once.
    pollfd pfd[2] = {{tun_->fd(w.index), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (running_.load(std::memory_order_relaxed)) {
      if (config_.refresh(cfg, gen) && cfg != nullptr)
        applyWorkerConfig(w, *cfg);
      neigh_.map().refresh(neigh, neigh_gen);
      size_t n = 0;
      while (n < kBatch) {
        ssize_t r = tun_->readPacket(w.index, *w.bufs[n]);
        if (r < 0)
          break;
        if (r == 0) {
          w.counters.rx_unsupported.add();
          continue;
        }
        if (w.bufs[n]->offload.gso != OffloadInfo::Gso::kNone)
          w.counters.rx_gso.add();  // a super-packet: the offloads are really in use
        w.ptrs[n] = w.bufs[n].get();
        ++n;
      }
      if (n == 0) {
        poll(pfd, wake_fd_ >= 0 ? 2 : 1, 100);
        continue;
      }
      if (options_.mode == Mode::kDecap || cfg == nullptr || cfg->snap == nullptr)
        continue;
      w.pipeline->process(*cfg->snap, absl::MakeConstSpan(w.ptrs.data(), n), w.sink, monoNow());
      if (w.offload != nullptr)
        w.offload->flush();  // the batch's new conns' entries go in before their packets leave
      for (size_t i = 0; i < n; ++i)
        transmit(w, *w.ptrs[i], *cfg, neigh.get());
      for (size_t i = 0; i < w.sink.used(); ++i) {
        PacketBuffer& p = w.sink.at(i);
        if (p.size() != 0 && p.verdict != Verdict::kDrop)
          transmit(w, p, *cfg, neigh.get());
      }
      w.sink.clear();
    }
  }

  // Worker thread, between batches, when a new config was published.
  static void applyWorkerConfig(Worker& w, const WorkerConfig& cfg) {
    if (!cfg.tunnel_src_v4.isUnspecified())
      w.pipeline->setTunnelSource(cfg.tunnel_src_v4);
    if (!cfg.tunnel_src_v6.isUnspecified())
      w.pipeline->setTunnelSource(cfg.tunnel_src_v6);
  }

  // Worker thread. Hot path.
  void transmit(Worker& w, PacketBuffer& p, const WorkerConfig& cfg, const NeighMap* neigh) {
    switch (p.verdict) {
      case Verdict::kDrop:
        return;  // counted by the pipeline
      case Verdict::kToHost: {
        // Not IPVS traffic. It reached lbd0 either by one of lbd's routes (VIP, local address,
        // fwmark prefix: writing it back would loop, so drop) or by a diversion rule (a reply
        // from a NAT real server that matches no conn: give it back to the kernel, which now
        // routes it normally because "iif lbd0" skips the diversion rules).
        IpAddr dst;
        if (!packetDst(p, dst) || isRouted(cfg, dst) || isMulticastOrLinkLocal(dst)) {
          w.counters.to_host_dropped.add();
          return;
        }
        w.counters.to_host_delivered.add();
        writeTun(w, p);
        return;
      }
      case Verdict::kForward:
        break;
    }
    if (p.tx == TxPath::kTun) {
      if (!sendDirect(w, p, neigh))
        writeTun(w, p);
      return;
    }
    const NeighEntry* e = nullptr;
    if (neigh != nullptr) {
      auto it = neigh->find(p.next_hop);
      if (it != neigh->end())
        e = &it->second;
    }
    if (e == nullptr || w.l2 == nullptr) {
      w.counters.l2_no_neigh.add();
      neigh_.requestRefresh();
      return;
    }
    if (w.l2->send(e->ifindex, e->src, e->dst, p) < 0) {
      w.counters.tx_errors.add();
      LB_LOG_EVERY_N_SEC(kWarn, 10, "AF_PACKET send: errno %d", errno);
      return;
    }
    w.counters.tx_l2.add();
  }

  // Worker thread. Hot path. Direct egress: sends a forwarded packet on the Ethernet link its
  // destination's learned next hop is on. False: the caller writes it to the TUN device (no
  // entry yet, a negative one, too big for the link so that the kernel sends the ICMP error,
  // an encapsulated packet whose offloads virtio cannot describe, or a send error).
  bool sendDirect(Worker& w, PacketBuffer& p, const NeighMap* neigh) {
    if (neigh == nullptr || w.l2 == nullptr || !neigh_.directEgress() || encapsulated(p))
      return false;
    IpAddr dst;
    if (!packetDst(p, dst))
      return false;
    auto it = neigh->find(dst);
    if (it == neigh->end()) {
      if (p.learn_dst)
        neigh_.request(w.index, dst);
      return false;
    }
    const NeighEntry& e = it->second;
    if (e.ifindex == 0 || !fitsMtu(p, e.mtu))
      return false;
    if (w.l2->send(e.ifindex, e.src, e.dst, p) < 0) {
      p.pull(14);  // the Ethernet header send() prepended
      w.counters.direct_fallback.add();
      LB_LOG_EVERY_N_SEC(kWarn, 10, "direct egress send: errno %d; using %s", errno, tun_->name());
      return false;
    }
    w.counters.tx_direct.add();
    if (p.offload.gso != OffloadInfo::Gso::kNone)
      w.counters.tx_gso.add();
    return true;
  }

  // Whether each wire packet of `p` (each segment of a GSO packet) fits the link MTU; the kernel's
  // ip_forward checks the same (ip_exceeds_mtu, skb_gso_validate_network_len).
  static bool fitsMtu(const PacketBuffer& p, uint32_t mtu) {
    if (p.offload.gso == OffloadInfo::Gso::kNone)
      return p.size() <= mtu;
    const size_t l4 = p.offload.csum_start;
    size_t l4_hdr = 8;
    if (p.offload.gso != OffloadInfo::Gso::kUdpL4) {
      if (l4 + 13 > p.size())
        return false;
      l4_hdr = static_cast<size_t>(p.data()[l4 + 12] >> 4) * 4;
    }
    return l4 + l4_hdr + p.offload.gso_size <= mtu;
  }

  // An encapsulated packet (IPIP, IPv6-in-IP, GRE, GUE/UDP with a header after the UDP header)
  // with a partial checksum or GSO: the inner offsets have no virtio form.
  static bool encapsulated(const PacketBuffer& p) {
    if (p.offload.csum != OffloadInfo::Csum::kPartial && p.offload.gso == OffloadInfo::Gso::kNone)
      return false;
    if (p.size() < 20)
      return true;
    const uint8_t* d = p.data();
    const bool v4 = (d[0] >> 4) == 4;
    const size_t l3 = v4 ? static_cast<size_t>(d[0] & 0x0f) * 4 : 40;
    const uint8_t proto = v4 ? d[9] : d[6];
    return proto == 4 || proto == 41 || proto == 47 ||
           (proto == 17 && p.offload.csum_start >= l3 + 8 + 20);
  }

  // The kernel's own traffic out of lbd0 (IPv6 MLD reports, router solicitations) comes back
  // as kToHost: it has nowhere to go.
  static bool isMulticastOrLinkLocal(const IpAddr& a) {
    const uint8_t* d = a.data();
    if (a.isV4())
      return (d[0] & 0xf0) == 0xe0 || (d[0] == 169 && d[1] == 254);
    return d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80);
  }

  static bool isRouted(const WorkerConfig& cfg, const IpAddr& dst) {
    if (cfg.routed.contains(dst))
      return true;
    for (const auto& [net, len] : cfg.routed_prefixes) {
      if (net.af() == dst.af() && net.masked(len) == dst.masked(len))
        return true;
    }
    return false;
  }

  // Worker thread. Hot path. Finishes a partial checksum that belongs to an encapsulated
  // (inner) header, since the kernel cannot offload it through TUN, and refuses GSO there.
  void writeTun(Worker& w, PacketBuffer& p) {
    if (p.offload.csum == OffloadInfo::Csum::kPartial && p.size() >= 20) {
      if (encapsulated(p)) {
        // TODO(io): split GSO super-packets in userspace (wireguard-go gsoSplit) instead.
        if (p.offload.gso != OffloadInfo::Gso::kNone) {
          w.counters.tunnel_gso_dropped.add();
          return;
        }
        if (!io::finishPartialChecksum(p.data(), p.size(), p.offload)) {
          w.counters.tx_errors.add();
          return;
        }
      }
    }
    if (tun_->writePacket(w.index, p) < 0) {
      w.counters.tx_errors.add();
      LB_LOG_EVERY_N_SEC(kWarn, 10, "TUN write: errno %d", errno);
      return;
    }
    w.counters.tx_tun.add();
    if (p.offload.gso != OffloadInfo::Gso::kNone)
      w.counters.tx_gso.add();
  }

  void housekeepingLoop() {
    MonoTime last_est = monoNow();
    MonoTime last_neigh_full = last_est;
    MonoTime last_defense = last_est;
    MonoTime last_sweep = last_est;
    SnapshotPtr last_snap;
    neigh_.refresh(true, last_est);  // the rules check: direct egress from the first packets on
    MonoTime last_tick = last_est;
    std::unique_lock<std::mutex> lock(hk_mu_);
    while (running_.load()) {
      hk_cv_.wait_for(lock, std::chrono::milliseconds(offload_ != nullptr ? kOffloadTickMs
                                                                          : kHousekeepingTickMs));
      if (!running_.load())
        break;
      lock.unlock();
      const MonoTime now = monoNow();
#ifdef LB_HAVE_BPF
      if (now - last_tick < millis(kHousekeepingTickMs - kOffloadTickMs / 2) &&
          !hk_poked_.exchange(false)) {
        // A flow-offload-only tick.
        if (std::shared_ptr<const WorkerConfig> cfg = config_.get(); cfg && cfg->snap)
          runFlowOffload(*cfg->snap, false);
        lock.lock();
        continue;
      }
#endif
      last_tick = now;
      hk_poked_.store(false);
      conns_->expire(now);
      const bool full = now - last_neigh_full >= millis(kEstimatorPeriodMs);
      if (full)
        last_neigh_full = now;
      if (full || neigh_.refreshRequested() || neigh_.incomplete())
        neigh_.refresh(full, now);
#ifdef LB_HAVE_BPF
      if (full) {
        std::lock_guard<std::mutex> klock(kernel_mu_);
        if (!stopped_)
          attachFastPath();
      }
#endif
      if (now - last_est >= millis(kEstimatorPeriodMs)) {
        last_est = now;
        tickEstimators();
      }
      config_.collect();
      neigh_.collect();
      std::shared_ptr<const WorkerConfig> cfg = config_.get();
      if (cfg != nullptr && cfg->snap != nullptr) {
        if (cfg->snap != last_snap) {
          last_snap = cfg->snap;
          expireNodestConns(*cfg->snap);
        }
#ifdef LB_HAVE_BPF
        const bool sweep = now - last_sweep >= millis(kOffloadSweepMs);
        if (sweep)
          last_sweep = now;
        runFlowOffload(*cfg->snap, sweep);
#endif
        if (now - last_defense >= millis(kDefensePeriodMs)) {
          last_defense = now;
          uint64_t r = 0;
          if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(r)))
            r = static_cast<uint64_t>(now.ns) * 0x9e3779b97f4a7c15ull;
          hk_counters_.defense_dropped.add(
              runDefenseTick(*conns_, cfg->snap->sysctls(), now, r).dropped);
        }
      }
      lock.lock();
    }
  }

  // Housekeeping thread, once per new snapshot. With expire_nodest_conn=1 the kernel flushes
  // the conns of removed dests when they are removed (ip_vs_ctl.c expire_nodest_conn_work ->
  // ip_vs_expire_nodest_conn_flush) rather than waiting for their next packet.
  void expireNodestConns(const ServiceSnapshot& snap) {
    if (!snap.sysctls().expire_nodest_conn)
      return;
    const size_t n = conns_->expireIf([&snap](const Conn& c) {
      if (c.dest == kNoDest)
        return false;
      const SnapDest* d = snap.dest(c.dest);
      return d != nullptr && !d->available;
    });
    hk_counters_.nodest_expired.add(n);
  }

  void tickEstimators() {
    std::shared_ptr<const WorkerConfig> cfg = config_.get();
    if (cfg == nullptr || cfg->snap == nullptr)
      return;
    std::vector<ServiceId> svcs;
    std::vector<DestId> dests;
    for (const SnapService& s : cfg->snap->services()) {
      svcs.push_back(s.id);
      dests.insert(dests.end(), s.dests.begin(), s.dests.end());
    }
    table_.runtime().tickEstimators(svcs, dests);
  }

  void decapLoop() {
    auto buf = std::make_unique<PacketBuffer>();
    DataplaneCounters& c = workers_[0]->counters;
    while (running_.load(std::memory_order_relaxed)) {
      if (decap_->receive(*buf, 100) != 1)
        continue;
      c.decap_packets.add();
      if (tun_->writePacket(0, *buf) < 0) {
        c.tx_errors.add();
        LB_LOG_EVERY_N_SEC(kWarn, 10, "decap TUN write: errno %d", errno);
      }
    }
  }

  DataplaneOptions options_;
  ServiceTable& table_;
  std::unique_ptr<io::TunDevice> tun_;
  std::unique_ptr<io::Netlink> nl_;
  mutable std::mutex kernel_mu_;
  KernelState kernel_;
  NeighCache neigh_;
  Published<WorkerConfig> config_;
  std::unique_ptr<ConnTable> conns_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<io::DecapReceiver> decap_;
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
  std::thread decap_thread_;
  int wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // workers' poll; -1: 100 ms polls
};

}  // namespace

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::create(const DataplaneOptions& options,
                                                             ServiceTable& table) {
  io::TunOptions topts;
  topts.name = options.tun;
  topts.offloads = options.offloads && options.mode != Mode::kDecap;
  topts.queues = options.workers > 0 ? static_cast<size_t>(options.workers)
                                     : std::max(1u, std::thread::hardware_concurrency());
  if (options.mode == Mode::kDecap)
    topts.queues = 1;
  auto tun = io::TunDevice::create(topts);
  if (!tun.ok())
    return tun.status();
  auto nl = io::Netlink::open();
  if (!nl.ok())
    return nl.status();
  LB_LOG(kInfo, "TUN %s: %d queues, offloads 0x%x", (*tun)->name(), (*tun)->queues(),
         (*tun)->offloads());
  auto dp = std::make_unique<DataplaneImpl>(options, table, std::move(*tun), std::move(*nl));
  if (absl::Status s = dp->init(); !s.ok())
    return s;
  return std::unique_ptr<Dataplane>(std::move(dp));
}

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::adopt(const DataplaneOptions& options,
                                                            ServiceTable& table,
                                                            std::vector<int> tun_fds) {
  io::TunOptions topts;
  topts.offloads = options.offloads && options.mode != Mode::kDecap;
  topts.queues = tun_fds.size();
  auto tun = io::TunDevice::adopt(std::move(tun_fds), topts);
  if (!tun.ok())
    return tun.status();
  auto nl = io::Netlink::open();
  if (!nl.ok())
    return nl.status();
  LB_LOG(kInfo, "TUN %s taken over: %d queues, offloads 0x%x", (*tun)->name(), (*tun)->queues(),
         (*tun)->offloads());
  auto dp = std::make_unique<DataplaneImpl>(options, table, std::move(*tun), std::move(*nl));
  if (absl::Status s = dp->init(true); !s.ok()) {
    dp->abandon();  // the kernel state stays the old lbd's, which carries on
    return s;
  }
  return std::unique_ptr<Dataplane>(std::move(dp));
}

}  // namespace lb::lbd
