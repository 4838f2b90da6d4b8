// SPDX-License-Identifier: Apache-2.0
#include "io/tun/vnet_hdr.h"

#include <cstring>

namespace lb::io {
namespace {

// include/uapi/linux/virtio_net.h values (the header itself does not compile as C++ here,
// and Debian's 6.1 copy lacks GSO_UDP_L4).
constexpr uint8_t kFNeedsCsum = 1;
constexpr uint8_t kFDataValid = 2;
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoUdpL4 = 5;
constexpr uint8_t kGsoEcn = 0x80;

uint16_t load16le(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

void store16le(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

bool decodeVnetHdr(const uint8_t* hdr, OffloadInfo& out) noexcept {
  const uint8_t flags = hdr[0];
  const uint8_t gso_type = hdr[1];
  out = OffloadInfo{};
  if ((flags & kFNeedsCsum) != 0) {
    out.csum = OffloadInfo::Csum::kPartial;
    out.csum_start = load16le(hdr + 6);
    out.csum_offset = load16le(hdr + 8);
  } else if ((flags & kFDataValid) != 0) {
    out.csum = OffloadInfo::Csum::kDataValid;
  }
  switch (gso_type & 0x7f) {
    case kGsoNone:
      return true;
    case kGsoTcpV4:
      out.gso = OffloadInfo::Gso::kTcpV4;
      break;
    case kGsoTcpV6:
      out.gso = OffloadInfo::Gso::kTcpV6;
      break;
    case kGsoUdpL4:
      out.gso = OffloadInfo::Gso::kUdpL4;
      break;
    default:
      return false;
  }
  // lbd never enables TUN_F_TSO_ECN, so an ECN GSO packet should not arrive; if one does, the
  // flag cannot be carried in OffloadInfo and the packet is refused.
  if ((gso_type & kGsoEcn) != 0)
    return false;
  out.gso_size = load16le(hdr + 4);
  out.hdr_len = load16le(hdr + 2);
  return out.gso_size != 0;
}

void encodeVnetHdr(const OffloadInfo& in, const uint8_t* pkt, size_t len, uint8_t* hdr) noexcept {
  std::memset(hdr, 0, kVnetHdrLegacyLen);
  uint16_t hdr_len = 0;
  if (in.csum == OffloadInfo::Csum::kPartial) {
    hdr[0] = kFNeedsCsum;
    store16le(hdr + 6, in.csum_start);
    store16le(hdr + 8, in.csum_offset);
    hdr_len = static_cast<uint16_t>(in.csum_start + in.csum_offset + 2);
  }
  uint8_t gso_type = kGsoNone;
  switch (in.gso) {
    case OffloadInfo::Gso::kNone:
      break;
    case OffloadInfo::Gso::kTcpV4:
      gso_type = kGsoTcpV4;
      break;
    case OffloadInfo::Gso::kTcpV6:
      gso_type = kGsoTcpV6;
      break;
    case OffloadInfo::Gso::kUdpL4:
      gso_type = kGsoUdpL4;
      break;
  }
  if (gso_type != kGsoNone) {
    hdr[1] = gso_type;
    store16le(hdr + 4, in.gso_size);
    if (in.gso == OffloadInfo::Gso::kUdpL4) {
      hdr_len = static_cast<uint16_t>(in.csum_start + 8);
    } else if (static_cast<size_t>(in.csum_start) + 13 <= len) {
      hdr_len = static_cast<uint16_t>(in.csum_start + ((pkt[in.csum_start + 12] >> 4) * 4));
    }
  }
  if (hdr_len > len)
    hdr_len = static_cast<uint16_t>(len);
  store16le(hdr + 2, hdr_len);
}

bool finishPartialChecksum(uint8_t* pkt, size_t len, OffloadInfo& info) noexcept {
  if (info.csum != OffloadInfo::Csum::kPartial)
    return true;
  const size_t start = info.csum_start;
  const size_t field = start + info.csum_offset;
  if (start >= len || field + 2 > len)
    return false;
  // The field holds the folded pseudo-header sum (not complemented); summing the L4 bytes
  // including that field and complementing gives the final checksum (RFC 1071).
  uint64_t sum = 0;
  size_t i = start;
  for (; i + 1 < len; i += 2)
    sum += static_cast<uint32_t>((pkt[i] << 8) | pkt[i + 1]);
  if (i < len)
    sum += static_cast<uint32_t>(pkt[i] << 8);
  while ((sum >> 16) != 0)
    sum = (sum & 0xffff) + (sum >> 16);
  uint16_t csum = static_cast<uint16_t>(~sum);
  // UDP: a computed 0 is sent as 0xffff (RFC 768).
  if (csum == 0 && info.csum_offset == 6)
    csum = 0xffff;
  pkt[field] = static_cast<uint8_t>(csum >> 8);
  pkt[field + 1] = static_cast<uint8_t>(csum);
  info.csum = OffloadInfo::Csum::kNone;
  return true;
}

}  // namespace lb::io
