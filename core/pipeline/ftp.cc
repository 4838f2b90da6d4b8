// SPDX-License-Identifier: Apache-2.0
// See ftp.h. Sources: net/netfilter/ipvs/ip_vs_ftp.c (ip_vs_ftp_get_addrport, ip_vs_ftp_in,
// ip_vs_ftp_out), net/netfilter/ipvs/ip_vs_app.c (vs_fix_seq, vs_fix_ack_seq, vs_seq_update),
// net/netfilter/nf_nat_helper.c (mangle_contents: the payload move and length fix).
#include "core/pipeline/ftp.h"

#include <cstring>

#include "core/pipeline/synproxy.h"
#include "core/xmit/xmit_util.h"

namespace lb::ftp {
namespace {

using xmit::load16;
using xmit::store16;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// strncasecmp(a, b, n) == 0 for the first n bytes of both.
bool caseEq(const char* a, const char* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (lower(a[i]) != lower(b[i]))
      return false;
  }
  return true;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// Writes the decimal form of v at p; returns the bytes written.
size_t putDec(uint32_t v, char* p) {
  char tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i)
    p[i] = tmp[n - 1 - i];
  return n;
}

size_t putHex(uint32_t v, char* p) {
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[4];
  size_t n = 0;
  do {
    tmp[n++] = kHex[v & 0xf];
    v >>= 4;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i)
    p[i] = tmp[n - 1 - i];
  return n;
}

}  // namespace

uint32_t fixSeq(const SeqAdjust& s, uint32_t seq) noexcept {
  if (s.delta == 0 && s.previous_delta == 0)
    return seq;
  return seqAfter(seq, s.init_seq) ? seq + s.delta : seq + s.previous_delta;
}

uint32_t fixAck(const SeqAdjust& s, uint32_t ack) noexcept {
  if (s.delta == 0 && s.previous_delta == 0)
    return ack;
  return seqAfter(ack, s.init_seq + s.delta) ? ack - s.delta : ack - s.previous_delta;
}

void seqUpdate(SeqAdjust& s, bool& active, uint32_t seq, int32_t diff) noexcept {
  if (!active || seqAfter(seq, s.init_seq)) {
    s.previous_delta = s.delta;
    s.delta += static_cast<uint32_t>(diff);
    s.init_seq = seq;
    active = true;
  }
}

ParseResult getAddrPort(absl::string_view data,
                        absl::string_view pattern,
                        char skip,
                        bool ext,
                        bool epsv,
                        Af af,
                        AddrPort& out) noexcept {
  const size_t n = data.size();
  const char* d = data.data();
  const size_t plen = pattern.size();
  if (n < plen)  // a partial match may be completed by the next segment
    return caseEq(d, pattern.data(), n) ? ParseResult::kMalformed : ParseResult::kNoMatch;
  if (!caseEq(d, pattern.data(), plen))
    return ParseResult::kNoMatch;
  size_t s = plen;
  if (skip != 0) {
    bool found = false;
    for (;; ++s) {
      if (s == n)
        return ParseResult::kMalformed;
      if (!found) {
        if (!ext && isDigit(d[s]))  // "(" is optional in the old format
          break;
        if (d[s] == skip)
          found = true;
      } else if (d[s] != skip) {
        break;
      }
    }
  }
  if (!ext) {
    uint32_t p[6] = {};
    size_t i = 0;
    size_t e = s;
    for (;; ++e) {
      if (e == n)
        return ParseResult::kMalformed;
      const char c = d[e];
      if (isDigit(c)) {
        p[i] = p[i] * 10 + static_cast<uint32_t>(c - '0');
        if (p[i] > 255)
          return ParseResult::kMalformed;  // the kernel wraps (unsigned char); see ftp.h
      } else if (c == ',' && i < 5) {
        ++i;
      } else {
        break;  // unexpected character or terminator
      }
    }
    if (i != 5)
      return ParseResult::kMalformed;
    out.addr = IpAddr::v4((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]);
    out.port = static_cast<uint16_t>((p[4] << 8) | p[5]);
    out.start = s;
    out.end = e;
    return ParseResult::kFound;
  }
  if (s == n)
    return ParseResult::kMalformed;
  out.start = s;
  const char delim = d[s++];
  if (delim < 33 || delim > 126 || s == n)
    return ParseResult::kMalformed;
  if (d[s] == delim) {
    // No family: only a 229 reply may leave it (and the address) out.
    if (!epsv)
      return ParseResult::kMalformed;
    ++s;
    if (s == n || d[s] != delim)
      return ParseResult::kMalformed;
    ++s;
  } else {
    if ((af == Af::kInet6 && d[s] != '2') || (af == Af::kInet && d[s] != '1'))
      return ParseResult::kMalformed;  // only an address of the conn's family
    ++s;
    if (s == n || d[s] != delim)
      return ParseResult::kMalformed;
    ++s;
    size_t e = s;
    while (e < n && d[e] != delim && e - s <= 45)
      ++e;
    if (e == n || d[e] != delim || e == s)
      return ParseResult::kMalformed;
    std::optional<IpAddr> a = IpAddr::parse(absl::string_view(d + s, e - s));
    if (!a || a->af() != af)
      return ParseResult::kMalformed;  // in4_pton / in6_pton failed
    out.addr = *a;
    s = e + 1;
  }
  uint32_t hport = 0;
  for (;; ++s) {
    if (s == n)
      return ParseResult::kMalformed;
    if (!isDigit(d[s]))
      break;
    hport = hport * 10 + static_cast<uint32_t>(d[s] - '0');
    if (hport > 65535)
      return ParseResult::kMalformed;  // the kernel wraps (__u16); see ftp.h
  }
  if (hport == 0 || d[s] != delim)
    return ParseResult::kMalformed;
  out.end = s + 1;
  out.port = static_cast<uint16_t>(hport);
  return ParseResult::kFound;
}

ClientScan scanClient(absl::string_view payload, Af af) noexcept {
  ClientScan r;
  const char* d = payload.data();
  const size_t n = payload.size();
  for (size_t i = 0; i + 6 <= n; ++i) {
    if (af == Af::kInet && caseEq(d + i, "PASV\r\n", 6)) {
      r.kind = ClientScan::Kind::kPasv;
      return r;
    }
    if (caseEq(d + i, "EPSV", 4) && (d[i + 4] == ' ' || d[i + 4] == '\r')) {
      if (d[i + 4] == ' ') {
        const char proto = d[i + 5];
        if (i + 7 > n || d[i + 6] != '\r')
          return r;  // "EPSV ALL" and the like: ignored
        if (!((af == Af::kInet6 && proto == '2') || (af == Af::kInet && proto == '1')))
          return r;
      }
      r.kind = ClientScan::Kind::kEpsv;
      return r;
    }
  }
  ParseResult port = ParseResult::kNoMatch;
  if (af == Af::kInet) {
    port = getAddrPort(payload, "PORT", ' ', false, false, af, r.ap);
    if (port == ParseResult::kFound) {
      r.kind = ClientScan::Kind::kPort;
      return r;
    }
  }
  ParseResult eprt = getAddrPort(payload, "EPRT", ' ', true, false, af, r.ap);
  if (eprt == ParseResult::kFound) {
    r.kind = ClientScan::Kind::kEprt;
    return r;
  }
  if (port == ParseResult::kMalformed || eprt == ParseResult::kMalformed)
    r.kind = ClientScan::Kind::kMalformed;
  return r;
}

ParseResult parseReply(
    absl::string_view payload, Mode mode, Af af, const IpAddr& daddr, AddrPort& out) noexcept {
  if (payload.empty())
    return ParseResult::kNoMatch;
  if (mode == Mode::kPasv) {
    if (af != Af::kInet)
      return ParseResult::kNoMatch;
    return getAddrPort(payload, "227 ", '(', false, false, af, out);
  }
  if (mode == Mode::kEpsv) {
    out.addr = daddr;  // usually absent: the data port is on the control conn's server
    return getAddrPort(payload, "229 ", '(', true, true, af, out);
  }
  return ParseResult::kNoMatch;
}

size_t formatOld(const IpAddr& addr, uint16_t port, char* buf) noexcept {
  const uint32_t a = addr.v4HostOrder();
  const uint32_t f[6] = {a >> 24,  (a >> 16) & 0xff,    (a >> 8) & 0xff,
                         a & 0xff, uint32_t{port} >> 8, uint32_t{port} & 0xffu};
  size_t n = 0;
  for (size_t i = 0; i < 6; ++i) {
    if (i != 0)
      buf[n++] = ',';
    n += putDec(f[i], buf + n);
  }
  return n;
}

size_t formatEpsv(uint16_t port, char* buf) noexcept {
  size_t n = 0;
  buf[n++] = '|';
  buf[n++] = '|';
  buf[n++] = '|';
  n += putDec(port, buf + n);
  buf[n++] = '|';
  return n;
}

size_t formatEprt(const IpAddr& addr, uint16_t port, char delim, char* buf) noexcept {
  size_t n = 0;
  buf[n++] = delim;
  if (addr.af() == Af::kInet) {
    buf[n++] = '1';
    buf[n++] = delim;
    const uint8_t* b = addr.data();
    for (size_t i = 0; i < 4; ++i) {
      if (i != 0)
        buf[n++] = '.';
      n += putDec(b[i], buf + n);
    }
  } else {
    // Full form without zero compression (valid RFC 4291 text): at most 39 characters.
    buf[n++] = '2';
    buf[n++] = delim;
    const uint8_t* b = addr.data();
    for (size_t i = 0; i < 8; ++i) {
      if (i != 0)
        buf[n++] = ':';
      n += putHex((uint32_t{b[2 * i]} << 8) | b[2 * i + 1], buf + n);
    }
  }
  buf[n++] = delim;
  n += putDec(port, buf + n);
  buf[n++] = delim;
  return n;
}

absl::string_view tcpPayload(const PacketBuffer& pkt, const L3L4& o) noexcept {
  if (o.proto != L4Proto::kTcp || !o.has_l4)
    return {};
  const size_t doff = static_cast<size_t>(pkt.data()[o.l4_off + 12] >> 4) * 4;
  const size_t begin = o.l4_off + doff;
  size_t end = o.l3_off + o.tot_len;
  if (end > pkt.size())
    end = pkt.size();
  if (begin >= end)
    return {};
  return absl::string_view(reinterpret_cast<const char*>(pkt.data() + begin), end - begin);
}

std::optional<int32_t> mangle(
    PacketBuffer& pkt, const L3L4& o, size_t start, size_t end, absl::string_view text) noexcept {
  if (o.proto != L4Proto::kTcp || !o.has_l4 || pkt.offload.gso != OffloadInfo::Gso::kNone)
    return std::nullopt;
  const size_t doff = static_cast<size_t>(pkt.data()[o.l4_off + 12] >> 4) * 4;
  const size_t pay = o.l4_off + doff;
  const size_t pay_end = o.l3_off + o.tot_len;
  if (pay_end > pkt.size() || start > end || pay + end > pay_end)
    return std::nullopt;
  const int32_t diff = static_cast<int32_t>(text.size()) - static_cast<int32_t>(end - start);
  const size_t new_end = static_cast<size_t>(static_cast<int64_t>(pay_end) + diff);
  const size_t new_tot = new_end - o.l3_off;
  if (new_tot > 65535 || (o.af == Af::kInet6 && new_tot - 40 > 65535))
    return std::nullopt;
  const size_t tail = pay_end - (pay + end);
  if (diff > 0 && !pkt.setSize(new_end))
    return std::nullopt;
  uint8_t* base = pkt.data();
  std::memmove(base + pay + start + text.size(), base + pay + end, tail);
  std::memcpy(base + pay + start, text.data(), text.size());
  if (!pkt.setSize(new_end))  // also drops link padding beyond the IP length
    return std::nullopt;
  uint8_t* ip = base + o.l3_off;
  if (o.af == Af::kInet) {
    store16(ip + 2, static_cast<uint16_t>(new_tot));
    store16(ip + 10, 0);
    store16(ip + 10, xmit::foldComplement(xmit::sumWords(ip, o.l3_len, 0)));
  } else {
    store16(ip + 4, static_cast<uint16_t>(new_tot - 40));
  }
  const size_t l4_len = new_end - o.l4_off;
  uint8_t* tcp = base + o.l4_off;
  store16(tcp + 16, 0);
  const uint32_t sum = xmit::pseudoSum(o.src, o.dst, 6, static_cast<uint32_t>(l4_len));
  store16(tcp + 16, xmit::foldComplement(xmit::sumWords(tcp, l4_len, sum)));
  pkt.offload = OffloadInfo{};
  return diff;
}

StateTable::StateTable(size_t capacity) {
  size_t n = 64;
  while (n < capacity)
    n <<= 1;
  slots_size_ = n;
  slots_ = std::make_unique<State[]>(n);
}

void setSeqField(PacketBuffer& pkt, const L3L4& o, uint32_t value, bool ack) noexcept {
  const uint32_t cur = ack ? synproxy::tcpAck(pkt, o) : synproxy::tcpSeq(pkt, o);
  synproxy::addToSeq(pkt, o, value - cur, ack);
}

}  // namespace lb::ftp
