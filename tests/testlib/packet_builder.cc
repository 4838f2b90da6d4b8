// SPDX-License-Identifier: Apache-2.0
#include "tests/testlib/packet_builder.h"

#include <cstdio>
#include <cstdlib>

namespace lb::testing {
namespace {

// A deliberately plain RFC 1071 sum, independent of core/packet/checksum.cc.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2)
    acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2 == 1)
    acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

uint32_t pseudo(const IpAddr& s, const IpAddr& d, uint8_t proto, size_t len) {
  uint32_t acc = sum16(s.data(), s.size(), 0);
  acc = sum16(d.data(), d.size(), acc);
  acc += proto;
  acc += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
  return acc;
}

uint32_t crc32cTable(uint32_t i) {
  uint32_t c = i;
  for (int k = 0; k < 8; ++k)
    c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  return c;
}

uint32_t crc32cBitwise(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; ++i)
    crc = crc32cTable((crc ^ p[i]) & 0xff) ^ (crc >> 8);
  return ~crc;
}

void put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v[off] = static_cast<uint8_t>(x >> 8);
  v[off + 1] = static_cast<uint8_t>(x);
}

void put32(std::vector<uint8_t>& v, size_t off, uint32_t x) {
  put16(v, off, static_cast<uint16_t>(x >> 16));
  put16(v, off + 2, static_cast<uint16_t>(x));
}

uint8_t protoNum(L4Proto p, bool v6) {
  if (p == L4Proto::kIcmp && v6)
    return 58;
  return static_cast<uint8_t>(p);
}

// Writes IP header + l4 bytes; computes all checksums.
std::vector<uint8_t> assemble(const IpAddr& src,
                              const IpAddr& dst,
                              uint8_t proto,
                              std::vector<uint8_t> l4,
                              uint8_t ttl,
                              bool df,
                              uint16_t id,
                              bool udp_zero) {
  bool v6 = src.isV6();
  size_t ihl = v6 ? 40 : 20;
  std::vector<uint8_t> pkt(ihl + l4.size());
  if (v6) {
    pkt[0] = 0x60;
    put16(pkt, 4, static_cast<uint16_t>(l4.size()));
    pkt[6] = proto;
    pkt[7] = ttl;
    std::copy(src.data(), src.data() + 16, pkt.begin() + 8);
    std::copy(dst.data(), dst.data() + 16, pkt.begin() + 24);
  } else {
    pkt[0] = 0x45;
    put16(pkt, 2, static_cast<uint16_t>(pkt.size()));
    put16(pkt, 4, id);
    if (df)
      pkt[6] = 0x40;
    pkt[8] = ttl;
    pkt[9] = proto;
    std::copy(src.data(), src.data() + 4, pkt.begin() + 12);
    std::copy(dst.data(), dst.data() + 4, pkt.begin() + 16);
    put16(pkt, 10, fold(sum16(pkt.data(), 20, 0)));
  }
  // L4 checksum.
  switch (proto) {
    case 6:
      put16(l4, 16, 0);
      put16(l4, 16, fold(sum16(l4.data(), l4.size(), pseudo(src, dst, 6, l4.size()))));
      break;
    case 17:
      put16(l4, 6, 0);
      if (!udp_zero) {
        uint16_t c = fold(sum16(l4.data(), l4.size(), pseudo(src, dst, 17, l4.size())));
        put16(l4, 6, c == 0 ? 0xffff : c);
      }
      break;
    case 132:
      put32(l4, 8, 0);
      {
        uint32_t c = crc32cBitwise(l4.data(), l4.size());
        // CRC32c is stored little-endian-reflected as the kernel's sctp_compute_cksum does.
        l4[8] = static_cast<uint8_t>(c);
        l4[9] = static_cast<uint8_t>(c >> 8);
        l4[10] = static_cast<uint8_t>(c >> 16);
        l4[11] = static_cast<uint8_t>(c >> 24);
      }
      break;
    case 1:
      put16(l4, 2, 0);
      put16(l4, 2, fold(sum16(l4.data(), l4.size(), 0)));
      break;
    case 58:
      put16(l4, 2, 0);
      put16(l4, 2, fold(sum16(l4.data(), l4.size(), pseudo(src, dst, 58, l4.size()))));
      break;
    default:
      break;
  }
  std::copy(l4.begin(), l4.end(), pkt.begin() + static_cast<long>(ihl));
  return pkt;
}

}  // namespace

IpAddr ip(const char* text) {
  auto a = IpAddr::parse(text);
  if (!a) {
    std::fprintf(stderr, "bad address literal %s\n", text);
    std::abort();
  }
  return *a;
}

PacketBuilder PacketBuilder::tcp(
    const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
  PacketBuilder b;
  b.src_ = ip(src);
  b.dst_ = ip(dst);
  b.proto_ = L4Proto::kTcp;
  b.sport_ = sport;
  b.dport_ = dport;
  b.flags_ = flags;
  return b;
}

PacketBuilder PacketBuilder::udp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  PacketBuilder b = tcp(src, sport, dst, dport, 0);
  b.proto_ = L4Proto::kUdp;
  return b;
}

PacketBuilder PacketBuilder::sctp(
    const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t chunk_type) {
  PacketBuilder b = tcp(src, sport, dst, dport, chunk_type);
  b.proto_ = L4Proto::kSctp;
  return b;
}

PacketBuilder PacketBuilder::icmpEcho(const char* src, const char* dst, uint8_t type, uint16_t id) {
  PacketBuilder b = tcp(src, id, dst, id, type);
  b.proto_ = L4Proto::kIcmp;
  return b;
}

PacketBuilder& PacketBuilder::payload(const std::string& bytes) {
  payload_ = bytes;
  return *this;
}

PacketBuilder& PacketBuilder::payloadSize(size_t n) {
  payload_.resize(n);
  for (size_t i = 0; i < n; ++i)
    payload_[i] = static_cast<char>('a' + i % 26);
  return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t t) {
  ttl_ = t;
  return *this;
}

PacketBuilder& PacketBuilder::df(bool d) {
  df_ = d;
  return *this;
}

PacketBuilder& PacketBuilder::ipId(uint16_t id) {
  ip_id_ = id;
  return *this;
}

PacketBuilder& PacketBuilder::seq(uint32_t s) {
  seq_ = s;
  return *this;
}

PacketBuilder& PacketBuilder::ack(uint32_t a) {
  ack_ = a;
  has_ack_ = true;
  return *this;
}

PacketBuilder& PacketBuilder::udpZeroChecksum() {
  udp_zero_csum_ = true;
  return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
  bool v6 = src_.isV6();
  std::vector<uint8_t> l4;
  switch (proto_) {
    case L4Proto::kTcp:
      l4.assign(20, 0);
      put16(l4, 0, sport_);
      put16(l4, 2, dport_);
      put32(l4, 4, seq_);
      put32(l4, 8, has_ack_ ? ack_ : (flags_ & 0x10) ? 1 : 0);
      l4[12] = 0x50;
      l4[13] = flags_;
      put16(l4, 14, 65535);
      break;
    case L4Proto::kUdp:
      l4.assign(8, 0);
      put16(l4, 0, sport_);
      put16(l4, 2, dport_);
      put16(l4, 4, static_cast<uint16_t>(8 + payload_.size()));
      break;
    case L4Proto::kSctp: {
      // Common header (12) + one chunk header (4) + 4 bytes of chunk value.
      l4.assign(20, 0);
      put16(l4, 0, sport_);
      put16(l4, 2, dport_);
      put32(l4, 4, 0x01020304);  // verification tag
      l4[12] = flags_;
      put16(l4, 14, 8);
      break;
    }
    case L4Proto::kIcmp:
      l4.assign(8, 0);
      l4[0] = flags_;
      put16(l4, 4, sport_);
      put16(l4, 6, 1);
      break;
    default:
      break;
  }
  if (proto_ != L4Proto::kSctp)
    l4.insert(l4.end(), payload_.begin(), payload_.end());
  return assemble(src_, dst_, protoNum(proto_, v6), std::move(l4), ttl_, df_, ip_id_,
                  udp_zero_csum_);
}

std::vector<uint8_t> PacketBuilder::icmpError(const char* src,
                                              const char* dst,
                                              uint8_t type,
                                              uint8_t code,
                                              uint32_t info,
                                              const std::vector<uint8_t>& inner) {
  IpAddr s = ip(src), d = ip(dst);
  bool v6 = s.isV6();
  size_t room = v6 ? 1280 - 40 - 8 : 576 - 20 - 8;
  size_t n = std::min(room, inner.size());
  std::vector<uint8_t> l4(8 + n, 0);
  l4[0] = type;
  l4[1] = code;
  put32(l4, 4, info);
  std::copy(inner.begin(), inner.begin() + static_cast<long>(n), l4.begin() + 8);
  return assemble(s, d, v6 ? 58 : 1, std::move(l4), 64, false, 7, false);
}

bool checksumsValid(const std::vector<uint8_t>& pkt) {
  return checksumsValid(pkt.data(), pkt.size());
}

bool checksumsValid(const uint8_t* p, size_t len) {
  if (len < 20)
    return false;
  bool v6 = (p[0] >> 4) == 6;
  size_t ihl;
  uint8_t proto;
  IpAddr s, d;
  if (v6) {
    if (len < 40)
      return false;
    ihl = 40;
    proto = p[6];
    s = IpAddr::fromBytes(Af::kInet6, p + 8);
    d = IpAddr::fromBytes(Af::kInet6, p + 24);
  } else {
    ihl = static_cast<size_t>(p[0] & 0xf) * 4;
    if (ihl < 20 || len < ihl)
      return false;
    if (fold(sum16(p, ihl, 0)) != 0)
      return false;
    proto = p[9];
    s = IpAddr::fromBytes(Af::kInet, p + 12);
    d = IpAddr::fromBytes(Af::kInet, p + 16);
  }
  // The IP header's length governs: bytes past it (link padding) are not part of the packet.
  size_t tot = v6 ? 40 + ((size_t{p[4]} << 8) | p[5]) : (size_t{p[2]} << 8) | p[3];
  if (tot >= ihl && tot <= len)
    len = tot;
  const uint8_t* l4 = p + ihl;
  size_t n = len - ihl;
  switch (proto) {
    case 6:
      return fold(sum16(l4, n, pseudo(s, d, 6, n))) == 0;
    case 17:
      if (!v6 && n >= 8 && l4[6] == 0 && l4[7] == 0)
        return true;
      return fold(sum16(l4, n, pseudo(s, d, 17, n))) == 0;
    case 1:
      return fold(sum16(l4, n, 0)) == 0;
    case 58:
      return fold(sum16(l4, n, pseudo(s, d, 58, n))) == 0;
    case 132: {
      if (n < 12)
        return false;
      std::vector<uint8_t> c(l4, l4 + n);
      uint32_t want = uint32_t{c[8]} | (uint32_t{c[9]} << 8) | (uint32_t{c[10]} << 16) |
                      (uint32_t{c[11]} << 24);
      c[8] = c[9] = c[10] = c[11] = 0;
      return crc32cBitwise(c.data(), c.size()) == want;
    }
    default:
      return true;
  }
}

std::string hexDump(const uint8_t* data, size_t len) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", data[i]);
    out += buf;
    out += (i % 16 == 15) ? '\n' : ' ';
  }
  return out;
}

}  // namespace lb::testing
