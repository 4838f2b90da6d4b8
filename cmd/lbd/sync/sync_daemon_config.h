// SPDX-License-Identifier: Apache-2.0
// The connection synchronisation daemons' configuration (ipvsadm --start-daemon; the kernel's
// struct ipvs_sync_daemon_cfg and start_sync_thread / stop_sync_thread in ip_vs_sync.c):
// what each of the two daemons (one master, one backup, both at once if asked) was started
// with, the kernel's defaults and checks, and the line ipvsadm -L --daemon prints for it.
// No sockets or threads here: the daemons themselves (sync_daemon.h) take a config from this.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "core/base/addr.h"

namespace lb::lbd::sync {

enum class SyncDaemonRole : uint8_t {
  kMaster = 1,  // IP_VS_STATE_MASTER
  kBackup = 2,  // IP_VS_STATE_BACKUP
};

// "master" / "backup", as ipvsadm spells them.
const char* syncDaemonRoleName(SyncDaemonRole role);
std::optional<SyncDaemonRole> parseSyncDaemonRole(const std::string& name);

// One daemon's options. Zero / empty values take the kernel's defaults (withDefaults).
struct SyncDaemonConfig {
  SyncDaemonRole role = SyncDaemonRole::kMaster;
  std::string mcast_ifn;     // --mcast-interface (lbctl fills ipvsadm's "eth0"); 1..15 chars
  uint32_t syncid = 0;       // --syncid 0..255; a backup with 0 accepts every syncid
  uint32_t sync_maxlen = 0;  // --sync-maxlen; 0: from the interface's MTU
  IpAddr mcast_group;        // --mcast-group; unspecified: 224.0.0.81
  uint16_t mcast_port = 0;   // --mcast-port; 0: 8848
  uint8_t mcast_ttl = 0;     // --mcast-ttl; 0: 1
  friend bool operator==(const SyncDaemonConfig&, const SyncDaemonConfig&) = default;
};

// The kernel's and ipvsadm's checks of a start request: an interface name of 1..15
// characters (IP_VS_IFNAME_MAXLEN 16 with its NUL), syncid <= 255, a multicast group (IPv4 or
// IPv6), sync_maxlen <= 65535 - IP - UDP headers. InvalidArgument naming the value.
absl::Status validateSyncDaemonConfig(const SyncDaemonConfig& c);

// The defaults the kernel fills at start (start_sync_thread): group 224.0.0.81, port 8848,
// TTL 1; sync_maxlen = `effective_maxlen` (the caller computes it from the interface's MTU
// with core/sync's syncMaxLen, as the kernel does at start). ipvsadm -L --daemon shows these.
SyncDaemonConfig withDefaults(const SyncDaemonConfig& c, uint32_t effective_maxlen);

// The line ipvsadm -L --daemon prints for a running daemon (ipvsadm.c list_daemon, with the
// kernel's netlink reply, which carries every field):
// "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
// Fields that are 0 / unspecified are left out, as list_daemon leaves them out.
std::string formatDaemonLine(const SyncDaemonConfig& c);

// The command line that starts the daemon again ("--start-daemon master --mcast-interface eth0
// --syncid 3 ..."), with only the options that were given (a zero is not written).
std::string startDaemonLine(const SyncDaemonConfig& c);

// The daemons of one lbd: at most one master and one backup (the kernel's ipvs->mcfg and
// ipvs->bcfg). Not thread-safe: the control plane holds its lock around it.
class SyncDaemonSet {
 public:
  // AlreadyExists "Daemon has already run" if a daemon of that role runs (EEXIST, which
  // ipvsadm prints so); InvalidArgument from validateSyncDaemonConfig.
  absl::Status start(const SyncDaemonConfig& c);
  // NotFound "No daemon is running" (ESRCH) if none of that role runs.
  absl::Status stop(SyncDaemonRole role);
  // Master first, then backup (the order of the kernel's GET_DAEMON dump).
  std::vector<SyncDaemonConfig> list() const;
  const std::optional<SyncDaemonConfig>& get(SyncDaemonRole role) const;

 private:
  std::array<std::optional<SyncDaemonConfig>, 2> daemons_;  // [0] master, [1] backup
};

}  // namespace lb::lbd::sync
