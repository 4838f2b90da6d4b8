// SPDX-License-Identifier: Apache-2.0
// Direct routing: ip_vs_dr_xmit[_v6] (ip_vs_xmit.c). The packet is unchanged but for its TTL;
// io/ sends it on L2 to the real server's MAC (IP_VS_RT_MODE_KNOWN_NH).
#include "core/xmit/xmit_util.h"

namespace lb::xmit {
namespace {

class DrForwarder final : public Forwarder {
 public:
  // Forwarder
  FwdMethod method() const override { return FwdMethod::kDirectRoute; }

  XmitResult forward(PacketBuffer& pkt,
                     ParsedPacket& pp,
                     const Conn& conn,
                     Direction dir,
                     const XmitContext& ctx) noexcept override {
    // Real servers answer clients directly: the director never forwards DR replies
    // (ip_vs_out ignores non-NAT conns).
    if (dir != Direction::kToRealServer)
      return dropWith(DropReason::kUnsupported);
    if (conn.daddr.af() != pp.outer.af)
      return dropWith(DropReason::kUnsupported);
    XmitResult check = checkTtlAndMtu(pkt, pp, ctx.mtu, /*df_check=*/true);
    if (check.verdict != Verdict::kForward)
      return check;
    decrementOuterTtl(pkt, pp);
    pkt.tx = TxPath::kL2;
    pkt.next_hop = conn.daddr;
    return forwarded();
  }
};

}  // namespace

Forwarder& drForwarder() noexcept {
  static DrForwarder instance;
  return instance;
}

}  // namespace lb::xmit
