// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/synproxy.h"

#include <cstring>

#include "core/packet/checksum.h"
#include "core/xmit/xmit_util.h"

namespace lb::synproxy {

namespace {

using xmit::load16;
using xmit::store16;

constexpr uint16_t kMssTable[] = {536, 1300, 1440, 1460};  // syncookies.c msstab
constexpr uint32_t kCookieBits = 24;
constexpr uint32_t kCookieMask = (1u << kCookieBits) - 1;
constexpr uint32_t kMaxAge = 2;               // MAX_SYNCOOKIE_AGE
constexpr int64_t kCountNs = 64'000'000'000;  // one counter step: 64 s

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// The kernel's cookie_hash(saddr, daddr, sport, dport, count, c) with a 64-bit mixer keyed by
// the process's secret; `which` selects H1 (0) or H2 (1).
uint32_t cookieHash(uint64_t secret, const CookieFlow& f, uint32_t count, uint64_t which) {
  uint64_t a[2], b[2];
  std::memcpy(a, f.saddr.data(), sizeof(a));
  std::memcpy(b, f.daddr.data(), sizeof(b));
  uint64_t h = secret ^ (0x9e3779b97f4a7c15ull * (which + 1));
  h = mix(h ^ a[0]);
  h = mix(h ^ a[1]);
  h = mix(h ^ b[0]);
  h = mix(h ^ b[1]);
  h = mix(h ^ ((uint64_t{f.sport} << 48) | (uint64_t{f.dport} << 32) | count));
  return static_cast<uint32_t>(h >> 32);
}

uint32_t counter(MonoTime now) {
  return static_cast<uint32_t>(now.ns / kCountNs);
}

// The IP header's total/payload length and checksum for an L4 part of `l4_len` bytes.
void setIpLengths(uint8_t* ip, const L3L4& o, size_t l4_len) {
  if (o.af == Af::kInet) {
    store16(ip + 2, static_cast<uint16_t>(o.l3_len + l4_len));
    store16(ip + 10, 0);
    store16(ip + 10, xmit::foldComplement(xmit::sumWords(ip, o.l3_len, 0)));
  } else {
    store16(ip + 4, static_cast<uint16_t>(l4_len));
  }
}

void put32(uint8_t* p, uint32_t v) {
  store16(p, static_cast<uint16_t>(v >> 16));
  store16(p + 2, static_cast<uint16_t>(v));
}

uint32_t get32(const uint8_t* p) {
  return (uint32_t{load16(p)} << 16) | load16(p + 2);
}

}  // namespace

uint16_t cookieMss(uint16_t client_mss) noexcept {
  uint16_t best = kMssTable[0];
  for (uint16_t m : kMssTable) {
    if (m <= client_mss)
      best = m;
  }
  return best;
}

uint32_t makeCookie(
    uint64_t secret, const CookieFlow& f, uint32_t client_isn, uint16_t client_mss, MonoTime now) {
  const uint16_t mss = cookieMss(client_mss == 0 ? kMssTable[0] : client_mss);
  uint32_t idx = 0;
  while (kMssTable[idx] != mss)
    ++idx;
  const uint32_t count = counter(now);
  return cookieHash(secret, f, 0, 0) + client_isn + (count << kCookieBits) +
         ((cookieHash(secret, f, count, 1) + idx) & kCookieMask);
}

std::optional<uint16_t> checkCookie(
    uint64_t secret, const CookieFlow& f, uint32_t client_isn, uint32_t cookie, MonoTime now) {
  const uint32_t v = cookie - cookieHash(secret, f, 0, 0) - client_isn;
  const uint32_t count = v >> kCookieBits;
  const uint32_t diff = (counter(now) - count) & (0xffffffffu >> kCookieBits);
  if (diff >= kMaxAge)
    return std::nullopt;
  // The hash takes the full counter, as the cookie's maker did: the cookie carries only its low
  // 8 bits (syncookies.c's check_tcp_syn_cookie hashes with count - diff, not the cookie's bits).
  // Hashing with those 8 bits failed every cookie once the clock passed 256 x 64 s = 4.55 h.
  const uint32_t idx = (v - cookieHash(secret, f, counter(now) - diff, 1)) & kCookieMask;
  if (idx >= sizeof(kMssTable) / sizeof(kMssTable[0]))
    return std::nullopt;
  return kMssTable[idx];
}

uint16_t synMss(const uint8_t* tcp, size_t len) noexcept {
  const size_t doff = static_cast<size_t>(tcp[12] >> 4) * 4;
  const size_t end = doff < len ? doff : len;
  for (size_t i = 20; i < end;) {
    const uint8_t kind = tcp[i];
    if (kind == 0)
      break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= end || tcp[i + 1] < 2)
      break;
    if (kind == 2 && tcp[i + 1] == 4 && i + 4 <= end)
      return load16(tcp + i + 2);
    i += tcp[i + 1];
  }
  return 0;
}

bool rewriteSegment(PacketBuffer& pkt, const L3L4& o, const Segment& s) noexcept {
  if ((o.af == Af::kInet && o.l3_len != 20) || (o.af == Af::kInet6 && o.l3_len != 40))
    return false;
  const size_t tcp_len = s.mss != 0 ? 24 : 20;
  if (!pkt.setSize(o.l4_off + tcp_len))
    return false;
  uint8_t* ip = pkt.data() + o.l3_off;
  if (o.af == Af::kInet) {
    store16(ip + 6, 0x4000);  // DF, no fragment
    ip[8] = 64;
    std::memcpy(ip + 12, s.src.data(), 4);
    std::memcpy(ip + 16, s.dst.data(), 4);
  } else {
    ip[7] = 64;
    std::memcpy(ip + 8, s.src.data(), 16);
    std::memcpy(ip + 24, s.dst.data(), 16);
  }
  setIpLengths(ip, o, tcp_len);
  uint8_t* tcp = pkt.data() + o.l4_off;
  std::memset(tcp, 0, tcp_len);
  store16(tcp, s.sport);
  store16(tcp + 2, s.dport);
  put32(tcp + 4, s.seq);
  put32(tcp + 8, s.ack);
  tcp[12] = static_cast<uint8_t>((tcp_len / 4) << 4);
  tcp[13] = s.flags;
  store16(tcp + 14, s.window);
  if (s.mss != 0) {
    tcp[20] = 2;
    tcp[21] = 4;
    store16(tcp + 22, s.mss);
  }
  uint32_t sum = xmit::pseudoSum(s.src, s.dst, 6, static_cast<uint32_t>(tcp_len));
  store16(tcp + 16, xmit::foldComplement(xmit::sumWords(tcp, tcp_len, sum)));
  pkt.offload = OffloadInfo{};
  return true;
}

void addToSeq(PacketBuffer& pkt, const L3L4& o, uint32_t delta, bool ack) noexcept {
  if (delta == 0)
    return;
  uint8_t* tcp = pkt.data() + o.l4_off;
  uint8_t* field = tcp + (ack ? 8 : 4);
  const uint32_t old_v = get32(field);
  const uint32_t new_v = old_v + delta;
  put32(field, new_v);
  if (pkt.offload.csum == OffloadInfo::Csum::kPartial)
    return;  // the field holds the pseudo-header sum, which the numbers are not part of
  uint16_t check;
  std::memcpy(&check, tcp + 16, 2);
  uint16_t old_hi, old_lo, new_hi, new_lo;
  uint8_t raw[8];
  put32(raw, old_v);
  put32(raw + 4, new_v);
  std::memcpy(&old_hi, raw, 2);
  std::memcpy(&old_lo, raw + 2, 2);
  std::memcpy(&new_hi, raw + 4, 2);
  std::memcpy(&new_lo, raw + 6, 2);
  check = csumReplace2(check, old_hi, new_hi);
  check = csumReplace2(check, old_lo, new_lo);
  std::memcpy(tcp + 16, &check, 2);
}

uint32_t tcpSeq(const PacketBuffer& pkt, const L3L4& o) noexcept {
  return get32(pkt.data() + o.l4_off + 4);
}

uint32_t tcpAck(const PacketBuffer& pkt, const L3L4& o) noexcept {
  return get32(pkt.data() + o.l4_off + 8);
}

}  // namespace lb::synproxy
