// SPDX-License-Identifier: Apache-2.0
#include "core/sched/hsiphash.h"

namespace lb::sched {
namespace {

constexpr uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

// SIPHASH_PERMUTATION (include/linux/siphash.h): one SipRound.
struct State {
  uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }

  void compress(uint64_t m) {  // one compression round: the "1" of SipHash-1-3
    v3 ^= m;
    round();
    v0 ^= m;
  }

  // HPOSTAMBLE for 64-bit: the last block, then three finalization rounds.
  uint32_t finish(uint64_t b) {
    compress(b);
    v2 ^= 0xff;
    round();
    round();
    round();
    return static_cast<uint32_t>((v0 ^ v1) ^ (v2 ^ v3));
  }
};

State init(const HsipKey& key) {
  // SIPHASH_CONST_0..3 ("somepseudorandomlygeneratedbytes").
  return State{0x736f6d6570736575ULL ^ key.k0, 0x646f72616e646f6dULL ^ key.k1,
               0x6c7967656e657261ULL ^ key.k0, 0x7465646279746573ULL ^ key.k1};
}

uint64_t loadLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

uint32_t hsiphash(const uint8_t* data, size_t len, const HsipKey& key) noexcept {
  State s = init(key);
  const size_t full = len - (len % 8);
  for (size_t i = 0; i < full; i += 8)
    s.compress(loadLe(data + i, 8));
  const uint64_t b = (static_cast<uint64_t>(len) << 56) | loadLe(data + full, len - full);
  return s.finish(b);
}

uint32_t hsiphashU32(uint32_t v, const HsipKey& key) noexcept {
  State s = init(key);
  return s.finish((uint64_t{4} << 56) | v);  // hsiphash_1u32
}

}  // namespace lb::sched
