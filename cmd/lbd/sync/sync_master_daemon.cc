// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_master_daemon.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>

#include "core/base/log.h"

namespace lb::lbd::sync {
namespace {

constexpr auto kSenderDelay = std::chrono::milliseconds(20);  // HZ / 50
constexpr auto kFlushTime = std::chrono::seconds(2);          // IPVS_SYNC_FLUSH_TIME

}  // namespace

bool SyncWorkerQueue::push(const SyncConn& c, uint32_t thread_id) noexcept {
  const uint32_t limit = limit_.load(std::memory_order_relaxed);
  if (limit != 0 && kCapacity - ring_.room() >= limit) {
    full_.add();
    return false;
  }
  const auto thread = static_cast<uint8_t>(thread_id & threads_mask_);
  const bool ok = ring_.push([&c, thread](SyncEvent& e) {
    e.conn = c;
    e.thread = thread;
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
                                   std::vector<SyncSocket> socks,
                                   size_t workers,
                                   int version)
    : config_(c), socks_(std::move(socks)), version_(version) {
  for (size_t i = 0; i < socks_.size(); ++i)
    thread_messages_.push_back(std::make_unique<Counter>());
  const auto mask = static_cast<uint32_t>(socks_.size() - 1);
  for (size_t i = 0; i < workers; ++i) {
    queues_.push_back(std::make_unique<SyncWorkerQueue>());
    queues_.back()->setThreadsMask(mask);
  }
}

absl::StatusOr<std::unique_ptr<SyncMasterDaemon>> SyncMasterDaemon::start(const SyncDaemonConfig& c,
                                                                          size_t workers,
                                                                          int sync_version,
                                                                          uint32_t sock_size,
                                                                          uint32_t threads) {
  // start_sync_thread: the count is a power of two (sync_ports' check) up to 64.
  threads = std::clamp<uint32_t>(threads, 1, 64);
  threads = uint32_t{1} << (std::bit_width(threads) - 1);
  std::vector<SyncSocket> socks;
  for (uint32_t id = 0; id < threads; ++id) {
    absl::StatusOr<SyncSocket> sock = SyncSocket::openMaster(c, sock_size, id);
    if (!sock.ok())
      return sock.status();
    socks.push_back(std::move(*sock));
  }
  std::unique_ptr<SyncMasterDaemon> d(
      new SyncMasterDaemon(c, std::move(socks), std::max<size_t>(workers, 1), sync_version));
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

void SyncMasterDaemon::sendMessage(size_t id, SyncMessageBuilder& b) {
  if (b.empty())
    return;
  const absl::Span<const uint8_t> m = b.bytes();
  if (socks_[id].send(m) < 0) {
    counters_.send_errors.add();
    LB_LOG_EVERY_N_SEC(kWarn, 10, "sync master: send on %s: errno %d", config_.mcast_ifn, errno);
  } else {
    counters_.messages.add();
    thread_messages_[id]->add();
    counters_.bytes.add(m.size());
    counters_.conns.add(b.nrConns());
  }
  b.reset();
}

// Sender thread. One message being filled per thread (port), as the kernel's ms[id].sync_buff,
// each sent when full or IPVS_SYNC_FLUSH_TIME after its first entry.
void SyncMasterDaemon::run() {
  const size_t n = socks_.size();
  std::vector<std::vector<uint8_t>> bufs(n);
  std::vector<SyncMessageBuilder> builders;
  builders.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    bufs[id].resize(config_.sync_maxlen + kSyncMaxConnSize + kSyncMesgHeaderSize);
    builders.emplace_back(absl::MakeSpan(bufs[id]), config_.sync_maxlen,
                          static_cast<uint8_t>(config_.syncid), version_);
  }
  std::vector<std::chrono::steady_clock::time_point> first_queued(n,
                                                                  std::chrono::steady_clock::now());
  const auto add = [&](const SyncEvent& e) {
    const size_t id = e.thread < n ? e.thread : 0;
    SyncMessageBuilder& b = builders[id];
    SyncConn c = e.conn;
    c.pe_name = absl::string_view(e.pe_name, e.pe_name_len);
    c.pe_data = absl::string_view(e.pe_data, e.pe_data_len);
    const bool was_empty = b.empty();
    SyncMessageBuilder::AddResult r = b.add(c);
    if (r == SyncMessageBuilder::AddResult::kFull) {
      sendMessage(id, b);
      r = b.add(c);
    }
    if (r == SyncMessageBuilder::AddResult::kUnencodable) {
      counters_.unencodable.add();
      return;
    }
    if (was_empty && !b.empty())
      first_queued[id] = std::chrono::steady_clock::now();
  };
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool stopping = stop_;
    lock.unlock();
    for (auto& q : queues_)
      q->drain(add);
    // A partly filled message goes after IPVS_SYNC_FLUSH_TIME, or at once when stopping.
    const auto t = std::chrono::steady_clock::now();
    for (size_t id = 0; id < n; ++id) {
      if (!builders[id].empty() && (stopping || t - first_queued[id] >= kFlushTime))
        sendMessage(id, builders[id]);
    }
    lock.lock();
    if (stopping)
      break;
    cv_.wait_for(lock, kSenderDelay, [this] { return stop_; });
  }
}

}  // namespace lb::lbd::sync
