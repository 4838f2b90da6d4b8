// SPDX-License-Identifier: Apache-2.0
// lbd's packet side: TUN queues, worker threads running core::Pipeline, raw and AF_PACKET
// sockets, netlink state (routes, rules, addresses, proxy ARP/NDP, sysctls), decap mode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "cmd/lbd/control/control_plane.h"
#include "cmd/lbd/dataplane/handover.h"
#include "core/service/service_table.h"

namespace lb {
class ConnSyncHook;  // core/pipeline/pipeline.h
}  // namespace lb

namespace lb::lbd {

enum class Mode { kGateway, kSidecar, kDecap };

struct DataplaneOptions {
  std::string tun = "lbd0";
  Mode mode = Mode::kGateway;
  int workers = 0;                 // 0 = one per CPU
  size_t conn_capacity = 1 << 20;  // connection table entries
  // Decap mode: the UDP port GUE packets arrive on (no IANA port exists; 5555 is lbd's
  // default and must match the LB's `--tun-port`). IPIP needs no port.
  uint16_t gue_port = 5555;
  // Ask TUN for checksum/TSO/USO offloads (off: the kernel segments and checksums first).
  bool offloads = true;
  // Direct Ethernet egress: forwarded packets to a learned next hop leave through AF_PACKET on
  // the egress interface instead of the TUN device (see neigh_cache.h). Off: always TUN.
  bool direct_egress = true;
  // The tc ingress BPF fast path (io/bpf): packets for VIPs, local addresses and NAT replies
  // go from the Ethernet devices straight to the TUN device. Falls back to the kernel path
  // (with a warning) where BPF is not permitted or lbd was built without libbpf.
  bool bpf_fast_path = true;
  // Flow offload (gateway mode, with the tc fast path): NAT and full-NAT conns are forwarded by
  // the tc program itself once `flow_offload_min_packets` client packets went through lbd (1: a
  // TCP conn from its SYN on); lbd follows their state from the program (flow_offload.h).
  bool flow_offload = true;
  uint32_t flow_offload_min_packets = 1;
  // The FTP helper's control ports (ip_vs_ftp's ports=, at most 8; empty: off). NAT and
  // full-NAT TCP services on these ports get PASV/EPSV/PORT/EPRT handled (core/pipeline/ftp.h).
  std::vector<uint16_t> ftp_ports{21};
  // lbd's runtime directory: the sysctl journal that lets the next start undo a crashed run's
  // sysctl changes lives here (empty = no journal).
  std::string run_dir = "/run/lbd";
  // Connection synchronisation's master side: worker i's pipeline calls sync_hooks[i] after
  // each client packet (core/pipeline's ConnSyncHook; workers beyond the vector: none). The
  // hooks must outlive the dataplane.
  std::vector<ConnSyncHook*> sync_hooks;
  // The same for the conns the flow offload's fast path forwards: FlowOffload calls it with
  // the state the fast path last reported (ConnSyncHook::onFastPathReport). Null: none.
  ConnSyncHook* offload_sync_hook = nullptr;
};

class Dataplane : public DataplaneHooks {
 public:
  // Creates the TUN device and sockets and installs base kernel state. Errors name the step.
  static absl::StatusOr<std::unique_ptr<Dataplane>> create(const DataplaneOptions& options,
                                                           ServiceTable& table);
  // Starts the workers and the housekeeping (expiry, estimator) thread.
  virtual absl::Status start() = 0;
  // Stops workers and removes every route, rule, address and sysctl change it made.
  // Idempotent.
  virtual void stop() = 0;

  // Hot restart (lbd --takeover), the new side, in two steps so that the old lbd's workers
  // pause only for the second. adopt(): a dataplane on the running lbd's TUN queues (owned
  // from the call on), whose configuration `table` already holds: conn table, workers and
  // the tc program (attached behind the old one's) made, nothing cleaned up or installed,
  // nothing read from the queues yet. completeHandover(): the kernel state the old lbd
  // installed and its conns (after its pauseForHandover); then start().
  static absl::StatusOr<std::unique_ptr<Dataplane>> adopt(const DataplaneOptions& options,
                                                          ServiceTable& table,
                                                          std::vector<int> tun_fds);
  virtual absl::Status completeHandover(const DataplaneHandover& rest) = 0;
  // The old side. Stops the workers at a batch boundary and the housekeeping thread, folds
  // what the tc program forwarded into the conns and detaches it (packets take the kernel's
  // path into the TUN device, where they wait for the next reader), then exports. Kernel
  // state stays. The fds stay this dataplane's.
  virtual absl::StatusOr<DataplaneHandover> pauseForHandover() = 0;
  // The TUN queue fds, still this dataplane's (sent in the handover's first step).
  virtual std::vector<int> tunFds() const = 0;
  // The handover failed: the fast path is attached again and the workers restart (without
  // the flow offload, whose map went with the detached program).
  virtual absl::Status resumeAfterHandover() = 0;
  // The handover succeeded: from now on stop() and the destructor remove nothing.
  virtual void abandon() = 0;
};

}  // namespace lb::lbd
