// SPDX-License-Identifier: Apache-2.0
// Userspace decapsulation for `lbd --mode=decap`: raw sockets for IPIP (proto 4) and IPv6-in-IP
// (proto 41) over IPv4 and IPv6, and a UDP socket for GUE; the inner packet is returned for
// writing into the TUN device. The receive half of ipip.c / fou.c (gue_udp_recv).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

#include "core/packet/packet_buffer.h"

namespace lb::io {

// The GUE port when none is given (--gue-port). IANA has no GUE port; 5555 is lbd's default
// and must match the port configured on the LB's GUE dests (`--tun-port`).
inline constexpr uint16_t kDefaultGuePort = 5555;

// Strips a GUE header (RFC draft-ietf-intarea-gue: version 0 with hlen extension words and
// proto_ctype 4/41, or version 1 = a bare IP packet) from the front of pkt. False if it is not
// a data packet lbd can decapsulate. Any thread. Hot path.
bool stripGue(PacketBuffer& pkt) noexcept;

// Owns the decap sockets. Control thread creates; one decap thread calls receive().
class DecapReceiver {
 public:
  static absl::StatusOr<std::unique_ptr<DecapReceiver>> create(uint16_t gue_port);
  ~DecapReceiver();
  DecapReceiver(const DecapReceiver&) = delete;
  DecapReceiver& operator=(const DecapReceiver&) = delete;

  // Waits up to timeout_ms for a packet and puts the inner IP packet in `pkt`. 1 = got one,
  // 0 = nothing (timeout, or a packet that was not decapsulable; counted in dropped()).
  int receive(PacketBuffer& pkt, int timeout_ms) noexcept;

  uint64_t received() const { return received_; }

  // Whether the packet receive() last returned came whole from a GUE datagram or an IPIP /
  // IPv6-in-IP packet that was not reassembled from IP fragments (no IP_RECVFRAGSIZE /
  // IPV6_RECVFRAGSIZE size with it) and whose inner packet is larger than any link carries
  // (kWholeMin): then it never crossed a wire as one piece, it is a GSO super-packet of the
  // sending kernel (docs/tunnel-speed.md). Decap thread.
  bool lastUnwired() const { return last_unwired_; }

  static constexpr size_t kWholeMin = 16384;

  uint64_t dropped() const { return dropped_; }

 private:
  DecapReceiver() = default;
  static constexpr int kReceiveBuffer = 8 << 20;
  int readOne(int fd, int kind, PacketBuffer& pkt) noexcept;
  static void growReceiveBuffer(int fd) noexcept;
  std::vector<int> fds_;
  std::vector<int> kinds_;  // 0 = raw v4 (outer header included), 1 = raw v6, 2 = GUE
  uint64_t received_ = 0;
  uint64_t dropped_ = 0;
  size_t next_ = 0;  // the socket that last had a packet: tried first
  bool last_unwired_ = false;
};

}  // namespace lb::io
