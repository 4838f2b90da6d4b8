// SPDX-License-Identifier: Apache-2.0
// A commit keeps what an unchanged service had (snapshot part, scheduler, pool) and the shared
// real-server set, and rebuilds exactly what a mutation touched.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/service/service_table.h"
#include "tests/core/service/service_test_util.h"

namespace lb {
namespace {

using ::lb::testing::dest;
using ::lb::testing::fwmKey;
using ::lb::testing::ip;
using ::lb::testing::svc;
using ::lb::testing::tcpKey;
using ::testing::ElementsAre;

const ServiceKey kA = tcpKey("198.18.0.1", 80);
const ServiceKey kB = tcpKey("198.18.0.2", 80);
const ServiceKey kC = tcpKey("198.18.0.3", 80);

const SnapService& part(const ServiceTable& t, const ServiceKey& k) {
  const SnapService* s = t.snapshot()->findService(k.af, k.proto, k.vaddr, k.vport, k.fwmark);
  LB_CHECK(s != nullptr);
  return *s;
}

// Everything the packet path reads, checked against the model as a full rebuild would make it.
void expectSnapshotMatchesModel(const ServiceTable& t) {
  const SnapshotPtr snap = t.snapshot();
  const FullConfig& cfg = t.config();
  ASSERT_EQ(snap->services().size(), cfg.services.size());
  for (size_t i = 0; i < cfg.services.size(); ++i) {
    const ServiceWithDests& s = cfg.services[i];
    const ServiceKey& k = s.service.key;
    const SnapService& ss = snap->services()[i];
    EXPECT_EQ(ss.config, s.service);
    EXPECT_EQ(ss.id, *t.serviceId(k));
    EXPECT_EQ(snap->service(ss.id), &ss);
    if (!k.isFwmark()) {
      EXPECT_EQ(snap->findService(k.af, k.proto, k.vaddr, k.vport, 0), &ss);
      EXPECT_TRUE(snap->isVip(k.vaddr));
    }
    ASSERT_EQ(ss.dests.size(), s.dests.size());
    for (size_t j = 0; j < s.dests.size(); ++j) {
      const DestConfig& d = s.dests[j];
      EXPECT_EQ(ss.dests[j], *t.destId(k, d.addr, d.port));
      const SnapDest* sd = snap->dest(ss.dests[j]);
      ASSERT_NE(sd, nullptr);
      EXPECT_EQ(sd->config, d);
      EXPECT_EQ(sd->svc, ss.id);
      EXPECT_TRUE(sd->available);
    }
    EXPECT_EQ(ss.scheduler == nullptr, s.service.scheduler == "none");
  }
  // isNatRealServer for every <proto, addr, port> any service names, NAT or not.
  for (const ServiceWithDests& s : cfg.services) {
    for (const DestConfig& probe : s.dests) {
      for (L4Proto p : {L4Proto::kTcp, L4Proto::kUdp, L4Proto::kSctp}) {
        bool want = false;
        for (const ServiceWithDests& o : cfg.services) {
          for (const DestConfig& d : o.dests) {
            const bool nat = d.fwd == FwdMethod::kMasq || d.fwd == FwdMethod::kFullNat;
            const bool proto = o.service.key.isFwmark() || o.service.key.proto == p;
            want = want || (nat && proto && d.addr == probe.addr && d.port == probe.port);
          }
        }
        EXPECT_EQ(snap->isNatRealServer(p, probe.addr, probe.port), want)
            << probe.addr.toString() << ":" << probe.port << " proto " << static_cast<int>(p);
      }
    }
  }
}

TEST(IncrementalCommitTest, UnchangedServicesKeepTheirPartChangedOnesAreRebuilt) {
  ServiceTable t;
  for (const ServiceKey& k : {kA, kB, kC})
    ASSERT_TRUE(t.addService(svc(k, "rr")).ok());
  ASSERT_TRUE(t.addLocalAddr(kC, ip("198.18.9.1")).ok());
  for (const ServiceKey& k : {kA, kB, kC}) {
    const FwdMethod fwd = k == kC ? FwdMethod::kFullNat : FwdMethod::kMasq;  // C has the pool
    ASSERT_TRUE(t.addDest(k, dest("198.18.1.1", 8080, fwd)).ok());
    ASSERT_TRUE(t.addDest(k, dest("198.18.1.2", 8080)).ok());
  }
  const SnapService a0 = part(t, kA), b0 = part(t, kB), c0 = part(t, kC);
  ASSERT_NE(c0.laddr_pool, nullptr);

  // A weight edit in B: A and C are as they were; B's dest carries the new weight.
  ASSERT_TRUE(t.editDest(kB, dest("198.18.1.2", 8080, FwdMethod::kMasq, 7)).ok());
  for (const auto& [k, before] : {std::pair{kA, &a0}, std::pair{kC, &c0}}) {
    const SnapService& now = part(t, k);
    EXPECT_EQ(now.id, before->id);
    EXPECT_EQ(now.config, before->config);
    EXPECT_EQ(now.dests, before->dests);
    EXPECT_EQ(now.scheduler, before->scheduler);
    EXPECT_EQ(now.laddr_pool, before->laddr_pool);
  }
  EXPECT_EQ(part(t, kB).dests, b0.dests);
  EXPECT_EQ(part(t, kB).scheduler, b0.scheduler);  // updated in place, not replaced
  EXPECT_EQ(t.snapshot()->dest(*t.destId(kB, ip("198.18.1.2"), 8080))->config.weight, 7u);
  expectSnapshotMatchesModel(t);

  // Deleting A shifts B and C down one position: lookups still find each by key and id.
  const DestId a_dest = *t.destId(kA, ip("198.18.1.1"), 8080);
  ASSERT_TRUE(t.deleteService(kA).ok());
  EXPECT_EQ(t.snapshot()->service(a0.id), nullptr);
  EXPECT_EQ(t.snapshot()->dest(a_dest), nullptr);  // no conns: freed by the commit
  EXPECT_EQ(t.snapshot()->findService(Af::kInet, L4Proto::kTcp, kA.vaddr, 80, 0), nullptr);
  EXPECT_EQ(part(t, kB).id, b0.id);
  EXPECT_EQ(part(t, kC).id, c0.id);
  EXPECT_EQ(part(t, kC).laddr_pool, c0.laddr_pool);
  EXPECT_FALSE(t.snapshot()->isVip(kA.vaddr));
  expectSnapshotMatchesModel(t);

  // A new dest in C goes to the front of C's list; B is untouched.
  ASSERT_TRUE(t.addDest(kC, dest("198.18.1.3", 8080)).ok());
  const DestId c_new = *t.destId(kC, ip("198.18.1.3"), 8080);
  EXPECT_EQ(part(t, kC).dests.front(), c_new);
  EXPECT_EQ(part(t, kC).dests.size(), 3u);
  EXPECT_EQ(part(t, kB).dests, b0.dests);
  expectSnapshotMatchesModel(t);

  // A scheduler change in C replaces C's instance only.
  ServiceConfig c_cfg = t.config().services[1].service;
  ASSERT_EQ(c_cfg.key, kC);
  c_cfg.scheduler = "wrr";
  ASSERT_TRUE(t.editService(c_cfg).ok());
  EXPECT_NE(part(t, kC).scheduler, c0.scheduler);
  EXPECT_EQ(part(t, kC).config.scheduler, "wrr");
  EXPECT_EQ(part(t, kB).scheduler, b0.scheduler);
  expectSnapshotMatchesModel(t);

  // A local address removed from C reaches C's pool.
  ASSERT_TRUE(t.addLocalAddr(kC, ip("198.18.9.2")).ok());
  ASSERT_TRUE(t.deleteLocalAddr(kC, ip("198.18.9.1")).ok());
  EXPECT_THAT(part(t, kC).laddr_pool->addrs(), ElementsAre(ip("198.18.9.2")));
  EXPECT_THAT(part(t, kC).config.local_addrs, ElementsAre(ip("198.18.9.2")));
  expectSnapshotMatchesModel(t);
}

// A's dests are tombstoned when A goes, even though nothing else changed.
TEST(IncrementalCommitTest, DeletedServiceDestsAreTombstoned) {
  ServiceTable t;
  for (const ServiceKey& k : {kA, kB})
    ASSERT_TRUE(t.addService(svc(k, "rr")).ok());
  ASSERT_TRUE(t.addDest(kA, dest("198.18.1.1", 80)).ok());
  ASSERT_TRUE(t.addDest(kB, dest("198.18.1.1", 80)).ok());
  const DestId a = *t.destId(kA, ip("198.18.1.1"), 80);
  const DestId b = *t.destId(kB, ip("198.18.1.1"), 80);
  t.runtime().destCounters()[a].active_conns.store(1);
  ASSERT_TRUE(t.deleteService(kA).ok());
  ASSERT_NE(t.snapshot()->dest(a), nullptr);
  EXPECT_FALSE(t.snapshot()->dest(a)->available);
  EXPECT_TRUE(t.snapshot()->dest(b)->available);
  EXPECT_EQ(t.trashSizeForTest(), 1u);
  expectSnapshotMatchesModel(t);
}

// The scheduler options depend on a sysctl for lblc: its change rebuilds lblc services' schedulers
// though their configs are unchanged; other sysctls keep every instance.
TEST(IncrementalCommitTest, LblcExpirationSysctlRecreatesOnlyLblcSchedulers) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kA, "lblc")).ok());
  ASSERT_TRUE(t.addService(svc(kB, "rr")).ok());
  const Scheduler* lblc = part(t, kA).scheduler.get();
  const Scheduler* rr = part(t, kB).scheduler.get();
  Sysctls s = t.config().sysctls;
  s.sloppy_tcp = true;
  ASSERT_TRUE(t.setSysctls(s).ok());
  EXPECT_EQ(part(t, kA).scheduler.get(), lblc);
  EXPECT_EQ(part(t, kB).scheduler.get(), rr);
  s.lblc_expiration_s = 60;
  ASSERT_TRUE(t.setSysctls(s).ok());
  EXPECT_NE(part(t, kA).scheduler.get(), lblc);
  EXPECT_EQ(part(t, kB).scheduler.get(), rr);
}

// The real-server set is shared between snapshots while it does not change, and an old snapshot
// keeps answering as it did when it was built.
TEST(IncrementalCommitTest, RealServerSetFollowsEveryChange) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kA, "rr")).ok());
  ASSERT_TRUE(t.addService(svc(kB, "rr")).ok());
  const IpAddr rs = ip("198.18.1.1");
  ASSERT_TRUE(t.addDest(kA, dest("198.18.1.1", 8080)).ok());
  ASSERT_TRUE(t.addDest(kB, dest("198.18.1.1", 8080)).ok());
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));
  Timeouts to;
  to.tcp = 100;
  ASSERT_TRUE(t.setTimeouts(to).ok());
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));

  const SnapshotPtr before = t.snapshot();
  ASSERT_TRUE(t.deleteDest(kA, rs, 8080).ok());
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));  // B still names it
  ASSERT_TRUE(t.editDest(kB, dest("198.18.1.1", 8080, FwdMethod::kDirectRoute)).ok());
  EXPECT_FALSE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));  // DR is no NAT
  EXPECT_TRUE(before->isNatRealServer(L4Proto::kTcp, rs, 8080));

  ASSERT_TRUE(t.editDest(kB, dest("198.18.1.1", 8080, FwdMethod::kMasq)).ok());
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));
  EXPECT_FALSE(t.snapshot()->isNatRealServer(L4Proto::kUdp, rs, 8080));
  ASSERT_TRUE(t.addService(svc(fwmKey(7), "rr")).ok());
  ASSERT_TRUE(t.addDest(fwmKey(7), dest("198.18.1.1", 8080)).ok());
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kUdp, rs, 8080));  // fwmark: any proto
  ASSERT_TRUE(t.deleteService(fwmKey(7)).ok());
  EXPECT_FALSE(t.snapshot()->isNatRealServer(L4Proto::kUdp, rs, 8080));
  EXPECT_TRUE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));
  ASSERT_TRUE(t.flush().ok());
  EXPECT_FALSE(t.snapshot()->isNatRealServer(L4Proto::kTcp, rs, 8080));
  expectSnapshotMatchesModel(t);
}

// A long deterministic mix of mutations (and failing ones): after each, the snapshot is what a
// full rebuild from the model gives.
TEST(IncrementalCommitTest, SnapshotMatchesTheModelAfterEveryMutation) {
  ServiceTable t;
  const std::vector<ServiceKey> keys = {kA, kB, kC, tcpKey("198.18.0.4", 443), fwmKey(3)};
  const char* addrs[] = {"198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"};
  const FwdMethod fwds[] = {FwdMethod::kMasq, FwdMethod::kDirectRoute, FwdMethod::kTunnel};
  uint32_t x = 12345;
  auto next = [&](uint32_t n) {
    x = x * 1103515245u + 12345u;
    return (x >> 16) % n;
  };
  for (int step = 0; step < 600; ++step) {
    const ServiceKey& k = keys[next(static_cast<uint32_t>(keys.size()))];
    const DestConfig d =
        dest(addrs[next(4)], static_cast<uint16_t>(8080 + next(2)), fwds[next(3)], next(4));
    switch (next(8)) {
      case 0:
        t.addService(svc(k, next(2) == 0 ? "rr" : "wlc")).IgnoreError();
        break;
      case 1:
        t.deleteService(k).IgnoreError();
        break;
      case 2:
      case 3:
        t.addDest(k, d).IgnoreError();
        break;
      case 4:
      case 5:
        t.editDest(k, d).IgnoreError();
        break;
      case 6:
        t.deleteDest(k, d.addr, d.port).IgnoreError();
        break;
      case 7: {
        Timeouts to;
        to.udp = 1 + next(100);
        t.setTimeouts(to).IgnoreError();
        break;
      }
    }
    if (next(5) == 0)
      t.collectTrash();
    expectSnapshotMatchesModel(t);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "at step " << step;
      return;
    }
  }
}

}  // namespace
}  // namespace lb
