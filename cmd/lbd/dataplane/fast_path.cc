// SPDX-License-Identifier: Apache-2.0
// The tc ingress fast path (io/bpf): loading and attaching the program, its destination and
// reply sets, and the flow offload riding on it.
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cmd/lbd/dataplane/dataplane_impl.h"
#include "core/pipeline/syncookies.h"
#include "core/pipeline/synproxy.h"

namespace lb::lbd::dataplane_internal {

// Control thread, at start: loads the tc ingress program and attaches it to every Ethernet
// device. Not permitted (a container without CAP_BPF/CAP_SYS_ADMIN) or not built: the kernel
// path, which needs nothing but the routes and rules, carries everything.
void DataplaneImpl::startFastPath() {
  if (!options_.bpf_fast_path || options_.mode == Mode::kDecap)
    return;
#ifdef LB_HAVE_BPF
  io::IngressRedirectOptions o;
  // Gateway: the local table (pref 0) comes before lbd's diversion rules, so a real server's
  // packet to one of the balancer's own sockets stays the kernel's; sidecar moves it after.
  o.local_sockets_first = options_.mode == Mode::kGateway;
  // Sidecar: an offloaded conn's replies are delivered locally (through lbd0's ingress).
  o.sidecar = options_.mode == Mode::kSidecar;
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
// tc program, so it needs the fast path. In a sidecar the clients are local sockets, whose
// packets never cross a tc ingress hook: they leave through lbd0, whose egress program
// (attachSidecarEgress) takes the app's direction; the replies meet the ingress program on
// the app's veth as in a gateway.
void DataplaneImpl::startFlowOffload() {
#ifdef LB_HAVE_BPF
  {
    // The SYN proxy's cookie key exists now (the conn table, the workers' MTU).
    std::lock_guard<std::mutex> lock(kernel_mu_);
    if (redirect_ != nullptr)
      updateFastPath(table_.config());
  }
  if (!options_.flow_offload ||
      (options_.mode != Mode::kGateway && options_.mode != Mode::kSidecar))
    return;
  absl::StatusOr<io::FlowWriter> writer;
  {
    std::lock_guard<std::mutex> lock(kernel_mu_);
    if (redirect_ == nullptr)
      return;
    if (options_.mode == Mode::kSidecar) {
      if (absl::Status s = redirect_->attachSidecarEgress(); !s.ok()) {
        LB_LOG(kWarn, "flow offload off (sidecar egress program): %s", s.ToString());
        return;
      }
    }
    writer = redirect_->flowWriter();
  }
  if (!writer.ok()) {
    LB_LOG(kWarn, "flow offload off: %s", writer.status().ToString());
    return;
  }
  const size_t n = workers_.size();
  offload_ = std::make_unique<FlowOffload>(n, *conns_, table_.runtime(), n);
  offload_->setInstaller(std::make_unique<RedirectFlowInstaller>(std::move(*writer)));
  offload_->setSyncHook(options_.offload_sync_hook);
  for (auto& w : workers_) {
    w->offload = &offload_->port(w->index);
    w->pipeline->setOffloader(w->offload, options_.flow_offload_min_packets);
  }
  LB_LOG(kInfo, "flow offload on (after %u client packets)", options_.flow_offload_min_packets);
#endif
}

#ifdef LB_HAVE_BPF
// The tc program's synproxy map size (io/bpf/redirect_abi.h LB_BPF_MAX_SYNPROXY).
constexpr size_t kMaxBpfSynproxyServices = 4096;

// The SYN proxy's services the program answers SYNs for: each synproxy service's exact VIP:port
// that the pipeline's own lookup (classify, then findService) gives to that service, so a
// fwmark service or another one in front of it keeps its SYNs; and each eligible service SYN
// cookies are on for (core/pipeline/syncookies.h: syncookies 2, or 1 with the housekeeping
// thread's governor on for that service, the one flooded), after the synproxy services and
// within the map's size. The cookie's key and MSS are the pipeline's (its conn table, its MTU).
// Gateway mode only; before the workers exist (the first call, at start), none. Control or
// housekeeping thread, kernel_mu_ held.
absl::Status DataplaneImpl::updateSynproxyFastPath(io::IngressRedirect& r) {
  std::vector<io::SynproxyService> svcs;
  io::SynproxyConfig c;
  const SnapshotPtr snap = table_.snapshot();
  if (options_.mode == Mode::kGateway && conns_ != nullptr && !workers_.empty() && snap) {
    const uint32_t mtu = workers_.front()->pipeline->mtu();
    c.secret = synproxy::secretOf(conns_->seed());
    c.mss4 = synproxy::synAckMss(mtu, Af::kInet);
    c.mss6 = synproxy::synAckMss(mtu, Af::kInet6);
    c.window = synproxy::kSynAckWindow;
    const Sysctls& sys = snap->sysctls();
    const bool cookies = sys.syncookies == 2 || conns_->syncookiesServices() > 0;
    for (int pass = 0; pass < (cookies ? 2 : 1); ++pass) {
      for (const SnapService& sv : snap->services()) {
        const ServiceKey& k = sv.config.key;
        if (k.isFwmark() || k.proto != L4Proto::kTcp || k.vport == 0)
          continue;
        if (pass == 0 ? !sv.synproxy()
                      : (sv.synproxy() || !syncookiesAnswer(sys, conns_->syncookiesActive(sv.id)) ||
                         !syncookieEligible(*snap, sv))) {
          continue;
        }
        const auto& ftp = options_.ftp_ports;
        if (pass == 1 && std::find(ftp.begin(), ftp.end(), k.vport) != ftp.end())
          continue;  // the FTP helper's control conns are never cookie conns
        if (pass == 1 && svcs.size() >= kMaxBpfSynproxyServices)
          break;  // the rest answer in the pipeline
        const uint32_t mark = snap->classify(k.af, k.proto, k.vaddr, k.vport);
        if (snap->findService(k.af, k.proto, k.vaddr, k.vport, mark) == &sv)
          svcs.push_back(io::SynproxyService{k.vaddr, k.vport});
      }
    }
  }
  return r.setSynproxy(c, svcs);
}
#endif

// Control thread (kernel_mu_ held): the fast path's sets follow the config: VIPs and full-NAT
// local addresses by destination, NAT real servers' (address, protocol, port) by source: the
// same traffic kernel_state.cc routes and diverts into the TUN device.
void DataplaneImpl::updateFastPath(const FullConfig& cfg) {
#ifdef LB_HAVE_BPF
  if (redirect_ == nullptr)
    return;
  std::vector<IpAddr> dsts;
  std::vector<io::ReplyKey> replies;
  for (const auto& sd : cfg.services) {
    for (const IpAddr& a : KernelState::ownAddrs(sd))
      dsts.push_back(a);
    for (const KernelState::NatReply& nr : KernelState::natReplies(sd, options_.ftp_ports))
      replies.push_back(io::ReplyKey{nr.addr, nr.proto, nr.port});
  }
  absl::Status s = redirect_->setDsts(dsts);
  if (s.ok())
    s = redirect_->setReplies(replies);
  if (s.ok())
    s = updateSynproxyFastPath(*redirect_);
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

#ifdef LB_HAVE_BPF
// Housekeeping thread: every tick, with a sweep of all offloaded conns every kOffloadSweepMs.
void DataplaneImpl::runFlowOffload(const ServiceSnapshot& snap, bool sweep) {
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
void DataplaneImpl::attachFastPath() {
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

}  // namespace lb::lbd::dataplane_internal
