// SPDX-License-Identifier: Apache-2.0
// hsiphash as Linux computes it on 64-bit hosts (lib/siphash.c, BITS_PER_LONG == 64): SipHash-1-3
// over 64-bit words, output truncated to 32 bits. ip_vs_mh.c hashes with it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lb::sched {

// hsiphash_key_t on a 64-bit kernel: two unsigned longs.
struct HsipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

// hsiphash(data, len, key): bytes read little-endian as the kernel does. Any thread; pure.
uint32_t hsiphash(const uint8_t* data, size_t len, const HsipKey& key) noexcept;

// hsiphash of one u32 in host (little-endian) byte order, i.e. hsiphash(&v, 4, key) on x86-64
// and arm64. Hot path.
uint32_t hsiphashU32(uint32_t v, const HsipKey& key) noexcept;

}  // namespace lb::sched
