// SPDX-License-Identifier: Apache-2.0
#include "core/packet/checksum.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/packet/bytes.h"
#include "tests/core/packet/packet_test_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;

// The 16-bit checksum as it reads big-endian from the packet after storeRaw16.
uint16_t asStored(uint16_t raw) {
  uint8_t b[2];
  storeRaw16(b, raw);
  return loadBe16(b);
}

uint16_t toRaw(uint16_t host) {
  uint8_t b[2];
  storeBe16(b, host);
  return loadRaw16(b);
}

uint16_t refChecksum(const Bytes& d, uint32_t acc = 0) {
  acc = testing::refSum(d.data(), d.size(), acc);
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// One's-complement equality: 0x0000 and 0xffff are the same number.
bool onesEqual(uint16_t a, uint16_t b) {
  return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0);
}

TEST(ChecksumTest, Rfc1071Example) {
  // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2; the checksum is its complement.
  Bytes d = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(asStored(csumFold(csumPartial({d.data(), d.size()}, 0))), 0x220d);
}

TEST(ChecksumTest, CsumPartialMatchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  Bytes buf(300);
  for (auto& b : buf)
    b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; len + start <= buf.size(); ++len) {
      Bytes d(buf.begin() + static_cast<long>(start), buf.begin() + static_cast<long>(start + len));
      uint16_t got = asStored(csumFold(csumPartial({buf.data() + start, len}, 0)));
      ASSERT_EQ(got, refChecksum(d)) << "start " << start << " len " << len;
    }
  }
}

TEST(ChecksumTest, CsumPartialChainsOverEvenChunks) {
  Bytes d(1000);
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<uint8_t>(i * 7 + 3);
  uint32_t s = csumPartial({d.data(), 100}, 0);
  s = csumPartial({d.data() + 100, 900}, s);
  EXPECT_EQ(csumFold(s), csumFold(csumPartial({d.data(), d.size()}, 0)));
}

TEST(ChecksumTest, CsumPartialLargeBufferAllOnes) {
  // 64 KB of 0xff: every word is 0xffff (negative zero); the sum stays 0xffff, checksum 0.
  Bytes d(65535, 0xff);
  EXPECT_EQ(asStored(csumFold(csumPartial({d.data(), d.size()}, 0))), refChecksum(d));
}

TEST(ChecksumTest, PseudoHeaderSumMatchesReference) {
  IpAddr s4 = testing::ip("10.1.2.3"), d4 = testing::ip("192.168.200.9");
  IpAddr s6 = testing::ip("2001:db8::1"), d6 = testing::ip("fe80::abcd:1234");
  EXPECT_TRUE(onesEqual(
      asStored(static_cast<uint16_t>(~csumFold(pseudoHeaderSum(s4, d4, L4Proto::kTcp, 1480)))),
      testing::refPseudoFolded(s4, d4, 6, 1480)));
  EXPECT_TRUE(onesEqual(
      asStored(static_cast<uint16_t>(~csumFold(pseudoHeaderSum(s6, d6, L4Proto::kIcmpv6, 70000)))),
      testing::refPseudoFolded(s6, d6, 58, 70000)));
}

TEST(ChecksumTest, CsumReplace2MatchesRecompute) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 2000; ++iter) {
    Bytes d(40);
    for (auto& b : d)
      b = static_cast<uint8_t>(rng());
    size_t w = (rng() % 19) * 2 + 2;  // any word but the checksum at 0
    testing::set16(d, 0, 0);
    testing::set16(d, 0, refChecksum(d));
    uint16_t old_word = testing::get16(d, w);
    uint16_t new_word = static_cast<uint16_t>(rng());
    uint16_t c = csumReplace2(toRaw(testing::get16(d, 0)), toRaw(old_word), toRaw(new_word));
    testing::set16(d, w, new_word);
    testing::set16(d, 0, 0);
    ASSERT_TRUE(onesEqual(asStored(c), refChecksum(d))) << iter;
  }
}

TEST(ChecksumTest, CsumReplaceAddrMatchesRecomputeV4AndV6) {
  for (const char* pair : {"v4", "v6"}) {
    bool v6 = pair[1] == '6';
    IpAddr a = testing::ip(v6 ? "2001:db8::1" : "10.0.0.1");
    IpAddr b = testing::ip(v6 ? "2001:db8:ffff::beef" : "192.168.77.254");
    Bytes pkt = testing::PacketBuilder::tcp(v6 ? "2001:db8::9" : "10.9.9.9", 1000,
                                            v6 ? "2001:db8::1" : "10.0.0.1", 80, 0x02)
                    .payloadSize(33)
                    .build();
    size_t l4 = v6 ? 40 : 20;
    Bytes want =
        testing::PacketBuilder::tcp(v6 ? "2001:db8::9" : "10.9.9.9", 1000,
                                    v6 ? "2001:db8:ffff::beef" : "192.168.77.254", 80, 0x02)
            .payloadSize(33)
            .build();
    uint16_t c = csumReplaceAddr(loadRaw16(pkt.data() + l4 + 16), a, b);
    EXPECT_EQ(asStored(c), testing::get16(want, l4 + 16)) << pair;
  }
}

TEST(ChecksumTest, CsumReplaceAddrPartialTracksPseudoHeaderSum) {
  IpAddr s = testing::ip("10.0.0.2"), a = testing::ip("10.0.0.1"), b = testing::ip("172.16.0.5");
  uint16_t field = toRaw(testing::refPseudoFolded(s, a, 6, 1000));
  uint16_t got = asStored(csumReplaceAddrPartial(field, a, b));
  EXPECT_TRUE(onesEqual(got, testing::refPseudoFolded(s, b, 6, 1000)));
  IpAddr s6 = testing::ip("2001:db8::2"), a6 = testing::ip("2001:db8::1"),
         b6 = testing::ip("2001:db8:1:2:3:4:5:6");
  field = toRaw(testing::refPseudoFolded(s6, a6, 17, 300));
  got = asStored(csumReplaceAddrPartial(field, a6, b6));
  EXPECT_TRUE(onesEqual(got, testing::refPseudoFolded(s6, b6, 17, 300)));
}

TEST(ChecksumTest, Crc32cRfc3720Vectors) {
  // RFC 3720 appendix B.4 (the CRC is transmitted least significant byte first).
  Bytes zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
  for (size_t i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c({zeros.data(), zeros.size()}), 0x8A9136AAu);
  EXPECT_EQ(crc32c({ones.data(), ones.size()}), 0x62A8AB43u);
  EXPECT_EQ(crc32c({inc.data(), inc.size()}), 0x46DD794Eu);
  EXPECT_EQ(crc32c({dec.data(), dec.size()}), 0x113FDB5Cu);
  const char* check = "123456789";
  EXPECT_EQ(crc32c({reinterpret_cast<const uint8_t*>(check), 9}), 0xE3069283u);
  EXPECT_EQ(crc32c({}), 0u);
}

TEST(ChecksumTest, Crc32cExtendEqualsOneShotAtEverySplit) {
  Bytes d(77);
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<uint8_t>(i * 13 + 1);
  uint32_t whole = crc32c({d.data(), d.size()});
  for (size_t cut = 0; cut <= d.size(); ++cut) {
    uint32_t c = crc32cExtend(0, {d.data(), cut});
    c = crc32cExtend(c, {d.data() + cut, d.size() - cut});
    ASSERT_EQ(c, whole) << cut;
  }
}

// Both CRC32c implementations (SSE4.2 and tables) agree with a bitwise reference at every
// length and alignment.
TEST(ChecksumTest, Crc32cImplementationsMatchBitwiseReference) {
  auto bitwise = [](const uint8_t* p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
      crc ^= p[i];
      for (int k = 0; k < 8; ++k)
        crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
  };
  std::mt19937 rng(3);
  Bytes buf(200);
  for (auto& b : buf)
    b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; len + start <= buf.size(); ++len) {
      uint32_t want = bitwise(buf.data() + start, len);
      ASSERT_EQ(crc32c({buf.data() + start, len}), want) << start << " " << len;
      ASSERT_EQ(crc32cPortableForTest({buf.data() + start, len}), want) << start << " " << len;
    }
  }
}

TEST(ChecksumTest, VerifyIpv4HeaderChecksum) {
  Bytes pkt = testing::PacketBuilder::udp("10.0.0.1", 5, "10.0.0.2", 6).build();
  EXPECT_TRUE(verifyIpv4HeaderChecksum({pkt.data(), pkt.size()}));
  EXPECT_EQ(asStored(ipv4HeaderChecksum({pkt.data(), 20})), testing::get16(pkt, 10));
  Bytes opt = testing::withIpv4Options(pkt, {1, 1, 1, 0});
  EXPECT_TRUE(verifyIpv4HeaderChecksum({opt.data(), opt.size()}));
  EXPECT_FALSE(verifyIpv4HeaderChecksum({opt.data(), 20}));  // IHL says 24
  pkt[8] ^= 1;
  EXPECT_FALSE(verifyIpv4HeaderChecksum({pkt.data(), pkt.size()}));
  EXPECT_FALSE(verifyIpv4HeaderChecksum({pkt.data(), 19}));
}

}  // namespace
}  // namespace lb
