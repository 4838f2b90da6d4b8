// SPDX-License-Identifier: Apache-2.0
#include "core/packet/rewrite.h"

#include <gtest/gtest.h>

#include <string>

#include "core/packet/checksum.h"
#include "core/packet/parse.h"
#include "tests/core/packet/packet_test_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::ip;
using testing::PacketBuilder;

enum class Kind { kTcp, kUdp, kSctp, kIcmp };

struct Endpoints {
  const char* client;
  const char* vip;
  const char* rip;
};

const Endpoints kV4 = {"192.0.2.10", "10.0.0.1", "172.16.5.77"};
const Endpoints kV6 = {"2001:db8:c::10", "2001:db8::1", "2001:db8:ffff:1::77"};

PacketBuilder make(Kind k, const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  bool v6 = std::string(src).find(':') != std::string::npos;
  switch (k) {
    case Kind::kTcp:
      return PacketBuilder::tcp(src, sport, dst, dport, kTcpAck | kTcpPsh).payloadSize(37);
    case Kind::kUdp:
      return PacketBuilder::udp(src, sport, dst, dport).payloadSize(21);
    case Kind::kSctp:
      return PacketBuilder::sctp(src, sport, dst, dport, 0);
    case Kind::kIcmp:
      // Echo request; the identifier plays both ports.
      return PacketBuilder::icmpEcho(src, dst, v6 ? kIcmp6EchoRequest : kIcmpEcho, dport)
          .payloadSize(24);
  }
  return PacketBuilder::udp(src, sport, dst, dport);
}

struct Case {
  Kind kind;
  bool v6;
};

std::string name(const Case& c) {
  const char* k[] = {"tcp", "udp", "sctp", "icmp"};
  return std::string(c.v6 ? "v6/" : "v4/") + k[static_cast<int>(c.kind)];
}

std::vector<Case> allCases() {
  std::vector<Case> v;
  for (bool v6 : {false, true}) {
    for (Kind k : {Kind::kTcp, Kind::kUdp, Kind::kSctp, Kind::kIcmp})
      v.push_back({k, v6});
  }
  return v;
}

void expectSame(const PacketBuffer& got, const Bytes& want, const std::string& what) {
  Bytes g = testing::toBytes(got);
  EXPECT_EQ(g, want) << what << "\ngot:\n"
                     << testing::hexDump(g.data(), g.size()) << "\nwant:\n"
                     << testing::hexDump(want.data(), want.size());
  EXPECT_TRUE(testing::checksumsValid(g)) << what;
}

TEST(RewriteTest, DnatEveryFamilyAndProtocol) {
  for (const Case& c : allCases()) {
    const Endpoints& e = c.v6 ? kV6 : kV4;
    const uint16_t rport = c.kind == Kind::kIcmp ? 4242 : 8080;
    auto pkt = testing::toBuffer(make(c.kind, e.client, 40000, e.vip, 80).build());
    ParsedPacket pp;
    ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone) << name(c);
    ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(e.rip), rport), DropReason::kNone) << name(c);
    const uint16_t sport = c.kind == Kind::kIcmp ? rport : 40000;
    expectSame(*pkt, make(c.kind, e.client, sport, e.rip, rport).build(), name(c));
    EXPECT_EQ(pp.outer.dst, ip(e.rip));
    EXPECT_EQ(pp.outer.dport, rport);
    ParsedPacket again;
    ASSERT_EQ(parsePacket(pkt->span(), again), DropReason::kNone);
    EXPECT_EQ(again.outer.dst, pp.outer.dst);
    EXPECT_EQ(again.outer.dport, pp.outer.dport);
  }
}

TEST(RewriteTest, SnatEveryFamilyAndProtocol) {
  for (const Case& c : allCases()) {
    const Endpoints& e = c.v6 ? kV6 : kV4;
    const uint16_t vport = c.kind == Kind::kIcmp ? 4242 : 80;
    auto pkt = testing::toBuffer(make(c.kind, e.rip, 8080, e.client, 40000).build());
    ParsedPacket pp;
    ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone) << name(c);
    ASSERT_EQ(rewriteSrc(*pkt, pp.outer, ip(e.vip), vport), DropReason::kNone) << name(c);
    const uint16_t dport = c.kind == Kind::kIcmp ? vport : 40000;
    expectSame(*pkt, make(c.kind, e.vip, vport, e.client, dport).build(), name(c));
    EXPECT_EQ(pp.outer.src, ip(e.vip));
    EXPECT_EQ(pp.outer.sport, vport);
  }
}

TEST(RewriteTest, SamePortSctpKeepsItsCrc) {
  auto pkt = testing::toBuffer(make(Kind::kSctp, kV4.client, 1, kV4.vip, 80).build());
  Bytes before = testing::toBytes(*pkt);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 80), DropReason::kNone);
  Bytes after = testing::toBytes(*pkt);
  EXPECT_TRUE(std::equal(before.begin() + 28, before.begin() + 32, after.begin() + 28));
  expectSame(*pkt, make(Kind::kSctp, kV4.client, 1, kV4.rip, 80).build(), "sctp");
}

TEST(RewriteTest, Ipv4OptionsKeepChecksumsValid) {
  Bytes b = testing::withIpv4Options(make(Kind::kTcp, kV4.client, 1, kV4.vip, 80).build(),
                                     {0x94, 4, 0, 0});
  auto pkt = testing::toBuffer(b);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 8080), DropReason::kNone);
  Bytes want = testing::withIpv4Options(make(Kind::kTcp, kV4.client, 1, kV4.rip, 8080).build(),
                                        {0x94, 4, 0, 0});
  expectSame(*pkt, want, "options");
}

TEST(RewriteTest, ZeroUdpChecksumIsComputedInFull) {
  // ip_vs_proto_udp.c: a packet without a checksum leaves with a full one.
  auto pkt = testing::toBuffer(
      PacketBuilder::udp(kV4.client, 5353, kV4.vip, 53).payloadSize(11).udpZeroChecksum().build());
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 5300), DropReason::kNone);
  expectSame(*pkt, PacketBuilder::udp(kV4.client, 5353, kV4.rip, 5300).payloadSize(11).build(),
             "udp0");
}

TEST(RewriteTest, ZeroUdpChecksumOfAFragmentStaysZero) {
  Bytes b =
      PacketBuilder::udp(kV4.client, 5353, kV4.vip, 53).payloadSize(40).udpZeroChecksum().build();
  b = testing::withIpv4Frag(b, true, 0);
  auto pkt = testing::toBuffer(b);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 5300), DropReason::kNone);
  Bytes got = testing::toBytes(*pkt);
  EXPECT_EQ(testing::get16(got, 26), 0);
  EXPECT_EQ(testing::get16(got, 22), 5300);
}

TEST(RewriteTest, UdpChecksumComputingToZeroIsSentAsFfff) {
  // Choose two payload bytes so that the packet toward the real server sums to 0xffff: its
  // checksum computes to 0 and must be sent as 0xffff (CSUM_MANGLED_0).
  Bytes probe =
      PacketBuilder::udp(kV4.client, 1000, kV4.rip, 53).payload(std::string(2, '\0')).build();
  uint16_t c = testing::get16(probe, 26);
  std::string pay = {static_cast<char>(c >> 8), static_cast<char>(c & 0xff)};
  Bytes want = PacketBuilder::udp(kV4.client, 1000, kV4.rip, 53).payload(pay).build();
  ASSERT_EQ(testing::get16(want, 26), 0xffff);
  auto pkt =
      testing::toBuffer(PacketBuilder::udp(kV4.client, 1000, kV4.vip, 80).payload(pay).build());
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 53), DropReason::kNone);
  expectSame(*pkt, want, "mangled0");
}

// CHECKSUM_PARTIAL: the L4 field holds the folded pseudo-header sum; a rewrite moves it to the
// new addresses' sum and leaves ports to whoever completes the checksum.
TEST(RewriteTest, PartialChecksumAdjustsOnlyThePseudoHeader) {
  for (bool v6 : {false, true}) {
    for (Kind k : {Kind::kTcp, Kind::kUdp}) {
      const Endpoints& e = v6 ? kV6 : kV4;
      Bytes b = make(k, e.client, 40000, e.vip, 80).build();
      const size_t l4 = v6 ? 40 : 20;
      const size_t field = l4 + (k == Kind::kTcp ? 16 : 6);
      const uint8_t proto = k == Kind::kTcp ? 6 : 17;
      const size_t l4len = b.size() - l4;
      testing::set16(b, field, testing::refPseudoFolded(ip(e.client), ip(e.vip), proto, l4len));
      auto pkt = testing::toBuffer(b);
      pkt->offload.csum = OffloadInfo::Csum::kPartial;
      pkt->offload.csum_start = static_cast<uint16_t>(l4);
      pkt->offload.csum_offset = static_cast<uint16_t>(field - l4);
      ParsedPacket pp;
      ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
      ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(e.rip), 8080), DropReason::kNone);
      Bytes got = testing::toBytes(*pkt);
      uint16_t want = testing::refPseudoFolded(ip(e.client), ip(e.rip), proto, l4len);
      uint16_t have = testing::get16(got, field);
      EXPECT_TRUE(have == want || (have == 0xffff && want == 0) || (have == 0 && want == 0xffff))
          << v6 << " " << proto << " " << have << " " << want;
      EXPECT_EQ(testing::get16(got, l4 + 2), 8080);
      EXPECT_EQ(pkt->offload.csum, OffloadInfo::Csum::kPartial);
      // Completing the checksum as the device would gives a valid packet.
      uint32_t s = testing::refSum(got.data() + l4, got.size() - l4, 0);
      while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
      uint16_t done = static_cast<uint16_t>(~s);
      if (proto == 17 && done == 0)
        done = 0xffff;
      testing::set16(got, field, done);
      EXPECT_TRUE(testing::checksumsValid(got)) << v6 << " " << proto;
    }
  }
}

TEST(RewriteTest, PartialSctpIsComputedInFull) {
  auto pkt = testing::toBuffer(make(Kind::kSctp, kV6.client, 1, kV6.vip, 80).build());
  pkt->offload.csum = OffloadInfo::Csum::kPartial;
  pkt->offload.csum_start = 40;
  pkt->offload.csum_offset = 8;
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV6.rip), 80), DropReason::kNone);
  expectSame(*pkt, make(Kind::kSctp, kV6.client, 1, kV6.rip, 80).build(), "sctp partial");
  EXPECT_EQ(pkt->offload.csum, OffloadInfo::Csum::kNone);
}

TEST(RewriteTest, NonFirstFragmentRewritesOnlyTheIpHeader) {
  Bytes b = testing::withIpv4Frag(make(Kind::kUdp, kV4.client, 1, kV4.vip, 80).build(), false, 3);
  auto pkt = testing::toBuffer(b);
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(kV4.rip), 8080), DropReason::kNone);
  Bytes want = b;
  IpAddr rip = ip(kV4.rip);
  std::copy(rip.data(), rip.data() + 4, want.begin() + 16);
  testing::fixIpv4Checksum(want);
  EXPECT_EQ(testing::toBytes(*pkt), want);
}

TEST(RewriteTest, LargeGsoPacketRewrittenOnce) {
  for (bool v6 : {false, true}) {
    const Endpoints& e = v6 ? kV6 : kV4;
    size_t pay = v6 ? 65535 - 20 : 65535 - 40;
    auto pkt = testing::toBuffer(
        PacketBuilder::tcp(e.client, 1, e.vip, 80, kTcpAck).payloadSize(pay).build());
    pkt->offload.gso = v6 ? OffloadInfo::Gso::kTcpV6 : OffloadInfo::Gso::kTcpV4;
    pkt->offload.gso_size = 1448;
    ParsedPacket pp;
    ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
    ASSERT_EQ(rewriteDst(*pkt, pp.outer, ip(e.rip), 8080), DropReason::kNone);
    expectSame(*pkt, PacketBuilder::tcp(e.client, 1, e.rip, 8080, kTcpAck).payloadSize(pay).build(),
               v6 ? "gso6" : "gso4");
  }
}

TEST(RewriteTest, FamilyMismatchIsRefused) {
  auto pkt = testing::toBuffer(make(Kind::kTcp, kV4.client, 1, kV4.vip, 80).build());
  ParsedPacket pp;
  ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
  EXPECT_EQ(rewriteDst(*pkt, pp.outer, ip(kV6.rip), 1), DropReason::kMalformed);
}

TEST(DecrementTtlTest, Ipv4AndIpv6) {
  for (bool v6 : {false, true}) {
    const Endpoints& e = v6 ? kV6 : kV4;
    auto pkt = testing::toBuffer(make(Kind::kTcp, e.client, 1, e.vip, 80).build());
    ParsedPacket pp;
    ASSERT_EQ(parsePacket(pkt->span(), pp), DropReason::kNone);
    ASSERT_TRUE(decrementTtl(*pkt, pp.outer));
    expectSame(*pkt, make(Kind::kTcp, e.client, 1, e.vip, 80).ttl(63).build(), "ttl");
    auto one = testing::toBuffer(make(Kind::kTcp, e.client, 1, e.vip, 80).ttl(1).build());
    Bytes before = testing::toBytes(*one);
    ASSERT_EQ(parsePacket(one->span(), pp), DropReason::kNone);
    EXPECT_FALSE(decrementTtl(*one, pp.outer));
    EXPECT_EQ(testing::toBytes(*one), before);
  }
}

}  // namespace
}  // namespace lb
