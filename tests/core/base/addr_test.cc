// SPDX-License-Identifier: Apache-2.0
#include "core/base/addr.h"

#include "gtest/gtest.h"

namespace lb {
namespace {

TEST(IpAddrTest, ParsesAndFormatsIpv4) {
  auto a = IpAddr::parse("198.18.0.1");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->isV4());
  EXPECT_EQ(a->v4HostOrder(), 0xC6120001u);
  EXPECT_EQ(a->toString(), "198.18.0.1");
  EXPECT_EQ(formatAddrPort(*a, 80), "198.18.0.1:80");
}

TEST(IpAddrTest, RejectsBadIpv4) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.-4",
                          " 1.2.3.4", "01234.1.1.1"}) {
    EXPECT_FALSE(IpAddr::parse(bad).has_value()) << bad;
  }
}

TEST(IpAddrTest, ParsesAndFormatsIpv6Rfc5952) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"2001:2::1", "2001:2::1"},
      {"2001:0002:0000:0000:0000:0000:0000:0001", "2001:2::1"},
      {"::", "::"},
      {"::1", "::1"},
      {"2001:2:0:0:1:0:0:1", "2001:2::1:0:0:1"},     // leftmost longest run
      {"2001:2:0:1:1:1:1:1", "2001:2:0:1:1:1:1:1"},  // a single zero group is not compressed
      {"::ffff:198.18.0.1", "::ffff:198.18.0.1"},
      {"FE80::ABCD", "fe80::abcd"},
  };

  for (const auto& c : cases) {
    auto a = IpAddr::parse(c.in);
    ASSERT_TRUE(a.has_value()) << c.in;
    EXPECT_TRUE(a->isV6());
    EXPECT_EQ(a->toString(), c.out) << c.in;
  }
  EXPECT_EQ(formatAddrPort(*IpAddr::parse("2001:2::1"), 443), "[2001:2::1]:443");
}

TEST(IpAddrTest, RejectsBadIpv6) {
  for (const char* bad :
       {"1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7::8:9"}) {
    EXPECT_FALSE(IpAddr::parse(bad).has_value()) << bad;
  }
}

TEST(IpAddrTest, MasksToPrefix) {
  EXPECT_EQ(IpAddr::parse("198.18.77.200")->masked(24).toString(), "198.18.77.0");
  EXPECT_EQ(IpAddr::parse("198.18.77.200")->masked(20).toString(), "198.18.64.0");
  EXPECT_EQ(IpAddr::parse("198.18.77.200")->masked(32).toString(), "198.18.77.200");
  EXPECT_EQ(IpAddr::parse("198.18.77.200")->masked(0).toString(), "0.0.0.0");
  EXPECT_EQ(IpAddr::parse("2001:2:abcd:ef01::7")->masked(40).toString(), "2001:2:ab00::");
}

TEST(IpAddrTest, FoldMatchesKernelHashKey) {
  // ip_vs_sh.c: IPv6 keys fold the four 32-bit words with XOR.
  auto a = IpAddr::parse("2001:2::1:0:0:1");
  EXPECT_EQ(a->fold(), 0x20010002u ^ 0u ^ 0x00010000u ^ 1u);
  EXPECT_EQ(IpAddr::parse("10.0.0.1")->fold(), 0x0A000001u);
}

TEST(IpAddrTest, OrdersByFamilyThenBytes) {
  EXPECT_LT(*IpAddr::parse("198.18.0.2"), *IpAddr::parse("198.18.0.10"));
  EXPECT_LT(*IpAddr::parse("255.255.255.255"), *IpAddr::parse("::1"));
}

}  // namespace
}  // namespace lb
