// SPDX-License-Identifier: Apache-2.0
// The dataplane: N workers, one per TUN queue, each reading a batch, running core::Pipeline
// on it with the latest published snapshot and writing the results (TUN, or AF_PACKET for
// direct routing); a housekeeping thread (conn expiry, estimators, neighbour MACs); the
// kernel state of the mode; and in decap mode a thread writing decapsulated packets to TUN.
// This file: creation, lifecycle (start, stop, hot restart), commits and metrics; the other
// jobs are in the files dataplane_impl.h lists.
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "cmd/lbd/dataplane/dataplane_impl.h"
#include "core/conn/conn_snapshot.h"

namespace lb::lbd::dataplane_internal {

namespace {

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

}  // namespace

DataplaneImpl::DataplaneImpl(const DataplaneOptions& options,
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
      neigh_(*nl_, tun_->ifindex(), tun_->queues(), options.direct_egress) {
  kernel_.setFtpPorts(options.ftp_ports);
}

DataplaneImpl::~DataplaneImpl() {
  stop();
  if (wake_fd_ >= 0)
    close(wake_fd_);
}

// `adopting`: a hot restart's first step (Dataplane::adopt): the kernel state is the old
// lbd's, taken over by completeHandover().
absl::Status DataplaneImpl::init(bool adopting) {
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
  copts.max_services = table_.runtime().maxServices();
  syncookies_ = SyncookieGovernor(copts.max_services);
  conns_ = std::make_unique<ConnTable>(copts, Pipeline::connEvents(table_.runtime()));
  ftp_ = std::make_unique<ftp::StateTable>(kFtpControlConns);
  for (size_t i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->pipeline = std::make_unique<Pipeline>(*conns_, i, seed ^ (i * 0x9e3779b97f4a7c15ull));
    if (!options_.ftp_ports.empty())
      w->pipeline->setFtp(ftp_.get(), options_.ftp_ports);
    if (i < options_.sync_hooks.size())
      w->pipeline->setSyncHook(options_.sync_hooks[i]);
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
  // Gateway only: a sidecar (one per pod) gets no second device for a tunnel it rarely has;
  // its GUE super-packets are cut by lbd like IPIP and GRE ones.
  if (options_.mode == Mode::kGateway && options_.offloads)
    startGueTap();
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

absl::Status DataplaneImpl::completeHandover(const DataplaneHandover& rest) {
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

absl::Status DataplaneImpl::start() {
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

void DataplaneImpl::stop() {
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

absl::StatusOr<DataplaneHandover> DataplaneImpl::pauseForHandover() {
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

std::vector<int> DataplaneImpl::tunFds() const {
  std::vector<int> fds;
  for (size_t q = 0; q < tun_->queues(); ++q)
    fds.push_back(tun_->fd(q));
  return fds;
}

absl::Status DataplaneImpl::resumeAfterHandover() {
  startFastPath();
  LB_LOG(kWarn, "hot restart failed: carrying on (flow offload off until the next restart)");
  return start();
}

void DataplaneImpl::abandon() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  joinThreads();
  stopped_ = true;
#ifdef LB_HAVE_BPF
  std::lock_guard<std::mutex> klock(kernel_mu_);
  redirect_.reset();
#endif
  LB_LOG(kInfo, "dataplane handed over; kernel state left to the new lbd");
}

absl::Status DataplaneImpl::onCommit(const ServiceTable& table) {
  publishConfig(table.snapshot(), table.config());
  std::lock_guard<std::mutex> lock(kernel_mu_);
  if (stopped_)
    return absl::OkStatus();
  // TSO/USO stay on with tunnel dests too: the kernel drops IPIP/GUE/GRE-wrapped GSO writes
  // (ipip_gso_segment needs SKB_GSO_IPXIP4, which virtio_net_hdr cannot express), so egress.cc
  // cuts encapsulated super-packets into wire packets itself (sendTunnelGso). Turning TSO off
  // instead made the kernel segment every flow's packets, NAT's included, before lbd read them.
  const uint32_t want = tun_->fullOffloads();
  if (absl::Status s = tun_->setOffloads(want); !s.ok())
    LB_LOG(kWarn, "%s", s.ToString());
  std::vector<IpAddr> dr;
  for (const auto& sd : table.config().services) {
    for (const auto& d : sd.dests) {
      if (d.fwd == FwdMethod::kDirectRoute && std::find(dr.begin(), dr.end(), d.addr) == dr.end()) {
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

const ConnTable* DataplaneImpl::conns() const {
  return conns_.get();
}

std::vector<std::pair<std::string, uint64_t>> DataplaneImpl::metrics() const {
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
      if (auto c = redirect_->synproxyCounters(); c.ok()) {
        out.emplace_back("lb_dataplane_bpf_synproxy_synack_total", c->synack);
        out.emplace_back("lb_dataplane_bpf_synproxy_slow_total", c->slow);
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
    // SYN cookies for NAT services (core/pipeline/syncookies.h): the governor's input (all
    // services' embryonic TCP conns; it goes by each service's own) and the services it has on.
    out.emplace_back("lb_conn_embryonic_tcp", cs.embryonic_tcp);
    out.emplace_back("lb_dataplane_syncookies_active", conns_->syncookiesServices());
  }
#define LB_EMIT_PL(name)                          \
  out.emplace_back("lb_pipeline_" #name "_total", \
                   sum([](const Worker& w) { return w.pipeline->counters().name.value(); }));
  LB_PIPELINE_COUNTERS(LB_EMIT_PL)
#undef LB_EMIT_PL
  for (int r = 1; r < kDropReasonCount; ++r) {
    out.emplace_back(absl::StrCat("lb_pipeline_drops_total{reason=\"",
                                  dropReasonName(static_cast<DropReason>(r)), "\"}"),
                     sum([r](const Worker& w) { return w.pipeline->counters().drops[r].value(); }));
  }
  return out;
}

// lifecycle_mu_ held: stops the workers (at a batch boundary), housekeeping and decap
// threads. start() runs them again.
void DataplaneImpl::joinThreads() {
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
absl::Status DataplaneImpl::adoptConns(const DataplaneHandover& from) {
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

void DataplaneImpl::publishConfig(SnapshotPtr snap, const FullConfig& cfg) {
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

}  // namespace lb::lbd::dataplane_internal

namespace lb::lbd {

using dataplane_internal::DataplaneImpl;

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
