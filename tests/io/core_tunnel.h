// SPDX-License-Identifier: Apache-2.0
// Test helper: what core's tunnel forwarder (core/xmit/tunnel.cc, ip_vs_tunnel_xmit) makes of a
// client's packet. The reference io/'s tunnel code is held to: the tc program's encapsulation
// (bpf_tunnel_offload_test) and the decap's receivers (decap_test).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

#include "core/conn/conn.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/service/snapshot.h"
#include "core/xmit/forwarder.h"

namespace lb::testing {

// The tunnel conn's dest and context.
struct CoreTunnel {
  TunType type = TunType::kGue;
  TunCsum csum = TunCsum::kNoCsum;
  IpAddr src, dst;         // the outer source (the tunnel source) and the real server
  uint16_t port = 0;       // GUE: the dest's tunnel port
  uint32_t flow_hash = 0;  // GUE: the conn's flow hash (the outer source port)
  bool pmtu_disc = true;
};

// `inner` (client -> VIP, TCP or UDP) as the forwarder sends it to the real server, outer IP
// header first; empty, with a test failure, when the forwarder does not forward it.
inline std::vector<uint8_t> coreTunnel(const std::vector<uint8_t>& inner, const CoreTunnel& t) {
  auto buf = std::make_unique<PacketBuffer>();
  ParsedPacket pp;
  EXPECT_TRUE(buf->assign(inner));
  EXPECT_EQ(parsePacket(buf->span(), pp), DropReason::kNone);
  Conn c;
  c.af = pp.outer.af;
  c.daf = t.dst.af();
  c.proto = pp.outer.proto;
  c.caddr = pp.outer.src;
  c.cport = pp.outer.sport;
  c.vaddr = pp.outer.dst;
  c.vport = pp.outer.dport;
  c.daddr = t.dst;
  c.dport = pp.outer.dport;
  c.flags = static_cast<uint32_t>(FwdMethod::kTunnel);
  SnapDest d;
  d.config.addr = t.dst;
  d.config.port = c.dport;
  d.config.fwd = FwdMethod::kTunnel;
  d.config.tun_type = t.type;
  d.config.tun_csum = t.csum;
  d.config.tun_port = t.port;
  XmitContext ctx;
  ctx.dest = &d;
  ctx.mtu = 1500;
  ctx.pmtu_disc = t.pmtu_disc;
  ctx.flow_hash = t.flow_hash;
  ctx.tunnel_src = t.src;
  Forwarder* f = findForwarder(FwdMethod::kTunnel);
  EXPECT_NE(f, nullptr);
  if (f == nullptr)
    return {};
  XmitResult r = f->forward(*buf, pp, c, Direction::kToRealServer, ctx);
  EXPECT_EQ(r.verdict, Verdict::kForward);
  if (r.verdict != Verdict::kForward)
    return {};
  return std::vector<uint8_t>(buf->data(), buf->data() + buf->size());
}

}  // namespace lb::testing
