// SPDX-License-Identifier: Apache-2.0
// Forwarding methods: NAT, full NAT, direct routing, tunnelling (ipip, gue, gre). One file per
// method, registered in xmit/registry.cc. The analogue of ip_vs_xmit.c.
#pragma once

#include <cstdint>

#include "core/base/verdict.h"
#include "core/conn/conn.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/service/snapshot.h"

namespace lb {

enum class Direction : uint8_t { kToRealServer, kToClient };

// What a forwarder may need beyond the packet and the conn.
struct XmitContext {
  const SnapDest* dest = nullptr;  // the conn's dest (tunnel parameters, address family)
  uint32_t mtu = 1500;             // path MTU toward the real server (io/ sets it per device)
  bool pmtu_disc = true;           // sysctl pmtu_disc
  uint32_t flow_hash = 0;          // GUE source port (udp_flow_src_port)
  IpAddr tunnel_src;               // outer source address for tunnels
};

// Result: kForward with pkt rewritten (and tx/next_hop set), or kDrop with a reason. For
// kFragNeeded / kTtlExceeded the pipeline answers with an ICMP error.
struct XmitResult {
  Verdict verdict = Verdict::kDrop;
  DropReason reason = DropReason::kNone;
  uint32_t mtu = 0;  // for kFragNeeded: the MTU to report
};

// Stateless; one instance per method. Worker thread. Hot path: no alloc, lock, log, throw.
//
// Contract shared by every method (ip_vs_xmit.c's __ip_vs_get_out_rt / ensure_mtu_is_adequate):
//  - TTL / hop limit <= 1 => kDrop + kTtlExceeded; otherwise it is decremented once.
//  - IPv4 with DF, or IPv6, longer than the MTU (for tunnels: ctx.mtu minus the tunnel
//    overhead) => kDrop + kFragNeeded with XmitResult::mtu. Packets carried in an ICMP error
//    and GSO super-packets are exempt. On any kDrop the packet bytes are left unchanged, so the
//    pipeline can quote them in its ICMP error.
//  - NAT and full NAT translate ICMP errors related to the conn (pp.is_icmp_error) as
//    ip_vs_nat_icmp does; DR and tunnels forward them unchanged / encapsulated.
//  - DR and tunnel conns see no replies: Direction::kToClient => kDrop + kUnsupported.
//  - GSO: a GSO super-packet (pkt.offload.gso != kNone) is never split here. NAT, full NAT and
//    DR forward it as is (the offload request stays valid: addresses and ports change, the
//    pseudo-header-only checksum is adjusted). The tunnel forwarder encapsulates it once and
//    leaves gso set with csum_start at the inner L4 header: the kernel drops IPIP/GUE/GRE-
//    wrapped GSO writes from a TUN device, so io/ cuts it into wire packets with
//    tunnel_gso.h before it leaves. Its segments must fit the tunnel MTU (kFragNeeded with DF).
//  - CHECKSUM_PARTIAL packets are completed in software before encapsulation (tunnels send
//    no GUE remote-checksum option); NAT keeps them partial.
class Forwarder {
 public:
  virtual ~Forwarder() = default;
  virtual FwdMethod method() const = 0;
  // Rewrites pkt in place using its headroom. `pp` describes pkt as parsed; forwarders keep it
  // in step with their rewrites.
  virtual XmitResult forward(PacketBuffer& pkt,
                             ParsedPacket& pp,
                             const Conn& conn,
                             Direction dir,
                             const XmitContext& ctx) noexcept = 0;
};

// nullptr for a method with no forwarder. Any thread.
Forwarder* findForwarder(FwdMethod method) noexcept;

}  // namespace lb
