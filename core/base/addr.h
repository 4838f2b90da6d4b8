// SPDX-License-Identifier: Apache-2.0
// IP addresses and address families; the analogue of union nf_inet_addr in include/net/ip_vs.h.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace lb {

// Address family, numerically equal to AF_INET / AF_INET6 so it crosses the API unchanged.
enum class Af : uint8_t { kUnspec = 0, kInet = 2, kInet6 = 10 };

// L4 protocol numbers (IANA).
enum class L4Proto : uint8_t {
  kNone = 0,
  kIcmp = 1,
  kIpip = 4,
  kTcp = 6,
  kUdp = 17,
  kIpv6 = 41,
  kGre = 47,
  kIcmpv6 = 58,
  kSctp = 132,
};

// An IPv4 or IPv6 address in network byte order. IPv4 occupies bytes [0,4); the rest is zero.
// Value type; any thread.
class IpAddr {
 public:
  constexpr IpAddr() = default;

  static IpAddr v4(uint32_t host_order) {
    IpAddr a;
    a.af_ = Af::kInet;
    a.bytes_[0] = static_cast<uint8_t>(host_order >> 24);
    a.bytes_[1] = static_cast<uint8_t>(host_order >> 16);
    a.bytes_[2] = static_cast<uint8_t>(host_order >> 8);
    a.bytes_[3] = static_cast<uint8_t>(host_order);
    return a;
  }

  // From 4 or 16 network-order bytes.
  static IpAddr fromBytes(Af af, const uint8_t* p) {
    IpAddr a;
    a.af_ = af;
    std::memcpy(a.bytes_.data(), p, af == Af::kInet ? 4 : 16);
    return a;
  }

  // Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no zone). nullopt on error.
  // May allocate.
  static std::optional<IpAddr> parse(absl::string_view text);

  Af af() const { return af_; }

  bool isV4() const { return af_ == Af::kInet; }

  bool isV6() const { return af_ == Af::kInet6; }

  bool isUnspecified() const;

  size_t size() const { return af_ == Af::kInet ? 4 : 16; }

  const uint8_t* data() const { return bytes_.data(); }

  uint8_t* data() { return bytes_.data(); }

  // IPv4 address in host byte order; 0 for IPv6.
  uint32_t v4HostOrder() const;
  // The kernel's address fold for hashing: IPv4 host-order value, or the XOR of the four
  // 32-bit words of an IPv6 address (ip_vs_sh.c ip_vs_sh_hashkey), in host order.
  uint32_t fold() const;
  // This address with everything past `prefix_len` bits cleared.
  IpAddr masked(int prefix_len) const;

  // Canonical text (inet_ntop form). May allocate.
  std::string toString() const;

  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.af_ == b.af_ && a.bytes_ == b.bytes_;
  }

  friend bool operator<(const IpAddr& a, const IpAddr& b) {
    if (a.af_ != b.af_)
      return a.af_ < b.af_;
    return a.bytes_ < b.bytes_;
  }

  template <typename H>
  friend H AbslHashValue(H h, const IpAddr& a) {
    return H::combine(std::move(h), a.af_, a.bytes_);
  }

 private:
  Af af_ = Af::kUnspec;
  std::array<uint8_t, 16> bytes_{};
};

// "addr:port" for IPv4, "[addr]:port" for IPv6. May allocate.
std::string formatAddrPort(const IpAddr& addr, uint16_t port);

// Name of a protocol as ipvsadm prints it: "TCP", "UDP", "SCTP".
absl::string_view protoName(L4Proto proto);

}  // namespace lb
