// SPDX-License-Identifier: Apache-2.0
// The dataplane's workers: one per TUN queue, reading a batch, running core::Pipeline on it
// with the latest published snapshot and handing the results to egress (egress.cc).
#include <poll.h>

#include "cmd/lbd/dataplane/dataplane_impl.h"

namespace lb::lbd::dataplane_internal {

// Worker thread. Hot path.
void DataplaneImpl::workerLoop(Worker& w) {
  std::shared_ptr<const WorkerConfig> cfg;
  uint64_t gen = 0;
  std::shared_ptr<const NeighMap> neigh;
  uint64_t neigh_gen = 0;
  // The TUN queue, and the eventfd joinThreads() writes so that an idle worker stops at once.
  pollfd pfd[2] = {{tun_->fd(w.index), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (running_.load(std::memory_order_relaxed)) {
    if (config_.refresh(cfg, gen) && cfg != nullptr)
      applyWorkerConfig(w, *cfg);
    neigh_.map().refresh(neigh, neigh_gen);
    size_t n = 0;
    while (n < kBatch) {
      ssize_t r = tun_->readPacket(w.index, *w.bufs[n]);
      if (r < 0)
        break;
      if (r == 0) {
        w.counters.rx_unsupported.add();
        continue;
      }
      if (w.bufs[n]->offload.gso != OffloadInfo::Gso::kNone)
        w.counters.rx_gso.add();  // a super-packet: the offloads are really in use
      w.ptrs[n] = w.bufs[n].get();
      ++n;
    }
    if (n == 0) {
      poll(pfd, wake_fd_ >= 0 ? 2 : 1, 100);
      continue;
    }
    if (options_.mode == Mode::kDecap || cfg == nullptr || cfg->snap == nullptr)
      continue;
    w.pipeline->process(*cfg->snap, absl::MakeConstSpan(w.ptrs.data(), n), w.sink, monoNow());
    if (w.offload != nullptr)
      w.offload->flush();  // the batch's new conns' entries go in before their packets leave
    for (size_t i = 0; i < n; ++i)
      transmit(w, *w.ptrs[i], *cfg, neigh.get());
    for (size_t i = 0; i < w.sink.used(); ++i) {
      PacketBuffer& p = w.sink.at(i);
      if (p.size() != 0 && p.verdict != Verdict::kDrop)
        transmit(w, p, *cfg, neigh.get());
    }
    w.sink.clear();
  }
}

// Worker thread, between batches, when a new config was published.
void DataplaneImpl::applyWorkerConfig(Worker& w, const WorkerConfig& cfg) {
  if (!cfg.tunnel_src_v4.isUnspecified())
    w.pipeline->setTunnelSource(cfg.tunnel_src_v4);
  if (!cfg.tunnel_src_v6.isUnspecified())
    w.pipeline->setTunnelSource(cfg.tunnel_src_v6);
}

}  // namespace lb::lbd::dataplane_internal
