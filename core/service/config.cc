// SPDX-License-Identifier: Apache-2.0
#include "core/service/config.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace lb {

std::string ServiceKey::toString() const {
  if (isFwmark())
    return absl::StrCat("FWM ", fwmark, af == Af::kInet6 ? " IPv6" : "");
  return absl::StrCat(protoName(proto), " ", formatAddrPort(vaddr, vport));
}

// ipvsadm's listing order (libipvs.c ipvs_cmp_services): fwmark, af, protocol, addr, port; so
// address services come before fwmark services.
bool operator<(const ServiceKey& a, const ServiceKey& b) {
  return std::tie(a.fwmark, a.af, a.proto, a.vaddr, a.vport) <
         std::tie(b.fwmark, b.af, b.proto, b.vaddr, b.vport);
}

}  // namespace lb
