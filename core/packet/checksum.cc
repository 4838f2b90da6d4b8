// SPDX-License-Identifier: Apache-2.0
#include "core/packet/checksum.h"

#include <array>
#include <cstring>

namespace lb {
namespace {

// Folds a 64-bit one's-complement accumulator to 32 bits (end-around carry).
inline uint32_t fold64(uint64_t acc) noexcept {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

// Folds a 32-bit accumulator to 16 bits, not complemented.
inline uint16_t fold32(uint32_t sum) noexcept {
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint32_t load32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint16_t load16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Sum of the address's 16-bit words (packet order).
inline uint32_t addrSum(const IpAddr& a) noexcept {
  uint32_t s = 0;
  const uint8_t* p = a.data();
  for (size_t i = 0; i < a.size(); i += 2)
    s += load16(p + i);
  return s;
}

// Sum of the one's complements of the address's 16-bit words.
inline uint32_t addrNegSum(const IpAddr& a) noexcept {
  uint32_t s = 0;
  const uint8_t* p = a.data();
  for (size_t i = 0; i < a.size(); i += 2)
    s += static_cast<uint16_t>(~load16(p + i));
  return s;
}

// CRC32c (Castagnoli, reflected polynomial 0x82F63B78) slicing-by-8 tables, built at compile
// time: table[0] is the classic byte table; table[k][b] advances table[k-1][b] by one zero byte.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables makeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (size_t i = 0; i < 256; ++i) {
      uint32_t prev = t[k - 1][i];
      t[k][i] = (prev >> 8) ^ t[0][prev & 0xffu];
    }
  }
  return t;
}

constexpr CrcTables kCrcTables = makeCrcTables();

// Raw CRC register update (no initial / final inversion).
uint32_t crcUpdate(uint32_t crc, const uint8_t* p, size_t n) noexcept {
  const auto& t = kCrcTables;
  while (n >= 8) {
    // Little-endian assembly of the first four bytes, independent of host byte order.
    uint32_t lo = crc ^ (uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
                         (uint32_t{p[3]} << 24));
    crc = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    crc = t[0][(crc ^ *p) & 0xffu] ^ (crc >> 8);
    ++p;
    --n;
  }
  return crc;
}

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes exactly this CRC (Castagnoli, reflected), 8 bytes a time.
__attribute__((target("sse4.2"))) uint32_t crcUpdateSse42(uint32_t crc,
                                                          const uint8_t* p,
                                                          size_t n) noexcept {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p);
    ++p;
    --n;
  }
  return c32;
}

// cpuid, no syscall; evaluated once, at static initialisation (hence the explicit init).
bool haveSse42() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

const bool kHaveSse42 = haveSse42();
#endif

inline uint32_t crcDispatch(uint32_t crc, const uint8_t* p, size_t n) noexcept {
#if defined(__x86_64__)
  if (kHaveSse42)
    return crcUpdateSse42(crc, p, n);
#endif
  return crcUpdate(crc, p, n);
}

}  // namespace

uint32_t csumPartial(absl::Span<const uint8_t> data, uint32_t sum) noexcept {
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t acc = sum;
  // 32 bytes per iteration; each 64-bit word is split into two 32-bit halves so the carries
  // pile up in the accumulator's upper half (2^32 iterations before it could overflow).
  while (n >= 32) {
    uint64_t a = load64(p), b = load64(p + 8), c = load64(p + 16), d = load64(p + 24);
    acc += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32);
    acc += (c & 0xffffffffu) + (c >> 32) + (d & 0xffffffffu) + (d >> 32);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t a = load64(p);
    acc += (a & 0xffffffffu) + (a >> 32);
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    acc += load32(p);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    acc += load16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    // The odd byte is the high-order byte of a word padded with zero (RFC 1071).
    const uint8_t last[2] = {*p, 0};
    acc += load16(last);
  }
  return fold64(acc);
}

uint16_t csumFold(uint32_t sum) noexcept {
  return static_cast<uint16_t>(~fold32(sum));
}

uint32_t pseudoHeaderSum(const IpAddr& src,
                         const IpAddr& dst,
                         L4Proto proto,
                         uint32_t l4_len) noexcept {
  // The length and protocol words, in packet order: (0, proto) and the length's 16-bit halves.
  const uint8_t tail[8] = {static_cast<uint8_t>(l4_len >> 24),
                           static_cast<uint8_t>(l4_len >> 16),
                           static_cast<uint8_t>(l4_len >> 8),
                           static_cast<uint8_t>(l4_len),
                           0,
                           0,
                           0,
                           static_cast<uint8_t>(proto)};
  uint64_t acc = uint64_t{addrSum(src)} + addrSum(dst);
  acc += csumPartial({tail, sizeof(tail)}, 0);
  return fold64(acc);
}

uint16_t csumReplace2(uint16_t check, uint16_t old_word, uint16_t new_word) noexcept {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
  uint32_t s =
      uint32_t{static_cast<uint16_t>(~check)} + static_cast<uint16_t>(~old_word) + new_word;
  return csumFold(s);
}

uint16_t csumReplaceAddr(uint16_t check, const IpAddr& old_addr, const IpAddr& new_addr) noexcept {
  uint32_t s = uint32_t{static_cast<uint16_t>(~check)} + addrNegSum(old_addr) + addrSum(new_addr);
  return csumFold(s);
}

uint16_t csumReplaceAddrPartial(uint16_t check,
                                const IpAddr& old_addr,
                                const IpAddr& new_addr) noexcept {
  // The field holds the folded pseudo-header sum itself, so the change is added, not
  // complemented (inet_proto_csum_replace16 with pseudohdr under CHECKSUM_PARTIAL).
  uint32_t s = uint32_t{check} + addrNegSum(old_addr) + addrSum(new_addr);
  return fold32(s);
}

uint32_t crc32c(absl::Span<const uint8_t> data) noexcept {
  return ~crcDispatch(0xffffffffu, data.data(), data.size());
}

uint32_t crc32cExtend(uint32_t crc, absl::Span<const uint8_t> data) noexcept {
  return ~crcDispatch(~crc, data.data(), data.size());
}

uint32_t crc32cPortableForTest(absl::Span<const uint8_t> data) noexcept {
  return ~crcUpdate(0xffffffffu, data.data(), data.size());
}

bool verifyIpv4HeaderChecksum(absl::Span<const uint8_t> ip_header) noexcept {
  if (ip_header.size() < 20)
    return false;
  size_t ihl = static_cast<size_t>(ip_header[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > ip_header.size())
    return false;
  return csumFold(csumPartial(ip_header.first(ihl), 0)) == 0;
}

uint16_t ipv4HeaderChecksum(absl::Span<const uint8_t> ip_header) noexcept {
  if (ip_header.size() < 20)
    return 0;
  size_t ihl = static_cast<size_t>(ip_header[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > ip_header.size())
    ihl = 20;
  // Sum around the checksum field (bytes 10..11).
  uint32_t s = csumPartial(ip_header.first(10), 0);
  s = csumPartial(ip_header.subspan(12, ihl - 12), s);
  return csumFold(s);
}

}  // namespace lb
