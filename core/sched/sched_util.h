// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the schedulers: availability tests, the kernel's multiplicative hash, gcd,
// dest-list validation, and the template for schedulers whose only state is the dest list.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

#include "core/sched/scheduler.h"

namespace lb::sched {

// The test every scheduler applies to a dest before picking it: weight > 0 and no
// IP_VS_DEST_F_OVERLOAD. Hot path.
inline bool usable(const DestInfo& d, const DestLoad& load) noexcept {
  return d.weight > 0 && !load.overloaded(d.id);
}

// hash_32() from include/linux/hash.h: the top `bits` bits of val * GOLDEN_RATIO_32. Mainline
// ip_vs_dh.c, ip_vs_sh.c and ip_vs_lblc(r).c hash with it; kernels before 4.7 (and older copies
// of those files) used (val * 2654435761UL) & mask instead. Hot path.
inline constexpr uint32_t kGoldenRatio32 = 0x61C88647u;

inline constexpr uint32_t hash32(uint32_t val, int bits) noexcept {
  return (val * kGoldenRatio32) >> (32 - bits);
}

// gcd() from lib/math/gcd.c for positive ints.
int gcdPositive(int a, int b);

// Control thread. InvalidArgument for an id of kNoDest, a duplicate id or a negative weight.
absl::Status validateDests(absl::Span<const DestInfo> dests);

// A scheduler whose only state is the dest list (lc, wlc, sed, nq, fo, ovf, twos). `Policy`
// provides `static constexpr absl::string_view kName` and
// `static std::optional<DestId> pick(absl::Span<const DestInfo>, const PickContext&,
// const DestLoad&) noexcept`. pick() holds the reader side of the service's scheduler lock, so
// update() can swap the list under concurrent picks (the kernel uses RCU for the same).
template <typename Policy>
class ListScheduler final : public Scheduler {
 public:
  explicit ListScheduler(absl::Span<const DestInfo> dests) : dests_(dests.begin(), dests.end()) {}

  // Scheduler
  std::optional<DestId> pick(const PickContext& ctx, const DestLoad& load) noexcept override {
    absl::ReaderMutexLock lock(&mu_);
    return Policy::pick(absl::MakeConstSpan(dests_), ctx, load);
  }

  absl::Status update(absl::Span<const DestInfo> dests) override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    std::vector<DestInfo> next(dests.begin(), dests.end());
    absl::MutexLock lock(&mu_);
    dests_.swap(next);  // the old list is freed after the lock is released
    return absl::OkStatus();
  }

 private:
  absl::Mutex mu_;
  std::vector<DestInfo> dests_ ABSL_GUARDED_BY(mu_);
};

// Factory for a ListScheduler<Policy>. Options are not used by these algorithms; like the kernel
// they accept any scheduler flags.
template <typename Policy>
class ListSchedulerFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return Policy::kName; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& /*options*/) const override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    return SchedulerPtr(std::make_shared<ListScheduler<Policy>>(dests));
  }
};

}  // namespace lb::sched
