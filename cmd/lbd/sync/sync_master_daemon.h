// SPDX-License-Identifier: Apache-2.0
// The master sync daemon: the workers hand it the entries core/sync's rules chose
// (syncConnChain's emit) through one lock-free single-producer ring each, so the packet path
// never allocates, locks or makes a syscall for sync; the sender thread drains the rings,
// packs the entries into messages (core/sync's SyncMessageBuilder, up to sync_maxlen) and
// multicasts each when it is full, and a partly filled one after at most 2 s
// (IPVS_SYNC_FLUSH_TIME). It wakes every 20 ms (the kernel's HZ/50 sender delay).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

#include "cmd/lbd/dataplane/spsc_ring.h"
#include "cmd/lbd/sync/sync_daemon_config.h"
#include "cmd/lbd/sync/sync_socket.h"
#include "core/base/counters.h"
#include "core/sync/sync_codec.h"

namespace lb::lbd::sync {

// One entry as a worker queued it: SyncConn with its persistence-engine strings copied in
// (SyncConn's views point into the conn, which the worker does not hold past the packet).
struct SyncEvent {
  SyncConn conn;       // pe_name / pe_data rebuilt from the arrays below by the sender
  uint8_t thread = 0;  // the master's thread (port mcast_port + thread): syncMasterThreadId
  uint8_t pe_name_len = 0;
  uint8_t pe_data_len = 0;
  char pe_name[kSyncPeNameMax] = {};
  char pe_data[kSyncPeDataMax] = {};
};

// A worker's ring. Worker thread: push (hot path: no allocation, no lock, no syscall).
class SyncWorkerQueue {
 public:
  static constexpr size_t kCapacity = 1024;

  // False (and counted) when the ring is full: the entry is lost, as the kernel's
  // sync_qlen_max drops them; the conn is sent again on a later packet or state change.
  // `thread_id`: the master thread (port) for the entry (syncMasterThreadId with threadsMask()),
  // masked again here.
  bool push(const SyncConn& c, uint32_t thread_id = 0) noexcept;

  // The daemon's threads_mask (sync threads - 1), fixed at its start.
  uint32_t threadsMask() const { return threads_mask_; }

  void setThreadsMask(uint32_t m) { threads_mask_ = m; }

  uint64_t full() const { return full_.value(); }

  // sync_qlen_max: at most `n` entries wait in this ring (0: its capacity); an entry beyond is
  // dropped and counted as full. Any thread.
  void setLimit(uint32_t n) { limit_.store(n, std::memory_order_relaxed); }

  // Sender thread.
  template <typename F>
  void drain(F&& f) {
    ring_.drain(std::forward<F>(f));
  }

 private:
  SpscRing<SyncEvent, kCapacity> ring_;
  Counter full_;
  std::atomic<uint32_t> limit_{0};
  uint32_t threads_mask_ = 0;  // set before any worker sees the ring
};

struct SyncMasterCounters {
  Counter messages;     // datagrams sent
  Counter bytes;        // their UDP payload bytes
  Counter conns;        // entries sent
  Counter send_errors;  // sendto failures (the message is lost)
  Counter unencodable;  // entries SyncMessageBuilder refused (v0 and IPv6, ...)
};

class SyncMasterDaemon {
 public:
  // `c` with its defaults filled (withDefaults, sync_maxlen the effective one). Opens the
  // sockets and starts the sender thread. `sync_version` 0 or 1; `sock_size`: sync_sock_size.
  // `threads`: the kernel's sync threads (syncThreadCount(sync_ports), a power of two): one
  // socket each, sending to mcast_port + id, with its own message being filled; an entry goes
  // to the one its SyncEvent::thread names. One sender thread serves them all.
  static absl::StatusOr<std::unique_ptr<SyncMasterDaemon>> start(const SyncDaemonConfig& c,
                                                                 size_t workers,
                                                                 int sync_version,
                                                                 uint32_t sock_size,
                                                                 uint32_t threads = 1);
  ~SyncMasterDaemon();  // stops the thread (sending what is queued first)

  // Worker `i`'s ring; valid for the daemon's lifetime.
  SyncWorkerQueue& queue(size_t i) { return *queues_[i]; }

  size_t workers() const { return queues_.size(); }

  const SyncMasterCounters& counters() const { return counters_; }

  uint64_t queueFull() const;

  const SyncDaemonConfig& config() const { return config_; }

  // Thread `id`'s multicast socket (tests turn IP_MULTICAST_LOOP on to hear themselves on one
  // host).
  int socketFd(size_t id = 0) const { return socks_[id].fd(); }

  // The sync threads (ports) this daemon runs.
  size_t threads() const { return socks_.size(); }

  // Messages sent from thread `id`'s socket.
  uint64_t threadMessages(size_t id) const { return thread_messages_[id]->value(); }

 private:
  SyncMasterDaemon(const SyncDaemonConfig& c,
                   std::vector<SyncSocket> socks,
                   size_t workers,
                   int version);
  void run();
  void sendMessage(size_t id, SyncMessageBuilder& b);

  SyncDaemonConfig config_;
  std::vector<SyncSocket> socks_;
  std::vector<std::unique_ptr<Counter>> thread_messages_;
  int version_;
  std::vector<std::unique_ptr<SyncWorkerQueue>> queues_;
  SyncMasterCounters counters_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // mu_
  std::thread thread_;
};

}  // namespace lb::lbd::sync
