// SPDX-License-Identifier: Apache-2.0
// Full NAT (DPVS's FNAT; no kernel counterpart): both addresses are rewritten so the real
// server needs no route back through lbd. Toward the real server the client is replaced by a
// local address from the service's pool (conn.laddr:lport).
#include "core/packet/rewrite.h"
#include "core/xmit/xmit_util.h"

namespace lb::xmit {
namespace {

class FullNatForwarder final : public Forwarder {
 public:
  // Forwarder
  FwdMethod method() const override { return FwdMethod::kFullNat; }

  XmitResult forward(PacketBuffer& pkt,
                     ParsedPacket& pp,
                     const Conn& conn,
                     Direction dir,
                     const XmitContext& ctx) noexcept override {
    Af af = pp.outer.af;
    if (conn.daddr.af() != af || conn.laddr.af() != af || conn.vaddr.af() != af ||
        conn.caddr.af() != af) {
      return dropWith(DropReason::kUnsupported);
    }
    XmitResult check = checkTtlAndMtu(pkt, pp, ctx.mtu, /*df_check=*/true);
    if (check.verdict != Verdict::kForward)
      return check;
    DropReason r =
        dir == Direction::kToRealServer ? toRealServer(pkt, pp, conn) : toClient(pkt, pp, conn);
    if (r != DropReason::kNone)
      return dropWith(r);
    decrementOuterTtl(pkt, pp);
    pkt.tx = TxPath::kTun;
    return forwarded();
  }

 private:
  // caddr:cport -> vaddr:vport becomes laddr:lport -> daddr:dport. An ICMP error from the
  // client side quotes vaddr:vport -> caddr:cport; the real server must see it as about its own
  // daddr:dport -> laddr:lport, sent from laddr to daddr.
  static DropReason toRealServer(PacketBuffer& pkt, ParsedPacket& pp, const Conn& conn) {
    if (pp.is_icmp_error) {
      DropReason r =
          rewriteIcmpError(pkt, pp, /*inner_src=*/true, conn.daddr, conn.dport, conn.daddr);
      if (r != DropReason::kNone)
        return r;
      return rewriteIcmpError(pkt, pp, /*inner_src=*/false, conn.laddr, conn.lport, conn.laddr);
    }
    DropReason r = rewriteSrc(pkt, pp.outer, conn.laddr, conn.lport);
    if (r != DropReason::kNone)
      return r;
    return rewriteDst(pkt, pp.outer, conn.daddr, conn.dport);
  }

  // daddr:dport -> laddr:lport becomes vaddr:vport -> caddr:cport. An ICMP error from the
  // real-server side quotes laddr:lport -> daddr:dport; the client sees caddr:cport ->
  // vaddr:vport, sent from vaddr to caddr.
  static DropReason toClient(PacketBuffer& pkt, ParsedPacket& pp, const Conn& conn) {
    if (pp.is_icmp_error) {
      DropReason r =
          rewriteIcmpError(pkt, pp, /*inner_src=*/true, conn.caddr, conn.cport, conn.caddr);
      if (r != DropReason::kNone)
        return r;
      return rewriteIcmpError(pkt, pp, /*inner_src=*/false, conn.vaddr, conn.vport, conn.vaddr);
    }
    DropReason r = rewriteSrc(pkt, pp.outer, conn.vaddr, conn.vport);
    if (r != DropReason::kNone)
      return r;
    return rewriteDst(pkt, pp.outer, conn.caddr, conn.cport);
  }
};

}  // namespace

Forwarder& fullNatForwarder() noexcept {
  static FullNatForwarder instance;
  return instance;
}

}  // namespace lb::xmit
