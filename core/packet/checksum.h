// SPDX-License-Identifier: Apache-2.0
// Internet checksums (RFC 1071), incremental updates (RFC 1624), pseudo-header sums and SCTP's
// CRC32c (RFC 3309). The analogue of the csum helpers ip_vs_xmit.c / ip_vs_proto_*.c use.
#ifndef LBD_CORE_PACKET_CHECKSUM_H_
#define LBD_CORE_PACKET_CHECKSUM_H_

#include <cstdint>

#include "absl/types/span.h"
#include "core/base/addr.h"

namespace lb {

// One's-complement sum of `data` added to `sum` (32-bit accumulator, not folded). Hot path.
uint32_t csumPartial(absl::Span<const uint8_t> data, uint32_t sum) noexcept;
// Folds a 32-bit accumulator to 16 bits and complements it (the value written to a header).
uint16_t csumFold(uint32_t sum) noexcept;
// Pseudo-header sum (not folded, not complemented) for TCP/UDP/ICMPv6 over IPv4 or IPv6.
uint32_t pseudoHeaderSum(const IpAddr& src, const IpAddr& dst, L4Proto proto,
                         uint32_t l4_len) noexcept;
// RFC 1624 eqn. 3: new checksum after a 16-bit word changes from `old_word` to `new_word`.
// `check` and the words are in network byte order as they sit in the packet. Hot path.
uint16_t csumReplace2(uint16_t check, uint16_t old_word, uint16_t new_word) noexcept;
// Same for a 4- or 16-byte address change.
uint16_t csumReplaceAddr(uint16_t check, const IpAddr& old_addr, const IpAddr& new_addr) noexcept;
// For a CHECKSUM_PARTIAL field, which holds the un-complemented pseudo-header sum: the address
// change adjusts it in the opposite sense (the kernel's inet_proto_csum_replace*(pseudohdr)).
uint16_t csumReplaceAddrPartial(uint16_t check, const IpAddr& old_addr,
                                const IpAddr& new_addr) noexcept;
// SCTP CRC32c over `data` (the whole SCTP packet with the checksum field zeroed by the caller).
uint32_t crc32c(absl::Span<const uint8_t> data) noexcept;

// Verifies the L4 checksum of a packet from scratch (for tests and for inbound ICMP, as
// ip_vs_in_icmp does). Any thread.
bool verifyIpv4HeaderChecksum(absl::Span<const uint8_t> ip_header) noexcept;

}  // namespace lb

#endif  // LBD_CORE_PACKET_CHECKSUM_H_
