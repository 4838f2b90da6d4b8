// SPDX-License-Identifier: Apache-2.0
// Direct-routing egress: an AF_PACKET SOCK_RAW socket with PACKET_QDISC_BYPASS and
// PACKET_VNET_HDR (GSO kept), frames addressed to a neighbour's MAC (ip_vs_dr_xmit's L2 leg).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "core/packet/packet_buffer.h"

namespace lb::io {

// One per worker (the socket is not shared). Created on the control thread; send() on the
// owning worker.
class L2Sender {
 public:
  // Internal / PermissionDenied (no CAP_NET_RAW) naming the step.
  static absl::StatusOr<std::unique_ptr<L2Sender>> create();
  ~L2Sender();
  L2Sender(const L2Sender&) = delete;
  L2Sender& operator=(const L2Sender&) = delete;

  // Prepends an Ethernet header (src -> dst, ethertype from the IP version) in pkt's headroom
  // and sends the frame on `ifindex` with a virtio header for pkt.offload. Returns the bytes
  // sent or -1 with errno. pkt keeps the Ethernet header. Worker thread. Hot path.
  ssize_t send(int ifindex,
               const std::array<uint8_t, 6>& src,
               const std::array<uint8_t, 6>& dst,
               PacketBuffer& pkt) noexcept;

 private:
  L2Sender() = default;
  int fd_ = -1;
};

}  // namespace lb::io
