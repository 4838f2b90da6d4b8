// SPDX-License-Identifier: Apache-2.0
// The sync daemons' UDP multicast sockets, set up as ip_vs_sync.c's make_send_sock /
// make_receive_sock do: the master sends from the interface's address to group:port with the
// configured TTL, multicast loop off, path MTU discovery off, on that interface; the backup binds
// group:port, on the interface, and joins the group there. The socket's family is the group's
// (an IPv6 group: IPv6 sockets, IPV6_JOIN_GROUP; the master then binds no address, as the
// kernel's does not). sync_sock_size sets SO_SNDBUF / SO_RCVBUF (0: the system's default).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "cmd/lbd/sync/sync_daemon_config.h"

namespace lb::lbd::sync {

class SyncSocket {
 public:
  // `c` with its defaults filled (withDefaults). Errors name the step and the interface.
  // `id`: the daemon's thread (sync_ports > 1): the socket sends to / binds port
  // mcast_port + id (16 bits, as the kernel's get_mcast_sockaddr).
  static absl::StatusOr<SyncSocket> openMaster(const SyncDaemonConfig& c,
                                               uint32_t sock_size,
                                               uint32_t id = 0);
  static absl::StatusOr<SyncSocket> openBackup(const SyncDaemonConfig& c,
                                               uint32_t sock_size,
                                               uint32_t id = 0);

  // mcast_port + id, cut to 16 bits as the kernel's htons(c->mcast_port + id).
  static uint16_t portFor(const SyncDaemonConfig& c, uint32_t id) {
    return static_cast<uint16_t>(c.mcast_port + id);
  }

  SyncSocket(SyncSocket&& o) noexcept;
  SyncSocket& operator=(SyncSocket&& o) noexcept;
  SyncSocket(const SyncSocket&) = delete;
  SyncSocket& operator=(const SyncSocket&) = delete;
  ~SyncSocket();

  // Master: one datagram to the group. -1 with errno on error.
  ssize_t send(absl::Span<const uint8_t> msg) noexcept;
  // Backup: the next datagram, waiting up to `timeout_ms`; 0 on timeout, -1 with errno on
  // error, else its length (truncated datagrams are reported at their full length).
  ssize_t receive(absl::Span<uint8_t> buf, int timeout_ms) noexcept;

  int fd() const { return fd_; }

  // The interface's MTU (for syncMaxLen). InvalidArgument when there is no such interface.
  static absl::StatusOr<uint32_t> interfaceMtu(const std::string& ifname);

 private:
  SyncSocket(int fd, bool v6, const uint8_t* group, uint16_t port, uint32_t ifindex);

  int fd_ = -1;
  bool v6_ = false;
  uint8_t group_[16] = {};
  uint16_t port_ = 0;
  uint32_t ifindex_ = 0;
};

}  // namespace lb::lbd::sync
