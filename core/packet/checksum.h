// SPDX-License-Identifier: Apache-2.0
// Internet checksums (RFC 1071), incremental updates (RFC 1624), pseudo-header sums and SCTP's
// CRC32c (RFC 3309). The analogue of the csum helpers ip_vs_xmit.c / ip_vs_proto_*.c use.
//
// Byte order: like the kernel's __wsum/__sum16, every 16-bit value and accumulator here is in
// the packet's byte order, i.e. what memcpy (or loadRaw16 in core/packet/bytes.h) reads from the
// packet. Store results with memcpy / storeRaw16, never with a big-endian store. One's-complement
// sums do not depend on byte order (RFC 1071 §2B), so this is both fast and portable.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

#include "core/base/addr.h"

namespace lb {

// One's-complement sum of `data` added to `sum` (32-bit accumulator, not complemented; may or
// may not be folded). When chaining calls, every chunk but the last must have even length.
// Any thread. Hot path.
uint32_t csumPartial(absl::Span<const uint8_t> data, uint32_t sum) noexcept;
// Folds a 32-bit accumulator to 16 bits and complements it (the value written to a header).
uint16_t csumFold(uint32_t sum) noexcept;
// Pseudo-header sum (not folded, not complemented) for TCP/UDP/ICMPv6 over IPv4 or IPv6.
// `proto` is the value placed in the pseudo header (kIcmpv6 for ICMPv6). Hot path.
uint32_t pseudoHeaderSum(const IpAddr& src,
                         const IpAddr& dst,
                         L4Proto proto,
                         uint32_t l4_len) noexcept;
// RFC 1624 eqn. 3: new checksum after a 16-bit word changes from `old_word` to `new_word`.
// `check` and the words are in network byte order as they sit in the packet. Hot path.
uint16_t csumReplace2(uint16_t check, uint16_t old_word, uint16_t new_word) noexcept;
// Same for a 4- or 16-byte address change. Hot path.
uint16_t csumReplaceAddr(uint16_t check, const IpAddr& old_addr, const IpAddr& new_addr) noexcept;
// For a CHECKSUM_PARTIAL field, which holds the un-complemented pseudo-header sum: the address
// change adjusts it in the opposite sense (the kernel's inet_proto_csum_replace*(pseudohdr)).
// Hot path.
uint16_t csumReplaceAddrPartial(uint16_t check,
                                const IpAddr& old_addr,
                                const IpAddr& new_addr) noexcept;
// SCTP CRC32c over `data` (the whole SCTP packet with the checksum field zeroed by the caller).
// The result is stored in the SCTP header little-endian (byte 0 = bits 0..7), as the kernel's
// sctp_compute_cksum value is. RFC 3720 B.4: 32 zero bytes give 0x8A9136AA. Hot path.
uint32_t crc32c(absl::Span<const uint8_t> data) noexcept;
// Continues a CRC32c: `crc` is a previous crc32c() result (or 0 to start). Hot path.
uint32_t crc32cExtend(uint32_t crc, absl::Span<const uint8_t> data) noexcept;
// crc32c by the portable slicing-by-8 tables, whatever the CPU offers (crc32c uses SSE4.2's
// crc32 instruction when present). For tests.
uint32_t crc32cPortableForTest(absl::Span<const uint8_t> data) noexcept;

// True when the IPv4 header's checksum is right (`ip_header` holds at least IHL*4 bytes; false
// otherwise). Any thread.
bool verifyIpv4HeaderChecksum(absl::Span<const uint8_t> ip_header) noexcept;
// The checksum an IPv4 header should carry, computed with its checksum field taken as zero.
// `ip_header` holds IHL*4 bytes (20..60). Store it with storeRaw16 at offset 10. Hot path.
uint16_t ipv4HeaderChecksum(absl::Span<const uint8_t> ip_header) noexcept;

}  // namespace lb
