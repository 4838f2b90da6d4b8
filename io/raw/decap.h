// SPDX-License-Identifier: Apache-2.0
// Userspace decapsulation for `lbd --mode=decap`: raw sockets for IPIP (proto 4), IPv6-in-IP
// (proto 41) and GRE (proto 47) over IPv4 and IPv6, and a UDP socket for GUE; the inner packet is
// returned for writing into the TUN device. The receive half of ipip.c / fou.c (gue_udp_recv) /
// ip_gre.c (gre_parse_header, ipgre_rcv).
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

// What stripGre made of a packet.
enum class GreResult : uint8_t {
  kOk,           // the GRE header is gone: pkt holds the inner IPv4 or IPv6 packet
  kMalformed,    // not a GRE packet lbd can decapsulate (pkt unspecified)
  kBadChecksum,  // the GRE checksum is present and does not verify (pkt unspecified)
};

// Strips a GRE header (RFC 2784, RFC 2890's key and sequence number) from the front of pkt, as
// the kernel's gre_parse_header + ipgre_rcv take what IPVS's ipvs_gre_encap writes: version 0
// and no routing bit (else kMalformed); with the C bit the checksum over the GRE header and
// everything after it must verify (kBadChecksum); a key and a sequence number are skipped; the
// protocol must be 0x0800 with an IPv4 packet after the header or 0x86DD with an IPv6 one
// (transparent Ethernet, WCCP and the rest: kMalformed). Any thread. Hot path.
GreResult stripGre(PacketBuffer& pkt) noexcept;

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
  // IPv6-in-IP / GRE packet that was not reassembled from IP fragments (no IP_RECVFRAGSIZE /
  // IPV6_RECVFRAGSIZE size with it) and whose inner packet is larger than any link carries
  // (kWholeMin): then it never crossed a wire as one piece, it is a GSO super-packet of the
  // sending kernel (docs/tunnel-speed.md). Decap thread.
  bool lastUnwired() const { return last_unwired_; }

  static constexpr size_t kWholeMin = 16384;

  // Packets read that were not decapsulable (their inner packet is not written anywhere); GRE
  // packets whose checksum failed are among them and also counted in csumErrors(). Decap
  // thread.
  uint64_t dropped() const { return dropped_; }

  uint64_t csumErrors() const { return csum_errors_; }

 private:
  DecapReceiver() = default;
  static constexpr int kReceiveBuffer = 8 << 20;
  int readOne(int fd, int kind, PacketBuffer& pkt) noexcept;
  static void growReceiveBuffer(int fd) noexcept;
  std::vector<int> fds_;
  std::vector<int> kinds_;  // raw v4 (outer header included) or v6, IP-in-IP or GRE, or GUE
  uint64_t received_ = 0;
  uint64_t dropped_ = 0;
  uint64_t csum_errors_ = 0;
  size_t next_ = 0;  // the socket that last had a packet: tried first
  bool last_unwired_ = false;
};

}  // namespace lb::io
