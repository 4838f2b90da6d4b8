// SPDX-License-Identifier: Apache-2.0
// ICMP error rewrite (ip_vs_nat_icmp) and generation (icmp_send / icmp6_send).
#include <gtest/gtest.h>

#include "core/packet/checksum.h"
#include "core/packet/parse.h"
#include "core/packet/rewrite.h"
#include "tests/core/packet/packet_test_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::ip;
using testing::PacketBuilder;

void expectSame(const PacketBuffer& got, const Bytes& want, const char* what) {
  Bytes g = testing::toBytes(got);
  EXPECT_EQ(g, want) << what << "\ngot:\n"
                     << testing::hexDump(g.data(), g.size()) << "\nwant:\n"
                     << testing::hexDump(want.data(), want.size());
  EXPECT_TRUE(testing::checksumsValid(g)) << what;
}

Bytes firstBytes(const Bytes& b, size_t n) {
  return Bytes(b.begin(), b.begin() + static_cast<long>(n));
}

struct Addrs {
  const char* client;
  const char* router;
  const char* vip;
  const char* rip;
};

const Addrs kV4 = {"192.0.2.10", "198.51.100.1", "10.0.0.1", "172.16.5.77"};
const Addrs kV6 = {"2001:db8:c::10", "2001:db8:e::1", "2001:db8::1", "2001:db8:ffff:1::77"};

// Client side → director (ip_vs_in_icmp): an error about a packet the director sent to the
// client (VIP:80 → client). NAT: outer dst := RIP, inner src := RIP:8080.
TEST(RewriteIcmpErrorTest, TowardRealServerTcpUdpV4V6) {
  for (bool v6 : {false, true}) {
    for (bool udp : {false, true}) {
      const Addrs& a = v6 ? kV6 : kV4;
      auto inner = [&](const char* src, uint16_t sport) {
        return udp ? PacketBuilder::udp(src, sport, a.client, 40000).payloadSize(13).build()
                   : PacketBuilder::tcp(src, sport, a.client, 40000, kTcpAck)
                         .payloadSize(13)
                         .build();
      };
      uint8_t type = v6 ? kIcmp6DestUnreach : kIcmpDestUnreach;
      auto pkt = testing::toBuffer(
          PacketBuilder::icmpError(a.router, a.vip, type, 3, 0, inner(a.vip, 80)));
      ParsedPacket pp;
      ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
      ASSERT_TRUE(pp.is_icmp_error);
      ASSERT_EQ(rewriteIcmpError(*pkt, pp, true, ip(a.rip), 8080, ip(a.rip)), DropReason::kNone);
      expectSame(*pkt, PacketBuilder::icmpError(a.router, a.rip, type, 3, 0, inner(a.rip, 8080)),
                 v6 ? (udp ? "v6 udp" : "v6 tcp") : (udp ? "v4 udp" : "v4 tcp"));
      EXPECT_EQ(pp.outer.dst, ip(a.rip));
      EXPECT_EQ(pp.inner.src, ip(a.rip));
      EXPECT_EQ(pp.inner.sport, 8080);
      // The quoted packet is again a valid packet (its checksums fixed too).
      Bytes got = testing::toBytes(*pkt);
      Bytes quoted(got.begin() + pp.inner.l3_off, got.end());
      EXPECT_TRUE(testing::checksumsValid(quoted));
    }
  }
}

// Real server → client (ip_vs_out_icmp): an error about the client's packet to RIP:8080.
// NAT: outer src := VIP, inner dst := VIP:80.
TEST(RewriteIcmpErrorTest, TowardClientSctpAndTruncatedQuote) {
  for (bool v6 : {false, true}) {
    const Addrs& a = v6 ? kV6 : kV4;
    uint8_t type = v6 ? kIcmp6DestUnreach : kIcmpDestUnreach;
    Bytes in_before = PacketBuilder::sctp(a.client, 5000, a.rip, 8080, 0).build();
    Bytes in_after = PacketBuilder::sctp(a.client, 5000, a.vip, 80, 0).build();
    auto pkt = testing::toBuffer(PacketBuilder::icmpError(a.rip, a.client, type, 3, 0, in_before));
    ParsedPacket pp;
    ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
    ASSERT_EQ(rewriteIcmpError(*pkt, pp, false, ip(a.vip), 80, ip(a.vip)), DropReason::kNone);
    // SCTP's CRC covers the whole original packet: the quote keeps the old one.
    Bytes want_inner = in_after;
    const size_t crc = (v6 ? 40 : 20) + 8;
    std::copy(in_before.begin() + static_cast<long>(crc),
              in_before.begin() + static_cast<long>(crc + 4),
              want_inner.begin() + static_cast<long>(crc));
    Bytes got = testing::toBytes(*pkt);
    EXPECT_EQ(got, PacketBuilder::icmpError(a.vip, a.client, type, 3, 0, want_inner));
    EXPECT_TRUE(testing::checksumsValid(got));

    // A quote of the IP header + 8 bytes (RFC 792's minimum): TCP's checksum is not quoted.
    const size_t ip_len = v6 ? 40 : 20;
    Bytes tcp_before = PacketBuilder::tcp(a.client, 40000, a.rip, 8080, kTcpSyn).build();
    Bytes tcp_after = PacketBuilder::tcp(a.client, 40000, a.vip, 80, kTcpSyn).build();
    auto trunc = testing::toBuffer(
        PacketBuilder::icmpError(a.rip, a.client, type, 4, 0, firstBytes(tcp_before, ip_len + 8)));
    ASSERT_EQ(parsePacket(trunc->span(), pp), DropReason::kNone);
    ASSERT_EQ(rewriteIcmpError(*trunc, pp, false, ip(a.vip), 80, ip(a.vip)), DropReason::kNone);
    expectSame(
        *trunc,
        PacketBuilder::icmpError(a.vip, a.client, type, 4, 0, firstBytes(tcp_after, ip_len + 8)),
        "truncated");
  }
}

TEST(RewriteIcmpErrorTest, RefusesNonErrorsAndFamilyMismatch) {
  auto pkt = testing::toBuffer(PacketBuilder::icmpEcho(kV4.client, kV4.vip, 8, 1).build());
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  EXPECT_EQ(rewriteIcmpError(*pkt, pp, true, ip(kV4.rip), 1, ip(kV4.rip)), DropReason::kMalformed);
  Bytes inner = PacketBuilder::udp(kV4.vip, 1, kV4.client, 2).build();
  auto err = testing::toBuffer(PacketBuilder::icmpError(kV4.router, kV4.vip, 3, 3, 0, inner));
  ASSERT_EQ(parsePacket(err->span(), pp), DropReason::kNone);
  EXPECT_EQ(rewriteIcmpError(*err, pp, true, ip(kV6.rip), 1, ip(kV4.rip)), DropReason::kMalformed);
}

TEST(BuildIcmpErrorTest, Ipv4PortUnreachable) {
  Bytes orig = PacketBuilder::udp(kV4.client, 5353, kV4.vip, 53).payloadSize(30).build();
  auto in = testing::toBuffer(orig);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(in->span(), pp), DropReason::kNone);
  auto out = std::make_unique<PacketBuffer>();
  ASSERT_TRUE(
      buildIcmpError(*out, *in, pp.outer, kIcmpDestUnreach, kIcmpPortUnreach, 0, ip(kV4.vip)));
  Bytes got = testing::toBytes(*out);
  // As the builder makes it, except for icmp_send's TOS (internetwork control) and IP ID 0.
  Bytes want = PacketBuilder::icmpError(kV4.vip, kV4.client, 3, 3, 0, orig);
  want[1] = 0xc0;
  testing::set16(want, 4, 0);
  testing::fixIpv4Checksum(want);
  EXPECT_EQ(got, want) << testing::hexDump(got.data(), got.size());
  EXPECT_TRUE(testing::checksumsValid(got));
  EXPECT_EQ(got.size(), 20u + 8 + orig.size());
}

TEST(BuildIcmpErrorTest, Ipv4FragNeededQuotesAtMost576) {
  Bytes orig =
      PacketBuilder::tcp(kV4.client, 1, kV4.vip, 80, kTcpAck).df(true).payloadSize(1460).build();
  auto in = testing::toBuffer(orig);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(in->span(), pp), DropReason::kNone);
  auto out = std::make_unique<PacketBuffer>();
  ASSERT_TRUE(
      buildIcmpError(*out, *in, pp.outer, kIcmpDestUnreach, kIcmpFragNeeded, 1400, ip(kV4.vip)));
  Bytes got = testing::toBytes(*out);
  ASSERT_EQ(got.size(), 576u);
  EXPECT_EQ(testing::get16(got, 2), 576);
  EXPECT_EQ(got[8], 64);
  EXPECT_EQ(got[20], 3);
  EXPECT_EQ(got[21], 4);
  EXPECT_EQ(testing::get16(got, 24), 0);
  EXPECT_EQ(testing::get16(got, 26), 1400);
  EXPECT_TRUE(std::equal(got.begin() + 28, got.end(), orig.begin()));
  EXPECT_TRUE(testing::checksumsValid(got));
  ParsedPacket back;
  ASSERT_EQ(parsePacket(out->span(), back), DropReason::kNone);
  EXPECT_TRUE(back.is_icmp_error);
  EXPECT_EQ(back.inner.dport, 80);
}

TEST(BuildIcmpErrorTest, Ipv6PacketTooBigQuotesAtMost1280) {
  Bytes orig = PacketBuilder::tcp(kV6.client, 1, kV6.vip, 80, kTcpAck).payloadSize(1900).build();
  auto in = testing::toBuffer(orig);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(in->span(), pp), DropReason::kNone);
  auto out = std::make_unique<PacketBuffer>();
  ASSERT_TRUE(buildIcmpError(*out, *in, pp.outer, kIcmp6PacketTooBig, 0, 1480, ip(kV6.vip)));
  Bytes want = PacketBuilder::icmpError(kV6.vip, kV6.client, 2, 0, 1480, orig);
  EXPECT_EQ(testing::toBytes(*out), want);
  EXPECT_EQ(out->size(), 1280u);
  EXPECT_TRUE(testing::checksumsValid(testing::toBytes(*out)));
}

TEST(BuildIcmpErrorTest, RefusesWhatMustNotBeAnswered) {
  auto check = [](const Bytes& orig, uint8_t type, uint8_t code, const char* src) {
    auto in = testing::toBuffer(orig);
    ParsedPacket pp;
    EXPECT_EQ(parsePacket(in->span(), pp), DropReason::kNone);
    auto out = std::make_unique<PacketBuffer>();
    return buildIcmpError(*out, *in, pp.outer, type, code, 0, ip(src));
  };
  Bytes inner = PacketBuilder::udp(kV4.vip, 1, kV4.client, 2).build();
  // An ICMP error is never answered; an echo request may be.
  EXPECT_FALSE(check(PacketBuilder::icmpError(kV4.client, kV4.vip, 3, 3, 0, inner), 3, 3, kV4.vip));
  EXPECT_FALSE(
      check(PacketBuilder::icmpError(kV4.client, kV4.vip, 12, 0, 0, inner), 3, 3, kV4.vip));
  EXPECT_TRUE(check(PacketBuilder::icmpEcho(kV4.client, kV4.vip, 8, 1).build(), 11, 0, kV4.vip));
  // Non-first fragments.
  Bytes frag = testing::withIpv4Frag(
      PacketBuilder::udp(kV4.client, 1, kV4.vip, 2).payloadSize(16).build(), false, 1);
  EXPECT_FALSE(check(frag, 11, 0, kV4.vip));
  EXPECT_TRUE(check(testing::withIpv4Frag(frag, true, 0), 11, 0, kV4.vip));
  // Multicast / broadcast destinations and sources.
  EXPECT_FALSE(
      check(PacketBuilder::udp(kV4.client, 1, "224.0.0.251", 5353).build(), 3, 3, kV4.vip));
  EXPECT_FALSE(
      check(PacketBuilder::udp(kV4.client, 68, "255.255.255.255", 67).build(), 3, 3, kV4.vip));
  EXPECT_FALSE(check(PacketBuilder::udp("0.0.0.0", 68, kV4.vip, 67).build(), 3, 3, kV4.vip));
  EXPECT_FALSE(check(PacketBuilder::udp("239.1.1.1", 1, kV4.vip, 2).build(), 3, 3, kV4.vip));
  // IPv6: errors, multicast (except Packet Too Big), unspecified source.
  Bytes inner6 = PacketBuilder::udp(kV6.vip, 1, kV6.client, 2).build();
  EXPECT_FALSE(
      check(PacketBuilder::icmpError(kV6.client, kV6.vip, 1, 4, 0, inner6), 1, 4, kV6.vip));
  EXPECT_TRUE(check(PacketBuilder::icmpEcho(kV6.client, kV6.vip, 128, 1).build(), 3, 0, kV6.vip));
  EXPECT_FALSE(check(PacketBuilder::udp(kV6.client, 1, "ff02::fb", 5353).build(), 1, 4, kV6.vip));
  EXPECT_TRUE(check(PacketBuilder::udp(kV6.client, 1, "ff02::fb", 5353).build(), 2, 0, kV6.vip));
  EXPECT_FALSE(check(PacketBuilder::udp("::", 1, kV6.vip, 2).build(), 1, 4, kV6.vip));
  // Family mismatch.
  EXPECT_FALSE(check(PacketBuilder::udp(kV4.client, 1, kV4.vip, 2).build(), 3, 3, kV6.vip));
}

}  // namespace
}  // namespace lb
