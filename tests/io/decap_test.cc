// SPDX-License-Identifier: Apache-2.0
#include "io/raw/decap.h"

#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

#include "core/packet/checksum.h"
#include "tests/io/core_tunnel.h"
#include "tests/testlib/packet_builder.h"

namespace lb::io {
namespace {

using ::lb::testing::PacketBuilder;

std::vector<uint8_t> inner() {
  return PacketBuilder::tcp("198.18.0.1", 1234, "198.18.100.1", 80, 0x02).build();
}

void load(PacketBuffer& b, const std::vector<uint8_t>& prefix, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> all = prefix;
  all.insert(all.end(), in.begin(), in.end());
  ASSERT_TRUE(b.assign(all));
}

TEST(DecapTest, StripsGueVersion0) {
  PacketBuffer b;
  load(b, {0x00, 4, 0, 0}, inner());
  ASSERT_TRUE(stripGue(b));
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + b.size()), inner());
}

TEST(DecapTest, StripsGueExtensionWords) {
  PacketBuffer b;
  load(b, {0x01, 4, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd}, inner());  // hlen 1 = 4 bytes of options
  ASSERT_TRUE(stripGue(b));
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + b.size()), inner());
}

TEST(DecapTest, GueVersion1IsBareIp) {
  PacketBuffer b;
  std::vector<uint8_t> in = inner();
  ASSERT_TRUE(b.assign(in));  // first byte 0x45: version bits 01
  ASSERT_TRUE(stripGue(b));
  EXPECT_EQ(b.size(), in.size());
}

TEST(DecapTest, RefusesControlAndOtherProtocols) {
  PacketBuffer b;
  load(b, {0x20, 4, 0, 0}, inner());  // C bit
  EXPECT_FALSE(stripGue(b));
  load(b, {0x00, 17, 0, 0}, inner());  // UDP payload: not lbd's
  EXPECT_FALSE(stripGue(b));
  load(b, {0x00, 4, 0, 0}, {0x45, 0});  // truncated inner packet
  EXPECT_FALSE(stripGue(b));
}

// What core's tunnel forwarder (ipvs_gre_encap's header) makes of `in` towards 198.18.0.9, outer
// IPv4, with or without the GRE checksum: returned from its GRE header on (a raw IPv4 socket's
// packet after the outer header).
std::vector<uint8_t> coreGre(const std::vector<uint8_t>& in, bool csum) {
  std::vector<uint8_t> p =
      testing::coreTunnel(in, {.type = TunType::kGre,
                               .csum = csum ? TunCsum::kCsum : TunCsum::kNoCsum,
                               .src = IpAddr::parse("198.18.0.8").value(),
                               .dst = IpAddr::parse("198.18.0.9").value()});
  if (p.size() < 20 || p[9] != IPPROTO_GRE) {
    ADD_FAILURE() << "core made no GRE packet";
    return {};
  }
  p.erase(p.begin(), p.begin() + 20);
  return p;
}

std::vector<uint8_t> bytes(const PacketBuffer& b) {
  return std::vector<uint8_t>(b.data(), b.data() + b.size());
}

// The inner packet as it leaves the forwarder: its TTL one lower.
std::vector<uint8_t> decremented(std::vector<uint8_t> in) {
  if ((in[0] >> 4) == 6) {
    --in[7];
    return in;
  }
  --in[8];
  in[10] = in[11] = 0;
  const uint16_t c = ipv4HeaderChecksum({in.data(), 20});
  std::memcpy(&in[10], &c, 2);
  return in;
}

TEST(DecapGreTest, TakesWhatCoresGreForwarderWrites) {
  for (bool csum : {false, true}) {
    for (const auto& in :
         {PacketBuilder::tcp("198.18.0.1", 1234, "198.18.100.1", 80, 0x18).payloadSize(999).build(),
          PacketBuilder::udp("2001:2::1", 53, "2001:2::100", 53).payloadSize(100).build()}) {
      SCOPED_TRACE(csum ? "with checksum" : "without checksum");
      const std::vector<uint8_t> gre = coreGre(in, csum);
      ASSERT_EQ(gre.size(), in.size() + (csum ? 8 : 4));
      PacketBuffer b;
      ASSERT_TRUE(b.assign(gre));
      ASSERT_EQ(stripGre(b), GreResult::kOk);
      EXPECT_EQ(bytes(b), decremented(in));
    }
  }
}

// A GRE header: flags/version word, protocol, then the optional words given.
std::vector<uint8_t> greHeader(uint16_t flags, uint16_t proto, std::vector<uint8_t> options = {}) {
  std::vector<uint8_t> h{static_cast<uint8_t>(flags >> 8), static_cast<uint8_t>(flags),
                         static_cast<uint8_t>(proto >> 8), static_cast<uint8_t>(proto)};
  for (uint8_t o : options)  // (not insert(): GCC 12 warns about its memcpy of nothing)
    h.push_back(o);
  return h;
}

// With the C bit: the checksum field made valid over the header and `in`.
void loadWithChecksum(PacketBuffer& b,
                      std::vector<uint8_t> prefix,
                      const std::vector<uint8_t>& in) {
  prefix.insert(prefix.end(), in.begin(), in.end());
  const uint16_t c = csumFold(csumPartial({prefix.data(), prefix.size()}, 0));
  std::memcpy(&prefix[4], &c, 2);
  ASSERT_TRUE(b.assign(prefix));
}

TEST(DecapGreTest, SkipsKeyAndSequenceNumber) {
  PacketBuffer b;
  load(b, greHeader(0x3000, 0x0800, {1, 2, 3, 4, 0, 0, 0, 9}), inner());
  ASSERT_EQ(stripGre(b), GreResult::kOk);
  EXPECT_EQ(bytes(b), inner());
  loadWithChecksum(b, greHeader(0xb000, 0x0800, {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 9}), inner());
  ASSERT_EQ(stripGre(b), GreResult::kOk);
  EXPECT_EQ(bytes(b), inner());
}

// The checksum covers the header and the whole payload: one changed byte anywhere fails it.
TEST(DecapGreTest, ChecksumIsVerified) {
  PacketBuffer b;
  loadWithChecksum(b, greHeader(0x8000, 0x0800, {0, 0, 0, 0}), inner());
  std::vector<uint8_t> good = bytes(b);
  for (size_t at : {size_t{1}, size_t{5}, good.size() - 1}) {
    std::vector<uint8_t> bad = good;
    bad[at] ^= 0x10;
    ASSERT_TRUE(b.assign(bad));
    EXPECT_EQ(stripGre(b), GreResult::kBadChecksum) << "byte " << at;
  }
  ASSERT_TRUE(b.assign(good));
  EXPECT_EQ(stripGre(b), GreResult::kOk);
}

TEST(DecapGreTest, RefusesWhatIpGreRefusesOrIsNotIp) {
  const std::vector<uint8_t> v6 =
      PacketBuilder::udp("2001:2::1", 53, "2001:2::100", 53).payloadSize(8).build();

  struct Case {
    const char* what;
    std::vector<uint8_t> header, in;
  } cases[] = {
      {"version 1 (PPTP)", greHeader(0x0001, 0x0800), inner()},
      {"routing present", greHeader(0x4000, 0x0800), inner()},
      {"transparent Ethernet", greHeader(0, 0x6558), inner()},
      {"IPv4 protocol, IPv6 packet", greHeader(0, 0x0800), v6},
      {"IPv6 protocol, IPv4 packet", greHeader(0, 0x86dd), inner()},
      {"truncated inner packet", greHeader(0, 0x0800), {0x45, 0, 0, 20}},
      {"options past the end", greHeader(0x3000, 0x0800, {1, 2}), {}},
  };

  for (const Case& c : cases) {
    PacketBuffer b;
    load(b, c.header, c.in);
    EXPECT_EQ(stripGre(b), GreResult::kMalformed) << c.what;
  }
  PacketBuffer b;
  ASSERT_TRUE(b.assign(std::vector<uint8_t>{0, 0, 8}));
  EXPECT_EQ(stripGre(b), GreResult::kMalformed) << "shorter than a GRE header";
  load(b, greHeader(0, 0x86dd), v6);
  EXPECT_EQ(stripGre(b), GreResult::kOk) << "the positive control";
}

}  // namespace
}  // namespace lb::io
