// SPDX-License-Identifier: Apache-2.0
// The scheduler interface and its inputs; the analogue of struct ip_vs_scheduler (ip_vs_sched.c).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/base/ids.h"
#include "core/base/time.h"

namespace lb {

// Service scheduler flags (include/uapi/linux/ip_vs.h IP_VS_SVC_F_SCHED1..3).
inline constexpr uint32_t kSchedFlag1 = 0x0008;  // sh-fallback, mh-fallback
inline constexpr uint32_t kSchedFlag2 = 0x0010;  // sh-port, mh-port
inline constexpr uint32_t kSchedFlag3 = 0x0020;

// A real server as a scheduler sees it. The span handed to create()/update() is in the kernel's
// list order: newest first (ip_vs_ctl.c __ip_vs_update_dest uses list_add_rcu at the head), and
// every "first wins" tie-break follows that order.
struct DestInfo {
  DestId id = kNoDest;
  IpAddr addr;
  uint16_t port = 0;
  int32_t weight = 0;       // 0 = quiesced: never picked
  int32_t last_weight = 0;  // latest non-zero weight (mh keeps weight-0 dests' slots)
};

// Live per-dest counters, shared by all workers (atomic_t in struct ip_vs_dest).
struct DestCounters {
  std::atomic<int32_t> active_conns{0};
  std::atomic<int32_t> inact_conns{0};
  std::atomic<int32_t> persist_conns{0};
  std::atomic<bool> overloaded{false};  // IP_VS_DEST_F_OVERLOAD
};

// Read-only view over the counters, indexed by DestId. Any thread.
class DestLoad {
 public:
  explicit DestLoad(absl::Span<const DestCounters> c) : c_(c) {}

  int32_t active(DestId d) const { return c_[d].active_conns.load(std::memory_order_relaxed); }

  int32_t inactive(DestId d) const { return c_[d].inact_conns.load(std::memory_order_relaxed); }

  bool overloaded(DestId d) const { return c_[d].overloaded.load(std::memory_order_relaxed); }

  // ip_vs_dest_conn_overhead(): activeconns * 256 + inactconns.
  int64_t overhead(DestId d) const { return (int64_t{active(d)} << 8) + inactive(d); }

 private:
  absl::Span<const DestCounters> c_;
};

// What a scheduler may look at for one new connection.
struct PickContext {
  IpAddr saddr;        // client address (the packet's source)
  IpAddr daddr;        // the packet's destination (the VIP; lblc/lblcr/dh key on it)
  uint16_t sport = 0;  // host order
  uint16_t dport = 0;
  bool has_ports = false;  // TCP/UDP/SCTP (sh-port, mh-port only use ports then)
  MonoTime now;            // lblc/lblcr cache ageing
  uint64_t random = 0;     // twos: a fresh random value per pick, from the worker's seeded RNG
};

struct SchedulerOptions {
  uint32_t flags = 0;                                // kSchedFlag*
  Duration lblc_expiration = seconds(24 * 60 * 60);  // sysctl lblc_expiration / lblcr_expiration
};

// One per service, shared by all workers (the kernel's per-service scheduler data and lock):
// stateful schedulers (rr, wrr, lblc, lblcr) serialise pick() and update() internally so the
// sequence is the kernel's whatever the worker count.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Worker thread. Hot path: no alloc, no log, no throw. nullopt => no dest (drop kNoDest).
  virtual std::optional<DestId> pick(const PickContext& ctx, const DestLoad& load) noexcept = 0;
  // Control thread. The service's dest list changed (add/edit/del): the kernel's
  // add_dest/del_dest/upd_dest hooks. May allocate; keeps state where the kernel keeps it
  // (wrr keeps cw per ip_vs_wrr_dest_changed, rr keeps its cursor).
  virtual absl::Status update(absl::Span<const DestInfo> dests) = 0;
};

using SchedulerPtr = std::shared_ptr<Scheduler>;

// Stateless, one per algorithm.
class SchedulerFactory {
 public:
  virtual ~SchedulerFactory() = default;
  // API name: "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo",
  // "ovf", "twos".
  virtual absl::string_view name() const = 0;
  // Control thread. Validates options (InvalidArgument naming the flag) and builds tables.
  virtual absl::StatusOr<SchedulerPtr> create(absl::Span<const DestInfo> dests,
                                              const SchedulerOptions& options) const = 0;
};

// The registry (core/sched/registry.cc): nullptr for an unknown name. Any thread.
const SchedulerFactory* findScheduler(absl::string_view name);
// All registered factories, in registry order. Any thread.
absl::Span<const SchedulerFactory* const> allSchedulers();

}  // namespace lb
