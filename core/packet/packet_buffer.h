// SPDX-License-Identifier: Apache-2.0
// One packet's storage, with headroom for encapsulation and the virtio-net header's offload
// request (the skb's ip_summed / gso fields in kernel terms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/base/verdict.h"

namespace lb {

// Offload state carried beside the bytes, decoded from / encoded to struct virtio_net_hdr by io/.
// kPartial means the L4 checksum field holds only the pseudo-header sum and the rest is to be
// computed from csum_start + csum_offset (CHECKSUM_PARTIAL): rewrites then adjust the
// pseudo-header part for addresses and leave ports alone.
struct OffloadInfo {
  enum class Csum : uint8_t { kNone, kPartial, kDataValid };
  enum class Gso : uint8_t { kNone, kTcpV4, kTcpV6, kUdpL4 };
  Csum csum = Csum::kNone;
  Gso gso = Gso::kNone;
  uint16_t gso_size = 0;     // MSS for TCP, payload size for USO
  uint16_t hdr_len = 0;      // virtio hdr_len hint
  uint16_t csum_start = 0;   // offset of the L4 header from the start of data()
  uint16_t csum_offset = 0;  // offset of the checksum field from csum_start
};

// Where the pipeline wants an output packet sent.
enum class TxPath : uint8_t {
  kTun,  // write back to the TUN device; the kernel routes it by its destination
  kL2,   // direct routing: send unchanged on L2 to next_hop's MAC (AF_PACKET)
};

// Fixed-capacity packet buffer. data() starts `headroom` bytes into the storage so forwarders
// can prepend tunnel headers in place. Never reallocates. Owned by one worker's pool.
class PacketBuffer {
 public:
  static constexpr size_t kHeadroom = 128;
  static constexpr size_t kCapacity = 65536 + 2 * kHeadroom;

  PacketBuffer() { reset(); }

  // Makes the buffer empty with the default headroom. Hot path.
  void reset() noexcept {
    head_ = kHeadroom;
    len_ = 0;
    offload = {};
    verdict = Verdict::kDrop;
    drop_reason = DropReason::kNone;
    tx = TxPath::kTun;
    next_hop = {};
    out_ifindex = 0;
    learn_dst = true;
  }

  uint8_t* data() noexcept { return storage_ + head_; }

  const uint8_t* data() const noexcept { return storage_ + head_; }

  size_t size() const noexcept { return len_; }

  size_t headroom() const noexcept { return head_; }

  size_t tailroom() const noexcept { return kCapacity - head_ - len_; }

  absl::Span<uint8_t> span() noexcept { return {data(), len_}; }

  absl::Span<const uint8_t> span() const noexcept { return {data(), len_}; }

  // Sets the length of valid data (after io/ read into data()). False if it exceeds capacity.
  bool setSize(size_t n) noexcept {
    if (n > kCapacity - head_)
      return false;
    len_ = n;
    return true;
  }

  // Copies `bytes` in at the default headroom. False if too large.
  bool assign(absl::Span<const uint8_t> bytes) noexcept {
    reset();
    if (!setSize(bytes.size()))
      return false;
    std::memcpy(data(), bytes.data(), bytes.size());
    return true;
  }

  // Grows the front by n bytes (returns the new start) or nullptr if headroom is short.
  uint8_t* push(size_t n) noexcept {
    if (n > head_)
      return nullptr;
    head_ -= n;
    len_ += n;
    if (offload.csum == OffloadInfo::Csum::kPartial)
      offload.csum_start = static_cast<uint16_t>(offload.csum_start + n);
    return data();
  }

  // Removes n bytes from the front. False if shorter.
  bool pull(size_t n) noexcept {
    if (n > len_)
      return false;
    head_ += n;
    len_ -= n;
    if (offload.csum == OffloadInfo::Csum::kPartial)
      offload.csum_start = static_cast<uint16_t>(offload.csum_start - n);
    return true;
  }

  // Removes bytes from the end.
  void trim(size_t new_len) noexcept {
    if (new_len < len_)
      len_ = new_len;
  }

  OffloadInfo offload;
  // False: the packet's destination is not worth learning a next hop for (a SYN-ACK to a
  // source that has not proved its address: under a SYN flood, one new spoofed address each);
  // the dataplane uses a known next hop but asks for no new one.
  bool learn_dst = true;
  Verdict verdict = Verdict::kDrop;
  DropReason drop_reason = DropReason::kNone;
  TxPath tx = TxPath::kTun;
  IpAddr next_hop;  // for TxPath::kL2: the real server's address (neighbour lookup key)
  uint32_t out_ifindex = 0;

 private:
  size_t head_ = kHeadroom;
  size_t len_ = 0;
  alignas(64) uint8_t storage_[kCapacity];
};

}  // namespace lb
