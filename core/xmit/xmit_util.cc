// SPDX-License-Identifier: Apache-2.0
#include "core/xmit/xmit_util.h"

#include "core/packet/rewrite.h"

namespace lb::xmit {

XmitResult checkTtlAndMtu(const PacketBuffer& pkt,
                          const ParsedPacket& pp,
                          uint32_t mtu,
                          bool df_check) noexcept {
  // decrement_ttl(): a packet that would leave with TTL 0 is answered with Time Exceeded.
  if (pp.outer.ttl <= 1)
    return dropWith(DropReason::kTtlExceeded);
  // ensure_mtu_is_adequate(): GSO packets are checked per segment by the stack (skip), and
  // packets carried by an ICMP error are never answered with another error.
  if (pkt.offload.gso != OffloadInfo::Gso::kNone || pp.is_icmp_error)
    return forwarded();
  uint32_t len = packetLength(pkt, pp);
  if (len <= mtu)
    return forwarded();
  if (pp.outer.af == Af::kInet6)
    return dropWith(DropReason::kFragNeeded, mtu);
  if (df_check && pp.outer.df)
    return dropWith(DropReason::kFragNeeded, mtu);
  return forwarded();
}

void decrementOuterTtl(PacketBuffer& pkt, ParsedPacket& pp) noexcept {
  if (decrementTtl(pkt, pp.outer))
    pp.outer.ttl = static_cast<uint8_t>(pp.outer.ttl - 1);
}

uint16_t udpFlowSrcPort(uint32_t flow_hash) noexcept {
  constexpr uint64_t kMin = 32768, kMax = 60999;
  uint32_t hash = flow_hash ^ (flow_hash << 16);
  return static_cast<uint16_t>(((uint64_t{hash} * (kMax - kMin)) >> 32) + kMin);
}

uint32_t sumWords(const uint8_t* p, size_t n, uint32_t acc) noexcept {
  size_t i = 0;
  for (; i + 1 < n; i += 2)
    acc += load16(p + i);
  if (i < n)
    acc += static_cast<uint32_t>(p[i]) << 8;
  return acc;
}

uint16_t foldComplement(uint32_t acc) noexcept {
  while ((acc >> 16) != 0)
    acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

uint32_t pseudoSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t len) noexcept {
  uint32_t acc = sumWords(src.data(), src.size(), 0);
  acc = sumWords(dst.data(), dst.size(), acc);
  return acc + proto + (len >> 16) + (len & 0xffff);
}

bool resolvePartialChecksum(PacketBuffer& pkt, L4Proto proto) noexcept {
  if (pkt.offload.csum != OffloadInfo::Csum::kPartial)
    return true;
  size_t start = pkt.offload.csum_start;
  size_t field = start + pkt.offload.csum_offset;
  if (start >= pkt.size() || field + 2 > pkt.size())
    return false;
  uint8_t* d = pkt.data();
  // The field holds the pseudo-header sum already, so summing from csum_start covers it.
  uint16_t check = foldComplement(sumWords(d + start, pkt.size() - start, 0));
  // A computed UDP checksum of 0 is sent as 0xffff (CSUM_MANGLED_0): 0 means "none".
  if (check == 0 && proto == L4Proto::kUdp)
    check = 0xffff;
  store16(d + field, check);
  pkt.offload.csum = OffloadInfo::Csum::kNone;
  return true;
}

}  // namespace lb::xmit
