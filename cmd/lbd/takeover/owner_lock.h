// SPDX-License-Identifier: Apache-2.0
// One lbd per network namespace. Everything lbd installs (routes with protocol 245, rules at
// preferences 100..150, table 245, proxy entries, sysctls) is namespace-wide, and a start
// removes a crashed run's leftovers of all of it, so a second lbd in the same namespace would
// take the running one's routes away. Before lbd touches the kernel it takes an exclusive
// flock(2) on RUN_DIR/owner-<netns>.lock and writes its pid, TUN device and control socket
// into it; a second lbd finds the lock held, names the owner and exits having changed nothing.
// The lock is the proof that the previous owner is gone (the kernel drops it when the process
// dies, even by kill -9); only then are leftovers cleaned.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lb::lbd {

// What the lock file records about its owner.
struct OwnerInfo {
  int pid = 0;
  std::string tun;
  std::string mode;
  std::string listen;  // the control socket, e.g. unix:///run/lbd/lbd.sock
};

// Holds the namespace's owner lock until destroyed (or the process exits). Control thread.
class OwnerLock {
 public:
  // Takes the lock for the current network namespace under `run_dir` (created 0755 if missing)
  // without waiting. FailedPrecondition naming the running owner (pid, TUN, control socket)
  // when another process holds it; Internal for I/O errors. Nothing is written unless the lock
  // was taken.
  static absl::StatusOr<std::unique_ptr<OwnerLock>> acquire(const std::string& run_dir,
                                                            const OwnerInfo& me);
  // Takes over an fd of the lock file received from the previous owner (hot restart): the
  // flock belongs to the open file description, so it carries over. The record is left as it
  // is until record() (once the takeover is complete).
  static absl::StatusOr<std::unique_ptr<OwnerLock>> adopt(int fd, std::string path);
  // Rewrites the record with `me`. Internal on I/O errors.
  absl::Status record(const OwnerInfo& me);

  // Hot restart, the old side: the new lbd holds the lock now; the destructor leaves the file
  // (otherwise it removes it, still locked, when lbd stops).
  void handedOver() { handed_over_ = true; }

  ~OwnerLock();
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

  int fd() const { return fd_; }

  const std::string& path() const { return path_; }

  // RUN_DIR/owner-<id>.lock, <id> the namespace's cookie (SO_NETNS_COOKIE, never reused) or,
  // on kernels before 5.14, the inode of /proc/self/ns/net. Empty if neither can be read.
  static std::string lockPath(const std::string& run_dir);
  // Parses a lock file's text; fields it lacks stay empty / 0.
  static OwnerInfo parse(const std::string& text);
  static std::string format(const OwnerInfo& info);

 private:
  OwnerLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
  bool handed_over_ = false;
};

// With the lock held: checks that no lbd not sharing `run_dir` (another mount namespace, a
// different --run-dir) is alive in this namespace. lbd's routes all point into its TUN device
// and the kernel removes them with the device, which goes when its owner's last fd closes; so
// a protocol-245 route, or an existing device named `tun`, means a live owner. Waits up to
// `wait_ms` for them to vanish (an owner that is exiting right now), then FailedPrecondition
// naming what is there. Reads only.
absl::Status checkNoLiveOwner(const std::string& tun, int wait_ms);

}  // namespace lb::lbd
