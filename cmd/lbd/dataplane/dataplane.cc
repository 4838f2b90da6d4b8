// SPDX-License-Identifier: Apache-2.0
// Bootstrap dataplane: creates the TUN device and runs one reader per queue that drops what
// it reads. The pipeline, kernel state and decap mode follow.
#include "cmd/lbd/dataplane/dataplane.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "core/base/log.h"
#include "io/tun/tun_device.h"

namespace lb::lbd {
namespace {

class DataplaneImpl : public Dataplane {
 public:
  DataplaneImpl(const DataplaneOptions& options, std::unique_ptr<io::TunDevice> tun)
      : options_(options), tun_(std::move(tun)) {}

  ~DataplaneImpl() override { stop(); }

  absl::Status start() override {
    running_.store(true);
    for (size_t q = 0; q < tun_->queues(); ++q) {
      threads_.emplace_back([this, q] { workerLoop(q); });
    }
    return absl::OkStatus();
  }

  void stop() override {
    running_.store(false);
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

  absl::Status onCommit(const ServiceTable& table) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = table.snapshot();
    return absl::OkStatus();
  }

  const ConnTable* conns() const override { return nullptr; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override { return {}; }

 private:
  void workerLoop(size_t q) {
    auto buf = std::make_unique<PacketBuffer>();
    pollfd pfd{tun_->fd(q), POLLIN, 0};
    while (running_.load(std::memory_order_relaxed)) {
      if (poll(&pfd, 1, 200) <= 0)
        continue;
      while (tun_->readPacket(q, *buf) >= 0) {
      }
    }
  }

  DataplaneOptions options_;
  std::unique_ptr<io::TunDevice> tun_;
  std::atomic<bool> running_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  SnapshotPtr snapshot_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::create(const DataplaneOptions& options,
                                                             ServiceTable& table) {
  (void)table;
  io::TunOptions topts;
  topts.name = options.tun;
  topts.queues = options.workers > 0 ? static_cast<size_t>(options.workers)
                                     : std::max(1u, std::thread::hardware_concurrency());
  auto tun = io::TunDevice::create(topts);
  if (!tun.ok())
    return tun.status();
  LB_LOG(kInfo, "TUN %s: %d queues, offloads 0x%x", (*tun)->name(), (*tun)->queues(),
         (*tun)->offloads());
  return std::unique_ptr<Dataplane>(new DataplaneImpl(options, std::move(*tun)));
}

}  // namespace lb::lbd
