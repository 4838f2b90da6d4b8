// SPDX-License-Identifier: Apache-2.0
// The template for schedulers that rebuild a lookup table on every dest change (dh, sh, mh):
// the kernel's *_reassign() from add_dest/del_dest/upd_dest.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

#include "core/sched/sched_util.h"

namespace lb::sched {

// `Policy` provides:
//   static constexpr absl::string_view kName;
//   struct Table;  // movable
//   static absl::StatusOr<Table> build(absl::Span<const DestInfo>, uint32_t flags);
//   static std::optional<DestId> pick(const Table&, uint32_t flags, const PickContext&,
//                                     const DestLoad&) noexcept;
// The table is built off the lock and swapped in under it; pick() holds the reader side.
template <typename Policy>
class TableScheduler final : public Scheduler {
 public:
  using Table = typename Policy::Table;

  TableScheduler(Table table, uint32_t flags) : table_(std::move(table)), flags_(flags) {}

  // Scheduler
  std::optional<DestId> pick(const PickContext& ctx, const DestLoad& load) noexcept override {
    absl::ReaderMutexLock lock(&mu_);
    return Policy::pick(table_, flags_, ctx, load);
  }

  absl::Status update(absl::Span<const DestInfo> dests) override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    absl::StatusOr<Table> next = Policy::build(dests, flags_);
    if (!next.ok())
      return next.status();
    absl::MutexLock lock(&mu_);
    std::swap(table_, *next);  // the old table is freed after the lock is released
    return absl::OkStatus();
  }

  // Control thread. A copy of the current table, for tests.
  Table tableForTest() const {
    absl::ReaderMutexLock lock(&mu_);
    return table_;
  }

 private:
  mutable absl::Mutex mu_;
  Table table_ ABSL_GUARDED_BY(mu_);
  const uint32_t flags_;
};

template <typename Policy>
class TableSchedulerFactory final : public SchedulerFactory {
 public:
  // SchedulerFactory
  absl::string_view name() const override { return Policy::kName; }

  absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                      const SchedulerOptions& options) const override {
    absl::Status st = validateDests(dests);
    if (!st.ok())
      return st;
    absl::StatusOr<typename Policy::Table> table = Policy::build(dests, options.flags);
    if (!table.ok())
      return table.status();
    return SchedulerPtr(std::make_shared<TableScheduler<Policy>>(std::move(*table), options.flags));
  }
};

}  // namespace lb::sched
