// SPDX-License-Identifier: Apache-2.0
#include "tests/core/packet/packet_test_util.h"

#include <algorithm>
#include <cstring>

namespace lb::testing {

std::unique_ptr<PacketBuffer> toBuffer(const Bytes& bytes) {
  auto b = std::make_unique<PacketBuffer>();
  b->assign({bytes.data(), bytes.size()});
  return b;
}

Bytes toBytes(const PacketBuffer& pkt) {
  return Bytes(pkt.data(), pkt.data() + pkt.size());
}

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

void set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

uint32_t refSum(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2)
    acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2 == 1)
    acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

namespace {
uint16_t refFold(uint32_t acc) {
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}
}  // namespace

uint16_t refPseudoFolded(const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t len) {
  uint32_t acc = refSum(src.data(), src.size(), 0);
  acc = refSum(dst.data(), dst.size(), acc);
  acc += proto;
  acc += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
  return refFold(acc);
}

void fixIpv4Checksum(Bytes& b, size_t off) {
  size_t ihl = static_cast<size_t>(b[off] & 0xf) * 4;
  set16(b, off + 10, 0);
  set16(b, off + 10, static_cast<uint16_t>(~refFold(refSum(b.data() + off, ihl, 0))));
}

Bytes withIpv4Options(const Bytes& pkt, const Bytes& options) {
  // Sized up front and copied: GCC 12 at -O2/-O3 reports a false -Warray-bounds on insert.
  Bytes out(pkt.size() + options.size());
  std::copy(pkt.begin(), pkt.begin() + 20, out.begin());
  std::copy(options.begin(), options.end(), out.begin() + 20);
  std::copy(pkt.begin() + 20, pkt.end(), out.begin() + 20 + static_cast<long>(options.size()));
  out[0] = static_cast<uint8_t>(0x40 | ((20 + options.size()) / 4));
  set16(out, 2, static_cast<uint16_t>(out.size()));
  fixIpv4Checksum(out);
  return out;
}

Bytes withIpv6Ext(const Bytes& pkt, uint8_t type, Bytes body) {
  body[0] = pkt[6];
  // Sized up front and copied: GCC 12 at -O2 reports a false -Warray-bounds on vector::insert.
  Bytes out(pkt.size() + body.size());
  std::copy(pkt.begin(), pkt.begin() + 40, out.begin());
  std::copy(body.begin(), body.end(), out.begin() + 40);
  std::copy(pkt.begin() + 40, pkt.end(), out.begin() + 40 + static_cast<long>(body.size()));
  out[6] = type;
  set16(out, 4, static_cast<uint16_t>(out.size() - 40));
  return out;
}

Bytes withIpv4Frag(const Bytes& pkt, bool mf, uint16_t offset_units) {
  Bytes out = pkt;
  uint16_t v = static_cast<uint16_t>((mf ? 0x2000 : 0) | (offset_units & 0x1fff));
  set16(out, 6, v);
  fixIpv4Checksum(out);
  return out;
}

}  // namespace lb::testing
