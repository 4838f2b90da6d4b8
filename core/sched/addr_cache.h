// SPDX-License-Identifier: Apache-2.0
// The fixed-size address cache behind lblc and lblcr (struct ip_vs_lblc_table /
// ip_vs_lblcr_table): destination address -> Value, with last-use times. Preallocated, so the
// packet path never allocates; when a probe window is full the least recently used entry in it
// is evicted (the kernel's table grows instead and a 60 s timer trims it back to 16 * 1024).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/base/addr.h"
#include "core/base/time.h"
#include "core/sched/sched_util.h"

namespace lb::sched {

template <typename Value>
class AddrCache {
 public:
  static constexpr int kBits = 14;
  static constexpr size_t kCapacity = size_t{1} << kBits;  // IP_VS_LBLC_TAB_SIZE * 16
  static constexpr size_t kWindow = 8;                     // slots probed per address

  struct Entry {
    IpAddr addr;
    MonoTime lastuse;
    bool used = false;
    Value value{};
  };

  // Control thread. Allocates every slot up front.
  AddrCache() : slots_(kCapacity) {}

  // The entry for `addr`, or nullptr. Hot path.
  Entry* find(const IpAddr& addr) noexcept {
    const size_t h = home(addr);
    for (size_t k = 0; k < kWindow; ++k) {
      Entry& e = slots_[(h + k) & (kCapacity - 1)];
      if (e.used && e.addr == addr)
        return &e;
    }
    return nullptr;
  }

  // A fresh entry for `addr` (not present), used and reset to Value{}: the first free slot of the
  // window, else the one with the oldest lastuse. Hot path.
  Entry& insert(const IpAddr& addr, MonoTime now) noexcept {
    const size_t h = home(addr);
    Entry* victim = nullptr;
    for (size_t k = 0; k < kWindow; ++k) {
      Entry& e = slots_[(h + k) & (kCapacity - 1)];
      if (!e.used) {
        victim = &e;
        break;
      }
      if (victim == nullptr || e.lastuse < victim->lastuse)
        victim = &e;
    }
    victim->addr = addr;
    victim->lastuse = now;
    victim->used = true;
    victim->value = Value{};
    return *victim;
  }

  // Calls fn(Entry&) for every used entry. Control thread (under the scheduler lock).
  template <typename Fn>
  void forEach(Fn fn) {
    for (Entry& e : slots_) {
      if (e.used)
        fn(e);
    }
  }

  void erase(Entry& e) noexcept { e.used = false; }

 private:
  static size_t home(const IpAddr& addr) noexcept {
    return hash32(addr.fold() ^ static_cast<uint32_t>(addr.af()), kBits);
  }

  std::vector<Entry> slots_;
};

}  // namespace lb::sched
