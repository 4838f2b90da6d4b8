// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/offload.h"

#include "core/proto/proto.h"

namespace lb {

bool offloadEligible(const Conn& c, uint32_t min_in_pkts) noexcept {
  constexpr uint32_t kNever = kConnFTemplate | kConnFOnePacket | kConnFOffloaded;
  if ((c.flags & kNever) != 0 || c.in_pkts < min_in_pkts || c.af != c.daf)
    return false;
  const FwdMethod m = connFwd(c);
  if (m != FwdMethod::kMasq && m != FwdMethod::kFullNat)
    return false;
  if (c.proto == L4Proto::kTcp)
    return c.state == kTcpEstablished;
  return c.proto == L4Proto::kUdp;
}

}  // namespace lb
