// SPDX-License-Identifier: Apache-2.0
#include "core/sched/hsiphash.h"

#include <array>
#include <cstdint>

#include "gtest/gtest.h"

namespace lb::sched {
namespace {

// test_vectors_hsiphash for BITS_PER_LONG == 64 from the kernel's lib/siphash_kunit.c: vector n
// is hsiphash of the bytes 0..n-1 under the key 00 01 .. 0f.
constexpr HsipKey kTestKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
constexpr std::array<uint32_t, 18> kVectors = {
    0x050fc4dcU, 0x7d57ca93U, 0x4dc7d44dU, 0xe7ddf7fbU, 0x88d38328U, 0x49533b67U,
    0xc59f22a7U, 0x9bb11140U, 0x8d299a8eU, 0x6c063de4U, 0x92ff097fU, 0xf94dc352U,
    0x57b4d9a2U, 0x1229ffa7U, 0xc0f95d34U, 0x2a519956U, 0x7d908b66U, 0x63dbd80cU,
};

TEST(HsiphashTest, MatchesKernelVectors) {
  std::array<uint8_t, 64> in{};
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<uint8_t>(i);
  for (size_t n = 0; n < kVectors.size(); ++n) {
    EXPECT_EQ(hsiphash(in.data(), n, kTestKey), kVectors[n]) << "len " << n;
  }
}

TEST(HsiphashTest, U32IsFourLittleEndianBytes) {
  // Bytes 00 01 02 03 read little-endian are 0x03020100: vector 4.
  EXPECT_EQ(hsiphashU32(0x03020100u, kTestKey), 0x88d38328U);
  const uint32_t v = 0x0a000051u;
  const uint8_t bytes[4] = {0x51, 0x00, 0x00, 0x0a};
  const HsipKey mh_key{2654435761u, 2654435761u};
  EXPECT_EQ(hsiphashU32(v, mh_key), hsiphash(bytes, 4, mh_key));
}

}  // namespace
}  // namespace lb::sched
