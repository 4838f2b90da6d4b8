// SPDX-License-Identifier: Apache-2.0
// keepalived.conf's argument values: counts, numbers, durations, ports, addresses, methods,
// status code ranges and hex payloads, each refused with "FILE:LINE: reason".
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "cmd/lbd/health/keepalived_parse.h"

namespace lb::health::kconf {

// --- values ----------------------------------------------------------------------------------

absl::Status wantArgs(const Node& n, size_t min, size_t max) {
  if (n.args.size() < min || n.args.size() > max) {
    if (min == max)
      return errorAt(n, absl::StrCat(n.keyword, ": expected ", min, " value", min == 1 ? "" : "s"));
    return errorAt(n, absl::StrCat(n.keyword, ": expected ", min, " to ", max, " values"));
  }
  return absl::OkStatus();
}

absl::Status noBlock(const Node& n) {
  if (n.block)
    return errorAt(n, absl::StrCat(n.keyword, ": takes no block"));
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> parseUint(const Node& n, const std::string& v, uint64_t lo, uint64_t hi) {
  uint64_t x = 0;
  if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
    return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected an integer ", lo, "..", hi));
  }
  return static_cast<uint32_t>(x);
}

absl::StatusOr<uint32_t> uintArg(const Node& n, uint64_t lo, uint64_t hi) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  return parseUint(n, n.args[0], lo, hi);
}

// keepalived's durations: seconds with up to 6 decimals ("1", "0.5").
absl::StatusOr<Micros> secondsArg(const Node& n, bool allow_zero) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  const std::string& v = n.args[0];
  double d = 0;
  const bool digits = !v.empty() && v.find_first_not_of("0123456789.") == std::string::npos;
  if (!digits || !absl::SimpleAtod(v, &d) || !std::isfinite(d) || d < 0 || d > 4294967.0 ||
      (!allow_zero && d == 0)) {
    return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected seconds",
                                   allow_zero ? "" : " > 0", " (up to 4294967)"));
  }
  return static_cast<Micros>(std::llround(d * 1e6));
}

absl::StatusOr<uint16_t> portArg(const Node& n, const std::string& v) {
  absl::StatusOr<uint32_t> p = parseUint(n, v, 0, 65535);
  if (!p.ok())
    return p.status();
  return static_cast<uint16_t>(*p);
}

absl::StatusOr<std::string> stringArg(const Node& n) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  return n.args[0];
}

// A program line: keepalived joins the words of an unquoted script back with spaces.
absl::StatusOr<std::string> scriptArg(const Node& n) {
  if (n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": expected a program"));
  return absl::StrJoin(n.args, " ");
}

// Optional boolean keywords: "alpha" alone is on; "alpha off|false|no|0" off.
absl::StatusOr<bool> flagArg(const Node& n) {
  if (n.args.empty())
    return true;
  if (absl::Status s = wantArgs(n, 0, 1); !s.ok())
    return s;
  const std::string v = absl::AsciiStrToLower(n.args[0]);
  if (v == "on" || v == "true" || v == "yes" || v == "1")
    return true;
  if (v == "off" || v == "false" || v == "no" || v == "0")
    return false;
  return errorAt(n, absl::StrCat(n.keyword, " '", n.args[0], "': expected on or off"));
}

bool isIpv4(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 4)
    return false;
  for (absl::string_view p : parts) {
    uint32_t v = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v > 255 ||
        p.find_first_not_of("0123456789") != absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool isIpv6(absl::string_view s) {
  if (s.size() < 2 || s.size() > 45 || s.find(':') == absl::string_view::npos)
    return false;
  if (s.find_first_not_of("0123456789abcdefABCDEF:.") != absl::string_view::npos)
    return false;
  const size_t dbl = s.find("::");
  if (dbl != absl::string_view::npos && s.find("::", dbl + 1) != absl::string_view::npos)
    return false;
  std::vector<absl::string_view> groups = absl::StrSplit(s, ':');
  size_t n = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    absl::string_view g = groups[i];
    if (g.empty())
      continue;
    if (g.find('.') != absl::string_view::npos) {
      if (i + 1 != groups.size() || !isIpv4(g))
        return false;
      n += 2;
      continue;
    }
    if (g.size() > 4)
      return false;
    ++n;
  }
  return dbl == absl::string_view::npos ? n == 8 : n < 8;
}

absl::StatusOr<std::string> addressArg(const Node& n, const std::string& v) {
  if (isIpv4(v) || isIpv6(v))
    return v;
  return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected an IPv4 or IPv6 address"));
}

absl::StatusOr<LvsMethod> methodArg(const Node& n) {
  if (n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": expected NAT, DR or TUN"));
  const std::string m = absl::AsciiStrToUpper(n.args[0]);
  if (m == "NAT" && n.args.size() == 1)
    return LvsMethod::kNat;
  if (m == "DR" && n.args.size() == 1)
    return LvsMethod::kDr;
  if (m == "TUN") {
    if (n.args.size() == 1 || (n.args.size() == 3 && n.args[1] == "type" && n.args[2] == "ipip"))
      return LvsMethod::kTun;
    return errorAt(n, absl::StrCat(n.keyword,
                                   " TUN: only IPIP tunnels are read from keepalived.conf "
                                   "(give GUE/GRE tunnels with lbctl)"));
  }
  return errorAt(
      n, absl::StrCat(n.keyword, " '", absl::StrJoin(n.args, " "), "': expected NAT, DR or TUN"));
}

// status_code 200 | 200-299 | several of them.
absl::Status parseStatusCodes(const Node& n, std::vector<StatusRange>& out) {
  if (n.args.empty())
    return errorAt(n, "status_code: expected a code or a range");
  for (const std::string& a : n.args) {
    std::vector<std::string> lohi = absl::StrSplit(a, absl::MaxSplits('-', 1));
    StatusRange r;
    absl::StatusOr<uint32_t> lo = parseUint(n, lohi[0], 100, 599);
    if (!lo.ok())
      return lo.status();
    r.lo = r.hi = static_cast<int>(*lo);
    if (lohi.size() == 2) {
      absl::StatusOr<uint32_t> hi = parseUint(n, lohi[1], 100, 599);
      if (!hi.ok())
        return hi.status();
      if (*hi < *lo)
        return errorAt(n, absl::StrCat("status_code '", a, "': range ends before it starts"));
      r.hi = static_cast<int>(*hi);
    }
    out.push_back(r);
  }
  return absl::OkStatus();
}

namespace {

int hexNibble(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

// keepalived's UDP payload and reply pattern: hex digits (an odd count is refused), spaces
// allowed between words; with `wildcards`, X/x is a nibble that matches anything.
absl::Status parseHex(const Node& n, bool wildcards, std::string& bytes, std::string* mask) {
  std::string digits;
  for (const std::string& a : n.args) {
    std::string w = a;
    if (absl::StartsWith(w, "0x") || absl::StartsWith(w, "0X"))
      w = w.substr(2);
    digits += w;
  }
  if (digits.empty() || digits.size() % 2 != 0 || digits.size() > 2 * 65507) {
    return errorAt(n, absl::StrCat(n.keyword, ": expected an even number of hex digits"));
  }
  for (size_t i = 0; i < digits.size(); i += 2) {
    int v = 0, m = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = digits[i + j];
      const int shift = j == 0 ? 4 : 0;
      if (wildcards && (c == 'x' || c == 'X'))
        continue;
      const int h = hexNibble(c);
      if (h < 0)
        return errorAt(n, absl::StrCat(n.keyword, ": '", std::string(1, c), "' is not hex"));
      v |= h << shift;
      m |= 0xf << shift;
    }
    bytes += static_cast<char>(v);
    if (mask != nullptr)
      *mask += static_cast<char>(m);
  }
  return absl::OkStatus();
}

absl::Status unknown(const Node& n, absl::string_view where) {
  return errorAt(n, absl::StrCat("unknown keyword '", n.keyword, "' in ", where));
}

}  // namespace lb::health::kconf
