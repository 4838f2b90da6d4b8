// SPDX-License-Identifier: Apache-2.0
// Fuzzes parsePacket, then the NAT rewrites on what parses: the rewritten packet must parse
// again with the new address and port, and checksums that were valid must stay valid.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/base/addr.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/packet/rewrite.h"
#include "tests/testlib/packet_builder.h"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "packet_parse_fuzz invariant broken: %s\n", what);
  std::abort();
}

lb::PacketBuffer& buffer() {
  static auto* b = new lb::PacketBuffer();  // 64 KB: keep it off the stack, reuse it
  return *b;
}

lb::PacketBuffer& scratch() {
  static auto* b = new lb::PacketBuffer();
  return *b;
}

// Checksums are only comparable when nothing lies beyond the datagram (link padding is not
// covered by them) and the L4 checksum covers the whole datagram (no fragment).
bool checkable(const lb::ParsedPacket& pp, size_t size) {
  return pp.outer.l3_off == 0 && pp.outer.tot_len == size && !pp.outer.is_fragment &&
         (pp.outer.af == lb::Af::kInet || pp.outer.l4_off == 40);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lb::ParsedPacket pp;
  if (lb::parsePacket({data, size}, pp) != lb::DropReason::kNone)
    return 0;
  if (pp.outer.l4_off > size || pp.outer.l3_off + pp.outer.tot_len > size)
    fail("offsets");
  lb::PacketBuffer& pkt = buffer();
  if (!pkt.assign({data, size}))
    return 0;
  const bool was_valid = checkable(pp, size) && lb::testing::checksumsValid(data, size);
  const bool v6 = pp.outer.af == lb::Af::kInet6;
  const lb::IpAddr addr = *lb::IpAddr::parse(v6 ? "2001:db8:ffff::77" : "172.16.5.77");
  const uint16_t port = static_cast<uint16_t>(pp.outer.dport ^ 0x5a5a);
  lb::ParsedPacket mod = pp;
  if (lb::rewriteDst(pkt, mod.outer, addr, port) != lb::DropReason::kNone)
    return 0;
  lb::ParsedPacket again;
  if (lb::parsePacket(pkt.span(), again) != lb::DropReason::kNone)
    fail("reparse after dnat");
  if (!(again.outer.dst == addr))
    fail("dst not rewritten");
  if (again.outer.has_l4 != pp.outer.has_l4)
    fail("has_l4 changed");
  if (again.outer.has_l4 && again.outer.dport != mod.outer.dport)
    fail("dport mismatch");
  if (was_valid && !lb::testing::checksumsValid(pkt.data(), pkt.size()))
    fail("dnat checksum");
  if (lb::rewriteSrc(pkt, mod.outer, addr, port) != lb::DropReason::kNone)
    fail("snat");
  if (was_valid && !lb::testing::checksumsValid(pkt.data(), pkt.size()))
    fail("snat checksum");
  lb::decrementTtl(pkt, mod.outer);
  if (was_valid && !lb::testing::checksumsValid(pkt.data(), pkt.size()))
    fail("ttl checksum");

  if (pp.is_icmp_error) {
    if (!pkt.assign({data, size}))
      return 0;
    lb::ParsedPacket ie = pp;
    if (lb::rewriteIcmpError(pkt, ie, true, addr, port, addr) == lb::DropReason::kNone) {
      lb::ParsedPacket back;
      if (lb::parsePacket(pkt.span(), back) != lb::DropReason::kNone)
        fail("reparse icmp");
      if (!back.is_icmp_error || !(back.inner.src == addr))
        fail("icmp inner src");
      // The ICMP checksum is recomputed from scratch: valid whenever the IPv4 header was.
      if (checkable(pp, size) && was_valid &&
          !lb::testing::checksumsValid(pkt.data(), pkt.size())) {
        fail("icmp checksum");
      }
    }
  }
  // Answering it: the error is a valid ICMP packet that parses (its quote may not, when an
  // IPv6 extension chain is longer than the quote).
  lb::PacketBuffer& out = scratch();
  if (lb::buildIcmpError(out, pkt, mod.outer, v6 ? 1 : 3, 3, 0, addr)) {
    lb::ParsedPacket err;
    const lb::DropReason r = lb::parsePacket(out.span(), err);
    if (r != lb::DropReason::kNone && r != lb::DropReason::kMalformed)
      fail("icmp error parse");
    if (out.size() > (v6 ? 1280u : 576u))
      fail("icmp error size");
    if (!lb::testing::checksumsValid(out.data(), out.size()))
      fail("icmp error checksum");
  }
  return 0;
}
