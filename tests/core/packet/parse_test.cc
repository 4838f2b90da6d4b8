// SPDX-License-Identifier: Apache-2.0
#include "core/packet/parse.h"

#include <gtest/gtest.h>

#include "tests/core/packet/packet_test_util.h"
#include "tests/testlib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::ip;
using testing::PacketBuilder;

DropReason parse(const Bytes& b, ParsedPacket& pp) {
  return parsePacket({b.data(), b.size()}, pp);
}

// SCTP packet with two chunks: `first` (8 bytes) then `second` (4 bytes).
Bytes sctpTwoChunks(const char* src, const char* dst, uint8_t first, uint8_t second) {
  Bytes b = PacketBuilder::sctp(src, 5000, dst, 5001, first).build();
  size_t l4 = (b[0] >> 4) == 6 ? 40 : 20;
  b.insert(b.end(), {second, 0, 0, 4});
  if (l4 == 20) {
    testing::set16(b, 2, static_cast<uint16_t>(b.size()));
    testing::fixIpv4Checksum(b);
  } else {
    testing::set16(b, 4, static_cast<uint16_t>(b.size() - 40));
  }
  return b;
}

TEST(ParsePacketTest, Ipv4TcpSyn) {
  Bytes b = PacketBuilder::tcp("10.0.0.1", 40000, "10.0.0.2", 80, kTcpSyn).ttl(17).df(true).build();
  ParsedPacket pp;
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  const L3L4& o = pp.outer;
  EXPECT_EQ(o.af, Af::kInet);
  EXPECT_EQ(o.proto, L4Proto::kTcp);
  EXPECT_EQ(o.src, ip("10.0.0.1"));
  EXPECT_EQ(o.dst, ip("10.0.0.2"));
  EXPECT_EQ(o.l3_off, 0);
  EXPECT_EQ(o.l3_len, 20);
  EXPECT_EQ(o.l4_off, 20);
  EXPECT_EQ(o.tot_len, 40u);
  EXPECT_EQ(o.ttl, 17);
  EXPECT_TRUE(o.df);
  EXPECT_FALSE(o.is_fragment);
  EXPECT_TRUE(o.first_fragment);
  EXPECT_TRUE(o.has_l4);
  EXPECT_EQ(o.sport, 40000);
  EXPECT_EQ(o.dport, 80);
  EXPECT_EQ(o.tcp_flags, kTcpSyn);
  EXPECT_EQ(o.l4_csum_off, 36);
  EXPECT_FALSE(pp.is_icmp_error);
}

TEST(ParsePacketTest, Ipv6UdpAndTrailingPadding) {
  Bytes b = PacketBuilder::udp("2001:db8::1", 53, "2001:db8::2", 5353).payloadSize(10).build();
  b.insert(b.end(), 6, 0);  // link-layer padding beyond the payload length
  ParsedPacket pp;
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.af, Af::kInet6);
  EXPECT_EQ(pp.outer.proto, L4Proto::kUdp);
  EXPECT_EQ(pp.outer.tot_len, 58u);
  EXPECT_EQ(pp.outer.l4_off, 40);
  EXPECT_EQ(pp.outer.l4_csum_off, 46);
  EXPECT_EQ(pp.outer.sport, 53);
  EXPECT_EQ(pp.outer.dport, 5353);
  EXPECT_EQ(pp.outer.ttl, 64);
}

TEST(ParsePacketTest, SctpChunks) {
  ParsedPacket pp;
  Bytes one = PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 1).build();
  ASSERT_EQ(parse(one, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.sctp_chunk, 1);
  EXPECT_EQ(pp.outer.sctp_second_chunk, 0xff);
  EXPECT_EQ(pp.outer.l4_csum_off, 28);
  Bytes two = sctpTwoChunks("2001:db8::1", "2001:db8::2", 10, 6);  // COOKIE_ECHO, ABORT
  ASSERT_EQ(parse(two, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.sctp_chunk, 10);
  EXPECT_EQ(pp.outer.sctp_second_chunk, 6);
  EXPECT_EQ(pp.outer.sport, 5000);
  EXPECT_EQ(pp.outer.dport, 5001);
}

TEST(ParsePacketTest, IcmpEchoIdIsThePort) {
  ParsedPacket pp;
  ASSERT_EQ(parse(PacketBuilder::icmpEcho("10.0.0.1", "10.0.0.2", 8, 777).build(), pp),
            DropReason::kNone);
  EXPECT_EQ(pp.outer.proto, L4Proto::kIcmp);
  EXPECT_EQ(pp.outer.icmp_type, 8);
  EXPECT_EQ(pp.outer.sport, 777);
  EXPECT_EQ(pp.outer.dport, 777);
  EXPECT_FALSE(pp.is_icmp_error);
  ASSERT_EQ(parse(PacketBuilder::icmpEcho("2001:db8::1", "2001:db8::2", 129, 9).build(), pp),
            DropReason::kNone);
  EXPECT_EQ(pp.outer.proto, L4Proto::kIcmpv6);
  EXPECT_EQ(pp.outer.icmp_type, 129);
  EXPECT_EQ(pp.outer.sport, 9);
  EXPECT_FALSE(pp.is_icmp_error);
}

TEST(ParsePacketTest, Ipv4Options) {
  Bytes b = PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpAck).build();
  Bytes opt = testing::withIpv4Options(b, {0x94, 0x04, 0, 0, 1, 1, 1, 0});  // router alert, NOPs
  ParsedPacket pp;
  ASSERT_EQ(parse(opt, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.l3_len, 28);
  EXPECT_EQ(pp.outer.l4_off, 28);
  EXPECT_EQ(pp.outer.dport, 2);
  EXPECT_EQ(pp.outer.l4_csum_off, 44);
  // 60-byte header, the maximum.
  Bytes big = testing::withIpv4Options(b, Bytes(40, 1));
  ASSERT_EQ(parse(big, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.l4_off, 60);
}

TEST(ParsePacketTest, Ipv4HeaderErrors) {
  Bytes good = PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).payloadSize(4).build();
  ParsedPacket pp;
  Bytes b = good;
  b[0] = 0x44;  // IHL 4
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = good;
  b[0] = 0x4f;  // IHL 15: 60 bytes, longer than the 32-byte packet
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = good;
  testing::set16(b, 2, 33);  // total length beyond the buffer
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = good;
  testing::set16(b, 2, 19);  // shorter than the header
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = good;
  b[0] = 0x55;
  EXPECT_EQ(parse(b, pp), DropReason::kUnsupported);
  EXPECT_EQ(parse({}, pp), DropReason::kMalformed);
  // Total length governs: a shorter stated length makes the UDP length too long.
  b = good;
  testing::set16(b, 2, 30);
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
}

TEST(ParsePacketTest, Ipv4Fragments) {
  Bytes b = PacketBuilder::udp("10.0.0.1", 1000, "10.0.0.2", 53).payloadSize(100).build();
  ParsedPacket pp;
  // First fragment: L4 present even though the UDP length exceeds what this fragment holds.
  Bytes first(b.begin(), b.begin() + 20 + 48);
  testing::set16(first, 2, 68);
  first = testing::withIpv4Frag(first, true, 0);
  ASSERT_EQ(parse(first, pp), DropReason::kNone);
  EXPECT_TRUE(pp.outer.is_fragment);
  EXPECT_TRUE(pp.outer.first_fragment);
  EXPECT_TRUE(pp.outer.has_l4);
  EXPECT_EQ(pp.outer.dport, 53);
  // Later fragment: no L4 header.
  Bytes later = testing::withIpv4Frag(b, false, 6);
  ASSERT_EQ(parse(later, pp), DropReason::kNone);
  EXPECT_TRUE(pp.outer.is_fragment);
  EXPECT_FALSE(pp.outer.first_fragment);
  EXPECT_FALSE(pp.outer.has_l4);
  EXPECT_EQ(pp.outer.proto, L4Proto::kUdp);
  EXPECT_EQ(pp.outer.sport, 0);
}

TEST(ParsePacketTest, Ipv6ExtensionChain) {
  Bytes b = PacketBuilder::tcp("2001:db8::1", 4000, "2001:db8::2", 443, kTcpSyn).build();
  Bytes ah(16, 0);
  ah[1] = 2;  // (2 + 2) * 4 = 16 bytes
  Bytes rt(24, 0);
  rt[1] = 2;  // (2 + 1) * 8 = 24 bytes
  Bytes chain = testing::withIpv6Ext(b, 51, ah);
  chain = testing::withIpv6Ext(chain, 60, Bytes(8, 0));
  chain = testing::withIpv6Ext(chain, 43, rt);
  chain = testing::withIpv6Ext(chain, 0, Bytes(8, 0));  // hop-by-hop first
  ParsedPacket pp;
  ASSERT_EQ(parse(chain, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.proto, L4Proto::kTcp);
  EXPECT_EQ(pp.outer.l3_len, 40 + 8 + 24 + 8 + 16);
  EXPECT_EQ(pp.outer.l4_off, 96);
  EXPECT_EQ(pp.outer.dport, 443);
  EXPECT_EQ(pp.outer.tcp_flags, kTcpSyn);
  EXPECT_FALSE(pp.outer.is_fragment);
  EXPECT_EQ(pp.outer.l4_csum_off, 96 + 16);
}

TEST(ParsePacketTest, Ipv6ChainErrors) {
  Bytes b = PacketBuilder::tcp("2001:db8::1", 4000, "2001:db8::2", 443, kTcpSyn).build();
  ParsedPacket pp;
  Bytes deep = b;
  for (int i = 0; i < 9; ++i)
    deep = testing::withIpv6Ext(deep, 60, Bytes(8, 0));
  EXPECT_EQ(parse(deep, pp), DropReason::kUnsupported);
  Bytes eight = b;
  for (int i = 0; i < 8; ++i)
    eight = testing::withIpv6Ext(eight, 60, Bytes(8, 0));
  EXPECT_EQ(parse(eight, pp), DropReason::kNone);
  // An extension header whose length runs past the payload.
  Bytes longext = testing::withIpv6Ext(b, 60, Bytes(8, 0));
  longext[41] = 10;
  EXPECT_EQ(parse(longext, pp), DropReason::kMalformed);
  // Payload length beyond the buffer.
  Bytes plen = b;
  testing::set16(plen, 4, 21);
  EXPECT_EQ(parse(plen, pp), DropReason::kMalformed);
  // Payload length 0 with data: a jumbogram.
  Bytes jumbo = b;
  testing::set16(jumbo, 4, 0);
  EXPECT_EQ(parse(jumbo, pp), DropReason::kUnsupported);
  // ESP ends the chain: no L4 we know.
  Bytes esp = b;
  esp[6] = 50;
  ASSERT_EQ(parse(esp, pp), DropReason::kNone);
  EXPECT_EQ(static_cast<int>(pp.outer.proto), 50);
  EXPECT_FALSE(pp.outer.has_l4);
}

TEST(ParsePacketTest, Ipv6Fragments) {
  Bytes b = PacketBuilder::udp("2001:db8::1", 7, "2001:db8::2", 8).payloadSize(30).build();
  Bytes first = testing::withIpv6Ext(b, 44, {0, 0, 0x00, 0x01, 0, 0, 0, 42});  // offset 0, M
  ParsedPacket pp;
  ASSERT_EQ(parse(first, pp), DropReason::kNone);
  EXPECT_TRUE(pp.outer.is_fragment);
  EXPECT_TRUE(pp.outer.first_fragment);
  EXPECT_EQ(pp.outer.frag_hdr_off, 40);
  EXPECT_TRUE(pp.outer.has_l4);
  EXPECT_EQ(pp.outer.dport, 8);
  EXPECT_EQ(pp.outer.l4_off, 48);
  Bytes later = testing::withIpv6Ext(b, 44, {0, 0, 0x00, 0x40, 0, 0, 0, 42});  // offset 8
  ASSERT_EQ(parse(later, pp), DropReason::kNone);
  EXPECT_TRUE(pp.outer.is_fragment);
  EXPECT_FALSE(pp.outer.first_fragment);
  EXPECT_FALSE(pp.outer.has_l4);
  EXPECT_EQ(pp.outer.proto, L4Proto::kUdp);
  EXPECT_EQ(pp.outer.l4_off, 48);
}

TEST(ParsePacketTest, L4HeaderErrors) {
  ParsedPacket pp;
  Bytes tcp = PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpAck).payloadSize(8).build();
  Bytes b = tcp;
  b[32] = 0x40;  // data offset 4
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = tcp;
  b[32] = 0x80;  // 32 bytes: more than the 28 present
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = tcp;
  b[32] = 0x70;  // 28 bytes: options fill the rest, fine
  EXPECT_EQ(parse(b, pp), DropReason::kNone);
  Bytes udp = PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).payloadSize(4).build();
  b = udp;
  testing::set16(b, 24, 7);
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = udp;
  testing::set16(b, 24, 13);
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  b = udp;
  testing::set16(b, 24, 8);  // shorter than the datagram: tolerated
  EXPECT_EQ(parse(b, pp), DropReason::kNone);
  Bytes sctp = PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 1).build();
  b = sctp;
  testing::set16(b, 34, 3);  // chunk length < 4
  EXPECT_EQ(parse(b, pp), DropReason::kMalformed);
  // Unknown protocol: parsed, no L4.
  b = udp;
  b[9] = 47;
  testing::fixIpv4Checksum(b);
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.proto, L4Proto::kGre);
  EXPECT_FALSE(pp.outer.has_l4);
  // ICMPv6 carried by IPv4 is not ICMP.
  b = udp;
  b[9] = 58;
  testing::fixIpv4Checksum(b);
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  EXPECT_FALSE(pp.outer.has_l4);
}

// Every strict prefix of a valid packet is malformed (the stated length exceeds the buffer),
// and parsing it never reads past it (the vector is exactly the prefix; run under ASan).
TEST(ParsePacketTest, EveryPrefixIsMalformed) {
  Bytes inner = PacketBuilder::tcp("10.0.0.2", 80, "10.0.0.1", 40000, kTcpAck).build();
  Bytes inner6 = PacketBuilder::udp("2001:db8::2", 53, "2001:db8::1", 9).build();
  std::vector<Bytes> samples = {
      PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpSyn).payloadSize(5).build(),
      PacketBuilder::udp("2001:db8::1", 1, "2001:db8::2", 2).payloadSize(3).build(),
      PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 1).build(),
      PacketBuilder::icmpEcho("2001:db8::1", "2001:db8::2", 128, 5).build(),
      testing::withIpv4Options(PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).build(),
                               {1, 1, 1, 1}),
      testing::withIpv6Ext(PacketBuilder::tcp("::1", 1, "::2", 2, kTcpSyn).build(), 0, Bytes(8, 0)),
      PacketBuilder::icmpError("10.0.0.9", "10.0.0.2", 3, 3, 0, inner),
      PacketBuilder::icmpError("2001:db8::9", "2001:db8::2", 1, 4, 0, inner6),
  };
  for (size_t s = 0; s < samples.size(); ++s) {
    ParsedPacket pp;
    ASSERT_EQ(parse(samples[s], pp), DropReason::kNone) << s;
    for (size_t n = 0; n < samples[s].size(); ++n) {
      Bytes prefix(samples[s].begin(), samples[s].begin() + static_cast<long>(n));
      ASSERT_EQ(parse(prefix, pp), DropReason::kMalformed) << "sample " << s << " len " << n;
    }
  }
}

TEST(ParsePacketTest, Icmpv4ErrorWithInnerTcp) {
  Bytes inner = PacketBuilder::tcp("10.0.0.2", 80, "10.0.0.1", 40000, kTcpAck).build();
  Bytes err = PacketBuilder::icmpError("10.9.9.9", "10.0.0.2", 3, 4, 1400, inner);
  ParsedPacket pp;
  ASSERT_EQ(parse(err, pp), DropReason::kNone);
  EXPECT_TRUE(pp.is_icmp_error);
  EXPECT_EQ(pp.outer.icmp_type, 3);
  EXPECT_EQ(pp.outer.icmp_code, 4);
  EXPECT_EQ(pp.outer.sport, 0);
  const L3L4& in = pp.inner;
  EXPECT_EQ(in.af, Af::kInet);
  EXPECT_EQ(in.l3_off, 28);
  EXPECT_EQ(in.l4_off, 48);
  EXPECT_EQ(in.src, ip("10.0.0.2"));
  EXPECT_EQ(in.dst, ip("10.0.0.1"));
  EXPECT_EQ(in.sport, 80);
  EXPECT_EQ(in.dport, 40000);
  EXPECT_EQ(in.tcp_flags, kTcpAck);
  EXPECT_TRUE(in.has_l4);
  EXPECT_EQ(in.l4_csum_off, 64);
}

TEST(ParsePacketTest, IcmpErrorTypesThatAreRelated) {
  Bytes inner = PacketBuilder::udp("10.0.0.2", 53, "10.0.0.1", 9).build();
  for (int type = 0; type < 256; ++type) {
    Bytes err =
        PacketBuilder::icmpError("10.9.9.9", "10.0.0.2", static_cast<uint8_t>(type), 0, 0, inner);
    ParsedPacket pp;
    ASSERT_EQ(parse(err, pp), DropReason::kNone);
    EXPECT_EQ(pp.is_icmp_error, type == 3 || type == 4 || type == 11) << type;
  }
  Bytes inner6 = PacketBuilder::udp("2001:db8::2", 53, "2001:db8::1", 9).build();
  for (int type = 0; type < 256; ++type) {
    Bytes err = PacketBuilder::icmpError("2001:db8::9", "2001:db8::2", static_cast<uint8_t>(type),
                                         0, 0, inner6);
    ParsedPacket pp;
    ASSERT_EQ(parse(err, pp), DropReason::kNone);
    EXPECT_EQ(pp.is_icmp_error, type < 128) << type;
  }
}

// The quoted packet truncated at every length: it needs its IP header and 8 L4 bytes.
TEST(ParsePacketTest, TruncatedQuotedPacket) {
  for (bool v6 : {false, true}) {
    Bytes inner =
        v6 ? PacketBuilder::tcp("2001:db8::2", 80, "2001:db8::1", 999, kTcpAck)
                 .payloadSize(20)
                 .build()
           : PacketBuilder::tcp("10.0.0.2", 80, "10.0.0.1", 999, kTcpAck).payloadSize(20).build();
    const size_t ip_len = v6 ? 40 : 20;
    for (size_t n = 0; n <= inner.size(); ++n) {
      Bytes part(inner.begin(), inner.begin() + static_cast<long>(n));
      Bytes err = v6 ? PacketBuilder::icmpError("2001:db8::9", "2001:db8::2", 1, 4, 0, part)
                     : PacketBuilder::icmpError("10.9.9.9", "10.0.0.2", 11, 0, 0, part);
      ParsedPacket pp;
      DropReason r = parse(err, pp);
      if (n < ip_len + 8) {
        ASSERT_EQ(r, DropReason::kMalformed) << v6 << " " << n;
        continue;
      }
      ASSERT_EQ(r, DropReason::kNone) << v6 << " " << n;
      EXPECT_TRUE(pp.is_icmp_error);
      EXPECT_EQ(pp.inner.sport, 80);
      EXPECT_EQ(pp.inner.dport, 999);
      EXPECT_EQ(pp.inner.tot_len, inner.size());  // as stated, beyond what is quoted
      EXPECT_EQ(pp.inner.l4_csum_off != 0, n >= ip_len + 18) << n;
      EXPECT_EQ(pp.inner.tcp_flags, n >= ip_len + 14 ? kTcpAck : 0);
    }
  }
}

TEST(ParsePacketTest, QuotedPacketOfTheWrongFamilyIsMalformed) {
  Bytes inner6 = PacketBuilder::udp("2001:db8::2", 53, "2001:db8::1", 9).build();
  ParsedPacket pp;
  EXPECT_EQ(parse(PacketBuilder::icmpError("10.9.9.9", "10.0.0.2", 3, 3, 0, inner6), pp),
            DropReason::kMalformed);
}

TEST(ParsePacketTest, QuotedNonFirstFragmentHasNoPorts) {
  Bytes inner = testing::withIpv4Frag(
      PacketBuilder::udp("10.0.0.2", 53, "10.0.0.1", 9).payloadSize(16).build(), false, 2);
  ParsedPacket pp;
  ASSERT_EQ(parse(PacketBuilder::icmpError("10.9.9.9", "10.0.0.2", 3, 3, 0, inner), pp),
            DropReason::kNone);
  EXPECT_TRUE(pp.is_icmp_error);
  EXPECT_FALSE(pp.inner.has_l4);
  EXPECT_FALSE(pp.inner.first_fragment);
}

TEST(ParsePacketTest, MaximumSizeIpv4Packet) {
  Bytes b =
      PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpAck).payloadSize(65535 - 40).build();
  ParsedPacket pp;
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  EXPECT_EQ(pp.outer.tot_len, 65535u);
}

// L4 headers cut short inside the stated IP length.
TEST(ParsePacketTest, TruncatedL4InsideTotalLength) {
  struct Cut {
    uint8_t proto;
    size_t l4_bytes;
  };

  for (const Cut& c : {Cut{6, 19}, Cut{17, 7}, Cut{132, 15}, Cut{1, 7}, Cut{6, 0}}) {
    Bytes b = PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).payloadSize(30).build();
    b.resize(20 + c.l4_bytes);
    b[9] = c.proto;
    testing::set16(b, 2, static_cast<uint16_t>(b.size()));
    testing::fixIpv4Checksum(b);
    ParsedPacket pp;
    EXPECT_EQ(parse(b, pp), DropReason::kMalformed) << int{c.proto} << " " << c.l4_bytes;
  }
  // ICMPv6 cut short over IPv6, and an extension header cut short.
  Bytes v6 = PacketBuilder::icmpEcho("2001:db8::1", "2001:db8::2", 128, 1).build();
  v6.resize(46);
  testing::set16(v6, 4, 6);
  ParsedPacket pp;
  EXPECT_EQ(parse(v6, pp), DropReason::kMalformed);
  v6[6] = 0;  // hop-by-hop, but only 6 bytes follow
  EXPECT_EQ(parse(v6, pp), DropReason::kMalformed);
}

TEST(ParsePacketTest, IcmpOverTheWrongFamilyHasNoL4) {
  Bytes b = PacketBuilder::udp("2001:db8::1", 1, "2001:db8::2", 2).build();
  b[6] = 1;  // ICMP (v4) in IPv6
  ParsedPacket pp;
  ASSERT_EQ(parse(b, pp), DropReason::kNone);
  EXPECT_FALSE(pp.outer.has_l4);
  EXPECT_FALSE(pp.is_icmp_error);
}

// GSO super-packets over 64 KB (BIG TCP) state length 0; the buffer's length is used.
TEST(ParsePacketTest, BigTcpLengthZero) {
  for (bool v6 : {false, true}) {
    Bytes b = v6 ? PacketBuilder::tcp("2001:db8::1", 1, "2001:db8::2", 2, kTcpAck).build()
                 : PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpAck).build();
    b.resize(70000, 0x61);
    testing::set16(b, v6 ? 4 : 2, 0);
    ParsedPacket pp;
    ASSERT_EQ(parse(b, pp), DropReason::kNone) << v6;
    EXPECT_EQ(pp.outer.tot_len, 70000u);
    EXPECT_EQ(pp.outer.dport, 2);
    // At or under 64 KB, length 0 is not a super-packet.
    b.resize(1000);
    EXPECT_NE(parse(b, pp), DropReason::kNone) << v6;
  }
}

TEST(IsNewConnPacketTest, FollowsConnScheduleRules) {
  auto l4 = [](const Bytes& b) {
    ParsedPacket pp;
    EXPECT_EQ(parsePacket({b.data(), b.size()}, pp), DropReason::kNone);
    return pp.outer;
  };
  L3L4 syn = l4(PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpSyn).build());
  L3L4 synack = l4(PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpSyn | kTcpAck).build());
  L3L4 synrst = l4(PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpSyn | kTcpRst).build());
  L3L4 ack = l4(PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpAck).build());
  L3L4 rst = l4(PacketBuilder::tcp("10.0.0.1", 1, "10.0.0.2", 2, kTcpRst).build());
  EXPECT_TRUE(isNewConnPacket(syn, false, false));
  EXPECT_TRUE(isNewConnPacket(synack, false, false));
  EXPECT_FALSE(isNewConnPacket(synrst, false, false));
  EXPECT_FALSE(isNewConnPacket(ack, false, false));
  EXPECT_TRUE(isNewConnPacket(ack, true, false));
  EXPECT_FALSE(isNewConnPacket(rst, true, false));
  EXPECT_FALSE(isNewConnPacket(ack, false, true));  // sloppy_sctp does not apply to TCP
  L3L4 init = l4(PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 1).build());
  L3L4 data = l4(PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 0).build());
  L3L4 abort = l4(PacketBuilder::sctp("10.0.0.1", 1, "10.0.0.2", 2, 6).build());
  EXPECT_TRUE(isNewConnPacket(init, false, false));
  EXPECT_FALSE(isNewConnPacket(data, false, false));
  EXPECT_TRUE(isNewConnPacket(data, false, true));
  EXPECT_FALSE(isNewConnPacket(data, true, false));
  EXPECT_FALSE(isNewConnPacket(abort, false, true));
  EXPECT_TRUE(
      isNewConnPacket(l4(PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).build()), false, false));
  EXPECT_FALSE(isNewConnPacket(l4(PacketBuilder::icmpEcho("10.0.0.1", "10.0.0.2", 8, 1).build()),
                               true, true));
  L3L4 frag = l4(testing::withIpv4Frag(
      PacketBuilder::udp("10.0.0.1", 1, "10.0.0.2", 2).payloadSize(16).build(), false, 1));
  EXPECT_FALSE(isNewConnPacket(frag, true, true));
}

}  // namespace
}  // namespace lb
