// SPDX-License-Identifier: Apache-2.0
// A commit keeps what an unchanged service had (snapshot part, scheduler, pool) and the shared
// real-server set, and rebuilds exactly what a mutation touched.
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
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

// Where a dest id points in a snapshot: its address and port (ids differ between tables).
std::pair<IpAddr, uint16_t> destAddr(const ServiceSnapshot& snap, DestId id) {
  const SnapDest* d = snap.dest(id);
  LB_CHECK(d != nullptr);
  return {d->config.addr, d->config.port};
}

// The incremental snapshot against the production full-build path: a fresh ServiceTable given
// the same configuration by replace() (as lbd restoring its state file). Everything the packet
// path reads must agree, ids aside: services in order with their configs, lookups, dests in list
// order with their configs, full-NAT pools, real servers, VIPs, timeouts, sysctls, and what the
// stateless schedulers pick.
void expectSnapshotMatchesFullBuild(const ServiceTable& t) {
  ServiceTable full;
  const absl::Status built = full.replace(t.config());
  ASSERT_TRUE(built.ok()) << built;
  const SnapshotPtr a = t.snapshot();
  const SnapshotPtr b = full.snapshot();
  ASSERT_EQ(a->services().size(), b->services().size());
  std::set<IpAddr> addrs = {ip("198.18.200.1")};  // and one nobody names
  std::set<uint16_t> ports = {0};
  for (size_t i = 0; i < a->services().size(); ++i) {
    const SnapService& x = a->services()[i];
    const SnapService& y = b->services()[i];
    const ServiceKey& k = x.config.key;
    SCOPED_TRACE(k.toString());
    EXPECT_EQ(x.config, y.config);
    EXPECT_EQ(x.netmask_prefix, y.netmask_prefix);
    EXPECT_EQ(a->findService(k.af, k.proto, k.vaddr, k.vport, k.fwmark), &x);
    EXPECT_EQ(b->findService(k.af, k.proto, k.vaddr, k.vport, k.fwmark), &y);
    if (!k.isFwmark())
      addrs.insert(k.vaddr);
    ASSERT_EQ(x.dests.size(), y.dests.size());
    bool has_zero_weight = false;
    for (size_t j = 0; j < x.dests.size(); ++j) {
      const SnapDest* dx = a->dest(x.dests[j]);
      const SnapDest* dy = b->dest(y.dests[j]);
      ASSERT_NE(dx, nullptr);
      ASSERT_NE(dy, nullptr);
      EXPECT_EQ(dx->config, dy->config) << "dest " << j;
      EXPECT_EQ(dx->svc, x.id);
      EXPECT_EQ(dy->svc, y.id);
      EXPECT_TRUE(dx->available);
      EXPECT_TRUE(dy->available);
      addrs.insert(dx->config.addr);
      ports.insert(dx->config.port);
      has_zero_weight = has_zero_weight || dx->config.weight == 0;
    }
    ASSERT_EQ(x.scheduler == nullptr, y.scheduler == nullptr);
    EXPECT_EQ(x.laddr_pool == nullptr, y.laddr_pool == nullptr);
    if (x.laddr_pool != nullptr && y.laddr_pool != nullptr) {
      EXPECT_EQ(x.laddr_pool->addrs(), y.laddr_pool->addrs());
    }
    // wlc, sh and mh pick as a function of the dest list and weights (no state, no random), so
    // the two instances must agree flow by flow. Not mh with a weight-0 dest: its slots follow
    // last_weight, the dest's history, which a restore does not carry (ip_vs_mh.c, as the
    // kernel after ipvsadm-restore). rr keeps a position: its instance is not compared.
    const std::string& sched = x.config.scheduler;
    if (x.scheduler == nullptr || !(sched == "wlc" || sched == "sh" || sched == "mh") ||
        (sched == "mh" && has_zero_weight)) {
      continue;
    }
    std::vector<DestCounters> counters(4096);
    const DestLoad load(absl::MakeConstSpan(counters.data(), counters.size()));
    std::mt19937 rng(static_cast<uint32_t>(i));
    for (int f = 0; f < 64; ++f) {
      PickContext ctx;
      ctx.saddr = IpAddr::v4(0xc6130000u | (rng() & 0xffff));
      ctx.daddr = k.isFwmark() ? IpAddr::v4(0xc6120063u) : k.vaddr;
      ctx.sport = static_cast<uint16_t>(1024 + rng() % 60000);
      ctx.dport = k.vport;
      ctx.has_ports = true;
      const std::optional<DestId> px = x.scheduler->pick(ctx, load);
      const std::optional<DestId> py = y.scheduler->pick(ctx, load);
      ASSERT_EQ(px.has_value(), py.has_value()) << sched << " flow " << f;
      if (px.has_value()) {
        EXPECT_EQ(destAddr(*a, *px), destAddr(*b, *py)) << sched << " flow " << f;
      }
    }
  }
  for (const IpAddr& addr : addrs) {
    EXPECT_EQ(a->isVip(addr), b->isVip(addr)) << addr.toString();
    for (uint16_t port : ports) {
      for (L4Proto p : {L4Proto::kTcp, L4Proto::kUdp, L4Proto::kSctp}) {
        EXPECT_EQ(a->isNatRealServer(p, addr, port), b->isNatRealServer(p, addr, port))
            << addr.toString() << ":" << port << " proto " << static_cast<int>(p);
      }
    }
  }
  const ProtoTimeouts& ta = a->timeouts();
  const ProtoTimeouts& tb = b->timeouts();
  for (size_t i = 0; i < std::size(ta.tcp); ++i)
    EXPECT_EQ(ta.tcp[i], tb.tcp[i]) << "tcp state " << i;
  for (size_t i = 0; i < std::size(ta.sctp); ++i)
    EXPECT_EQ(ta.sctp[i], tb.sctp[i]) << "sctp state " << i;
  EXPECT_EQ(ta.udp, tb.udp);
  EXPECT_EQ(ta.icmp, tb.icmp);
  EXPECT_EQ(a->sysctls(), b->sysctls());
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
  expectSnapshotMatchesFullBuild(t);

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
  expectSnapshotMatchesFullBuild(t);

  // A new dest in C goes to the front of C's list; B is untouched.
  ASSERT_TRUE(t.addDest(kC, dest("198.18.1.3", 8080)).ok());
  const DestId c_new = *t.destId(kC, ip("198.18.1.3"), 8080);
  EXPECT_EQ(part(t, kC).dests.front(), c_new);
  EXPECT_EQ(part(t, kC).dests.size(), 3u);
  EXPECT_EQ(part(t, kB).dests, b0.dests);
  expectSnapshotMatchesModel(t);
  expectSnapshotMatchesFullBuild(t);

  // A scheduler change in C replaces C's instance only.
  ServiceConfig c_cfg = t.config().services[1].service;
  ASSERT_EQ(c_cfg.key, kC);
  c_cfg.scheduler = "wrr";
  ASSERT_TRUE(t.editService(c_cfg).ok());
  EXPECT_NE(part(t, kC).scheduler, c0.scheduler);
  EXPECT_EQ(part(t, kC).config.scheduler, "wrr");
  EXPECT_EQ(part(t, kB).scheduler, b0.scheduler);
  expectSnapshotMatchesModel(t);
  expectSnapshotMatchesFullBuild(t);

  // A local address removed from C reaches C's pool.
  ASSERT_TRUE(t.addLocalAddr(kC, ip("198.18.9.2")).ok());
  ASSERT_TRUE(t.deleteLocalAddr(kC, ip("198.18.9.1")).ok());
  EXPECT_THAT(part(t, kC).laddr_pool->addrs(), ElementsAre(ip("198.18.9.2")));
  EXPECT_THAT(part(t, kC).config.local_addrs, ElementsAre(ip("198.18.9.2")));
  expectSnapshotMatchesModel(t);
  expectSnapshotMatchesFullBuild(t);
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
  expectSnapshotMatchesFullBuild(t);
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
  expectSnapshotMatchesFullBuild(t);
}

// A long deterministic mix of mutations (and failing ones). Each mutation's result is the one
// the model before it calls for (the mix only makes valid services and dests, so a mutation
// fails exactly when its service or dest is missing or already there), a failed one changes
// nothing, and after each the snapshot is what a full build from the same configuration gives.
TEST(IncrementalCommitTest, SnapshotMatchesAFullBuildAfterEveryMutation) {
  ServiceTable t;
  const std::vector<ServiceKey> keys = {kA, kB, kC, tcpKey("198.18.0.4", 443), fwmKey(3)};
  const char* addrs[] = {"198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"};
  const FwdMethod fwds[] = {FwdMethod::kMasq, FwdMethod::kDirectRoute, FwdMethod::kTunnel};
  const char* scheds[] = {"rr", "wlc", "sh", "mh"};
  uint32_t x = 12345;
  auto next = [&](uint32_t n) {
    x = x * 1103515245u + 12345u;
    return (x >> 16) % n;
  };
  auto findService = [&](const ServiceKey& k) -> const ServiceWithDests* {
    for (const ServiceWithDests& s : t.config().services) {
      if (s.service.key == k)
        return &s;
    }
    return nullptr;
  };
  auto hasDest = [&](const ServiceKey& k, const DestConfig& d) {
    const ServiceWithDests* s = findService(k);
    if (s == nullptr)
      return false;
    for (const DestConfig& e : s->dests) {
      if (e.addr == d.addr && e.port == d.port)
        return true;
    }
    return false;
  };
  using absl::StatusCode;
  int failed = 0, succeeded = 0;
  for (int step = 0; step < 600; ++step) {
    const ServiceKey& k = keys[next(static_cast<uint32_t>(keys.size()))];
    const DestConfig d =
        dest(addrs[next(4)], static_cast<uint16_t>(8080 + next(2)), fwds[next(3)], next(4));
    const bool svc_there = findService(k) != nullptr;
    const bool dest_there = hasDest(k, d);
    const FullConfig before = t.config();
    const SnapshotPtr snap_before = t.snapshot();
    absl::Status st;
    StatusCode want = StatusCode::kOk;
    std::string what;
    switch (next(8)) {
      case 0:
        what = "addService";
        st = t.addService(svc(k, scheds[next(4)]));
        want = svc_there ? StatusCode::kAlreadyExists : StatusCode::kOk;
        break;
      case 1:
        what = "deleteService";
        st = t.deleteService(k);
        want = svc_there ? StatusCode::kOk : StatusCode::kNotFound;
        break;
      case 2:
      case 3:
        what = "addDest";
        st = t.addDest(k, d);
        want = !svc_there   ? StatusCode::kNotFound
               : dest_there ? StatusCode::kAlreadyExists
                            : StatusCode::kOk;
        break;
      case 4:
      case 5:
        what = "editDest";
        st = t.editDest(k, d);
        want = dest_there ? StatusCode::kOk : StatusCode::kNotFound;
        break;
      case 6:
        what = "deleteDest";
        st = t.deleteDest(k, d.addr, d.port);
        want = dest_there ? StatusCode::kOk : StatusCode::kNotFound;
        break;
      case 7: {
        what = "setTimeouts";
        Timeouts to;
        to.udp = 1 + next(100);
        st = t.setTimeouts(to);
        break;
      }
    }
    EXPECT_EQ(st.code(), want) << "step " << step << ": " << what << " " << k.toString() << " "
                               << d.addr.toString() << ":" << d.port << ": " << st;
    if (st.ok()) {
      ++succeeded;
      EXPECT_NE(t.snapshot(), snap_before) << "step " << step << ": a new snapshot";
    } else {
      ++failed;
      EXPECT_TRUE(t.config() == before) << "step " << step << ": a failed " << what;
      EXPECT_EQ(t.snapshot(), snap_before) << "step " << step << ": a failed " << what;
    }
    if (next(5) == 0)
      t.collectTrash();
    expectSnapshotMatchesModel(t);
    expectSnapshotMatchesFullBuild(t);
    expectSnapshotMatchesFullBuild(t);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "at step " << step;
      return;
    }
  }
  // The mix exercised both outcomes.
  EXPECT_GT(failed, 100);
  EXPECT_GT(succeeded, 200);
}

}  // namespace
}  // namespace lb
