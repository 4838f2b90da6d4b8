// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_backup_daemon.h"

#include <cerrno>
#include <vector>

#include "core/base/log.h"

namespace lb::lbd::sync {

SyncBackupDaemon::SyncBackupDaemon(const SyncDaemonConfig& c, SyncSocket sock, Apply apply)
    : config_(c), sock_(std::move(sock)), apply_(std::move(apply)) {}

absl::StatusOr<std::unique_ptr<SyncBackupDaemon>> SyncBackupDaemon::start(const SyncDaemonConfig& c,
                                                                          uint32_t sock_size,
                                                                          Apply apply) {
  absl::StatusOr<SyncSocket> sock = SyncSocket::openBackup(c, sock_size);
  if (!sock.ok())
    return sock.status();
  std::unique_ptr<SyncBackupDaemon> d(new SyncBackupDaemon(c, std::move(*sock), std::move(apply)));
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

// Receive thread.
void SyncBackupDaemon::run() {
  // The kernel's backup reads into a sync_maxlen buffer; a longer datagram is cut there and
  // then fails the header's size check (counted as bad_size).
  std::vector<uint8_t> buf(std::max<uint32_t>(config_.sync_maxlen, kSyncMesgHeaderSize));
  const uint8_t syncid = static_cast<uint8_t>(config_.syncid);
  while (!stop_.load(std::memory_order_relaxed)) {
    const ssize_t n = sock_.receive(absl::MakeSpan(buf), 100);
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
    // (TSan saw a lock-order inversion against a reader of counters()). This thread is the only
    // writer of counters_, so it decodes into a copy and publishes it after.
    SyncDecodeCounters counted = counters();
    decodeSyncMessage(
        absl::MakeConstSpan(buf.data(), len), syncid, [this](const SyncConn& c) { apply_(c); },
        counted);
    std::lock_guard<std::mutex> lock(counters_mu_);
    counters_ = counted;
  }
}

}  // namespace lb::lbd::sync
