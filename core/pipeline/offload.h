// SPDX-License-Identifier: Apache-2.0
// Flow offload. A NAT or full-NAT conn is offered to a fast path outside the pipeline; lbd's is
// the tc program's flow map (io/bpf), which then rewrites and forwards the conn's packets in the
// kernel. A TCP conn is offered as soon as its client's SYN is scheduled (with the default
// threshold of one client packet), so the handshake's second half, the data and the teardown
// all stay in the kernel and lbd sees one packet per connection. A GUE, IPIP or GRE tunnel conn
// (IPv4 in IPv4) is offered too (offerTunnel): only its client's direction crosses the balancer,
// so the fast path encapsulates that one direction and its states follow the client's packets
// alone (the DR / tunnel input-only table). The pipeline keeps the conn:
// whoever takes the offer reports what the fast path forwarded back into it
// (applyFastPathFlags below, the stats, the timer) and gives the conn back to the slow path
// when the fast path saw a new SYN on the tuple, the conn is over, or its dest goes away.
//
// The kernel's IPVS has no such split. The states, active/inactive counts, timeouts and stats
// an operator sees are the kernel's, applied up to the taker's refresh period late (lbd: 20 ms
// for young conns, 1 s for the rest).
#pragma once

#include <cstdint>

#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/conn/conn_table.h"
#include "core/proto/proto.h"
#include "core/service/config.h"
#include "core/service/runtime.h"

namespace lb {

// How a GUE, IPIP or GRE tunnel conn's client packets are encapsulated, as core's tunnel
// forwarder (core/xmit/tunnel.cc) would: the kind, the outer source, UDP ports and whether DF is
// copied. Only kinds without a checksum in the tunnel header are offered (GUE without a UDP
// checksum, GRE without a GRE checksum).
struct TunnelOffer {
  IpAddr src;                    // the outer source (the pipeline's tunnel source)
  TunType type = TunType::kGue;  // IPIP and GRE have no ports
  uint16_t sport = 0;            // GUE: udpFlowSrcPort of the conn's flow hash
  uint16_t dport = 0;            // GUE: the dest's tunnel port
  bool pmtu_disc = true;         // sysctl pmtu_disc: the inner DF is copied to the outer header
};

class FlowOffloader {
 public:
  virtual ~FlowOffloader() = default;
  // Worker thread, with the conn's shard lock held: must not call the ConnTable. Hot path.
  // `conn` is the conn as of this packet and `index` its slab index (ConnTable::get(index,
  // conn.generation) finds it later). True: taken; the pipeline sets kConnFOffloaded and never
  // offers the conn again. False: not now (a full queue); offered again with its next packet.
  virtual bool offer(const Conn& conn, uint32_t index) noexcept = 0;

  // The same for a GUE, IPIP or GRE tunnel conn (tunnelOffloadEligible): one direction only,
  // the client's, encapsulated as `t` says. Default: not taken.
  virtual bool offerTunnel(const Conn& conn, uint32_t index, const TunnelOffer& t) noexcept {
    (void)conn;
    (void)index;
    (void)t;
    return false;
  }
};

// Whether the pipeline offers `c` after one of its packets: NAT or full NAT, one address
// family on both sides, TCP in SYN_RECV or ESTABLISHED (not closing) or UDP with at least two
// client datagrams, not a template, one-packet or SYN proxy conn, not taken before, and at least
// `min_in_pkts` client packets seen. Pure.
bool offloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept;

// The same for a tunnel conn (offered with offerTunnel): IPv4 in IPv4, TCP or UDP, the same
// states and packet counts; whether its dest is IPIP, GUE without a UDP checksum or GRE without
// a GRE checksum is the caller's to check (the conn does not say). Pure.
bool tunnelOffloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept;

// TCP flags the fast path forwarded in one direction since it last reported them.
struct FastPathFlags {
  bool ack = false;  // a packet with ACK and without SYN
  bool fin = false;
  bool rst = false;
};

// Feeds what the fast path forwarded through the conn's TCP state machine (updateConnState),
// as the packets would have done in the pipeline, and does what Pipeline::applyState does after
// a transition: moves the dest between active and inactive conns in `runtime` (may be null),
// assures the controlling template in `conns`, re-arms the timer as of `when`. The packets'
// order across directions is lost, so they are applied in the order that is right for a
// normal connection: the client's handshake ACK first, then the FINs (server's first; both
// orders end in TIME_WAIT), then an RST. Each call applies only the flags it is given: the
// caller passes each direction's flags once. Returns the conn's transition. No-op but for the
// timer on a non-TCP conn. Pure; `g` must hold the conn.
StateChange applyFastPathFlags(ConnGuard& g,
                               FastPathFlags in,
                               FastPathFlags out,
                               const ProtoTimeouts& timeouts,
                               bool secure_tcp,
                               ServiceRuntime* runtime,
                               ConnTable& conns,
                               MonoTime when) noexcept;

// What Pipeline::applyState does after updateConnState: the dest's active/inactive move, the
// template's assurance, the old state and the timer. Shared by the pipeline and the above.
void commitStateChange(ConnGuard& g,
                       const StateChange& sc,
                       ServiceRuntime* runtime,
                       ConnTable& conns,
                       MonoTime when) noexcept;

}  // namespace lb
