// SPDX-License-Identifier: Apache-2.0
#include "core/base/addr.h"

#include <cstdio>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lb {
namespace {

std::optional<IpAddr> parseV4(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() != 4)
    return std::nullopt;
  uint32_t v = 0;
  for (absl::string_view p : parts) {
    uint32_t octet = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &octet) || octet > 255) {
      return std::nullopt;
    }
    for (char c : p) {
      if (c < '0' || c > '9')
        return std::nullopt;
    }
    v = (v << 8) | octet;
  }
  return IpAddr::v4(v);
}

bool parseHexGroup(absl::string_view g, uint16_t* out) {
  if (g.empty() || g.size() > 4)
    return false;
  uint32_t v = 0;
  for (char c : g) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  *out = static_cast<uint16_t>(v);
  return true;
}

// Parses a run of ':'-separated groups, possibly ending in a dotted IPv4 tail.
bool parseGroups(absl::string_view text, std::vector<uint16_t>* groups, bool allow_v4_tail) {
  if (text.empty())
    return true;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  for (size_t i = 0; i < parts.size(); ++i) {
    if (allow_v4_tail && i + 1 == parts.size() && parts[i].find('.') != absl::string_view::npos) {
      auto v4 = parseV4(parts[i]);
      if (!v4)
        return false;
      uint32_t h = v4->v4HostOrder();
      groups->push_back(static_cast<uint16_t>(h >> 16));
      groups->push_back(static_cast<uint16_t>(h & 0xffff));
      continue;
    }
    uint16_t g;
    if (!parseHexGroup(parts[i], &g))
      return false;
    groups->push_back(g);
  }
  return true;
}

std::optional<IpAddr> parseV6(absl::string_view text) {
  std::vector<uint16_t> head, tail;
  size_t dc = text.find("::");
  if (dc != absl::string_view::npos) {
    if (text.find("::", dc + 1) != absl::string_view::npos)
      return std::nullopt;
    if (!parseGroups(text.substr(0, dc), &head, false))
      return std::nullopt;
    if (!parseGroups(text.substr(dc + 2), &tail, true))
      return std::nullopt;
    if (head.size() + tail.size() > 7)
      return std::nullopt;
  } else {
    if (!parseGroups(text, &head, true))
      return std::nullopt;
    if (head.size() != 8)
      return std::nullopt;
  }
  uint8_t bytes[16] = {};
  for (size_t i = 0; i < head.size(); ++i) {
    bytes[2 * i] = static_cast<uint8_t>(head[i] >> 8);
    bytes[2 * i + 1] = static_cast<uint8_t>(head[i]);
  }
  size_t start = 8 - tail.size();
  for (size_t i = 0; i < tail.size(); ++i) {
    bytes[2 * (start + i)] = static_cast<uint8_t>(tail[i] >> 8);
    bytes[2 * (start + i) + 1] = static_cast<uint8_t>(tail[i]);
  }
  return IpAddr::fromBytes(Af::kInet6, bytes);
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(absl::string_view text) {
  if (text.find(':') != absl::string_view::npos)
    return parseV6(text);
  return parseV4(text);
}

bool IpAddr::isUnspecified() const {
  for (size_t i = 0; i < size(); ++i) {
    if (bytes_[i] != 0)
      return false;
  }
  return true;
}

uint32_t IpAddr::v4HostOrder() const {
  if (af_ != Af::kInet)
    return 0;
  return (uint32_t{bytes_[0]} << 24) | (uint32_t{bytes_[1]} << 16) | (uint32_t{bytes_[2]} << 8) |
         uint32_t{bytes_[3]};
}

uint32_t IpAddr::fold() const {
  if (af_ == Af::kInet)
    return v4HostOrder();
  uint32_t x = 0;
  for (int w = 0; w < 4; ++w) {
    const uint8_t* b = &bytes_[static_cast<size_t>(w) * 4];
    x ^= (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }
  return x;
}

IpAddr IpAddr::masked(int prefix_len) const {
  IpAddr out = *this;
  int bits = static_cast<int>(size()) * 8;
  if (prefix_len >= bits)
    return out;
  if (prefix_len < 0)
    prefix_len = 0;
  for (int i = 0; i < static_cast<int>(size()); ++i) {
    int keep = prefix_len - i * 8;
    uint8_t mask;
    if (keep >= 8) {
      mask = 0xff;
    } else if (keep <= 0) {
      mask = 0;
    } else {
      mask = static_cast<uint8_t>(0xff << (8 - keep));
    }
    out.bytes_[static_cast<size_t>(i)] &= mask;
  }
  return out;
}

std::string IpAddr::toString() const {
  if (af_ == Af::kInet) {
    return absl::StrCat(bytes_[0], ".", bytes_[1], ".", bytes_[2], ".", bytes_[3]);
  }
  if (af_ != Af::kInet6)
    return "?";
  // RFC 5952: compress the longest run (>= 2) of zero groups, leftmost on a tie.
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) {
    g[i] = static_cast<uint16_t>((bytes_[static_cast<size_t>(2 * i)] << 8) |
                                 bytes_[static_cast<size_t>(2 * i + 1)]);
  }
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0)
      ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses print their tail dotted, as inet_ntop does.
  bool mapped = best == 0 && best_len == 5 && g[5] == 0xffff;
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (mapped && i == 6) {
      out += ':';
      absl::StrAppend(&out, bytes_[12], ".", bytes_[13], ".", bytes_[14], ".", bytes_[15]);
      break;
    }
    if (!out.empty() && out.back() != ':')
      out += ':';
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%x", g[i]);
    out += buf;
  }
  return out;
}

std::string formatAddrPort(const IpAddr& addr, uint16_t port) {
  if (addr.isV6())
    return absl::StrCat("[", addr.toString(), "]:", port);
  return absl::StrCat(addr.toString(), ":", port);
}

absl::string_view protoName(L4Proto proto) {
  switch (proto) {
    case L4Proto::kTcp:
      return "TCP";
    case L4Proto::kUdp:
      return "UDP";
    case L4Proto::kSctp:
      return "SCTP";
    case L4Proto::kIcmp:
      return "ICMP";
    case L4Proto::kIcmpv6:
      return "ICMPv6";
    default:
      return "IP";
  }
}

}  // namespace lb
