// SPDX-License-Identifier: Apache-2.0
// Egress choice, on the worker threads: a processed packet leaves by the TUN device, by direct
// Ethernet egress to its learned next hop, or by AF_PACKET for direct routing.
#include <linux/ip.h>

#include <cerrno>
#include <string>

#include "cmd/lbd/dataplane/dataplane_impl.h"
#include "core/xmit/tunnel_gso.h"
#include "io/tun/vnet_hdr.h"

namespace lb::lbd::dataplane_internal {

namespace {

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

}  // namespace

// Worker thread. Hot path.
void DataplaneImpl::transmit(Worker& w,
                             PacketBuffer& p,
                             const WorkerConfig& cfg,
                             const NeighMap* neigh) {
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
    if (p.offload.gso != OffloadInfo::Gso::kNone && encapsulated(p)) {
      if (gue_tap_ == nullptr || !sendGueGso(w, p))
        sendTunnelGso(w, p, neigh);
      return;
    }
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
bool DataplaneImpl::sendDirect(Worker& w, PacketBuffer& p, const NeighMap* neigh) {
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

// Worker thread. Hot path. An encapsulated GSO super-packet (tunnel forwarder): virtio cannot
// describe its inner offsets, so it is cut into wire packets here (core/xmit/tunnel_gso.h),
// each sent directly or through the TUN device like any other packet.
void DataplaneImpl::sendTunnelGso(Worker& w, const PacketBuffer& p, const NeighMap* neigh) {
  xmit::TunnelGsoPlan plan;
  if (!xmit::planTunnelGso(p, plan)) {
    w.counters.tunnel_gso_dropped.add();
    return;
  }
  w.counters.tunnel_gso_split.add();
  PacketBuffer& seg = *w.gso_seg;
  for (size_t i = 0; i < plan.count; ++i) {
    if (!xmit::writeTunnelGsoSegment(p, plan, i, seg)) {
      w.counters.tunnel_gso_dropped.add();
      return;
    }
    seg.verdict = Verdict::kForward;
    seg.tx = TxPath::kTun;
    seg.next_hop = p.next_hop;
    seg.learn_dst = p.learn_dst;
    w.counters.tunnel_gso_segments.add();
    if (!sendDirect(w, seg, neigh))
      writeTun(w, seg);
  }
}

// Control thread, at start (gateway mode with offloads). Whether GUE
// super-packets go to the kernel whole: decided once by the probe and logged once
// (docs/tunnel-speed.md). Without it (a kernel before 6.17, no CAP_NET_ADMIN, the device or its
// settings refused) sendTunnelGso cuts them in userspace, as it does IPIP and GRE always.
void DataplaneImpl::startGueTap() {
  // <tun>g for the device, <tun>p for the probe (14 + 1 characters: IFNAMSIZ)'s scratch device
  // (gone after the probe).
  const std::string base = options_.tun.substr(0, 14);
  if (!io::kernelTakesUdpTunnelGso(base + "p")) {
    LB_LOG(kInfo,
           "tunnel dests: this kernel takes no UDP-tunnel GSO packet from a TAP device (6.17+); "
           "GUE, IPIP and GRE super-packets are cut into wire packets by lbd");
    return;
  }
  auto tap = io::UdpTunnelTap::create(base + "g", workers_.size());
  if (!tap.ok()) {
    LB_LOG(kWarn, "GUE super-packets cut by lbd: %s", tap.status().ToString());
    return;
  }
  const int ifindex = (*tap)->ifindex();
  // As lbd0 (KernelState::installBase): what lbd writes is forwarded, its outer source is the
  // LB's own address (accept_local), and loose reverse-path filtering needs an address on the
  // device (169.254.245.245/32, link scope: never picked as a source).
  absl::Status s = nl_->addLinkScopeAddr(ifindex, IpAddr::v4(0xa9fef5f5), 32);
  if (absl::IsAlreadyExists(s))
    s = absl::OkStatus();  // a takeover: the device (held by the old lbd too) has it already
  for (const auto& [id, v] : {std::pair<int, uint32_t>{IPV4_DEVCONF_FORWARDING, 1},
                              {IPV4_DEVCONF_ACCEPT_LOCAL, 1},
                              {IPV4_DEVCONF_RP_FILTER, 2}}) {
    if (s.ok())
      s = nl_->setIpv4DevConf(ifindex, id, v);
  }
  if (!s.ok()) {
    LB_LOG(kWarn, "GUE super-packets cut by lbd: %s: %s", (*tap)->name(), s.ToString());
    return;
  }
  gue_tap_ = std::move(*tap);
  LB_LOG(kInfo,
         "tunnel dests: GUE super-packets go to the kernel whole through %s (UDP-tunnel GSO); "
         "IPIP and GRE ones are cut into wire packets by lbd",
         gue_tap_->name());
}

// Worker thread. Hot path. A GUE super-packet (inner TCP, no outer UDP checksum, outer length
// within 16 bits) written whole to the TAP device: the kernel routes it and segments it where
// a device needs it. False: not such a packet, or the write failed; the caller cuts it.
bool DataplaneImpl::sendGueGso(Worker& w, PacketBuffer& p) {
  xmit::TunnelGsoPlan plan;
  if (!xmit::planTunnelGso(p, plan) || plan.udp || plan.encap_len < 8)
    return false;
  const uint8_t* d = p.data();
  const uint8_t outer_proto = plan.outer_v6 ? d[6] : d[9];
  const size_t outer_len = plan.outer_v6 ? p.size() - 40 : p.size();
  if (outer_proto != 17 || outer_len > 0xffff || d[plan.outer_l3_len + 6] != 0 ||
      d[plan.outer_l3_len + 7] != 0)
    return false;
  io::UdpTunnelGso g;
  g.outer_l4 = plan.outer_l3_len;
  g.inner_l3 = plan.inner_l3;
  g.inner_l4 = plan.inner_l4;
  g.inner_hdrs = plan.hdrs;
  g.gso_size = plan.seg;
  g.outer_v6 = plan.outer_v6;
  g.inner_v6 = plan.inner_v6;
  if (gue_tap_->write(w.index, p, g) < 0) {
    w.counters.tx_errors.add();
    LB_LOG_EVERY_N_SEC(kWarn, 10, "%s write: errno %d; cutting in userspace", gue_tap_->name(),
                       errno);
    return false;
  }
  w.counters.tx_gso.add();
  return true;
}

// Whether each wire packet of `p` (each segment of a GSO packet) fits the link MTU; the kernel's
// ip_forward checks the same (ip_exceeds_mtu, skb_gso_validate_network_len).
bool DataplaneImpl::fitsMtu(const PacketBuffer& p, uint32_t mtu) {
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
bool DataplaneImpl::encapsulated(const PacketBuffer& p) {
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
bool DataplaneImpl::isMulticastOrLinkLocal(const IpAddr& a) {
  const uint8_t* d = a.data();
  if (a.isV4())
    return (d[0] & 0xf0) == 0xe0 || (d[0] == 169 && d[1] == 254);
  return d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80);
}

bool DataplaneImpl::isRouted(const WorkerConfig& cfg, const IpAddr& dst) {
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
void DataplaneImpl::writeTun(Worker& w, PacketBuffer& p) {
  if (p.offload.csum == OffloadInfo::Csum::kPartial && p.size() >= 20) {
    if (encapsulated(p)) {
      // transmit() cut encapsulated GSO packets into wire packets (sendTunnelGso) already.
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

}  // namespace lb::lbd::dataplane_internal
