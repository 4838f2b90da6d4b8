// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/flow_offload.h"

#include <algorithm>

#include "core/proto/proto.h"

namespace lb::lbd {

bool FlowOffloadPort::offer(const Conn& conn, uint32_t index) noexcept {
  const bool pushed = ring_.push([&](OffloadOffer& o) {
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
  });
  if (!pushed)
    full_.add();
  return pushed;
}

FlowOffload::FlowOffload(size_t workers,
                         ConnTable& conns,
                         ServiceRuntime& runtime,
                         size_t stats_block)
    : conns_(conns), runtime_(runtime), stats_block_(stats_block) {
  for (size_t i = 0; i < workers; ++i)
    ports_.push_back(std::make_unique<FlowOffloadPort>());
}

FlowOffload::~FlowOffload() = default;

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
  if (o.full_nat)
    return io::FlowRewrite{o.laddr, o.daddr, o.lport, o.dport};
  return io::FlowRewrite{o.caddr, o.daddr, o.cport, o.dport};
}

io::FlowRewrite FlowOffload::outRewrite(const OffloadOffer& o) {
  return io::FlowRewrite{o.vaddr, o.caddr, o.vport, o.cport};
}

// The conn is still the one offered, still ESTABLISHED (UDP has no states to miss) and its dest
// still takes traffic: otherwise its packets belong to the slow path, which decides what
// happens to them (the kernel drops a removed dest's packets unless expire_nodest_conn).
bool FlowOffload::stillOffloadable(const OffloadOffer& o, const ServiceSnapshot& snap) {
  const SnapDest* d = snap.dest(o.dest);
  if (d == nullptr || !d->available)
    return false;
  ConnGuard g = conns_.get(o.index, o.generation);
  if (!g)
    return false;
  return o.proto != L4Proto::kTcp || g->state == kTcpEstablished;
}

void FlowOffload::install(FlowMap& map, const ServiceSnapshot& snap) {
  for (auto& port : ports_) {
    port->drain([&](const OffloadOffer& o) {
      if (auto it = entries_.find(o.index); it != entries_.end()) {
        // The slab entry was reused: the old conn is over.
        removeEntry(map, it->second);
        entries_.erase(it);
      }
      if (!stillOffloadable(o, snap)) {
        counters_.skipped.add();
        return;
      }
      const io::FlowKey in = inKey(o), out = outKey(o);
      if (!map.add(in, inRewrite(o), out).ok()) {
        counters_.install_failed.add();
        return;
      }
      if (!map.add(out, outRewrite(o), in).ok()) {
        (void)map.remove(in);
        counters_.install_failed.add();
        return;
      }
      Entry& e = entries_[o.index];
      e = Entry{o, {}, {}};
      counters_.installed.add();
      // A FIN the slow path handled while the entries went in would otherwise go unnoticed
      // until the next sweep.
      if (!stillOffloadable(o, snap)) {
        removeEntry(map, e);
        entries_.erase(o.index);
      }
    });
  }
  active_.store(entries_.size(), std::memory_order_relaxed);
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

void FlowOffload::removeEntry(FlowMap& map, Entry& e) {
  const io::FlowKey in = inKey(e.offer), out = outKey(e.offer);
  auto si = map.state(in);
  auto so = map.state(out);
  fold(e, si.ok() ? *si : e.in, so.ok() ? *so : e.out);
  (void)map.remove(in);
  (void)map.remove(out);
  counters_.removed.add();
}

void FlowOffload::sweep(FlowMap& map, const ServiceSnapshot& snap) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    auto si = map.state(inKey(e.offer));
    auto so = map.state(outKey(e.offer));
    bool over = !si.ok() || !so.ok();
    if (!over) {
      const int64_t last = std::max(si->last_ns, so->last_ns);
      const int64_t armed = std::max(e.in.last_ns, e.out.last_ns);
      fold(e, *si, *so);
      over = si->closed || so->closed || !stillOffloadable(e.offer, snap);
      if (!over && last > armed) {
        // ip_vs_conn_put's re-arm, as of the last packet the fast path forwarded.
        if (ConnGuard g = conns_.get(e.offer.index, e.offer.generation))
          g.setTimeout(g->timeout, MonoTime{last});
      }
    }
    if (over) {
      removeEntry(map, e);
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  active_.store(entries_.size(), std::memory_order_relaxed);
}

void FlowOffload::dropUnavailable(FlowMap& map, const ServiceSnapshot& snap) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const SnapDest* d = snap.dest(it->second.offer.dest);
    if (d != nullptr && d->available) {
      ++it;
      continue;
    }
    removeEntry(map, it->second);
    entries_.erase(it++);
  }
  active_.store(entries_.size(), std::memory_order_relaxed);
}

void FlowOffload::forget() {
  for (auto& port : ports_)
    port->drain([](const OffloadOffer&) {});
  entries_.clear();
  active_.store(0, std::memory_order_relaxed);
}

}  // namespace lb::lbd
