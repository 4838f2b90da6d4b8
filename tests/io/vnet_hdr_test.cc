// SPDX-License-Identifier: Apache-2.0
#include "io/tun/vnet_hdr.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

#include "io/tun/udp_tunnel_tap.h"
#include "tests/testlib/packet_builder.h"

namespace lb::io {
namespace {

using ::lb::testing::checksumsValid;
using ::lb::testing::PacketBuilder;

TEST(VnetHdrTest, DecodesTcpV4GsoWithPartialChecksum) {
  // flags NEEDS_CSUM, gso TCPV4, hdr_len 54 (untrusted), gso_size 1448, csum_start 20, off 16.
  const uint8_t hdr[kVnetHdrLen] = {1, 1, 54, 0, 0xa8, 0x05, 20, 0, 16, 0, 0, 0};
  OffloadInfo o;
  ASSERT_TRUE(decodeVnetHdr(hdr, o));
  EXPECT_EQ(o.csum, OffloadInfo::Csum::kPartial);
  EXPECT_EQ(o.gso, OffloadInfo::Gso::kTcpV4);
  EXPECT_EQ(o.gso_size, 1448);
  EXPECT_EQ(o.hdr_len, 54);
  EXPECT_EQ(o.csum_start, 20);
  EXPECT_EQ(o.csum_offset, 16);
}

TEST(VnetHdrTest, DecodesDataValidAndPlain) {
  const uint8_t valid[kVnetHdrLen] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  OffloadInfo o;
  ASSERT_TRUE(decodeVnetHdr(valid, o));
  EXPECT_EQ(o.csum, OffloadInfo::Csum::kDataValid);
  EXPECT_EQ(o.gso, OffloadInfo::Gso::kNone);
  const uint8_t plain[kVnetHdrLen] = {};
  ASSERT_TRUE(decodeVnetHdr(plain, o));
  EXPECT_EQ(o.csum, OffloadInfo::Csum::kNone);
}

TEST(VnetHdrTest, DecodesTcpV6AndUdpL4) {
  const uint8_t v6[kVnetHdrLen] = {1, 4, 0, 0, 0x90, 0x05, 40, 0, 16, 0, 0, 0};
  OffloadInfo o;
  ASSERT_TRUE(decodeVnetHdr(v6, o));
  EXPECT_EQ(o.gso, OffloadInfo::Gso::kTcpV6);
  EXPECT_EQ(o.gso_size, 1424);
  const uint8_t uso[kVnetHdrLen] = {1, 5, 0, 0, 0xc8, 0x00, 20, 0, 6, 0, 0, 0};
  ASSERT_TRUE(decodeVnetHdr(uso, o));
  EXPECT_EQ(o.gso, OffloadInfo::Gso::kUdpL4);
  EXPECT_EQ(o.gso_size, 200);
}

TEST(VnetHdrTest, RefusesUfoEcnAndZeroGsoSize) {
  OffloadInfo o;
  const uint8_t ufo[kVnetHdrLen] = {1, 3, 0, 0, 0xa8, 0x05, 20, 0, 6, 0, 0, 0};
  EXPECT_FALSE(decodeVnetHdr(ufo, o));
  const uint8_t ecn[kVnetHdrLen] = {1, 0x81, 0, 0, 0xa8, 0x05, 20, 0, 16, 0, 0, 0};
  EXPECT_FALSE(decodeVnetHdr(ecn, o));
  const uint8_t zero[kVnetHdrLen] = {1, 1, 0, 0, 0, 0, 20, 0, 16, 0, 0, 0};
  EXPECT_FALSE(decodeVnetHdr(zero, o));
}

TEST(VnetHdrTest, EncodesGsoWithHdrLenFromTcpDataOffset) {
  std::vector<uint8_t> pkt =
      PacketBuilder::tcp("198.18.0.1", 1000, "198.18.1.1", 80, 0x10).payloadSize(3000).build();
  OffloadInfo o;
  o.csum = OffloadInfo::Csum::kPartial;
  o.gso = OffloadInfo::Gso::kTcpV4;
  o.gso_size = 1448;
  o.hdr_len = 3040;  // the kernel's untrusted hint: must not be echoed back
  o.csum_start = 20;
  o.csum_offset = 16;
  uint8_t hdr[kVnetHdrLegacyLen];
  encodeVnetHdr(o, pkt.data(), pkt.size(), hdr);
  const uint8_t want[kVnetHdrLegacyLen] = {1, 1, 40, 0, 0xa8, 0x05, 20, 0, 16, 0};
  EXPECT_EQ(std::vector<uint8_t>(hdr, hdr + 10), std::vector<uint8_t>(want, want + 10));
}

TEST(VnetHdrTest, EncodesPartialWithoutGsoAndUdpL4) {
  std::vector<uint8_t> pkt =
      PacketBuilder::udp("198.18.0.1", 1000, "198.18.1.1", 53).payloadSize(100).build();
  OffloadInfo o;
  o.csum = OffloadInfo::Csum::kPartial;
  o.csum_start = 20;
  o.csum_offset = 6;
  uint8_t hdr[kVnetHdrLegacyLen];
  encodeVnetHdr(o, pkt.data(), pkt.size(), hdr);
  const uint8_t partial[kVnetHdrLegacyLen] = {1, 0, 28, 0, 0, 0, 20, 0, 6, 0};
  EXPECT_EQ(std::vector<uint8_t>(hdr, hdr + 10), std::vector<uint8_t>(partial, partial + 10));
  o.gso = OffloadInfo::Gso::kUdpL4;
  o.gso_size = 50;
  encodeVnetHdr(o, pkt.data(), pkt.size(), hdr);
  const uint8_t uso[kVnetHdrLegacyLen] = {1, 5, 28, 0, 50, 0, 20, 0, 6, 0};
  EXPECT_EQ(std::vector<uint8_t>(hdr, hdr + 10), std::vector<uint8_t>(uso, uso + 10));
  encodeVnetHdr(OffloadInfo{}, pkt.data(), pkt.size(), hdr);
  EXPECT_EQ(std::vector<uint8_t>(hdr, hdr + 10), std::vector<uint8_t>(10, 0));
}

// The folded pseudo-header sum (not complemented) the kernel leaves in a CHECKSUM_PARTIAL
// packet's L4 checksum field, computed here independently for IPv4.
uint16_t pseudoSumV4(const std::vector<uint8_t>& pkt) {
  uint32_t sum = 0;
  for (int i = 12; i < 20; i += 2)
    sum += static_cast<uint32_t>((pkt[i] << 8) | pkt[i + 1]);
  sum += pkt[9];
  sum += static_cast<uint32_t>(pkt.size() - 20);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

void expectFinishRestores(std::vector<uint8_t> pkt, uint16_t csum_offset) {
  ASSERT_TRUE(checksumsValid(pkt));
  const std::vector<uint8_t> original = pkt;
  const uint16_t ps = pseudoSumV4(pkt);
  pkt[20 + csum_offset] = static_cast<uint8_t>(ps >> 8);
  pkt[20 + csum_offset + 1] = static_cast<uint8_t>(ps);
  ASSERT_FALSE(checksumsValid(pkt));
  OffloadInfo o;
  o.csum = OffloadInfo::Csum::kPartial;
  o.csum_start = 20;
  o.csum_offset = csum_offset;
  ASSERT_TRUE(finishPartialChecksum(pkt.data(), pkt.size(), o));
  EXPECT_EQ(o.csum, OffloadInfo::Csum::kNone);
  EXPECT_EQ(pkt, original);
}

TEST(VnetHdrTest, FinishPartialChecksumTcpOddLength) {
  expectFinishRestores(
      PacketBuilder::tcp("198.18.0.1", 40000, "198.18.1.1", 80, 0x18).payloadSize(1001).build(),
      16);
}

TEST(VnetHdrTest, FinishPartialChecksumUdp) {
  expectFinishRestores(
      PacketBuilder::udp("198.18.0.9", 5353, "198.19.1.1", 53).payloadSize(64).build(), 6);
}

TEST(VnetHdrTest, FinishPartialChecksumRejectsOffsetsOutside) {
  std::vector<uint8_t> pkt(30, 0);
  OffloadInfo o;
  o.csum = OffloadInfo::Csum::kPartial;
  o.csum_start = 20;
  o.csum_offset = 16;
  EXPECT_FALSE(finishPartialChecksum(pkt.data(), pkt.size(), o));
}

// The 24-byte UDP-tunnel header lbd writes to its GUE TAP device (udp_tunnel_tap.h), byte by
// byte as include/uapi/linux/virtio_net.h lays it out (little endian).
TEST(UdpTunnelVnetHdr, LayoutForGueOverIpv4AndIpv6) {
  UdpTunnelGso g;
  g.outer_l4 = 20;    // outer IPv4
  g.inner_l3 = 32;    // + UDP 8 + GUE 4
  g.inner_l4 = 52;    // + inner IPv4 20
  g.inner_hdrs = 84;  // + TCP with 12 bytes of options
  g.gso_size = 1408;
  uint8_t h[kVnetHdrTunnelLen];
  std::memset(h, 0xee, sizeof(h));
  encodeUdpTunnelVnetHdr(g, 14, h);
  const uint8_t want[kVnetHdrTunnelLen] = {
      1,    0x21,                    // NEEDS_CSUM; GSO_UDP_TUNNEL_IPV4 | GSO_TCPV4
      98,   0,                       // hdr_len 14 + 84
      0x80, 0x05,                    // gso_size 1408
      66,   0,                       // csum_start 14 + 52
      16,   0,                       // csum_offset
      0,    0,                       // num_buffers
      0,    0,    0, 0, 0, 0, 0, 0,  // hash report
      34,   0,                       // outer_th_offset 14 + 20
      46,   0};                      // inner_nh_offset 14 + 32
  EXPECT_EQ(0, std::memcmp(h, want, sizeof(h)));
  g.outer_v6 = true;
  g.inner_v6 = true;
  encodeUdpTunnelVnetHdr(g, 14, h);
  EXPECT_EQ(h[1], 0x40 | 0x04);  // GSO_UDP_TUNNEL_IPV6 | GSO_TCPV6
}

}  // namespace
}  // namespace lb::io
