// SPDX-License-Identifier: Apache-2.0
#include "core/service/service_table.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/core/service/service_test_util.h"

namespace lb {
namespace {

using ::lb::testing::dest;
using ::lb::testing::fwmKey;
using ::lb::testing::ip;
using ::lb::testing::key;
using ::lb::testing::persistentSvc;
using ::lb::testing::svc;
using ::lb::testing::tcpKey;
using ::testing::ElementsAre;

const ServiceKey kVip = tcpKey("198.18.0.1", 80);

std::vector<IpAddr> destAddrs(const ServiceTable& t, size_t svc_index = 0) {
  std::vector<IpAddr> out;
  for (const DestConfig& d : t.config().services[svc_index].dests)
    out.push_back(d.addr);
  return out;
}

DestId idOf(const ServiceTable& t,
            const char* addr,
            uint16_t port = 80,
            const ServiceKey& k = kVip) {
  absl::StatusOr<DestId> id = t.destId(k, ip(addr), port);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.ok() ? *id : kNoDest;
}

TEST(ServiceKeyTest, ToStringNamesEveryKind) {
  EXPECT_EQ(tcpKey("198.18.0.1", 80).toString(), "TCP 198.18.0.1:80");
  EXPECT_EQ(key(L4Proto::kUdp, "2001:2::1", 53).toString(), "UDP [2001:2::1]:53");
  EXPECT_EQ(key(L4Proto::kSctp, "198.18.0.1", 9).toString(), "SCTP 198.18.0.1:9");
  EXPECT_EQ(fwmKey(7).toString(), "FWM 7");
  EXPECT_EQ(fwmKey(7, Af::kInet6).toString(), "FWM 7 IPv6");
}

// ipvsadm's order: fwmark, af, protocol, addr, port.
TEST(ServiceKeyTest, OrdersLikeIpvsadm) {
  std::vector<ServiceKey> keys = {fwmKey(1),
                                  key(L4Proto::kUdp, "198.18.0.1", 53),
                                  tcpKey("2001:2::1", 80),
                                  tcpKey("198.18.0.2", 80),
                                  tcpKey("198.18.0.1", 443),
                                  tcpKey("198.18.0.1", 80)};
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> names;
  for (const ServiceKey& k : keys)
    names.push_back(k.toString());
  EXPECT_THAT(names, ElementsAre("TCP 198.18.0.1:80", "TCP 198.18.0.1:443", "TCP 198.18.0.2:80",
                                 "UDP 198.18.0.1:53", "TCP [2001:2::1]:80", "FWM 1"));
}

TEST(ServiceTableTest, EveryCommitBuildsANewSnapshot) {
  ServiceTable t;
  EXPECT_EQ(t.snapshot()->generation(), 0u);
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  EXPECT_EQ(t.snapshot()->generation(), 1u);
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  EXPECT_EQ(t.snapshot()->generation(), 2u);
  ASSERT_EQ(t.snapshot()->services().size(), 1u);
  const SnapService& s = t.snapshot()->services()[0];
  EXPECT_EQ(s.config.key, kVip);
  EXPECT_EQ(s.netmask_prefix, 32);
  EXPECT_EQ(t.config().services[0].service.netmask, 32u);  // 0 normalised to the full prefix
  EXPECT_EQ(t.snapshot()->runtime(), &t.runtime());
  absl::StatusOr<ServiceId> id = t.serviceId(kVip);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(s.id, *id);
  EXPECT_EQ(t.snapshot()->service(*id), &s);
}

// list_add_rcu at the head: the newest dest comes first, in config() and in the snapshot.
TEST(ServiceTableTest, NewDestsGoToTheFront) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  for (const char* a : {"198.18.1.1", "198.18.1.2", "198.18.1.3"}) {
    ASSERT_TRUE(t.addDest(kVip, dest(a, 80)).ok());
  }
  EXPECT_THAT(destAddrs(t), ElementsAre(ip("198.18.1.3"), ip("198.18.1.2"), ip("198.18.1.1")));
  const SnapService& s = t.snapshot()->services()[0];
  EXPECT_THAT(s.dests,
              ElementsAre(idOf(t, "198.18.1.3"), idOf(t, "198.18.1.2"), idOf(t, "198.18.1.1")));
  // An edit keeps the position.
  ASSERT_TRUE(t.editDest(kVip, dest("198.18.1.2", 80, FwdMethod::kMasq, 5)).ok());
  EXPECT_THAT(destAddrs(t), ElementsAre(ip("198.18.1.3"), ip("198.18.1.2"), ip("198.18.1.1")));
  EXPECT_EQ(t.config().services[0].dests[1].weight, 5u);
  const SnapDest* d = t.snapshot()->dest(idOf(t, "198.18.1.2"));
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->config.weight, 5u);
  EXPECT_TRUE(d->available);
}

// ipvsadm forces DR/tunnel dest ports to the service port; the table keeps what it is given.
TEST(ServiceTableTest, DirectRouteDestKeepsItsPort) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 8080, FwdMethod::kDirectRoute)).ok());
  EXPECT_EQ(t.config().services[0].dests[0].port, 8080);
}

TEST(ServiceTableTest, TunnelDestMayMixFamilies) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  EXPECT_TRUE(t.addDest(kVip, dest("2001:2::7", 80, FwdMethod::kTunnel)).ok());
  DestConfig gue = dest("198.18.1.8", 80, FwdMethod::kTunnel);
  gue.tun_type = TunType::kGue;
  gue.tun_port = 6080;
  gue.tun_csum = TunCsum::kRemCsum;
  EXPECT_TRUE(t.addDest(kVip, gue).ok());
}

TEST(ServiceTableTest, FwmarkKeysAreNormalised) {
  ServiceTable t;
  ServiceConfig c = svc(fwmKey(7));
  c.key.proto = L4Proto::kUdp;  // ignored for fwmark services
  c.key.vaddr = ip("198.18.0.1");
  c.key.vport = 99;
  ASSERT_TRUE(t.addService(c).ok());
  const ServiceKey& k = t.config().services[0].service.key;
  EXPECT_EQ(k.proto, L4Proto::kTcp);
  EXPECT_EQ(k.vport, 0);
  EXPECT_EQ(k.vaddr, IpAddr());
  EXPECT_EQ(t.addService(svc(fwmKey(7))).code(), absl::StatusCode::kAlreadyExists);
  // An IPv6 service with the same mark is a different service.
  EXPECT_TRUE(t.addService(svc(fwmKey(7, Af::kInet6))).ok());
  EXPECT_EQ(t.config().services[1].service.netmask, 128u);
  ServiceKey del = fwmKey(7);
  del.proto = L4Proto::kSctp;
  EXPECT_TRUE(t.deleteService(del).ok());
  EXPECT_EQ(t.config().services.size(), 1u);
}

TEST(ServiceTableTest, EditServiceReplacesAttributesKeepsDestsAndPool) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(persistentSvc(kVip, 600)).ok());
  ASSERT_TRUE(t.addLocalAddr(kVip, ip("198.18.9.1")).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80, FwdMethod::kFullNat)).ok());
  ServiceConfig e = svc(kVip, "wlc");  // -E without -p: persistence cleared
  ASSERT_TRUE(t.editService(e).ok());
  const ServiceConfig& got = t.config().services[0].service;
  EXPECT_EQ(got.scheduler, "wlc");
  EXPECT_EQ(got.flags, 0u);
  EXPECT_THAT(got.local_addrs, ElementsAre(ip("198.18.9.1")));
  EXPECT_EQ(t.config().services[0].dests.size(), 1u);
  EXPECT_NE(t.snapshot()->services()[0].laddr_pool, nullptr);
}

TEST(ServiceTableTest, OnePacketAllowedForUdpAndFwmark) {
  ServiceTable t;
  ServiceConfig udp = svc(key(L4Proto::kUdp, "198.18.0.1", 53));
  udp.flags = kSvcOnePacket;
  EXPECT_TRUE(t.addService(udp).ok());
  ServiceConfig fwm = svc(fwmKey(3));
  fwm.flags = kSvcOnePacket;
  EXPECT_TRUE(t.addService(fwm).ok());
}

// ipvsadm refuses sh-* flags without -s sh; the kernel takes raw bits, and so does the table.
TEST(ServiceTableTest, SchedulerFlagsAreAcceptedAsRawBits) {
  ServiceTable t;
  ServiceConfig c = svc(kVip, "sh");
  c.flags = kSchedFlag1 | kSchedFlag2;
  EXPECT_TRUE(t.addService(c).ok());
  ServiceConfig rr = svc(tcpKey("198.18.0.2", 80), "rr");
  rr.flags = kSchedFlag1 | kSchedFlag2 | kSchedFlag3;
  EXPECT_TRUE(t.addService(rr).ok());
  EXPECT_EQ(t.config().services[1].service.flags, kSchedFlag1 | kSchedFlag2 | kSchedFlag3);
}

TEST(ServiceTableTest, SipPersistenceEngineAccepted) {
  ServiceTable t;
  ServiceConfig c = persistentSvc(key(L4Proto::kUdp, "198.18.0.1", 5060));
  c.pe_name = "sip";
  EXPECT_TRUE(t.addService(c).ok());
}

TEST(ServiceTableTest, DeleteServiceDeletesItsDests) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  const DestId d = idOf(t, "198.18.1.1");
  ASSERT_TRUE(t.deleteService(kVip).ok());
  EXPECT_TRUE(t.config().services.empty());
  EXPECT_EQ(t.destId(kVip, ip("198.18.1.1"), 80).status().code(), absl::StatusCode::kNotFound);
  // No conn held it, so the id was freed with the commit.
  EXPECT_EQ(t.snapshot()->dest(d), nullptr);
  EXPECT_EQ(t.trashSizeForTest(), 0u);
}

TEST(ServiceTableTest, FlushRemovesServicesKeepsTimeoutsAndRules) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.setTimeouts(Timeouts{100, 0, 0}).ok());
  ASSERT_TRUE(t.flush().ok());
  EXPECT_TRUE(t.config().services.empty());
  EXPECT_EQ(t.config().timeouts.tcp, 100u);
  EXPECT_EQ(t.snapshot()->findService(Af::kInet, L4Proto::kTcp, ip("198.18.0.1"), 80, 0), nullptr);
}

// --set: zero keeps the current value.
TEST(ServiceTableTest, SetTimeoutsZeroKeeps) {
  ServiceTable t;
  EXPECT_EQ(t.snapshot()->timeouts().tcp[kTcpEstablished], seconds(900));
  ASSERT_TRUE(t.setTimeouts(Timeouts{0, 60, 0}).ok());
  EXPECT_EQ(t.config().timeouts, (Timeouts{900, 60, 300}));
  ASSERT_TRUE(t.setTimeouts(Timeouts{1000, 0, 30}).ok());
  EXPECT_EQ(t.config().timeouts, (Timeouts{1000, 60, 30}));
  const ProtoTimeouts& pt = t.snapshot()->timeouts();
  EXPECT_EQ(pt.tcp[kTcpEstablished], seconds(1000));
  EXPECT_EQ(pt.tcp[kTcpFinWait], seconds(60));
  EXPECT_EQ(pt.udp, seconds(30));
  EXPECT_EQ(pt.tcp[kTcpSynRecv], seconds(60));  // not settable: the kernel default
}

TEST(ServiceTableTest, SysctlsReachTheSnapshot) {
  ServiceTable t;
  Sysctls s;
  s.expire_nodest_conn = true;
  s.conn_reuse_mode = 3;
  s.secure_tcp = 3;
  ASSERT_TRUE(t.setSysctls(s).ok());
  EXPECT_EQ(t.snapshot()->sysctls(), s);
}

// The kernel's dest trash: a removed dest keeps its id (available = false) while conns use
// it; re-adding the same addr:port brings back the same id with its stats.
TEST(ServiceTableTest, DeletedDestIsTombstonedAndRecovered) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.2", 80)).ok());
  const ServiceId sid = *t.serviceId(kVip);
  const DestId d = idOf(t, "198.18.1.1");
  t.runtime().destCounters()[d].inact_conns.store(1);  // a live conn
  t.runtime().workerStats(0).addConn(sid, d);

  ASSERT_TRUE(t.deleteDest(kVip, ip("198.18.1.1"), 80).ok());
  EXPECT_EQ(t.trashSizeForTest(), 1u);
  const SnapDest* gone = t.snapshot()->dest(d);
  ASSERT_NE(gone, nullptr);
  EXPECT_FALSE(gone->available);
  EXPECT_EQ(gone->svc, sid);
  EXPECT_THAT(t.snapshot()->services()[0].dests, ElementsAre(idOf(t, "198.18.1.2")));
  EXPECT_EQ(t.collectTrash(), 0u);  // still referenced

  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80, FwdMethod::kMasq, 3)).ok());
  EXPECT_EQ(idOf(t, "198.18.1.1"), d);
  EXPECT_EQ(t.trashSizeForTest(), 0u);
  EXPECT_TRUE(t.snapshot()->dest(d)->available);
  EXPECT_EQ(t.snapshot()->dest(d)->config.weight, 3u);
  EXPECT_EQ(t.runtime().destStats(d).conns, 1u);  // stats kept
  EXPECT_THAT(t.snapshot()->services()[0].dests, ElementsAre(d, idOf(t, "198.18.1.2")));
}

TEST(ServiceTableTest, TrashIsFreedWhenConnsAreGone) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  const DestId d = idOf(t, "198.18.1.1");
  t.runtime().destCounters()[d].persist_conns.store(1);  // a template holds it
  ASSERT_TRUE(t.deleteDest(kVip, ip("198.18.1.1"), 80).ok());
  EXPECT_EQ(t.collectTrash(), 0u);
  t.runtime().destCounters()[d].persist_conns.store(0);
  EXPECT_EQ(t.collectTrash(), 1u);
  EXPECT_EQ(t.trashSizeForTest(), 0u);
  // Re-adding now makes a new dest: fresh ids are used before freed ones.
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  EXPECT_NE(idOf(t, "198.18.1.1"), d);
  EXPECT_EQ(t.snapshot()->dest(d), nullptr);
}

// ip_vs_trash_get_dest matches the service by value: after the service is deleted and created
// again, the dest comes back with its id, but its stats restart (__ip_vs_update_dest zeroes
// them when the service changed).
TEST(ServiceTableTest, TrashRecoveryAcrossServiceRecreationZeroesStats) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  const ServiceId old_sid = *t.serviceId(kVip);
  const DestId d = idOf(t, "198.18.1.1");
  t.runtime().destCounters()[d].active_conns.store(2);
  t.runtime().workerStats(0).addConn(old_sid, d);
  ASSERT_TRUE(t.deleteService(kVip).ok());
  EXPECT_FALSE(t.snapshot()->dest(d)->available);

  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  const ServiceId new_sid = *t.serviceId(kVip);
  EXPECT_NE(new_sid, old_sid);  // the old id is still named by the tombstone
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  EXPECT_EQ(idOf(t, "198.18.1.1"), d);
  EXPECT_EQ(t.snapshot()->dest(d)->svc, new_sid);
  EXPECT_EQ(t.runtime().destStats(d), StatsValues{});
  EXPECT_EQ(t.runtime().serviceStats(new_sid), StatsValues{});
}

TEST(ServiceTableTest, DestIdsAreExhaustedIncludingTombstones) {
  ServiceTable::Limits limits;
  limits.max_dests = 2;
  limits.max_services = 4;
  ServiceTable t(limits);
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.2", 80)).ok());
  const DestId d1 = idOf(t, "198.18.1.1");
  t.runtime().destCounters()[d1].inact_conns.store(1);
  ASSERT_TRUE(t.deleteDest(kVip, ip("198.18.1.1"), 80).ok());
  absl::Status s = t.addDest(kVip, dest("198.18.1.3", 80));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("198.18.1.3:80"));
  t.runtime().destCounters()[d1].inact_conns.store(0);
  EXPECT_EQ(t.collectTrash(), 1u);
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.3", 80)).ok());
  EXPECT_EQ(idOf(t, "198.18.1.3"), d1);  // recycled
  EXPECT_EQ(t.snapshot()->dest(d1)->config.addr, ip("198.18.1.3"));
}

TEST(ServiceTableTest, ServiceLimit) {
  ServiceTable::Limits limits;
  limits.max_services = 1;
  ServiceTable t(limits);
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  absl::Status s = t.addService(svc(tcpKey("198.18.0.2", 80)));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  ASSERT_TRUE(t.deleteService(kVip).ok());
  EXPECT_TRUE(t.addService(svc(tcpKey("198.18.0.2", 80))).ok());
}

// A deleted service's id stays taken while a removed dest of it is still in use.
TEST(ServiceTableTest, ServiceIdPinnedByTombstones) {
  ServiceTable::Limits limits;
  limits.max_services = 1;
  ServiceTable t(limits);
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  const ServiceId sid = *t.serviceId(kVip);
  const DestId d = idOf(t, "198.18.1.1");
  t.runtime().destCounters()[d].inact_conns.store(1);
  ASSERT_TRUE(t.deleteService(kVip).ok());
  absl::Status s = t.addService(svc(tcpKey("198.18.0.2", 80)));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("TCP 198.18.0.2:80"));
  t.runtime().destCounters()[d].inact_conns.store(0);
  EXPECT_EQ(t.collectTrash(), 1u);
  ASSERT_TRUE(t.addService(svc(tcpKey("198.18.0.2", 80))).ok());
  EXPECT_EQ(*t.serviceId(tcpKey("198.18.0.2", 80)), sid);  // recycled, with fresh stats
  EXPECT_EQ(t.runtime().serviceStats(sid), StatsValues{});
}

// One scheduler instance per service, kept across snapshots and told about every dest change
// in list order; replaced when the name or the flags change.
TEST(ServiceTableTest, SchedulerKeptAcrossSnapshotsAndUpdatedInListOrder) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip, "rr")).ok());
  Scheduler* first = t.snapshot()->services()[0].scheduler.get();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.2", 80)).ok());
  EXPECT_EQ(t.snapshot()->services()[0].scheduler.get(), first);
  const DestId a = idOf(t, "198.18.1.1"), b = idOf(t, "198.18.1.2");
  // rr walks the list from its head: the newest dest (b) first.
  PickContext ctx;
  DestLoad load = t.runtime().destLoad();
  EXPECT_EQ(first->pick(ctx, load), b);
  EXPECT_EQ(first->pick(ctx, load), a);
  EXPECT_EQ(first->pick(ctx, load), b);
  // Weight 0 is never picked.
  ASSERT_TRUE(t.editDest(kVip, dest("198.18.1.2", 80, FwdMethod::kMasq, 0)).ok());
  EXPECT_EQ(t.snapshot()->services()[0].scheduler.get(), first);
  EXPECT_EQ(first->pick(ctx, load), a);
  EXPECT_EQ(first->pick(ctx, load), a);

  ServiceConfig c = svc(kVip, "wrr");
  ASSERT_TRUE(t.editService(c).ok());
  Scheduler* second = t.snapshot()->services()[0].scheduler.get();
  EXPECT_NE(second, first);
  c.flags = kSchedFlag1;
  c.scheduler = "sh";
  ASSERT_TRUE(t.editService(c).ok());
  Scheduler* third = t.snapshot()->services()[0].scheduler.get();
  EXPECT_NE(third, second);
  c.flags = kSchedFlag1 | kSchedFlag2;
  ASSERT_TRUE(t.editService(c).ok());
  EXPECT_NE(t.snapshot()->services()[0].scheduler.get(), third);
  c.scheduler = "none";
  ASSERT_TRUE(t.editService(c).ok());
  EXPECT_EQ(t.snapshot()->services()[0].scheduler, nullptr);
}

TEST(ServiceTableTest, ReplaceAppliesWholeConfigAndKeepsIds) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  const ServiceId sid = *t.serviceId(kVip);
  const DestId d = idOf(t, "198.18.1.1");
  FullConfig c = t.config();
  c.services.push_back({svc(key(L4Proto::kUdp, "198.18.0.2", 53)), {dest("198.18.1.9", 53)}});
  c.services.back().service.netmask = 32;  // what 0 is normalised to
  c.timeouts.udp = 10;
  FwmarkRule r;
  r.dst = ip("198.18.0.0");
  r.prefix_len = 16;
  r.mark = 5;
  c.fwmark_rules = {r};
  ASSERT_TRUE(t.validate(c).ok());
  EXPECT_EQ(t.config().services.size(), 1u);  // validate() alone changes nothing
  ASSERT_TRUE(t.replace(c).ok());
  EXPECT_EQ(t.config(), c);
  EXPECT_EQ(*t.serviceId(kVip), sid);
  EXPECT_EQ(idOf(t, "198.18.1.1"), d);
  EXPECT_EQ(t.snapshot()->timeouts().udp, seconds(10));
  EXPECT_EQ(t.snapshot()->classify(Af::kInet, L4Proto::kTcp, ip("198.18.3.3"), 80), 5u);
}

TEST(ServiceTableTest, ValidateReportsSchedulerAndDestErrors) {
  ServiceTable t;
  FullConfig c;
  c.services.push_back({svc(kVip, "nope"), {}});
  EXPECT_EQ(t.validate(c).code(), absl::StatusCode::kNotFound);
  c.services[0].service.scheduler = "rr";
  c.services[0].dests.push_back(dest("198.18.1.1", 80, FwdMethod::kFullNat));
  EXPECT_TRUE(t.validate(c).ok());  // a full-NAT dest without a pool yet: accepted
  EXPECT_TRUE(t.config().services.empty());
}

// DPVS's order (-A, -a --fullnat, then -P) and its reverse: a full-NAT dest before the first
// local address, and the last local address deleted under full-NAT dests. The snapshot has no
// pool then (the pipeline drops new conns with kNoLocalAddr), and gets one with the address.
TEST(ServiceTableTest, FullNatDestBeforeItsFirstLocalAddress) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80, FwdMethod::kFullNat)).ok());
  EXPECT_EQ(t.snapshot()->services()[0].laddr_pool, nullptr);
  ASSERT_TRUE(t.addLocalAddr(kVip, ip("198.18.9.1")).ok());
  ASSERT_NE(t.snapshot()->services()[0].laddr_pool, nullptr);
  ASSERT_TRUE(t.deleteLocalAddr(kVip, ip("198.18.9.1")).ok());
  EXPECT_EQ(t.snapshot()->services()[0].laddr_pool, nullptr);
  EXPECT_EQ(t.config().services[0].dests.size(), 1u);
}

TEST(ServiceTableTest, LocalAddressesFeedTheServicePool) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  EXPECT_EQ(t.snapshot()->services()[0].laddr_pool, nullptr);
  ASSERT_TRUE(t.addLocalAddr(kVip, ip("198.18.9.1")).ok());
  ASSERT_TRUE(t.addLocalAddr(kVip, ip("198.18.9.2")).ok());
  LocalAddrPool* pool = t.snapshot()->services()[0].laddr_pool;
  ASSERT_NE(pool, nullptr);
  EXPECT_THAT(pool->addrs(), ElementsAre(ip("198.18.9.1"), ip("198.18.9.2")));
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80, FwdMethod::kFullNat)).ok());
  ASSERT_TRUE(t.deleteLocalAddr(kVip, ip("198.18.9.1")).ok());
  EXPECT_EQ(t.snapshot()->services()[0].laddr_pool, pool);  // same pool, fewer addresses
  EXPECT_THAT(pool->addrs(), ElementsAre(ip("198.18.9.2")));
  EXPECT_THAT(t.config().services[0].service.local_addrs, ElementsAre(ip("198.18.9.2")));
}

// __ip_vs_update_dest: an edit that removes or raises the upper threshold clears overload.
TEST(ServiceTableTest, EditDestThresholdClearsOverload) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  DestConfig d = dest("198.18.1.1", 80);
  d.u_threshold = 10;
  ASSERT_TRUE(t.addDest(kVip, d).ok());
  const DestId id = idOf(t, "198.18.1.1");
  auto& c = t.runtime().destCounters()[id];
  c.overloaded.store(true);
  d.u_threshold = 5;  // lowered: stays overloaded
  ASSERT_TRUE(t.editDest(kVip, d).ok());
  EXPECT_TRUE(c.overloaded.load());
  d.u_threshold = 8;  // raised: cleared
  ASSERT_TRUE(t.editDest(kVip, d).ok());
  EXPECT_FALSE(c.overloaded.load());
  c.overloaded.store(true);
  d.u_threshold = 0;  // removed: cleared
  ASSERT_TRUE(t.editDest(kVip, d).ok());
  EXPECT_FALSE(c.overloaded.load());
}

}  // namespace
}  // namespace lb
