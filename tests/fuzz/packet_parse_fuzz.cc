// SPDX-License-Identifier: Apache-2.0
// Fuzzes parsePacket, then the NAT rewrites on what parses: the rewritten packet must parse
// again with the new address and port, and checksums that were valid must stay valid. Each
// input runs twice: as given, and with its checksums made valid (so mutated inputs reach the
// "stay valid" invariants, not only the seeds).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/addr.h"
#include "core/packet/bytes.h"
#include "core/packet/checksum.h"
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
// covered by them), the L4 checksum covers the whole datagram (no fragment) and, for IPv6,
// there are no extension headers (testlib's checker assumes 40 bytes).
// testlib's checker also judges an L4 we do not parse (ICMPv6 over IPv4, ICMP over IPv6) by
// the protocol number alone, so those are left out.
bool checkable(const lb::ParsedPacket& pp, size_t size) {
  const lb::L4Proto p = pp.outer.proto;
  const bool judged_l4 = p == lb::L4Proto::kTcp || p == lb::L4Proto::kUdp ||
                         p == lb::L4Proto::kSctp || p == lb::L4Proto::kIcmp ||
                         p == lb::L4Proto::kIcmpv6;
  return pp.outer.l3_off == 0 && pp.outer.tot_len == size && !pp.outer.is_fragment &&
         (pp.outer.af == lb::Af::kInet || pp.outer.l4_off == 40) && (pp.outer.has_l4 || !judged_l4);
}

// Makes the IPv4 header and L4 checksums valid with core/packet's own functions; testlib's
// independent checker then judges them.
void repairChecksums(uint8_t* d, size_t size, const lb::ParsedPacket& pp) {
  const lb::L3L4& o = pp.outer;
  if (o.af == lb::Af::kInet)
    lb::storeRaw16(d + 10, lb::ipv4HeaderChecksum({d, o.l3_len}));
  if (!o.has_l4)
    return;
  const size_t l4 = o.l4_off, len = size - l4;
  const uint32_t pseudo = lb::pseudoHeaderSum(o.src, o.dst, o.proto, static_cast<uint32_t>(len));
  uint32_t s = 0;
  size_t field = 0;
  switch (o.proto) {
    case lb::L4Proto::kTcp:
      field = l4 + 16;
      s = pseudo;
      break;
    case lb::L4Proto::kUdp:
      field = l4 + 6;
      if (d[field] == 0 && d[field + 1] == 0 && o.af == lb::Af::kInet)
        return;  // "none"
      s = pseudo;
      break;
    case lb::L4Proto::kIcmpv6:
      field = l4 + 2;
      s = pseudo;
      break;
    case lb::L4Proto::kIcmp:
      field = l4 + 2;
      break;
    case lb::L4Proto::kSctp: {
      std::memset(d + l4 + 8, 0, 4);
      const uint32_t crc = lb::crc32c({d + l4, len});
      for (size_t i = 0; i < 4; ++i)
        d[l4 + 8 + i] = static_cast<uint8_t>(crc >> (8 * i));
      return;
    }
    default:
      return;
  }
  lb::storeRaw16(d + field, 0);
  uint16_t c = lb::csumFold(lb::csumPartial({d + l4, len}, s));
  if (c == 0 && o.proto == lb::L4Proto::kUdp)
    c = 0xffff;
  lb::storeRaw16(d + field, c);
}

void runOne(const uint8_t* data, size_t size) {
  lb::ParsedPacket pp;
  if (lb::parsePacket({data, size}, pp) != lb::DropReason::kNone)
    return;
  if (pp.outer.l4_off > size || pp.outer.l3_off + pp.outer.tot_len > size)
    fail("offsets");
  lb::PacketBuffer& pkt = buffer();
  if (!pkt.assign({data, size}))
    return;
  const bool was_valid = checkable(pp, size) && lb::testing::checksumsValid(data, size);
  const bool v6 = pp.outer.af == lb::Af::kInet6;
  const lb::IpAddr addr = *lb::IpAddr::parse(v6 ? "2001:db8:ffff::77" : "172.16.5.77");
  const uint16_t port = static_cast<uint16_t>(pp.outer.dport ^ 0x5a5a);
  lb::ParsedPacket mod = pp;
  if (lb::rewriteDst(pkt, mod.outer, addr, port) != lb::DropReason::kNone)
    return;
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
  if (lb::decrementTtl(pkt, mod.outer) && mod.outer.af == lb::Af::kInet &&
      !lb::verifyIpv4HeaderChecksum(pkt.span()) && was_valid) {
    fail("ttl checksum");
  }

  if (pp.is_icmp_error) {
    if (!pkt.assign({data, size}))
      return;
    lb::ParsedPacket ie = pp;
    if (lb::rewriteIcmpError(pkt, ie, true, addr, port, addr) == lb::DropReason::kNone) {
      lb::ParsedPacket back;
      if (lb::parsePacket(pkt.span(), back) != lb::DropReason::kNone)
        fail("reparse icmp");
      if (!back.is_icmp_error || !(back.inner.src == addr))
        fail("icmp inner src");
      // The ICMP checksum is recomputed from scratch.
      if (was_valid && !lb::testing::checksumsValid(pkt.data(), pkt.size())) {
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runOne(data, size);
  lb::ParsedPacket pp;
  if (size > 65536 || lb::parsePacket({data, size}, pp) != lb::DropReason::kNone ||
      !checkable(pp, size)) {
    return 0;
  }
  static auto* fixed = new uint8_t[65536];
  std::memcpy(fixed, data, size);
  repairChecksums(fixed, size, pp);
  // Repaired with our functions, judged by testlib's independent ones: they must agree.
  if (!lb::testing::checksumsValid(fixed, size))
    fail("repaired checksums invalid");
  runOne(fixed, size);
  return 0;
}
