// SPDX-License-Identifier: Apache-2.0
// Builds synthetic IPv4/IPv6 packets for tests (Katran's PacketBuilder), with checksums computed
// by an implementation independent of core/packet, and verifies checksums from scratch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/addr.h"

namespace lb::testing {

IpAddr ip(const char* text);  // aborts on a bad literal

class PacketBuilder {
 public:
  static PacketBuilder tcp(
      const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags);
  static PacketBuilder udp(const char* src, uint16_t sport, const char* dst, uint16_t dport);
  static PacketBuilder sctp(
      const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t chunk_type);
  // Echo request/reply: type 8/0 (v4) or 128/129 (v6); id in the "port" position.
  static PacketBuilder icmpEcho(const char* src, const char* dst, uint8_t type, uint16_t id);

  PacketBuilder& payload(const std::string& bytes);
  PacketBuilder& payloadSize(size_t n);  // n bytes of a repeating pattern
  PacketBuilder& ttl(uint8_t ttl);
  PacketBuilder& df(bool df);
  PacketBuilder& ipId(uint16_t id);
  PacketBuilder& seq(uint32_t seq);
  PacketBuilder& ack(uint32_t ack);  // TCP acknowledgement number (default: 1 with ACK, else 0)
  PacketBuilder& udpZeroChecksum();  // IPv4 UDP with checksum 0 (RFC 768 "none")

  // The finished packet, starting at the IP header.
  std::vector<uint8_t> build() const;

  // Wraps `inner` (a full IP packet) in an ICMP error from `src` to `dst`: type/code/info, and
  // as much of `inner` as fits in 576 / 1280 bytes.
  static std::vector<uint8_t> icmpError(const char* src,
                                        const char* dst,
                                        uint8_t type,
                                        uint8_t code,
                                        uint32_t info,
                                        const std::vector<uint8_t>& inner);

 private:
  IpAddr src_, dst_;
  L4Proto proto_ = L4Proto::kTcp;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t flags_ = 0;  // TCP flags / SCTP chunk type / ICMP type
  uint8_t ttl_ = 64;
  bool df_ = false;
  uint16_t ip_id_ = 1;
  uint32_t seq_ = 1000;
  uint32_t ack_ = 0;
  bool has_ack_ = false;
  bool udp_zero_csum_ = false;
  std::string payload_;
};

// Verify from scratch: IPv4 header checksum and the L4 checksum (TCP, UDP, ICMP, ICMPv6;
// SCTP CRC32c). True when all are right. `pkt` starts at the IP header.
bool checksumsValid(const std::vector<uint8_t>& pkt);
bool checksumsValid(const uint8_t* data, size_t len);

// Hex dump for failure messages.
std::string hexDump(const uint8_t* data, size_t len);

}  // namespace lb::testing
