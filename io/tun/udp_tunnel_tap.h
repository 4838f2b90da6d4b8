// SPDX-License-Identifier: Apache-2.0
// A TAP device through which lbd hands the kernel a GUE-encapsulated TCP super-packet whole, as
// one write with a UDP-tunnel GSO request (virtio_net_hdr_v1_hash_tunnel, Linux 6.17+): the
// kernel forwards it like any packet and segments it at the device that needs it, instead of
// lbd cutting it into wire packets and sending each (core/xmit/tunnel_gso.h, the fallback).
// Why a TAP and not lbd0 (docs/tunnel-speed.md): virtio_net_hdr_tnl_to_skb checks the outer
// transport offset against ETH_HLEN + the outer IP header, which an L3 TUN's packets never
// pass, and the 24-byte header is per device (TUNSETVNETHDRSZ), so lbd0's 12-byte one stays.
// IPIP and GRE have no such request (nothing a user writes sets SKB_GSO_IPXIP4/6 or GRE).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/packet/packet_buffer.h"

namespace lb::io {

// sizeof(struct virtio_net_hdr_v1_hash_tunnel): the v1 header (12), the hash report (8), the
// outer transport and inner network offsets (2 + 2).
inline constexpr size_t kVnetHdrTunnelLen = 24;

// Whether this kernel takes a UDP-tunnel GSO packet from a TAP device, without sending
// anything: a scratch TAP device (`name`) that stays down gets one such write. tun_get_user
// parses the virtio header before it checks IFF_UP, so EIO = accepted, EINVAL = not (a kernel
// before 6.17 has no case for the tunnel GSO bits). The device vanishes on return. Control
// thread; needs CAP_NET_ADMIN (false without it).
bool kernelTakesUdpTunnelGso(const std::string& name);

// Offsets of an encapsulated GSO super-packet, from the outer IP header.
struct UdpTunnelGso {
  uint16_t outer_l4 = 0;    // the outer UDP header
  uint16_t inner_l3 = 0;    // the inner IP header (after UDP + GUE)
  uint16_t inner_l4 = 0;    // the inner TCP header (csum_start)
  uint16_t inner_hdrs = 0;  // every header: inner_l4 + the TCP header
  uint16_t gso_size = 0;
  bool outer_v6 = false;
  bool inner_v6 = false;
};

// One TAP device, one queue per worker. Control thread creates; write() on the owning worker.
class UdpTunnelTap {
 public:
  // Creates the device `name` with `queues` queues and the 24-byte header and brings it up.
  // The caller lets it forward what lbd writes (forwarding, accept_local: the outer source is
  // the LB's own address, loose rp_filter with a link-scope address, as lbd0). Errors name the
  // step.
  static absl::StatusOr<std::unique_ptr<UdpTunnelTap>> create(const std::string& name,
                                                              size_t queues);
  ~UdpTunnelTap();
  UdpTunnelTap(const UdpTunnelTap&) = delete;
  UdpTunnelTap& operator=(const UdpTunnelTap&) = delete;

  const std::string& name() const { return name_; }

  int ifindex() const { return ifindex_; }

  // Writes `p` (an outer IPv4/IPv6 + UDP + GUE + inner IP/TCP super-packet, its outer UDP
  // checksum 0 and its inner TCP checksum field the pseudo-header sum, as TunnelForwarder
  // leaves it) as one GSO_UDP_TUNNEL_IPV4/6 | TCPV4/6 packet. Prepends an Ethernet header to
  // the device's own MAC in p's headroom (p keeps it once written; a failed write leaves p as
  // it was). Returns the bytes written or -1 with errno. Worker thread. Hot path.
  ssize_t write(size_t queue, PacketBuffer& p, const UdpTunnelGso& g) noexcept;

 private:
  UdpTunnelTap() = default;
  std::string name_;
  int ifindex_ = 0;
  std::array<uint8_t, 6> mac_{};
  std::vector<int> fds_;
};

// Fills the 24-byte header for `g` (little endian, as the host and TUN_VNET_LE): NEEDS_CSUM
// at the inner TCP checksum, gso_type TCPV4/6 | UDP_TUNNEL_IPV4/6, offsets counted from an
// Ethernet header of `l2_len` bytes in front of the outer IP header. Any thread. Hot path.
void encodeUdpTunnelVnetHdr(const UdpTunnelGso& g, size_t l2_len, uint8_t* hdr) noexcept;

}  // namespace lb::io
