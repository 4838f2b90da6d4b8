// SPDX-License-Identifier: Apache-2.0
// struct virtio_net_hdr <-> lb::OffloadInfo: the offload request TUN puts in front of every
// packet with IFF_VNET_HDR (the skb's ip_summed / gso fields; include/linux/virtio_net.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/packet/packet_buffer.h"

namespace lb::io {

// lbd sets TUNSETVNETHDRSZ to 12 (virtio_net_hdr_v1 size): the kernel reads/writes the first
// 10 bytes and skips the rest, and the IP header that follows lands 4-byte aligned.
inline constexpr size_t kVnetHdrLen = 12;
// The legacy struct virtio_net_hdr that AF_PACKET's PACKET_VNET_HDR uses.
inline constexpr size_t kVnetHdrLegacyLen = 10;

// Decodes a header read from TUN into `out`. False for a GSO type lbd cannot express (UFO,
// tunnel GSO), which the caller drops as kUnsupported. hdr_len is not trusted (wireguard-go:
// on the forward path it can cover the whole first segment) and is recomputed on encode.
// Any thread. Hot path.
bool decodeVnetHdr(const uint8_t* hdr, OffloadInfo& out) noexcept;

// Encodes `in` for writing in front of `pkt` (which starts at the IP header, or at
// `l2_len` bytes of link-layer header for AF_PACKET). hdr_len is recomputed from the packet:
// csum_start + TCP data offset (or + 8 for UDP) for GSO, csum_start + csum_offset + 2 for a
// partial checksum. Writes kVnetHdrLegacyLen bytes (the caller zeroes any padding).
// Any thread. Hot path.
void encodeVnetHdr(const OffloadInfo& in, const uint8_t* pkt, size_t len, uint8_t* hdr) noexcept;

// Completes a partial (CHECKSUM_PARTIAL) L4 checksum in software: sums from csum_start to the
// end, seeded with the pseudo-header sum already in the field, and stores the complement
// (wireguard-go gsoNoneChecksum). Leaves `info.csum` = kNone. False if the offsets do not fit.
// Any thread. Hot path.
bool finishPartialChecksum(uint8_t* pkt, size_t len, OffloadInfo& info) noexcept;

}  // namespace lb::io
