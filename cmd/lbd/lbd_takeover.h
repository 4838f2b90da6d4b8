// SPDX-License-Identifier: Apache-2.0
// Hot restart, as Envoy's hot restart and HAProxy's seamless reload do it: `lbd --takeover`
// connects to the running lbd's takeover socket (next to its control socket), which stops its
// workers at a batch boundary and hands over its owner lock and TUN queues (SCM_RIGHTS), its
// configuration, the kernel state it installed and its connection table. The new lbd starts
// its workers on the same queues (packets that arrived meanwhile wait in them), re-binds the
// control socket atomically (rename) and says "ok"; the old lbd then exits without removing
// anything. Should the new one fail before "ok", the old one carries on.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/dataplane/dataplane.h"
#include "cmd/lbd/takeover/owner_lock.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbd {

// The old side: answers takeover requests on its own thread.
class TakeoverServer {
 public:
  // Listens at `path` (replacing a previous lbd's socket there atomically). When a new lbd has
  // taken over, sends SIGUSR2 to this process: the main loop then calls handedOver().
  static absl::StatusOr<std::unique_ptr<TakeoverServer>> start(const std::string& path,
                                                               ControlPlane& control,
                                                               Dataplane& dataplane,
                                                               OwnerLock& owner,
                                                               Mode mode,
                                                               std::string mode_name);
  ~TakeoverServer();

  bool handedOver() const { return handed_over_.load(); }

  // Stops the thread; removes the socket unless a new lbd took over (it is the new one's).
  void stop();

 private:
  TakeoverServer(std::string path,
                 int fd,
                 ControlPlane& control,
                 Dataplane& dataplane,
                 OwnerLock& owner,
                 std::string mode_name);
  void loop();
  void serve(int conn);

  std::string path_;
  int fd_;
  ControlPlane& control_;
  Dataplane& dataplane_;
  OwnerLock& owner_;
  std::string mode_name_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> handed_over_{false};
  std::thread thread_;
};

// The new side: what the running lbd handed over, adopted.
struct TakenOver {
  std::unique_ptr<OwnerLock> owner;
  std::unique_ptr<Dataplane> dataplane;
  std::string mode;  // the old lbd's --mode (and options.tun is its device)
  int sock = -1;     // to the old lbd: say "ok" or "fail: ..." on it (finishTakeover)
  // The sync daemons the old lbd ran: started again once the handover is complete.
  std::vector<::lbd::v1::SyncDaemon> sync_daemons;
};

// Connects to `path`, receives the handover, loads the configuration into `table` and adopts
// the dataplane (`options` are this lbd's flags; the mode and TUN device are the old one's).
// On failure the old lbd carries on (it is told why when the socket was reached).
absl::StatusOr<TakenOver> takeOver(const std::string& path,
                                   DataplaneOptions options,
                                   ServiceTable& table,
                                   OwnerInfo me);
// Tells the old lbd the outcome: OK -> it exits; an error -> it resumes. Closes the socket.
void finishTakeover(TakenOver& t, const absl::Status& outcome);

}  // namespace lb::lbd
