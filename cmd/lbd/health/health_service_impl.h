// SPDX-License-Identifier: Apache-2.0
// HealthService's insides, shared by its files: the running model (virtual servers, real
// servers, checkers and their state) and the Impl that builds it (health_build.cc), runs the
// checks and their notifications (health_run.cc) and commits what they decide
// (health_commit.cc). Not an API: use health_service.h.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cmd/lbd/health/check_logic.h"
#include "cmd/lbd/health/checkers.h"
#include "cmd/lbd/health/health_model.h"
#include "cmd/lbd/health/health_service.h"
#include "cmd/lbd/health/ipwrapper.h"

namespace lb::health {

namespace asio = boost::asio;
namespace pb = ::lbd::v1;

// How long the changes of the health thread gather before one commit.
constexpr std::chrono::milliseconds kFlushDelay{50};

// Everything of a checker but where it was written: an unchanged checker keeps its state on
// reload.
std::string specKey(const CheckerSpec& c);

// keyId() of the lbd.v1 key the control plane lists for a table's key (api_convert's mapping),
// so a commit is matched to the services this subsystem manages without converting protos.
std::string coreKeyId(const ServiceKey& k);

struct VsRt;

struct CheckerRt {
  CheckerSpec spec;
  CheckerTiming timing;
  ProbeTarget target;
  RetryState retry{1, false};
  std::unique_ptr<asio::steady_timer> timer;
  std::string key;
  VsRt* vs = nullptr;
  size_t rs = 0;
  size_t index = 0;
  size_t slot = 0;  // its entry in status_snapshot
  bool stopped = false;
  // Stats (also copied into the status snapshot).
  uint64_t checks = 0, failures = 0, transitions = 0, last_latency_us = 0;
  std::array<uint64_t, 9> latency_counts{};  // CheckerStatus::latency_counts
  uint64_t latency_sum_us = 0;
  std::string last_failure;
};

struct RsRt {
  RealServer cfg;
  pb::Dest dest;             // at the configured weight
  uint32_t file_weight = 0;  // what the file says (an operator's edit overrides it)
  std::vector<std::shared_ptr<CheckerRt>> checkers;
};

struct VsRt {
  VirtualServer cfg;
  VsPlan plan;
  std::vector<RsRt> rs;
  std::unique_ptr<VsHealth> health;
  std::string name;  // keyName of its first key
  // From the committed configuration (lbd.v1 health fields: lbctl --check, the API, --config,
  // the state file), not from keepalived.conf: a failing real server is held at weight 0.
  bool api = false;
};

using VsList = std::vector<std::unique_ptr<VsRt>>;

struct HealthService::Impl {
  HealthOptions options;
  KeepalivedConfig conf;
  std::vector<std::unique_ptr<VsRt>> vss;

  asio::io_context io;
  // Commits run on their own thread: a commit costs the size of the whole configuration (the
  // snapshot), and the checks must not wait for it (a starved check times out falsely).
  asio::io_context commit_io;
  std::thread commit_thread;
  std::atomic<std::thread::id> commit_thread_id{};
  std::unique_ptr<asio::steady_timer> flush_timer;
  std::unique_ptr<Probes> probes;
  std::thread thread;
  std::atomic<std::thread::id> thread_id{};
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};  // stop() was called
  bool checks_stopped = false;       // health thread: stopAllCheckers() ran; none starts again
  std::mt19937_64 rng{std::random_device{}()};

  Pool applied;  // what this service last committed (or found) for its services
  // The virtual servers of the committed configuration's health fields, and what the table
  // holds of them (their checked dests and sorry server): rebuilt by apiRefresh() after an
  // operator's commit, their checkers' state carried over.
  VsList api_vss;
  Pool api_applied;
  std::atomic<bool> api_present{false};  // api_vss is not empty (read by observe)
  std::atomic<bool> api_refresh_posted{false};
  bool flush_posted = false;
  absl::flat_hash_set<VsRt*> dirty_vs;  // changed since the last flush (cleared on reload)
  int fifo_fd = -1;

  // Shared with the control thread (observe) and readers of status()/metrics().
  mutable std::mutex mu;
  absl::flat_hash_set<std::string> managed;  // keyId()s
  std::vector<CheckerStatus> status_snapshot;
  std::atomic<uint64_t> own_commits{0};

  // --- building -----------------------------------------------------------------------------

  absl::StatusOr<std::vector<std::unique_ptr<VsRt>>> build(const KeepalivedConfig& c);

  // Carries checker state, and an operator's weights, from the running model into `next` for
  // what did not change.
  void migrate(std::vector<std::unique_ptr<VsRt>>& next, const VsList& from);

  Pool desiredPool() const;

  // The services of one virtual server as its health wants them.
  static void desiredFor(const VsRt& vs, Pool& pool);

  void setManaged();

  // One checker of real server `r` of `vs` (its timing resolved, its probe target set).
  static std::shared_ptr<CheckerRt> newChecker(VsRt& vs, const RsRt& rs, size_t r, size_t k);

  // --- the committed configuration's checks (health_api.cc) ---------------------------------

  // Health thread (or start()): reads the configuration (ControlApi::get_config) and rebuilds
  // api_vss from its health fields; unchanged checkers keep their state; then commits what
  // their health wants (a held-down real server that passes, a sorry server).
  void apiRefresh();
  // A virtual server for a committed service with checks or a health policy; nullptr if none.
  static std::unique_ptr<VsRt> buildApiVs(const pb::Service& s);

  // --- committing ---------------------------------------------------------------------------

  // Everything (start, reload).
  absl::Status commit(const Pool& to);

  // `from` → `to` in one ApplyBatch, on the commit thread, in order. wait: until it is applied.
  absl::Status commitDiff(const Pool& from, const Pool& to, bool wait = true);

  absl::Status applyBatch(const pb::ApplyBatchRequest& req);

  // Coalesces the changes of kFlushDelay into one commit, which looks only at the virtual
  // servers that changed (a flap costs its own services, not all of them).
  void scheduleFlush(VsRt* vs);

  // --- notifications ------------------------------------------------------------------------

  void fifoWrite(const std::string& line);

  void openFifo();

  void notify(VsRt& vs, const Transition& t);

  // --- running checks -----------------------------------------------------------------------

  Micros firstDelay(const CheckerRt& ck);

  void arm(const std::shared_ptr<CheckerRt>& ck, Micros delay);

  void attempt(const std::shared_ptr<CheckerRt>& ck);

  void onResult(const std::shared_ptr<CheckerRt>& ck, ProbeResult r);

  void startCheckers(VsList& list, bool migrated);

  void stopCheckers(VsList& list);

  // Health thread (stop()): stops every checker, and those a later refresh or reload builds.
  void stopAllCheckers();

  CheckerStatus statusOf(const CheckerRt& ck) const;

  // The whole snapshot (start, reload): every checker gets its slot.
  void updateStatus();

  // After one result: the checkers of that real server (its alive state and weight are
  // theirs too), O(checkers of one real server).
  void updateStatus(const CheckerRt& changed);

  // An operator's commit seen by observe(): weights they set on managed real servers become
  // the weights those servers have when healthy; dests and services they removed are
  // forgotten (a later change of state adds them back).
  struct Seen {
    std::string key_id;
    bool present = false;
    std::map<std::string, uint32_t> weights;
  };

  void onOperatorCommit(const std::vector<Seen>& seen, uint64_t commits_then);
};

}  // namespace lb::health
