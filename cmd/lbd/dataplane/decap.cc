// SPDX-License-Identifier: Apache-2.0
// Decap mode: a thread writing the decapsulated packets to the TUN device. Consecutive TCP
// segments of one flow that are already waiting are joined first (core/xmit/tunnel_gso.h's
// tcpCoalesce, software GRO) and written as one GSO super-packet: the local stack then takes
// 64 KB per TUN write instead of one MTU-sized packet. A GUE or IPIP super-packet that the LB's
// kernel carried whole (its UDP-tunnel or IPXIP4 GSO path, docs/tunnel-speed.md) arrives as one
// datagram with a partial inner checksum and is written on as one GSO packet (adoptPartialTcp).
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
  while (running_.load(std::memory_order_relaxed)) {
    if (decap_->receive(*head, 100) != 1)
      continue;
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
    flush(*head);
  }
}

}  // namespace lb::lbd::dataplane_internal
