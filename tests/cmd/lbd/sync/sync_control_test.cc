// SPDX-License-Identifier: Apache-2.0
// The sync daemons through lbd's control plane (ControlOps with SyncControl on a SyncManager,
// on the loopback device of a private network namespace): StartSyncDaemon / StopSyncDaemon /
// ListSyncDaemons with ipvsadm's errors, lbctl -L --daemon's lines, the daemons kept in the
// state file and started again by the next lbd; and the lbd.v1 conversions.
#include "cmd/lbd/sync/sync_control.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cmd/lbctl/format.h"
#include "cmd/lbd/control/config_file.h"
#include "cmd/lbd/control/control_ops.h"
#include "core/service/service_table.h"
#include "tests/testlib/skip.h"

namespace lb::lbd::sync {
namespace {

namespace pb = ::lbd::v1;

bool privateLoopback() {
  if (unshare(CLONE_NEWNET) != 0)
    return false;
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST;
  const bool ok = s >= 0 && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  if (s >= 0)
    close(s);
  return ok;
}

#define REQUIRE_NETNS()                                                \
  do {                                                                 \
    if (!privateLoopback()) {                                          \
      LB_SKIP_UNLESS_CI("no network namespace (needs CAP_SYS_ADMIN)"); \
    }                                                                  \
  } while (0)

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tempDir() {
  char tmpl[] = "/tmp/lbd_sync_control_XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d == nullptr ? std::string("/tmp") : std::string(d);
}

SyncManager::Env env() {
  SyncManager::Env e;
  e.workers = 2;
  e.now = [] { return MonoTime::fromSeconds(1000); };
  return e;
}

pb::StartSyncDaemonRequest startReq(pb::SyncDaemonRole role) {
  pb::StartSyncDaemonRequest r;
  r.mutable_daemon()->set_role(role);
  r.mutable_daemon()->set_mcast_interface("lo");
  return r;
}

TEST(SyncControl, ProtoRoundTrip) {
  pb::SyncDaemon d;
  d.set_role(pb::SYNC_DAEMON_ROLE_BACKUP);
  d.set_mcast_interface("eth1");
  d.set_syncid(9);
  d.set_sync_maxlen(1200);
  d.set_mcast_group("239.1.2.3");
  d.set_mcast_port(8849);
  d.set_mcast_ttl(3);
  absl::StatusOr<SyncDaemonConfig> c = syncDaemonFromProto(d);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->role, SyncDaemonRole::kBackup);
  EXPECT_EQ(c->mcast_group.toString(), "239.1.2.3");
  EXPECT_EQ(syncDaemonToProto(*c).SerializeAsString(), d.SerializeAsString());
  pb::SyncDaemon none;
  EXPECT_EQ(syncDaemonFromProto(none).status().code(), absl::StatusCode::kInvalidArgument);
  d.set_mcast_group("nope");
  EXPECT_EQ(syncDaemonFromProto(d).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SyncControl, FormatAsIpvsadmListDaemon) {
  pb::ListSyncDaemonsResponse r;
  EXPECT_EQ(lbctl::formatSyncDaemons(r), "");
  pb::SyncDaemon* m = r.add_daemons();
  m->set_role(pb::SYNC_DAEMON_ROLE_MASTER);
  m->set_mcast_interface("eth0");
  m->set_sync_maxlen(1472);
  m->set_mcast_group("224.0.0.81");
  m->set_mcast_port(8848);
  m->set_mcast_ttl(1);
  pb::SyncDaemon* b = r.add_daemons();
  b->set_role(pb::SYNC_DAEMON_ROLE_BACKUP);
  b->set_mcast_interface("eth1");
  b->set_syncid(7);
  EXPECT_EQ(lbctl::formatSyncDaemons(r),
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, "
            "port=8848, ttl=1)\n"
            "backup sync daemon (mcast=eth1, syncid=7)\n");
}

TEST(SyncControl, RpcsStateFileAndRestart) {
  REQUIRE_NETNS();
  const std::string dir = tempDir();
  const std::string state = dir + "/state";
  {
    ServiceTable table;
    SyncManager manager(env());
    SyncControl sc(manager);
    ControlOps ops(table, nullptr, state);
    ops.setSyncHooks(&sc);
    ASSERT_TRUE(ops.loadInitial("").ok());
    ASSERT_TRUE(ops.startSyncDaemon(startReq(pb::SYNC_DAEMON_ROLE_MASTER)).ok());
    EXPECT_EQ(ops.startSyncDaemon(startReq(pb::SYNC_DAEMON_ROLE_MASTER)).code(),
              absl::StatusCode::kAlreadyExists);
    pb::StartSyncDaemonRequest bad = startReq(pb::SYNC_DAEMON_ROLE_BACKUP);
    bad.mutable_daemon()->set_mcast_interface("nosuch0");
    EXPECT_EQ(ops.startSyncDaemon(bad).code(), absl::StatusCode::kInvalidArgument);
    pb::StartSyncDaemonRequest backup = startReq(pb::SYNC_DAEMON_ROLE_BACKUP);
    backup.mutable_daemon()->set_syncid(5);
    ASSERT_TRUE(ops.startSyncDaemon(backup).ok());

    pb::ListSyncDaemonsResponse list;
    ASSERT_TRUE(ops.listSyncDaemons(&list).ok());
    ASSERT_EQ(list.daemons_size(), 2);
    const std::string lines = lbctl::formatSyncDaemons(list);
    EXPECT_EQ(lines.substr(0, lines.find('\n')),
              "master sync daemon (mcast=lo, syncid=0, maxlen=1472, group=224.0.0.81, "
              "port=8848, ttl=1)")
        << lines;
    EXPECT_NE(lines.find("backup sync daemon (mcast=lo, syncid=5, "), std::string::npos) << lines;

    // The state file keeps them as given (no effective defaults written).
    const std::string text = slurp(state);
    EXPECT_NE(text.find("sync_daemons {"), std::string::npos) << text;
    std::vector<pb::SyncDaemon> kept;
    ASSERT_TRUE(readStateFile(state, &kept).ok());
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0].role(), pb::SYNC_DAEMON_ROLE_MASTER);
    EXPECT_EQ(kept[0].sync_maxlen(), 0u);
    EXPECT_EQ(kept[1].syncid(), 5u);

    pb::StopSyncDaemonRequest stop;
    stop.set_role(pb::SYNC_DAEMON_ROLE_MASTER);
    ASSERT_TRUE(ops.stopSyncDaemon(stop).ok());
    EXPECT_EQ(ops.stopSyncDaemon(stop).code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(readStateFile(state, &kept).ok());
    ASSERT_EQ(kept.size(), 1u);
    EXPECT_EQ(kept[0].role(), pb::SYNC_DAEMON_ROLE_BACKUP);
  }
  {
    // The next lbd starts the backup again from the state file.
    ServiceTable table;
    SyncManager manager(env());
    SyncControl sc(manager);
    ControlOps ops(table, nullptr, state);
    ops.setSyncHooks(&sc);
    ASSERT_TRUE(ops.loadInitial("").ok());
    pb::ListSyncDaemonsResponse list;
    ASSERT_TRUE(ops.listSyncDaemons(&list).ok());
    ASSERT_EQ(list.daemons_size(), 1);
    EXPECT_EQ(list.daemons(0).role(), pb::SYNC_DAEMON_ROLE_BACKUP);
    EXPECT_EQ(list.daemons(0).syncid(), 5u);
    EXPECT_EQ(list.daemons(0).mcast_port(), 8848u);
  }
  std::remove(state.c_str());
  rmdir(dir.c_str());
}

TEST(SyncControl, WithoutHooksUnimplemented) {
  ServiceTable table;
  ControlOps ops(table, nullptr, "");
  EXPECT_EQ(ops.startSyncDaemon(startReq(pb::SYNC_DAEMON_ROLE_MASTER)).code(),
            absl::StatusCode::kUnimplemented);
  pb::ListSyncDaemonsResponse list;
  EXPECT_TRUE(ops.listSyncDaemons(&list).ok());
  EXPECT_EQ(list.daemons_size(), 0);
}

}  // namespace
}  // namespace lb::lbd::sync
