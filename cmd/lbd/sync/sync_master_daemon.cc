// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_master_daemon.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/log.h"

namespace lb::lbd::sync {
namespace {

constexpr auto kSenderDelay = std::chrono::milliseconds(20);  // HZ / 50
constexpr auto kFlushTime = std::chrono::seconds(2);          // IPVS_SYNC_FLUSH_TIME

}  // namespace

bool SyncWorkerQueue::push(const SyncConn& c) noexcept {
  const uint32_t limit = limit_.load(std::memory_order_relaxed);
  if (limit != 0 && kCapacity - ring_.room() >= limit) {
    full_.add();
    return false;
  }
  const bool ok = ring_.push([&c](SyncEvent& e) {
    e.conn = c;
    e.conn.pe_name = {};
    e.conn.pe_data = {};
    e.pe_name_len = static_cast<uint8_t>(std::min(c.pe_name.size(), sizeof(e.pe_name)));
    e.pe_data_len = static_cast<uint8_t>(std::min(c.pe_data.size(), sizeof(e.pe_data)));
    std::memcpy(e.pe_name, c.pe_name.data(), e.pe_name_len);
    std::memcpy(e.pe_data, c.pe_data.data(), e.pe_data_len);
  });
  if (!ok)
    full_.add();
  return ok;
}

SyncMasterDaemon::SyncMasterDaemon(const SyncDaemonConfig& c,
                                   SyncSocket sock,
                                   size_t workers,
                                   int version)
    : config_(c), sock_(std::move(sock)), version_(version) {
  for (size_t i = 0; i < workers; ++i)
    queues_.push_back(std::make_unique<SyncWorkerQueue>());
}

absl::StatusOr<std::unique_ptr<SyncMasterDaemon>> SyncMasterDaemon::start(const SyncDaemonConfig& c,
                                                                          size_t workers,
                                                                          int sync_version,
                                                                          uint32_t sock_size) {
  absl::StatusOr<SyncSocket> sock = SyncSocket::openMaster(c, sock_size);
  if (!sock.ok())
    return sock.status();
  std::unique_ptr<SyncMasterDaemon> d(
      new SyncMasterDaemon(c, std::move(*sock), std::max<size_t>(workers, 1), sync_version));
  d->thread_ = std::thread([p = d.get()] { p->run(); });
  LB_LOG(kInfo, "%s", formatDaemonLine(c).substr(0, formatDaemonLine(c).size() - 1));
  return d;
}

SyncMasterDaemon::~SyncMasterDaemon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

uint64_t SyncMasterDaemon::queueFull() const {
  uint64_t n = 0;
  for (const auto& q : queues_)
    n += q->full();
  return n;
}

void SyncMasterDaemon::sendMessage(SyncMessageBuilder& b) {
  if (b.empty())
    return;
  const absl::Span<const uint8_t> m = b.bytes();
  if (sock_.send(m) < 0) {
    counters_.send_errors.add();
    LB_LOG_EVERY_N_SEC(kWarn, 10, "sync master: send on %s: errno %d", config_.mcast_ifn, errno);
  } else {
    counters_.messages.add();
    counters_.bytes.add(m.size());
    counters_.conns.add(b.nrConns());
  }
  b.reset();
}

// Sender thread.
void SyncMasterDaemon::run() {
  std::vector<uint8_t> buf(config_.sync_maxlen + kSyncMaxConnSize + kSyncMesgHeaderSize);
  SyncMessageBuilder b(absl::MakeSpan(buf), config_.sync_maxlen,
                       static_cast<uint8_t>(config_.syncid), version_);
  auto first_queued = std::chrono::steady_clock::now();
  const auto add = [&](const SyncEvent& e) {
    SyncConn c = e.conn;
    c.pe_name = absl::string_view(e.pe_name, e.pe_name_len);
    c.pe_data = absl::string_view(e.pe_data, e.pe_data_len);
    const bool was_empty = b.empty();
    SyncMessageBuilder::AddResult r = b.add(c);
    if (r == SyncMessageBuilder::AddResult::kFull) {
      sendMessage(b);
      r = b.add(c);
    }
    if (r == SyncMessageBuilder::AddResult::kUnencodable) {
      counters_.unencodable.add();
      return;
    }
    if (was_empty && !b.empty())
      first_queued = std::chrono::steady_clock::now();
  };
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool stopping = stop_;
    lock.unlock();
    for (auto& q : queues_)
      q->drain(add);
    // A partly filled message goes after IPVS_SYNC_FLUSH_TIME, or at once when stopping.
    if (!b.empty() && (stopping || std::chrono::steady_clock::now() - first_queued >= kFlushTime))
      sendMessage(b);
    lock.lock();
    if (stopping)
      break;
    cv_.wait_for(lock, kSenderDelay, [this] { return stop_; });
  }
}

}  // namespace lb::lbd::sync
