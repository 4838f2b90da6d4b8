// SPDX-License-Identifier: Apache-2.0
// NAT (masquerading): ip_vs_nat_xmit[_v6] toward the real server, handle_response toward the
// client, and ip_vs_nat_icmp for ICMP errors related to a conn (ip_vs_xmit.c, ip_vs_core.c).
#include "core/packet/rewrite.h"
#include "core/xmit/xmit_util.h"

namespace lb::xmit {
namespace {

class NatForwarder final : public Forwarder {
 public:
  // Forwarder
  FwdMethod method() const override { return FwdMethod::kMasq; }

  XmitResult forward(PacketBuffer& pkt,
                     ParsedPacket& pp,
                     const Conn& conn,
                     Direction dir,
                     const XmitContext& ctx) noexcept override {
    // NAT keeps the address family: daddr and vaddr are both of the packet's family.
    if (conn.daddr.af() != pp.outer.af || conn.vaddr.af() != pp.outer.af) {
      return dropWith(DropReason::kUnsupported);
    }
    XmitResult check = checkTtlAndMtu(pkt, pp, ctx.mtu, /*df_check=*/true);
    if (check.verdict != Verdict::kForward)
      return check;
    DropReason r;
    if (dir == Direction::kToRealServer) {
      // DNAT: dst := daddr:dport. For an ICMP error from the client side (about a packet we
      // sent to the client, vaddr:vport -> caddr:cport): outer dst := daddr, inner src :=
      // daddr:dport, ICMP checksum recomputed (ip_vs_nat_icmp with inout = 0).
      r = pp.is_icmp_error
              ? rewriteIcmpError(pkt, pp, /*inner_src=*/true, conn.daddr, conn.dport, conn.daddr)
              : rewriteDst(pkt, pp.outer, conn.daddr, conn.dport);
    } else {
      // SNAT: src := vaddr:vport. For an ICMP error from the real-server side (about a packet
      // caddr:cport -> daddr:dport): outer src := vaddr, inner dst := vaddr:vport.
      r = pp.is_icmp_error
              ? rewriteIcmpError(pkt, pp, /*inner_src=*/false, conn.vaddr, conn.vport, conn.vaddr)
              : rewriteSrc(pkt, pp.outer, conn.vaddr, conn.vport);
    }
    if (r != DropReason::kNone)
      return dropWith(r);
    decrementOuterTtl(pkt, pp);
    pkt.tx = TxPath::kTun;
    return forwarded();
  }
};

}  // namespace

Forwarder& natForwarder() noexcept {
  static NatForwarder instance;
  return instance;
}

}  // namespace lb::xmit
