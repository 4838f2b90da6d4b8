// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/sync/sync_control.h"

#include <optional>

#include "absl/strings/str_cat.h"

namespace lb::lbd::sync {

namespace pb = ::lbd::v1;

namespace {

std::optional<SyncDaemonRole> roleFromProto(pb::SyncDaemonRole r) {
  switch (r) {
    case pb::SYNC_DAEMON_ROLE_MASTER:
      return SyncDaemonRole::kMaster;
    case pb::SYNC_DAEMON_ROLE_BACKUP:
      return SyncDaemonRole::kBackup;
    default:
      return std::nullopt;
  }
}

std::vector<pb::SyncDaemon> toProto(const std::vector<SyncDaemonConfig>& v) {
  std::vector<pb::SyncDaemon> out;
  out.reserve(v.size());
  for (const SyncDaemonConfig& c : v)
    out.push_back(syncDaemonToProto(c));
  return out;
}

}  // namespace

SyncSysctls syncSysctlsFrom(const Sysctls& s) {
  SyncSysctls o;
  o.sync_threshold = s.sync_threshold;
  o.sync_period = s.sync_period;
  o.sync_refresh_period_s = s.sync_refresh_period_s;
  o.sync_retries = s.sync_retries;
  o.sync_persist_mode = s.sync_persist_mode;
  o.sync_version = s.sync_version;
  o.sync_qlen_max = s.sync_qlen_max;
  o.sync_sock_size = s.sync_sock_size;
  o.sync_ports = s.sync_ports;
  return o;
}

absl::StatusOr<SyncDaemonConfig> syncDaemonFromProto(const pb::SyncDaemon& d) {
  std::optional<SyncDaemonRole> role = roleFromProto(d.role());
  if (!role)
    return absl::InvalidArgumentError("sync daemon: role must be master or backup");
  SyncDaemonConfig c;
  c.role = *role;
  c.mcast_ifn = d.mcast_interface();
  c.syncid = d.syncid();
  c.sync_maxlen = d.sync_maxlen();
  if (!d.mcast_group().empty()) {
    std::optional<IpAddr> g = IpAddr::parse(d.mcast_group());
    if (!g)
      return absl::InvalidArgumentError(
          absl::StrCat("invalid mcast-group `", d.mcast_group(), "'"));
    c.mcast_group = *g;
  }
  if (d.mcast_port() > 65535)
    return absl::InvalidArgumentError(absl::StrCat("illegal mcast-port ", d.mcast_port()));
  c.mcast_port = static_cast<uint16_t>(d.mcast_port());
  if (d.mcast_ttl() > 255)
    return absl::InvalidArgumentError(absl::StrCat("illegal mcast-ttl ", d.mcast_ttl()));
  c.mcast_ttl = static_cast<uint8_t>(d.mcast_ttl());
  return c;
}

pb::SyncDaemon syncDaemonToProto(const SyncDaemonConfig& c) {
  pb::SyncDaemon d;
  d.set_role(c.role == SyncDaemonRole::kMaster ? pb::SYNC_DAEMON_ROLE_MASTER
                                               : pb::SYNC_DAEMON_ROLE_BACKUP);
  d.set_mcast_interface(c.mcast_ifn);
  d.set_syncid(c.syncid);
  d.set_sync_maxlen(c.sync_maxlen);
  if (!c.mcast_group.isUnspecified())
    d.set_mcast_group(c.mcast_group.toString());
  d.set_mcast_port(c.mcast_port);
  d.set_mcast_ttl(c.mcast_ttl);
  return d;
}

absl::Status SyncControl::start(const pb::SyncDaemon& d) {
  absl::StatusOr<SyncDaemonConfig> c = syncDaemonFromProto(d);
  if (!c.ok())
    return c.status();
  if (table_ != nullptr)
    manager_.setSysctls(syncSysctlsFrom(table_->config().sysctls));
  return manager_.start(*c);
}

absl::Status SyncControl::stop(pb::SyncDaemonRole role) {
  std::optional<SyncDaemonRole> r = roleFromProto(role);
  if (!r)
    return absl::InvalidArgumentError("sync daemon: role must be master or backup");
  return manager_.stop(*r);
}

std::vector<pb::SyncDaemon> SyncControl::running() const {
  return toProto(manager_.list());
}

std::vector<pb::SyncDaemon> SyncControl::configured() const {
  return toProto(manager_.configured());
}

}  // namespace lb::lbd::sync
