// SPDX-License-Identifier: Apache-2.0
// Helpers for the core/packet tests: buffers, header surgery on built packets and a reference
// (big-endian, byte-at-a-time) checksum independent of core/packet/checksum.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/addr.h"
#include "core/packet/packet_buffer.h"

namespace lb::testing {

using Bytes = std::vector<uint8_t>;

// A heap PacketBuffer holding `bytes`.
std::unique_ptr<PacketBuffer> toBuffer(const Bytes& bytes);
Bytes toBytes(const PacketBuffer& pkt);

uint16_t get16(const Bytes& b, size_t off);
void set16(Bytes& b, size_t off, uint16_t v);

// Reference RFC 1071 sum of big-endian words (host-order result, not folded).
uint32_t refSum(const uint8_t* p, size_t n, uint32_t acc);
// Folded (not complemented) reference pseudo-header sum, host order.
uint16_t refPseudoFolded(const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t len);
// Recomputes the IPv4 header checksum of the header at `off`.
void fixIpv4Checksum(Bytes& b, size_t off = 0);

// Inserts IPv4 options after the 20-byte header (IHL, total length and checksum fixed).
Bytes withIpv4Options(const Bytes& pkt, const Bytes& options);
// Inserts an IPv6 extension header of type `type` right after the fixed header; its body is
// `body` (the caller makes it the right length; byte 0 is overwritten with the next header).
Bytes withIpv6Ext(const Bytes& pkt, uint8_t type, Bytes body);
// Sets the IPv4 fragment field (flags + offset in 8-byte units) and fixes the checksum.
Bytes withIpv4Frag(const Bytes& pkt, bool mf, uint16_t offset_units);

}  // namespace lb::testing
