// SPDX-License-Identifier: Apache-2.0
// Forwarding methods: NAT, full NAT, direct routing, tunnelling (ipip, gue, gre). One file per
// method, registered in xmit/registry.cc. The analogue of ip_vs_xmit.c.
#ifndef LBD_CORE_XMIT_FORWARDER_H_
#define LBD_CORE_XMIT_FORWARDER_H_

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
class Forwarder {
 public:
  virtual ~Forwarder() = default;
  virtual FwdMethod method() const = 0;
  // Rewrites pkt in place using its headroom. `pp` describes pkt as parsed; forwarders keep it
  // in step with their rewrites.
  virtual XmitResult forward(PacketBuffer& pkt, ParsedPacket& pp, const Conn& conn,
                             Direction dir, const XmitContext& ctx) noexcept = 0;
};

// nullptr for a method with no forwarder. Any thread.
Forwarder* findForwarder(FwdMethod method) noexcept;

}  // namespace lb

#endif  // LBD_CORE_XMIT_FORWARDER_H_
