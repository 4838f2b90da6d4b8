// SPDX-License-Identifier: Apache-2.0
// Decap mode: a thread writing the decapsulated packets to the TUN device.
#include <cerrno>

#include "cmd/lbd/dataplane/dataplane_impl.h"

namespace lb::lbd::dataplane_internal {

void DataplaneImpl::decapLoop() {
  auto buf = std::make_unique<PacketBuffer>();
  DataplaneCounters& c = workers_[0]->counters;
  while (running_.load(std::memory_order_relaxed)) {
    if (decap_->receive(*buf, 100) != 1)
      continue;
    c.decap_packets.add();
    if (tun_->writePacket(0, *buf) < 0) {
      c.tx_errors.add();
      LB_LOG_EVERY_N_SEC(kWarn, 10, "decap TUN write: errno %d", errno);
    }
  }
}

}  // namespace lb::lbd::dataplane_internal
