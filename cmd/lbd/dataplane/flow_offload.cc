// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/flow_offload.h"

#include <algorithm>
#include <cerrno>

#include "core/pipeline/pipeline.h"
#include "core/proto/proto.h"
#include "io/bpf/redirect_abi.h"

namespace lb::lbd {

bool FlowOffloadPort::offer(const Conn& conn, uint32_t index) noexcept {
  if (npending_ == kPending || ring_.room() <= npending_) {
    full_.add();
    return false;
  }
  if (in_map_ != nullptr) {
    const int64_t n = in_map_->load(std::memory_order_relaxed);
    const bool handshaken = (conn.flags & kConnFAssured) != 0 || conn.proto != L4Proto::kTcp;
    if (n >= map_conns_ - margin(map_conns_) ||
        (!handshaken && (n >= synLimit(map_conns_) ||
                         half_open_->load(std::memory_order_relaxed) >= kHalfOpenLimit))) {
      held_.add();
      return false;
    }
  }
  OffloadOffer& o = pending_[npending_++];
  o.index = index;
  o.generation = conn.generation;
  o.proto = conn.proto;
  o.full_nat = (conn.flags & kConnFFullNat) != 0;
  o.caddr = conn.caddr;
  o.vaddr = conn.vaddr;
  o.daddr = conn.daddr;
  o.laddr = conn.laddr;
  o.cport = conn.cport;
  o.vport = conn.vport;
  o.dport = conn.dport;
  o.lport = conn.lport;
  o.svc = conn.svc;
  o.dest = conn.dest;
  o.half_open = conn.proto == L4Proto::kTcp && conn.state == kTcpSynRecv;
  o.err = 0;
  o.encap = io::FlowEncap::kNone;
  return true;
}

bool FlowOffloadPort::offerTunnel(const Conn& conn, uint32_t index, const TunnelOffer& t) noexcept {
  if (!offer(conn, index))
    return false;
  OffloadOffer& o = pending_[npending_ - 1];
  switch (t.type) {
    case TunType::kIpip:
      o.encap = t.pmtu_disc ? io::FlowEncap::kIpip4 : io::FlowEncap::kIpip4NoPmtu;
      break;
    case TunType::kGre:
      o.encap = t.pmtu_disc ? io::FlowEncap::kGre4 : io::FlowEncap::kGre4NoPmtu;
      break;
    case TunType::kGue:
      o.encap = t.pmtu_disc ? io::FlowEncap::kGue4 : io::FlowEncap::kGue4NoPmtu;
      break;
  }
  o.tunnel_src = t.src;
  o.tunnel_sport = t.sport;
  o.tunnel_dport = t.dport;
  return true;
}

void FlowOffloadPort::flush() noexcept {
  if (npending_ == 0)
    return;
  FlowInstaller* inst = installer_.load(std::memory_order_acquire);
  for (size_t i = 0; i < npending_; ++i) {
    const OffloadOffer& p = pending_[i];
    // offer() kept room for every pending conn.
    (void)ring_.push([&](OffloadOffer& o) {
      o = p;
      if (inst == nullptr) {
        o.err = EBADF;
        return;
      }
      const io::FlowKey in = FlowOffload::inKey(p), out = FlowOffload::outKey(p);
      const uint64_t cookie = FlowOffload::cookie(p);
      o.err = inst->add(in, FlowOffload::inRewrite(p),
                        FlowOffload::oneEntry(p) ? io::FlowKey{} : out, cookie, false);
      if (o.err == 0 && !FlowOffload::oneEntry(p)) {
        o.err = inst->add(out, FlowOffload::outRewrite(p), in, cookie, true);
        if (o.err != 0)
          (void)inst->remove(in);
      }
      if (o.err == 0 && in_map_ != nullptr)
        in_map_->fetch_add(1, std::memory_order_relaxed);
      if (o.err == 0 && p.half_open && half_open_ != nullptr)
        half_open_->fetch_add(1, std::memory_order_relaxed);
    });
  }
  npending_ = 0;
}

FlowOffload::FlowOffload(
    size_t workers, ConnTable& conns, ServiceRuntime& runtime, size_t stats_block, size_t map_conns)
    : conns_(conns),
      runtime_(runtime),
      stats_block_(stats_block),
      map_conns_(map_conns != 0 ? map_conns : LB_BPF_MAX_FLOWS / 2) {
  for (size_t i = 0; i < workers; ++i)
    ports_.push_back(
        std::make_unique<FlowOffloadPort>(installer_, &in_map_, map_conns_, &half_open_));
}

FlowOffload::~FlowOffload() = default;

uint64_t FlowOffload::held() const {
  uint64_t n = 0;
  for (const auto& p : ports_)
    n += p->held();
  return n;
}

uint64_t FlowOffload::ringFull() const {
  uint64_t n = 0;
  for (const auto& p : ports_)
    n += p->full();
  return n;
}

// NAT:      client -> VIP         becomes client -> RS;   RS -> client becomes VIP -> client.
// Full NAT: client -> VIP         becomes laddr -> RS;    RS -> laddr  becomes VIP -> client.
io::FlowKey FlowOffload::inKey(const OffloadOffer& o) {
  return io::FlowKey{o.proto, o.caddr, o.vaddr, o.cport, o.vport};
}

io::FlowKey FlowOffload::outKey(const OffloadOffer& o) {
  if (o.full_nat)
    return io::FlowKey{o.proto, o.daddr, o.laddr, o.dport, o.lport};
  return io::FlowKey{o.proto, o.daddr, o.caddr, o.dport, o.cport};
}

io::FlowRewrite FlowOffload::inRewrite(const OffloadOffer& o) {
  if (oneEntry(o))  // tunnel source -> RS, the outer UDP ports (GUE; IPIP, GRE: 0)
    return io::FlowRewrite{o.tunnel_src, o.daddr, o.tunnel_sport, o.tunnel_dport, o.encap};
  if (o.full_nat)
    return io::FlowRewrite{o.laddr, o.daddr, o.lport, o.dport};
  return io::FlowRewrite{o.caddr, o.daddr, o.cport, o.dport};
}

io::FlowRewrite FlowOffload::outRewrite(const OffloadOffer& o) {
  return io::FlowRewrite{o.vaddr, o.caddr, o.vport, o.cport};
}

void FlowOffload::setInstaller(std::unique_ptr<FlowInstaller> installer) {
  installer_owned_ = std::move(installer);
  installer_.store(installer_owned_.get(), std::memory_order_release);
}

void FlowOffload::adopt(FlowMap& map) {
  for (auto& port : ports_) {
    port->drain([&](const OffloadOffer& o) {
      if (o.err != 0) {
        counters_.install_failed.add();
        return;
      }
      if (auto it = entries_.find(o.index); it != entries_.end()) {
        // The slab entry was reused: the old conn is over. Its map entries are gone unless they
        // are the new conn's (the same tuple: the worker's add would have failed otherwise).
        Entry& old = it->second;
        if (inKey(old.offer) != inKey(o) || oneEntry(old.offer) != oneEntry(o) ||
            (!oneEntry(o) && outKey(old.offer) != outKey(o))) {
          removeEntry(map, old);
        } else {
          counters_.removed.add();
          in_map_.fetch_sub(1, std::memory_order_relaxed);
        }
        forgetEntry(it->second);
        entries_.erase(it);
      }
      entries_[o.index] = Entry{o, {}, {}, kYoungTicks, false, o.half_open};
      if (o.half_open)
        ++half_open_count_;
      young_.push_back(o.index);
      counters_.installed.add();
    });
  }
}

void FlowOffload::fold(Entry& e, const io::FlowState& in, const io::FlowState& out) {
  StatsValues v;
  v.inpkts = in.packets - std::min(in.packets, e.in.packets);
  v.inbytes = in.bytes - std::min(in.bytes, e.in.bytes);
  v.outpkts = out.packets - std::min(out.packets, e.out.packets);
  v.outbytes = out.bytes - std::min(out.bytes, e.out.bytes);
  if (v.inpkts != 0 || v.outpkts != 0) {
    if (stats_ == nullptr) {
      runtime_.setWorkers(stats_block_ + 1);
      stats_ = &runtime_.workerStats(stats_block_);
    }
    stats_->addTraffic(e.offer.svc, e.offer.dest, v);
  }
  e.in = in;
  e.out = out;
}

void FlowOffload::removeEntry(FlowMap& map,
                              Entry& e,
                              const io::FlowState* in,
                              const io::FlowState* out) {
  const io::FlowKey ik = inKey(e.offer), ok = outKey(e.offer);
  const bool one = oneEntry(e.offer);
  if (in == nullptr || out == nullptr) {
    auto si = map.state(ik);
    auto so = one ? absl::StatusOr<io::FlowState>(e.out) : map.state(ok);
    fold(e, si.ok() ? *si : e.in, so.ok() ? *so : e.out);
  } else {
    fold(e, *in, *out);
  }
  (void)map.remove(ik);
  if (!one)
    (void)map.remove(ok);
  counters_.removed.add();
  in_map_.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// TCP states in which the fast path keeps a conn: before the teardown, or half-closed.
bool keptState(uint8_t state) {
  return state == kTcpSynRecv || state == kTcpEstablished || state == kTcpFinWait ||
         state == kTcpCloseWait;
}

}  // namespace

bool FlowOffload::update(Entry& e,
                         const io::FlowState& in,
                         const io::FlowState& out,
                         const ServiceSnapshot& snap,
                         bool secure_tcp) {
  bool over = in.closed || out.closed;
  const int64_t last = std::max(in.last_ns, out.last_ns);
  const int64_t seen = std::max(e.in.last_ns, e.out.last_ns);
  if (ConnGuard g = conns_.get(e.offer.index, e.offer.generation)) {
    const FastPathFlags fi{in.ack && !e.in.ack, in.fin && !e.in.fin, in.rst && !e.in.rst};
    const FastPathFlags fo{out.ack && !e.out.ack, out.fin && !e.out.fin, out.rst && !e.out.rst};
    if (last > seen) {
      // ip_vs_set_state and ip_vs_conn_put's re-arm, as of the last packet the fast path
      // forwarded.
      applyFastPathFlags(g, fi, fo, snap.timeouts(), secure_tcp, &runtime_, conns_, MonoTime{last});
    }
    // A reply the fast path forwarded assures a UDP conn, as one through lbd would.
    if (g->proto == L4Proto::kUdp && out.packets != 0)
      g->flags |= kConnFAssured;
    over = over || (g->proto == L4Proto::kTcp && !keptState(g->state));
    const bool half_open = g->proto == L4Proto::kTcp && g->state == kTcpSynRecv;
    if (half_open != e.half_open) {
      half_open_count_ = half_open ? half_open_count_ + 1 : half_open_count_ - 1;
      e.half_open = half_open;
    }
    // A handshake not done 200 ms after its SYN is a spoofed source, a lost ACK or a long
    // path: while the map is past half full or too many such conns are in it, the slow path
    // takes it back (and may offload it again once its ACK comes).
    const bool crowded = in_map_.load(std::memory_order_relaxed) >=
                             FlowOffloadPort::synLimit(static_cast<int64_t>(map_conns_)) ||
                         half_open_count_ >= static_cast<size_t>(FlowOffloadPort::kHalfOpenLimit) ||
                         flood_hold_ > 0;
    if (!over && half_open && e.young <= kYoungTicks - kHandshakeTicks && crowded) {
      e.retry = true;
      counters_.unhandshaken.add();
      over = true;
    }
    // Connection sync (ip_vs_in's ip_vs_sync_conn) for the client packets the fast path
    // forwarded: in_pkts counts them as the pipeline would have, and the conn is synced with
    // the state they left it in. Releases g.
    if (sync_hook_ != nullptr && last > seen) {
      const uint32_t before = g->in_pkts;
      const uint64_t fwd = in.packets > e.in.packets ? in.packets - e.in.packets : 0;
      g->in_pkts = static_cast<uint32_t>(std::min<uint64_t>(before + fwd, UINT32_MAX));
      sync_hook_->onFastPathReport(conns_, g, before, MonoTime{last});
    }
  } else {
    over = true;
  }
  const SnapDest* d = snap.dest(e.offer.dest);
  // A tunnel conn's client is done with its FIN: the slow path takes its last ACKs, as lbd
  // takes a NAT conn's once both FINs went by.
  const bool closed = oneEntry(e.offer) ? in.fin : in.fin && out.fin;
  return over || d == nullptr || !d->available || in.rst || out.rst || closed;
}

bool FlowOffload::refresh(FlowMap& map, Entry& e, const ServiceSnapshot& snap, bool secure_tcp) {
  auto si = map.state(inKey(e.offer));
  // A tunnel conn's other direction never crosses the balancer: nothing to read.
  auto so = oneEntry(e.offer) ? absl::StatusOr<io::FlowState>(io::FlowState{})
                              : map.state(outKey(e.offer));
  if (!si.ok() || !so.ok()) {
    removeEntry(map, e);  // one is gone: give the conn back whole
    return true;
  }
  if (update(e, *si, *so, snap, secure_tcp)) {
    removeEntry(map, e, &*si, &*so);
    // Only once its entries are gone may a worker offer the conn again.
    if (e.retry) {
      if (ConnGuard g = conns_.get(e.offer.index, e.offer.generation))
        g->flags &= ~kConnFOffloaded;
    }
    return true;
  }
  fold(e, *si, *so);
  return false;
}

void FlowOffload::takeFinished(FlowMap& map, const ServiceSnapshot& snap, bool secure_tcp) {
  map.consumeDone([&](const io::FlowDone& d) {
    auto it = entries_.find(static_cast<uint32_t>(d.cookie));
    if (it == entries_.end() || cookie(it->second.offer) != d.cookie)
      return;  // a conn lbd already gave back (its entries were deleted before the program's)
    Entry& e = it->second;
    (void)update(e, d.in, d.out, snap, secure_tcp);
    fold(e, d.in, d.out);
    counters_.removed.add();
    counters_.finished.add();
    in_map_.fetch_sub(1, std::memory_order_relaxed);
    forgetEntry(e);
    entries_.erase(it);
  });
}

void FlowOffload::tick(FlowMap& map, const ServiceSnapshot& snap, bool sweep) {
  adopt(map);
  const ConnTableStats st = conns_.stats();
  const bool secure_tcp = defenseLevel(snap.sysctls(), st.entries, st.capacity).secure_tcp;
  takeFinished(map, snap, secure_tcp);
  if (sweep) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = it->second;
      if (e.young > 0)
        --e.young;
      if (refresh(map, e, snap, secure_tcp)) {
        forgetEntry(e);
        entries_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  // The young conns, by index (an index whose entry is gone, or now another young conn's, is
  // harmless: dropped, or looked at once more).
  size_t keep = 0;
  for (const uint32_t index : young_) {
    auto it = entries_.find(index);
    if (it == entries_.end() || it->second.young <= 0)
      continue;
    Entry& e = it->second;
    if (!sweep) {
      --e.young;
      if (refresh(map, e, snap, secure_tcp)) {
        forgetEntry(e);
        entries_.erase(it);
        continue;
      }
    }
    if (e.young > 0)
      young_[keep++] = index;
  }
  young_.resize(keep);
  active_.store(entries_.size(), std::memory_order_relaxed);
  // A flood: while its hold lasts, the workers see the half-open limit reached (offer()).
  const int64_t half_open = static_cast<int64_t>(half_open_count_);
  if (half_open >= FlowOffloadPort::kHalfOpenLimit)
    flood_hold_ = kFloodHoldTicks;
  else if (flood_hold_ > 0)
    --flood_hold_;
  half_open_.store(
      flood_hold_ > 0 ? std::max(half_open, FlowOffloadPort::kHalfOpenLimit) : half_open,
      std::memory_order_relaxed);
}

void FlowOffload::dropUnavailable(FlowMap& map, const ServiceSnapshot& snap) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const SnapDest* d = snap.dest(it->second.offer.dest);
    if (d != nullptr && d->available) {
      ++it;
      continue;
    }
    removeEntry(map, it->second);
    forgetEntry(it->second);
    entries_.erase(it++);
  }
  active_.store(entries_.size(), std::memory_order_relaxed);
}

void FlowOffload::forget() {
  installer_.store(nullptr, std::memory_order_release);
  for (auto& port : ports_)
    port->drain([](const OffloadOffer&) {});
  entries_.clear();
  young_.clear();
  active_.store(0, std::memory_order_relaxed);
  in_map_.store(0, std::memory_order_relaxed);
  half_open_count_ = 0;
  flood_hold_ = 0;
  half_open_.store(0, std::memory_order_relaxed);
}

}  // namespace lb::lbd
