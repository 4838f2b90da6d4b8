// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_backup_daemon.h"

#include <poll.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <vector>

#include "core/base/log.h"

namespace lb::lbd::sync {

SyncBackupDaemon::SyncBackupDaemon(const SyncDaemonConfig& c,
                                   std::vector<SyncSocket> socks,
                                   Apply apply)
    : config_(c),
      socks_(std::move(socks)),
      thread_messages_(socks_.size(), 0),
      thread_conns_(socks_.size(), 0),
      apply_(std::move(apply)) {}

absl::StatusOr<std::unique_ptr<SyncBackupDaemon>> SyncBackupDaemon::start(const SyncDaemonConfig& c,
                                                                          uint32_t sock_size,
                                                                          Apply apply,
                                                                          uint32_t threads) {
  // start_sync_thread: the count is a power of two (sync_ports' check) up to 64.
  threads = std::clamp<uint32_t>(threads, 1, 64);
  threads = uint32_t{1} << (std::bit_width(threads) - 1);
  std::vector<SyncSocket> socks;
  for (uint32_t id = 0; id < threads; ++id) {
    absl::StatusOr<SyncSocket> sock = SyncSocket::openBackup(c, sock_size, id);
    if (!sock.ok())
      return sock.status();
    socks.push_back(std::move(*sock));
  }
  std::unique_ptr<SyncBackupDaemon> d(new SyncBackupDaemon(c, std::move(socks), std::move(apply)));
  d->thread_ = std::thread([p = d.get()] { p->run(); });
  const std::string line = formatDaemonLine(c);
  LB_LOG(kInfo, "%s", line.substr(0, line.size() - 1));
  return d;
}

SyncBackupDaemon::~SyncBackupDaemon() {
  stop_.store(true);
  if (thread_.joinable())
    thread_.join();
}

SyncDecodeCounters SyncBackupDaemon::counters() const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  return counters_;
}

uint64_t SyncBackupDaemon::threadMessages(size_t id) const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  return thread_messages_[id];
}

uint64_t SyncBackupDaemon::threadConns(size_t id) const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  return thread_conns_[id];
}

// Receive thread.
void SyncBackupDaemon::run() {
  // The kernel's backup reads into a sync_maxlen buffer; a longer datagram is cut there and
  // then fails the header's size check (counted as bad_size).
  std::vector<uint8_t> buf(std::max<uint32_t>(config_.sync_maxlen, kSyncMesgHeaderSize));
  const uint8_t syncid = static_cast<uint8_t>(config_.syncid);
  std::vector<pollfd> fds(socks_.size());
  for (size_t id = 0; id < socks_.size(); ++id)
    fds[id] = pollfd{socks_[id].fd(), POLLIN, 0};
  while (!stop_.load(std::memory_order_relaxed)) {
    for (pollfd& p : fds)
      p.revents = 0;
    const int r = poll(fds.data(), fds.size(), 100);
    if (r <= 0)
      continue;
    for (size_t id = 0; id < socks_.size(); ++id) {
      if (fds[id].revents == 0)
        continue;
      const ssize_t n = socks_[id].receive(absl::MakeSpan(buf), 0);
      if (n == 0)
        continue;
      if (n < 0) {
        if (errno != EINTR && errno != EAGAIN)
          LB_LOG_EVERY_N_SEC(kWarn, 10, "sync backup: receive on %s: errno %d", config_.mcast_ifn,
                             errno);
        continue;
      }
      const size_t len = std::min(static_cast<size_t>(n), buf.size());
      // apply_ takes the table's (and its caller's) locks: it runs with no lock of ours held
      // (TSan saw a lock-order inversion against a reader of counters()). This thread is the
      // only writer of counters_, so it decodes into a copy and publishes it after.
      SyncDecodeCounters counted = counters();
      const uint64_t messages_before = counted.messages;
      const uint64_t conns_before = counted.conns;
      decodeSyncMessage(
          absl::MakeConstSpan(buf.data(), len), syncid, [this](const SyncConn& c) { apply_(c); },
          counted);
      std::lock_guard<std::mutex> lock(counters_mu_);
      counters_ = counted;
      thread_messages_[id] += counted.messages - messages_before;
      thread_conns_[id] += counted.conns - conns_before;
    }
  }
}

}  // namespace lb::lbd::sync
