// SPDX-License-Identifier: Apache-2.0
// The backup sync daemon: a thread receiving the master's datagrams on the group, decoding
// them (core/sync's decodeSyncMessage, with the backup's syncid filter and its drop counters)
// and handing each entry to `apply`, which lbd binds to core/sync's applySyncConn on its conn
// table (that call is made from this thread: applySyncConn takes the table's own guards, as
// the kernel's backup thread calls ip_vs_proc_conn).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

#include "cmd/lbd/sync/sync_daemon_config.h"
#include "cmd/lbd/sync/sync_socket.h"
#include "core/sync/sync_codec.h"

namespace lb::lbd::sync {

class SyncBackupDaemon {
 public:
  using Apply = std::function<void(const SyncConn&)>;

  // `c` with its defaults filled (withDefaults, sync_maxlen the effective one: the receive
  // buffer). `sock_size`: sync_sock_size. `threads`: the kernel's sync threads (a power of two,
  // syncThreadCount(sync_ports)): one socket each, bound to mcast_port + id; one receive
  // thread reads them all (the kernel runs one per socket).
  static absl::StatusOr<std::unique_ptr<SyncBackupDaemon>> start(const SyncDaemonConfig& c,
                                                                 uint32_t sock_size,
                                                                 Apply apply,
                                                                 uint32_t threads = 1);
  ~SyncBackupDaemon();  // stops the thread (within its 100 ms receive timeout)

  // A copy of the decode counters (taken under a lock the receive thread holds per datagram).
  SyncDecodeCounters counters() const;

  const SyncDaemonConfig& config() const { return config_; }

  // The sync threads (ports) this daemon listens on.
  size_t threads() const { return socks_.size(); }

  // Messages and entries decoded from thread `id`'s socket (port mcast_port + id).
  uint64_t threadMessages(size_t id) const;
  uint64_t threadConns(size_t id) const;

 private:
  SyncBackupDaemon(const SyncDaemonConfig& c, std::vector<SyncSocket> socks, Apply apply);
  void run();

  SyncDaemonConfig config_;
  std::vector<SyncSocket> socks_;
  std::vector<uint64_t> thread_messages_;  // counters_mu_
  std::vector<uint64_t> thread_conns_;     // counters_mu_
  Apply apply_;
  std::atomic<bool> stop_{false};
  mutable std::mutex counters_mu_;
  SyncDecodeCounters counters_;  // counters_mu_
  std::thread thread_;
};

}  // namespace lb::lbd::sync
