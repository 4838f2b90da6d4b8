// SPDX-License-Identifier: Apache-2.0
// Decap mode: a thread writing the decapsulated packets to the TUN device. Consecutive TCP
// segments of one flow that are already waiting are joined first (core/xmit/tunnel_gso.h's
// tcpCoalesce, software GRO) and written as one GSO super-packet: the local stack then takes
// 64 KB per TUN write instead of one MTU-sized packet. A GUE, IPIP or GRE super-packet that the
// LB's kernel carried whole (its UDP-tunnel, IPXIP4 or GRE GSO path, docs/tunnel-speed.md)
// arrives as one datagram with a partial inner checksum and is written on as one GSO packet
// (adoptPartialTcp). What the receiver could not decapsulate is counted in decap_dropped (and a
// failed GRE checksum also in decap_csum_errors).
#include <cerrno>
#include <utility>

#include "cmd/lbd/dataplane/dataplane_impl.h"
#include "core/xmit/tunnel_gso.h"

namespace lb::lbd::dataplane_internal {

namespace {
// The segment size a carried-whole super-packet is given (its own is not in the datagram): the
// wire MTU of Ethernet. It matters only if this host forwards the packet on; the kernel then
// segments it to that size.
constexpr size_t kInnerMtu = 1500;
}  // namespace

void DataplaneImpl::decapLoop() {
  auto head = std::make_unique<PacketBuffer>();
  auto next = std::make_unique<PacketBuffer>();
  DataplaneCounters& c = workers_[0]->counters;
  auto flush = [&](PacketBuffer& p) {
    xmit::finishCoalesced(p);
    if (tun_->writePacket(0, p) < 0) {
      c.tx_errors.add();
      LB_LOG_EVERY_N_SEC(kWarn, 10, "decap TUN write: errno %d", errno);
      return;
    }
    if (p.offload.gso != OffloadInfo::Gso::kNone)
      c.tx_gso.add();  // a joined run
  };
  uint64_t dropped = 0, csum_errors = 0;  // the receiver's counts already added
  auto countDrops = [&] {
    c.decap_dropped.add(decap_->dropped() - dropped);
    c.decap_csum_errors.add(decap_->csumErrors() - csum_errors);
    dropped = decap_->dropped();
    csum_errors = decap_->csumErrors();
  };
  while (running_.load(std::memory_order_relaxed)) {
    if (decap_->receive(*head, 100) != 1) {
      countDrops();
      continue;
    }
    c.decap_packets.add();
    xmit::adoptPartialTcp(*head, kInnerMtu, decap_->lastUnwired());
    // What is already queued joins the head or follows it; the head leaves once the sockets
    // are empty, so nothing waits for a packet that has not arrived.
    while (decap_->receive(*next, 0) == 1) {
      c.decap_packets.add();
      if (!xmit::adoptPartialTcp(*next, kInnerMtu, decap_->lastUnwired()) &&
          xmit::tcpCoalesce(*head, *next))
        continue;
      flush(*head);
      std::swap(head, next);
    }
    countDrops();
    flush(*head);
  }
}

}  // namespace lb::lbd::dataplane_internal
