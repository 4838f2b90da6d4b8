// SPDX-License-Identifier: Apache-2.0
// Small builders for the service tests.
#pragma once

#include <string>

#include "core/base/addr.h"
#include "core/base/check.h"
#include "core/service/config.h"

namespace lb::testing {

inline IpAddr ip(const char* text) {
  std::optional<IpAddr> a = IpAddr::parse(text);
  LB_CHECK(a.has_value());
  return *a;
}

inline ServiceKey key(L4Proto proto, const char* vaddr, uint16_t vport) {
  ServiceKey k;
  k.vaddr = ip(vaddr);
  k.af = k.vaddr.af();
  k.proto = proto;
  k.vport = vport;
  return k;
}

inline ServiceKey tcpKey(const char* vaddr, uint16_t vport) {
  return key(L4Proto::kTcp, vaddr, vport);
}

inline ServiceKey fwmKey(uint32_t mark, Af af = Af::kInet) {
  ServiceKey k;
  k.af = af;
  k.fwmark = mark;
  return k;
}

inline ServiceConfig svc(const ServiceKey& k, const std::string& sched = "rr") {
  ServiceConfig c;
  c.key = k;
  c.scheduler = sched;
  return c;
}

inline ServiceConfig persistentSvc(const ServiceKey& k, uint32_t timeout_s = 360) {
  ServiceConfig c = svc(k);
  c.flags = kSvcPersistent;
  c.timeout_s = timeout_s;
  return c;
}

inline DestConfig dest(const char* addr,
                       uint16_t port,
                       FwdMethod fwd = FwdMethod::kMasq,
                       uint32_t weight = 1) {
  DestConfig d;
  d.addr = ip(addr);
  d.port = port;
  d.fwd = fwd;
  d.weight = weight;
  return d;
}

}  // namespace lb::testing
