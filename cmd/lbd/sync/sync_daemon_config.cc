// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_daemon_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lb::lbd::sync {
namespace {

constexpr uint32_t kDefaultGroupV4 = 0xe0000051;  // 224.0.0.81 (IP_VS_SYNC_GROUP)
constexpr uint16_t kDefaultPort = 8848;           // IP_VS_SYNC_PORT
constexpr uint8_t kDefaultTtl = 1;
constexpr size_t kIfnameMax = 15;                // IP_VS_IFNAME_MAXLEN - 1
constexpr uint32_t kMaxlenMax = 65535 - 20 - 8;  // ipvsadm's check (IPv4 + UDP headers)

size_t slot(SyncDaemonRole role) {
  return role == SyncDaemonRole::kMaster ? 0 : 1;
}

bool isMulticast(const IpAddr& a) {
  return a.isV4() ? (a.data()[0] & 0xf0) == 0xe0 : a.data()[0] == 0xff;
}

}  // namespace

const char* syncDaemonRoleName(SyncDaemonRole role) {
  return role == SyncDaemonRole::kMaster ? "master" : "backup";
}

std::optional<SyncDaemonRole> parseSyncDaemonRole(const std::string& name) {
  if (name == "master")
    return SyncDaemonRole::kMaster;
  if (name == "backup")
    return SyncDaemonRole::kBackup;
  return std::nullopt;
}

absl::Status validateSyncDaemonConfig(const SyncDaemonConfig& c) {
  if (c.role != SyncDaemonRole::kMaster && c.role != SyncDaemonRole::kBackup)
    return absl::InvalidArgumentError("sync daemon state must be master or backup");
  if (c.mcast_ifn.empty() || c.mcast_ifn.size() > kIfnameMax ||
      c.mcast_ifn.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid mcast interface `%s' (1..%d characters)", c.mcast_ifn,
                        static_cast<int>(kIfnameMax)));
  }
  if (c.syncid > 255)
    return absl::InvalidArgumentError(absl::StrFormat("illegal syncid %u (0..255)", c.syncid));
  if (c.sync_maxlen > kMaxlenMax) {
    return absl::InvalidArgumentError(
        absl::StrFormat("illegal sync-maxlen %u (1..%u)", c.sync_maxlen, kMaxlenMax));
  }
  if (!c.mcast_group.isUnspecified() && !isMulticast(c.mcast_group)) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid %s mcast-group `%s'",
                                                      c.mcast_group.isV6() ? "IPv6" : "IPv4",
                                                      c.mcast_group.toString()));
  }
  return absl::OkStatus();
}

SyncDaemonConfig withDefaults(const SyncDaemonConfig& c, uint32_t effective_maxlen) {
  SyncDaemonConfig e = c;
  if (e.mcast_group.isUnspecified())
    e.mcast_group = IpAddr::v4(kDefaultGroupV4);
  if (e.mcast_port == 0)
    e.mcast_port = kDefaultPort;
  if (e.mcast_ttl == 0)
    e.mcast_ttl = kDefaultTtl;
  e.sync_maxlen = effective_maxlen;
  return e;
}

std::string formatDaemonLine(const SyncDaemonConfig& c) {
  std::string out =
      absl::StrFormat("%s sync daemon (mcast=%s, syncid=%d", syncDaemonRoleName(c.role),
                      c.mcast_ifn, static_cast<int>(c.syncid));
  if (c.sync_maxlen != 0)
    absl::StrAppendFormat(&out, ", maxlen=%u", c.sync_maxlen);
  if (!c.mcast_group.isUnspecified())
    absl::StrAppend(&out, ", group=", c.mcast_group.toString());
  if (c.mcast_port != 0)
    absl::StrAppendFormat(&out, ", port=%u", c.mcast_port);
  if (c.mcast_ttl != 0)
    absl::StrAppendFormat(&out, ", ttl=%u", c.mcast_ttl);
  out += ")\n";
  return out;
}

std::string startDaemonLine(const SyncDaemonConfig& c) {
  std::string out = absl::StrCat("--start-daemon ", syncDaemonRoleName(c.role));
  if (!c.mcast_ifn.empty())
    absl::StrAppend(&out, " --mcast-interface ", c.mcast_ifn);
  if (c.syncid != 0)
    absl::StrAppend(&out, " --syncid ", c.syncid);
  if (c.sync_maxlen != 0)
    absl::StrAppend(&out, " --sync-maxlen ", c.sync_maxlen);
  if (!c.mcast_group.isUnspecified())
    absl::StrAppend(&out, " --mcast-group ", c.mcast_group.toString());
  if (c.mcast_port != 0)
    absl::StrAppend(&out, " --mcast-port ", c.mcast_port);
  if (c.mcast_ttl != 0)
    absl::StrAppend(&out, " --mcast-ttl ", static_cast<unsigned>(c.mcast_ttl));
  return out;
}

absl::Status SyncDaemonSet::start(const SyncDaemonConfig& c) {
  if (absl::Status s = validateSyncDaemonConfig(c); !s.ok())
    return s;
  std::optional<SyncDaemonConfig>& d = daemons_[slot(c.role)];
  if (d.has_value())
    return absl::AlreadyExistsError("Daemon has already run");
  d = c;
  return absl::OkStatus();
}

absl::Status SyncDaemonSet::stop(SyncDaemonRole role) {
  std::optional<SyncDaemonConfig>& d = daemons_[slot(role)];
  if (!d.has_value())
    return absl::NotFoundError("No daemon is running");
  d.reset();
  return absl::OkStatus();
}

std::vector<SyncDaemonConfig> SyncDaemonSet::list() const {
  std::vector<SyncDaemonConfig> out;
  for (const auto& d : daemons_) {
    if (d.has_value())
      out.push_back(*d);
  }
  return out;
}

const std::optional<SyncDaemonConfig>& SyncDaemonSet::get(SyncDaemonRole role) const {
  return daemons_[slot(role)];
}

}  // namespace lb::lbd::sync
