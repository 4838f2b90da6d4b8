// SPDX-License-Identifier: Apache-2.0
// A multi-queue TUN device with virtio-net headers and offloads (drivers/net/tun.c): one
// non-blocking fd per worker queue, TUNSETOFFLOAD probed at run time.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/packet/packet_buffer.h"

namespace lb::io {

// TUN_F_* bits; the USO ones are missing from Debian's 6.1 uapi headers.
inline constexpr uint32_t kTunFCsum = 0x01;
inline constexpr uint32_t kTunFTso4 = 0x02;
inline constexpr uint32_t kTunFTso6 = 0x04;
inline constexpr uint32_t kTunFUso4 = 0x20;  // Linux 6.2; USO4 and USO6 only together
inline constexpr uint32_t kTunFUso6 = 0x40;

struct TunOptions {
  std::string name = "lbd0";
  size_t queues = 1;
  // Ask for TUN_F_CSUM|TSO4|TSO6 (+USO when the kernel has it). Off: the kernel finishes
  // checksums and segments before handing packets over.
  bool offloads = true;
  uint32_t txqueuelen = 4096;
  // Create the device, never attach to an existing one (IFF_TUN_EXCL on the first queue):
  // EBUSY becomes FailedPrecondition. Another lbd (or any program) already holding a device of
  // that name keeps it to itself. Later queues attach to the device just created.
  bool exclusive = true;
  // Replace the device's default qdisc (mq with a pfifo_fast per queue) by noqueue, as veth
  // has: tun_net_xmit never returns busy, so the qdisc never holds a packet back and is pure
  // cost on every packet the kernel hands to lbd (enqueue, dequeue, qdisc_run). Failure is
  // logged and the default kept.
  bool noqueue = true;
};

// The kind of `ifindex`'s root qdisc ("noqueue", "mq", ...), through rtnetlink. Any thread.
absl::StatusOr<std::string> rootQdiscKind(int ifindex);

// Owns the queue fds; the device disappears when the last fd closes. Setup on the control
// thread; readPacket/writePacket on the worker owning the queue.
class TunDevice {
 public:
  // Creates (or, without `exclusive`, attaches to) the device with `queues` queues. Errors name
  // the step and errno: NotFound (/dev/net/tun missing), PermissionDenied (no CAP_NET_ADMIN),
  // FailedPrecondition (exclusive and the device exists), Internal.
  static absl::StatusOr<std::unique_ptr<TunDevice>> create(const TunOptions& options);
  // Hot restart: takes over the queue fds of a running device, received from the lbd that
  // created it (SCM_RIGHTS). Asks for the same offloads as create(); the device's name comes
  // from the fds (TUNGETIFF). Owns the fds from the call on, failure included.
  static absl::StatusOr<std::unique_ptr<TunDevice>> adopt(std::vector<int> fds,
                                                          const TunOptions& options);
  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  const std::string& name() const { return name_; }

  int ifindex() const { return ifindex_; }

  size_t queues() const { return fds_.size(); }

  int fd(size_t queue) const { return fds_[queue]; }

  // TUN_F_* bits the kernel accepted.
  uint32_t offloads() const { return offloads_; }

  // Changes the offload set (e.g. TSO off while tunnel dests exist). Control thread.
  absl::Status setOffloads(uint32_t flags);

  // The TUN_F_* set asked for at creation, after probing (CSUM|TSO4|TSO6[|USO4|USO6]).
  uint32_t fullOffloads() const { return full_offloads_; }

  // Reads one packet into `buf` (virtio header decoded into buf.offload). Returns the packet
  // length, 0 for a packet dropped as unsupported, -1 with errno (EAGAIN when empty).
  // Worker thread. Hot path.
  ssize_t readPacket(size_t queue, PacketBuffer& buf) noexcept;
  // Writes `buf` with a virtio header encoding buf.offload. -1 with errno on failure.
  // Worker thread. Hot path.
  ssize_t writePacket(size_t queue, const PacketBuffer& buf) noexcept;

 private:
  TunDevice() = default;
  // TUNSETVNETHDRSZ, the offload probe, ifindex and link setup, on fds_ (create and adopt).
  absl::Status setup(const TunOptions& options);
  std::string name_;
  int ifindex_ = 0;
  std::vector<int> fds_;
  uint32_t offloads_ = 0;
  uint32_t full_offloads_ = 0;
};

}  // namespace lb::io
