// SPDX-License-Identifier: Apache-2.0
#include "io/raw/decap.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace lb::io
