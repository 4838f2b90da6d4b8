// SPDX-License-Identifier: Apache-2.0
// LocalAddrPool: lock-free port bitmaps for full NAT (DPVS sa_pool.c in spirit).
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>

#include "core/base/check.h"
#include "core/service/runtime.h"

namespace lb {

namespace {

constexpr size_t kWords = LocalAddrPool::kPorts / 64;  // 1008; 64512 is a multiple of 64
static_assert(kWords * 64 == LocalAddrPool::kPorts);
constexpr size_t kProtos = 3;

// TCP, UDP and SCTP each have their own port space. -1 for anything else.
int protoIndex(L4Proto proto) {
  switch (proto) {
    case L4Proto::kTcp:
      return 0;
    case L4Proto::kUdp:
      return 1;
    case L4Proto::kSctp:
      return 2;
    default:
      return -1;
  }
}

}  // namespace

struct LocalAddrPool::Impl {
  struct Entry {
    IpAddr addr;
    std::atomic<bool> enabled{true};
    std::atomic<uint64_t> conflicts{0};  // acquire() races lost on this address
    std::array<std::array<std::atomic<uint64_t>, kWords>, kProtos> bits{};
  };

  // Published slots [0, count): written once by the control thread, before count is raised.
  std::array<std::atomic<Entry*>, kMaxAddrs> slots{};
  std::atomic<size_t> count{0};
  std::vector<std::unique_ptr<Entry>> owned;  // control thread only

  Entry* find(const IpAddr& addr) const noexcept {
    size_t n = count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
      Entry* e = slots[i].load(std::memory_order_relaxed);
      if (e->addr == addr)
        return e;
    }
    return nullptr;
  }
};

LocalAddrPool::LocalAddrPool(std::vector<IpAddr> addrs) : impl_(std::make_unique<Impl>()) {
  setAddrs(addrs);
}

LocalAddrPool::~LocalAddrPool() = default;

// The pool is a ring of count * 1008 words; the scan starts at bit `hint % (count * 64512)` and
// walks forward, wrapping once, claiming the first clear bit with fetch_or. Disabled addresses
// are skipped. At most count * 1008 + 1 word loads.
bool LocalAddrPool::acquire(L4Proto proto, uint32_t hint, IpAddr* laddr, uint16_t* lport) noexcept {
  int pi = protoIndex(proto);
  if (pi < 0)
    return false;
  const size_t n = impl_->count.load(std::memory_order_acquire);
  if (n == 0)
    return false;
  const size_t total_words = n * kWords;
  const size_t start = size_t{hint} % (n * kPorts);
  const size_t w0 = start / 64;
  const unsigned b0 = static_cast<unsigned>(start % 64);
  for (size_t i = 0; i <= total_words; ++i) {
    uint64_t mask = ~uint64_t{0};
    if (i == 0)
      mask <<= b0;
    if (i == total_words)
      mask = (uint64_t{1} << b0) - 1;  // the bits below b0, last
    if (mask == 0)
      continue;
    const size_t w = (w0 + i) % total_words;
    Impl::Entry* e = impl_->slots[w / kWords].load(std::memory_order_relaxed);
    if (!e->enabled.load(std::memory_order_relaxed))
      continue;
    std::atomic<uint64_t>& word = e->bits[static_cast<size_t>(pi)][w % kWords];
    uint64_t free = ~word.load(std::memory_order_relaxed) & mask;
    while (free != 0) {
      const uint64_t bit = uint64_t{1} << std::countr_zero(free);
      const uint64_t old = word.fetch_or(bit, std::memory_order_acq_rel);
      if ((old & bit) == 0) {
        *laddr = e->addr;
        *lport = static_cast<uint16_t>(kPortMin + (w % kWords) * 64 +
                                       static_cast<size_t>(std::countr_zero(bit)));
        return true;
      }
      // Another worker took the port first (DPVS's port_conflict). Rare: only under a race.
      e->conflicts.fetch_add(1, std::memory_order_relaxed);
      free &= ~old;
    }
  }
  return false;
}

void LocalAddrPool::release(L4Proto proto, const IpAddr& laddr, uint16_t lport) noexcept {
  int pi = protoIndex(proto);
  if (pi < 0 || lport < kPortMin)
    return;
  Impl::Entry* e = impl_->find(laddr);
  if (e == nullptr)
    return;
  const size_t off = size_t{lport} - kPortMin;
  e->bits[static_cast<size_t>(pi)][off / 64].fetch_and(~(uint64_t{1} << (off % 64)),
                                                       std::memory_order_acq_rel);
}

bool LocalAddrPool::reserve(L4Proto proto, const IpAddr& laddr, uint16_t lport) noexcept {
  const int pi = protoIndex(proto);
  if (pi < 0 || lport < kPortMin)
    return false;
  Impl::Entry* e = impl_->find(laddr);
  if (e == nullptr)
    return false;
  const size_t off = size_t{lport} - kPortMin;
  const uint64_t bit = uint64_t{1} << (off % 64);
  return (e->bits[static_cast<size_t>(pi)][off / 64].fetch_or(bit, std::memory_order_acq_rel) &
          bit) == 0;
}

void LocalAddrPool::setAddrs(const std::vector<IpAddr>& addrs) {
  size_t n = impl_->count.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    Impl::Entry* e = impl_->slots[i].load(std::memory_order_relaxed);
    bool wanted = std::find(addrs.begin(), addrs.end(), e->addr) != addrs.end();
    e->enabled.store(wanted, std::memory_order_relaxed);
  }
  for (const IpAddr& a : addrs) {
    if (impl_->find(a) != nullptr)
      continue;
    LB_DCHECK(n < kMaxAddrs);
    if (n >= kMaxAddrs)
      break;
    impl_->owned.push_back(std::make_unique<Impl::Entry>());
    impl_->owned.back()->addr = a;
    impl_->slots[n].store(impl_->owned.back().get(), std::memory_order_relaxed);
    impl_->count.store(++n, std::memory_order_release);
  }
}

std::vector<IpAddr> LocalAddrPool::addrs() const {
  std::vector<IpAddr> out;
  size_t n = impl_->count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    Impl::Entry* e = impl_->slots[i].load(std::memory_order_relaxed);
    if (e->enabled.load(std::memory_order_relaxed))
      out.push_back(e->addr);
  }
  return out;
}

size_t LocalAddrPool::inUse() const noexcept {
  size_t used = 0;
  size_t n = impl_->count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    const Impl::Entry* e = impl_->slots[i].load(std::memory_order_relaxed);
    for (const auto& proto_bits : e->bits) {
      for (const auto& w : proto_bits) {
        used += static_cast<size_t>(std::popcount(w.load(std::memory_order_relaxed)));
      }
    }
  }
  return used;
}

LocalAddrPool::AddrUse LocalAddrPool::use(const IpAddr& addr) const noexcept {
  AddrUse u;
  const Impl::Entry* e = impl_->find(addr);
  if (e == nullptr)
    return u;
  for (const auto& proto_bits : e->bits) {
    for (const auto& w : proto_bits)
      u.conns += static_cast<size_t>(std::popcount(w.load(std::memory_order_relaxed)));
  }
  u.conflicts = e->conflicts.load(std::memory_order_relaxed);
  return u;
}

}  // namespace lb
