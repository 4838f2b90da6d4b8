// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_manager.h"

#include "absl/strings/str_cat.h"

#include "cmd/lbd/sync/sync_socket.h"

namespace lb::lbd::sync {

SyncManager::SyncManager(Env env) : env_(std::move(env)) {}

SyncManager::~SyncManager() {
  stopAll();
}

absl::Status SyncManager::start(const SyncDaemonConfig& given) {
  if (absl::Status s = validateSyncDaemonConfig(given); !s.ok())
    return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (given_.get(given.role).has_value())
    return absl::AlreadyExistsError("Daemon has already run");
  absl::StatusOr<uint32_t> mtu = SyncSocket::interfaceMtu(given.mcast_ifn);
  if (!mtu.ok())
    return mtu.status();
  const bool v6 = given.mcast_group.isV6();
  const SyncRole role =
      given.role == SyncDaemonRole::kMaster ? SyncRole::kMaster : SyncRole::kBackup;
  const SyncDaemonConfig eff = withDefaults(given, syncMaxLen(role, v6, given.sync_maxlen, *mtu));
  SyncSysctls sys;
  {
    std::lock_guard<std::mutex> alock(apply_mu_);
    sys = sysctls_;
  }
  // start_sync_thread: sync_ports is read when no daemon runs; else the running one's count.
  if (master_ == nullptr && backup_ == nullptr)
    threads_ = syncThreadCount(sys.sync_ports);
  if (given.role == SyncDaemonRole::kMaster) {
    auto d = SyncMasterDaemon::start(eff, env_.workers, static_cast<int>(sys.sync_version),
                                     sys.sync_sock_size, threads_);
    if (!d.ok())
      return d.status();
    master_ = std::move(*d);
    publishMasterSysctlsLocked(sys);
  } else {
    auto d = SyncBackupDaemon::start(
        eff, sys.sync_sock_size, [this](const SyncConn& c) { apply(c); }, threads_);
    if (!d.ok())
      return d.status();
    backup_ = std::move(*d);
  }
  return given_.start(given);
}

absl::Status SyncManager::stop(SyncDaemonRole role) {
  std::unique_ptr<SyncMasterDaemon> m;
  std::unique_ptr<SyncBackupDaemon> b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = given_.stop(role); !s.ok())
      return s;
    if (role == SyncDaemonRole::kMaster) {
      // No worker uses the rings once detached; then the daemon may go.
      for (SyncWorkerHook* h : env_.hooks)
        h->detach();
      m = std::move(master_);
      master_sysctls_.clear();  // no worker holds one once detached
    } else {
      b = std::move(backup_);
    }
  }
  return absl::OkStatus();  // m / b stop their threads here, outside the lock
}

void SyncManager::stopAll() {
  (void)stop(SyncDaemonRole::kMaster);
  (void)stop(SyncDaemonRole::kBackup);
}

std::vector<SyncDaemonConfig> SyncManager::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SyncDaemonConfig> out;
  if (master_ != nullptr)
    out.push_back(master_->config());
  if (backup_ != nullptr)
    out.push_back(backup_->config());
  return out;
}

std::vector<SyncDaemonConfig> SyncManager::configured() const {
  std::lock_guard<std::mutex> lock(mu_);
  return given_.list();
}

void SyncManager::setSysctls(const SyncSysctls& s) {
  std::lock_guard<std::mutex> lock(mu_);
  {
    std::lock_guard<std::mutex> alock(apply_mu_);
    if (sysctls_ == s)
      return;
    sysctls_ = s;
  }
  if (master_ != nullptr)
    publishMasterSysctlsLocked(s);
}

void SyncManager::publishMasterSysctlsLocked(const SyncSysctls& s) {
  master_sysctls_.push_back(std::make_unique<SyncSysctls>(s));
  const SyncSysctls* p = master_sysctls_.back().get();
  for (size_t i = 0; i < master_->workers(); ++i)
    master_->queue(i).setLimit(s.sync_qlen_max);
  // attach() stores the rules before the ring (the same one): a worker sees old or new rules.
  for (size_t i = 0; i < env_.hooks.size() && i < master_->workers(); ++i)
    env_.hooks[i]->attach(&master_->queue(i), p);
}

SyncSysctls SyncManager::sysctls() const {
  std::lock_guard<std::mutex> alock(apply_mu_);
  return sysctls_;
}

SyncMasterDaemon* SyncManager::master() const {
  std::lock_guard<std::mutex> lock(mu_);
  return master_.get();
}

uint32_t SyncManager::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return master_ == nullptr && backup_ == nullptr ? 0 : threads_;
}

// The backup's receive thread.
void SyncManager::apply(const SyncConn& c) {
  std::lock_guard<std::mutex> alock(apply_mu_);
  if (env_.conns == nullptr || !env_.snapshot)
    return;
  SnapshotPtr snap = env_.snapshot();
  if (snap == nullptr)
    return;
  applySyncConn(*env_.conns, *snap, env_.runtime, c, sysctls_, env_.now(), backup_counters_);
}

std::vector<std::pair<std::string, uint64_t>> SyncManager::metrics() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  std::lock_guard<std::mutex> lock(mu_);
  if (master_ != nullptr) {
    const SyncMasterCounters& m = master_->counters();
    out.emplace_back("lb_sync_master_messages_total", m.messages.value());
    out.emplace_back("lb_sync_master_bytes_total", m.bytes.value());
    out.emplace_back("lb_sync_master_conns_total", m.conns.value());
    out.emplace_back("lb_sync_master_send_errors_total", m.send_errors.value());
    out.emplace_back("lb_sync_master_unencodable_total", m.unencodable.value());
    out.emplace_back("lb_sync_master_queue_full_total", master_->queueFull());
  }
  if (backup_ != nullptr) {
    const SyncDecodeCounters d = backup_->counters();
    out.emplace_back("lb_sync_backup_messages_total", d.messages);
    out.emplace_back("lb_sync_backup_messages_v0_total", d.messages_v0);
    out.emplace_back("lb_sync_backup_conns_total", d.conns);
    for (size_t r = 0; r < kSyncDropReasonCount; ++r) {
      out.emplace_back(absl::StrCat("lb_sync_drops_total{reason=\"",
                                    syncDropReasonName(static_cast<SyncDropReason>(r)), "\"}"),
                       d.drops[r]);
    }
    std::lock_guard<std::mutex> alock(apply_mu_);
#define LB_SYNC_EMIT(name) \
  out.emplace_back("lb_sync_backup_" #name "_total", backup_counters_.name);
    LB_SYNC_BACKUP_COUNTERS(LB_SYNC_EMIT)
#undef LB_SYNC_EMIT
  }
  return out;
}

}  // namespace lb::lbd::sync
