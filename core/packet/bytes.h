// SPDX-License-Identifier: Apache-2.0
// Unaligned big-endian loads and stores for header fields (the kernel's get_unaligned_be16 and
// friends). Internal to core/packet and its users; no bounds checks: callers check lengths.
#pragma once

#include <cstdint>
#include <cstring>

namespace lb {

inline uint16_t loadBe16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline uint32_t loadBe32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

inline void storeBe16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline void storeBe32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// A 16-bit field exactly as it sits in the packet (network order kept in a native integer):
// the representation every checksum.h function takes and returns.
inline uint16_t loadRaw16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline void storeRaw16(uint8_t* p, uint16_t v) noexcept {
  std::memcpy(p, &v, 2);
}

}  // namespace lb
