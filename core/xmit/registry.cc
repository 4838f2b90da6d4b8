// SPDX-License-Identifier: Apache-2.0
// The forwarder registry: one line per method (ip_vs_bind_xmit in ip_vs_conn.c).
#include "core/xmit/forwarder.h"
#include "core/xmit/xmit_util.h"

namespace lb {

Forwarder* findForwarder(FwdMethod method) noexcept {
  switch (method) {
    case FwdMethod::kMasq:
      return &xmit::natForwarder();
    case FwdMethod::kFullNat:
      return &xmit::fullNatForwarder();
    case FwdMethod::kDirectRoute:
      return &xmit::drForwarder();
    case FwdMethod::kTunnel:
      return &xmit::tunnelForwarder();
    case FwdMethod::kLocal:
    case FwdMethod::kBypass:
      break;
  }
  return nullptr;
}

}  // namespace lb
