// SPDX-License-Identifier: Apache-2.0
// planSync: the desired services against lbd's ListServices -> one ApplyBatchRequest. The
// reference's §3 (lbd actions, graceful termination) and §6 items 1, 4, 5, 9, 11.
#include "cmd/lbd-controller/mapping/planner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lbd::controller::mapping {
namespace {

namespace pb = lbd::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

pb::Dest dest(const std::string& address, uint32_t port, uint32_t weight) {
  pb::Dest d;
  d.set_address(address);
  d.set_port(port);
  d.set_weight(weight);
  d.set_forward_method(pb::FORWARD_METHOD_MASQ);
  return d;
}

DesiredService vs(pb::Protocol proto,
                  const std::string& address,
                  uint32_t port,
                  std::vector<pb::Dest> dests,
                  std::string origin = "shop/web") {
  DesiredService ds;
  pb::VirtualAddress* a = ds.service.mutable_key()->mutable_address();
  a->set_protocol(proto);
  a->set_address(address);
  a->set_port(port);
  ds.service.set_scheduler("rr");
  ds.service.set_owner("lbd-controller");
  for (pb::Dest& d : dests)
    *ds.service.add_dests() = std::move(d);
  ds.origin = std::move(origin);
  return ds;
}

// What lbd's ListServices returns for these services: dests moved into DestStatus, no conns.
pb::ListServicesResponse listing(const std::vector<DesiredService>& services) {
  pb::ListServicesResponse r;
  for (const DesiredService& ds : services) {
    pb::ServiceStatus* st = r.add_services();
    *st->mutable_service() = ds.service;
    st->mutable_service()->clear_dests();
    for (const pb::Dest& d : ds.service.dests())
      *st->add_dests()->mutable_dest() = d;
  }
  return r;
}

pb::DestStatus* destStatus(pb::ListServicesResponse& r, size_t svc, const std::string& address) {
  for (pb::DestStatus& d : *r.mutable_services(static_cast<int>(svc))->mutable_dests()) {
    if (d.dest().address() == address)
      return &d;
  }
  ADD_FAILURE() << "no dest " << address;
  return nullptr;
}

// One line per operation: "create_dest TCP/198.18.100.1:80 198.18.1.1:8080 w1".
std::vector<std::string> ops(const Plan& p) {
  std::vector<std::string> out;
  for (const pb::BatchOperation& op : p.request.operations()) {
    switch (op.kind_case()) {
      case pb::BatchOperation::kCreateService:
        out.push_back("create_service " + serviceKeyString(op.create_service().service().key()));
        break;
      case pb::BatchOperation::kUpdateService:
        out.push_back("update_service " + serviceKeyString(op.update_service().service().key()));
        break;
      case pb::BatchOperation::kDeleteService:
        out.push_back("delete_service " + serviceKeyString(op.delete_service().key()));
        break;
      case pb::BatchOperation::kCreateDest:
        out.push_back(absl::StrCat(
            "create_dest ", serviceKeyString(op.create_dest().key()), " ",
            destKeyString(op.create_dest().dest().address(), op.create_dest().dest().port()), " w",
            op.create_dest().dest().weight()));
        break;
      case pb::BatchOperation::kUpdateDest:
        out.push_back(absl::StrCat(
            "update_dest ", serviceKeyString(op.update_dest().key()), " ",
            destKeyString(op.update_dest().dest().address(), op.update_dest().dest().port()), " w",
            op.update_dest().dest().weight()));
        break;
      case pb::BatchOperation::kDeleteDest:
        out.push_back(
            absl::StrCat("delete_dest ", serviceKeyString(op.delete_dest().key()), " ",
                         destKeyString(op.delete_dest().address(), op.delete_dest().port())));
        break;
      default:
        out.push_back("other");
    }
  }
  return out;
}

// Applies a plan to a listing the way lbd would (for the convergence tests).
void apply(const Plan& p, pb::ListServicesResponse& r) {
  for (const pb::BatchOperation& op : p.request.operations()) {
    auto svc = [&](const pb::ServiceKey& k) -> pb::ServiceStatus* {
      for (pb::ServiceStatus& s : *r.mutable_services()) {
        if (serviceKeyString(s.service().key()) == serviceKeyString(k))
          return &s;
      }
      return nullptr;
    };
    if (op.has_create_service()) {
      pb::ServiceStatus* s = r.add_services();
      *s->mutable_service() = op.create_service().service();
      s->mutable_service()->set_owner(p.request.owner());
    } else if (op.has_update_service()) {
      std::string owner = svc(op.update_service().service().key())->service().owner();
      *svc(op.update_service().service().key())->mutable_service() = op.update_service().service();
      svc(op.update_service().service().key())->mutable_service()->set_owner(owner);
    } else if (op.has_delete_service()) {
      auto* list = r.mutable_services();
      for (int i = 0; i < list->size(); ++i) {
        if (serviceKeyString(list->Get(i).service().key()) ==
            serviceKeyString(op.delete_service().key())) {
          list->DeleteSubrange(i, 1);
          break;
        }
      }
    } else if (op.has_create_dest()) {
      *svc(op.create_dest().key())->add_dests()->mutable_dest() = op.create_dest().dest();
    } else if (op.has_update_dest()) {
      for (pb::DestStatus& d : *svc(op.update_dest().key())->mutable_dests()) {
        if (d.dest().address() == op.update_dest().dest().address() &&
            d.dest().port() == op.update_dest().dest().port())
          *d.mutable_dest() = op.update_dest().dest();
      }
    } else if (op.has_delete_dest()) {
      auto* list = svc(op.delete_dest().key())->mutable_dests();
      for (int i = 0; i < list->size(); ++i) {
        if (list->Get(i).dest().address() == op.delete_dest().address() &&
            list->Get(i).dest().port() == op.delete_dest().port()) {
          list->DeleteSubrange(i, 1);
          break;
        }
      }
    }
  }
}

TEST(PlanSyncTest, FromNothingCreatesServicesThenTheirDestsInOneOwnedBatch) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                          {dest("198.18.1.1", 8080, 1), dest("198.18.1.2", 8080, 0)}));
  DrainState drain;
  Plan p = planSync(d, {}, drain, kT0, {});
  EXPECT_EQ(p.request.owner(), "lbd-controller");
  EXPECT_THAT(ops(p), ElementsAre("create_service TCP/198.18.100.1:80",
                                  "create_dest TCP/198.18.100.1:80 198.18.1.1:8080 w1",
                                  "create_dest TCP/198.18.100.1:80 198.18.1.2:8080 w0"));
  // CreateService takes no dests (lbd refuses them) and carries the owner.
  EXPECT_EQ(p.request.operations(0).create_service().service().dests_size(), 0);
  EXPECT_EQ(p.request.operations(0).create_service().service().owner(), "lbd-controller");
  EXPECT_THAT(p.origins, ElementsAre("shop/web", "shop/web", "shop/web"));
  EXPECT_EQ(p.draining, 0u);
}

TEST(PlanSyncTest, AThousandEndpointChangesAreOneRequest) {
  Desired before;
  Desired after;
  for (int s = 0; s < 100; ++s) {
    std::vector<pb::Dest> old_dests;
    std::vector<pb::Dest> new_dests;
    for (int e = 0; e < 10; ++e) {
      std::string a = absl::StrCat("198.18.", 10 + s, ".", 1 + e);
      old_dests.push_back(dest(a, 8080, 1));
      new_dests.push_back(dest(a, 9090, 1));  // every endpoint moves to a new port
    }
    std::string vip = absl::StrCat("198.18.100.", 1 + s);
    before.services.push_back(vs(pb::PROTOCOL_UDP, vip, 53, std::move(old_dests)));
    after.services.push_back(vs(pb::PROTOCOL_UDP, vip, 53, std::move(new_dests)));
  }
  DrainState drain;
  Plan p = planSync(after, listing(before.services), drain, kT0, {});
  EXPECT_EQ(p.request.operations_size(), 2000);  // 1,000 deletes + 1,000 creates
  pb::ListServicesResponse actual = listing(before.services);
  apply(p, actual);
  EXPECT_THAT(ops(planSync(after, actual, drain, kT0, {})), IsEmpty());
}

TEST(PlanSyncTest, NothingDiffersNothingPlanned) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 8080, 1)}));
  d.services[0].service.mutable_persistence()->mutable_timeout()->set_seconds(10800);
  d.services[0].service.mutable_persistence()->set_netmask_prefix(32);
  DrainState drain;
  Plan p = planSync(d, listing(d.services), drain, kT0, {});
  EXPECT_THAT(ops(p), IsEmpty());
  EXPECT_EQ(p.request.operations_size(), 0);
}

TEST(PlanSyncTest, LbdsOwnSpellingsAndDefaultsAreNotDifferences) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "2001:2::100:1", 80, {dest("2001:2::1:1", 8080, 1)}));
  d.services[0].service.mutable_persistence()->mutable_timeout()->set_seconds(360);
  pb::ListServicesResponse actual = listing(d.services);
  pb::Service* s = actual.mutable_services(0)->mutable_service();
  s->mutable_key()->mutable_address()->set_address("2001:0002:0::100:1");
  s->mutable_persistence()->set_netmask_prefix(128);  // lbd fills the default in
  actual.mutable_services(0)->mutable_dests(0)->mutable_dest()->set_address("2001:2:0::1:1");
  DrainState drain;
  EXPECT_THAT(ops(planSync(d, actual, drain, kT0, {})), IsEmpty());
}

TEST(PlanSyncTest, WeightsAreReconciledInPlaceNeverDeletedAndReAdded) {
  // A quiesced dest coming back, and the §6 item 9 restart case (weights stuck at 0).
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                          {dest("198.18.1.1", 8080, 1), dest("198.18.1.2", 8080, 0)}));
  pb::ListServicesResponse actual = listing(d.services);
  destStatus(actual, 0, "198.18.1.1")->mutable_dest()->set_weight(0);
  destStatus(actual, 0, "198.18.1.1")->set_active_conns(3);
  destStatus(actual, 0, "198.18.1.2")->mutable_dest()->set_weight(1);
  DrainState drain;
  EXPECT_THAT(ops(planSync(d, actual, drain, kT0, {})),
              ElementsAre("update_dest TCP/198.18.100.1:80 198.18.1.1:8080 w1",
                          "update_dest TCP/198.18.100.1:80 198.18.1.2:8080 w0"));
}

TEST(PlanSyncTest, HealthChecksAnOperatorAttachedAreNeitherClobberedNorFought) {
  // 198.18.1.1 carries a check and is held at weight 0 by it (health_weight 2): the desired
  // weight 2 is not a difference. 198.18.1.2 has a check and a new desired weight: the update
  // keeps the check.
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                          {dest("198.18.1.1", 8080, 2), dest("198.18.1.2", 8080, 5)}));
  pb::ListServicesResponse actual = listing(d.services);
  pb::Dest* held = destStatus(actual, 0, "198.18.1.1")->mutable_dest();
  held->add_health_checks()->set_type(pb::HEALTH_CHECK_TYPE_TCP);
  held->set_weight(0);
  held->set_health_weight(2);
  pb::Dest* checked = destStatus(actual, 0, "198.18.1.2")->mutable_dest();
  checked->add_health_checks()->set_type(pb::HEALTH_CHECK_TYPE_HTTP);
  checked->set_weight(1);
  DrainState drain;
  Plan p = planSync(d, actual, drain, kT0, {});
  ASSERT_THAT(ops(p), ElementsAre("update_dest TCP/198.18.100.1:80 198.18.1.2:8080 w5"));
  const pb::Dest& u = p.request.operations(0).update_dest().dest();
  ASSERT_EQ(u.health_checks_size(), 1);
  EXPECT_EQ(u.health_checks(0).type(), pb::HEALTH_CHECK_TYPE_HTTP);
  // A held-down dest whose desired weight changes stays held, with the new weight kept aside.
  d.services[0].service.mutable_dests(0)->set_weight(4);
  p = planSync(d, actual, drain, kT0, {});
  ASSERT_EQ(p.request.operations_size(), 2);
  const pb::Dest& h = p.request.operations(0).update_dest().dest();
  EXPECT_EQ(h.weight(), 0u);
  EXPECT_EQ(h.health_weight(), 4u);
  EXPECT_EQ(h.health_checks_size(), 1);
}

TEST(PlanSyncTest, ServiceAttributesAreUpdatedKeepingTheDests) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 8080, 1)}));
  pb::ListServicesResponse actual = listing(d.services);
  d.services[0].service.set_scheduler("wlc");
  d.services[0].service.mutable_persistence()->mutable_timeout()->set_seconds(600);
  DrainState drain;
  Plan p = planSync(d, actual, drain, kT0, {});
  EXPECT_THAT(ops(p), ElementsAre("update_service TCP/198.18.100.1:80"));
  const pb::Service& s = p.request.operations(0).update_service().service();
  EXPECT_EQ(s.scheduler(), "wlc");
  EXPECT_EQ(s.persistence().timeout().seconds(), 600);
  EXPECT_EQ(s.dests_size(), 0);
}

TEST(PlanSyncTest, ForwardMethodChangeIsADestUpdate) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 8080, 1)}));
  pb::ListServicesResponse actual = listing(d.services);
  d.services[0].service.mutable_dests(0)->set_forward_method(pb::FORWARD_METHOD_FULL_NAT);
  DrainState drain;
  EXPECT_THAT(ops(planSync(d, actual, drain, kT0, {})),
              ElementsAre("update_dest TCP/198.18.100.1:80 198.18.1.1:8080 w1"));
}

TEST(PlanSyncTest, AGoneTcpDestDrainsAtWeightZeroUntilItsConnectionsEnd) {
  Desired before;
  before.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                               {dest("198.18.1.1", 8080, 1), dest("198.18.1.2", 8080, 1)}));
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 8080, 1)}));
  pb::ListServicesResponse actual = listing(before.services);
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(2);
  destStatus(actual, 0, "198.18.1.2")->set_inactive_conns(1);
  DrainState drain;
  PlanOptions opt;
  opt.drain_timeout = absl::Minutes(5);

  Plan p1 = planSync(after, actual, drain, kT0, opt);
  EXPECT_THAT(ops(p1), ElementsAre("update_dest TCP/198.18.100.1:80 198.18.1.2:8080 w0"));
  EXPECT_EQ(p1.draining, 1u);
  EXPECT_EQ(p1.next_deadline, kT0 + absl::Minutes(5));
  EXPECT_EQ(drain.draining.size(), 1u);
  apply(p1, actual);

  // Still connections: nothing to do, still draining, the deadline unchanged.
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(0);
  Plan p2 = planSync(after, actual, drain, kT0 + absl::Seconds(30), opt);
  EXPECT_THAT(ops(p2), IsEmpty());
  EXPECT_EQ(p2.draining, 1u);
  EXPECT_EQ(p2.next_deadline, kT0 + absl::Minutes(5));

  // active + inactive == 0: deleted.
  destStatus(actual, 0, "198.18.1.2")->set_inactive_conns(0);
  Plan p3 = planSync(after, actual, drain, kT0 + absl::Seconds(60), opt);
  EXPECT_THAT(ops(p3), ElementsAre("delete_dest TCP/198.18.100.1:80 198.18.1.2:8080"));
  EXPECT_EQ(p3.draining, 0u);
  EXPECT_FALSE(p3.next_deadline.has_value());
  EXPECT_TRUE(drain.draining.empty());
}

TEST(PlanSyncTest, ADrainEndsAtTheDrainTimeoutWhateverTheConnections) {
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {}));
  Desired before;
  before.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.2", 8080, 1)}));
  pb::ListServicesResponse actual = listing(before.services);
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(5);
  DrainState drain;
  PlanOptions opt;
  opt.drain_timeout = absl::Seconds(90);
  apply(planSync(after, actual, drain, kT0, opt), actual);
  EXPECT_THAT(ops(planSync(after, actual, drain, kT0 + absl::Seconds(89), opt)), IsEmpty());
  EXPECT_THAT(ops(planSync(after, actual, drain, kT0 + absl::Seconds(90), opt)),
              ElementsAre("delete_dest TCP/198.18.100.1:80 198.18.1.2:8080"));
}

TEST(PlanSyncTest, AGoneTcpDestWithoutConnectionsIsDeletedAtOnce) {
  Desired before;
  before.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.2", 8080, 1)}));
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {}));
  DrainState drain;
  EXPECT_THAT(ops(planSync(after, listing(before.services), drain, kT0, {})),
              ElementsAre("delete_dest TCP/198.18.100.1:80 198.18.1.2:8080"));
}

TEST(PlanSyncTest, GoneUdpAndSctpDestsAreDeletedAtOnceWhateverTheirConnections) {
  for (pb::Protocol proto : {pb::PROTOCOL_UDP, pb::PROTOCOL_SCTP}) {
    Desired before;
    before.services.push_back(vs(proto, "198.18.100.1", 53, {dest("198.18.1.2", 5353, 1)}));
    Desired after;
    after.services.push_back(vs(proto, "198.18.100.1", 53, {}));
    pb::ListServicesResponse actual = listing(before.services);
    destStatus(actual, 0, "198.18.1.2")->set_active_conns(100);
    destStatus(actual, 0, "198.18.1.2")->set_inactive_conns(100);
    DrainState drain;
    Plan p = planSync(after, actual, drain, kT0, {});
    EXPECT_EQ(p.request.operations_size(), 1) << proto;
    EXPECT_TRUE(p.request.operations(0).has_delete_dest()) << proto;
    EXPECT_TRUE(drain.draining.empty());
  }
}

TEST(PlanSyncTest, DrainOffDeletesAGoneTcpDestAtOnce) {
  Desired before;
  before.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.1", 2049, {dest("198.18.1.2", 2049, 1)}));
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 2049, {}));
  after.services[0].drain = false;
  pb::ListServicesResponse actual = listing(before.services);
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(4);
  DrainState drain;
  EXPECT_THAT(ops(planSync(after, actual, drain, kT0, {})),
              ElementsAre("delete_dest TCP/198.18.100.1:2049 198.18.1.2:2049"));
}

TEST(PlanSyncTest, ADrainingDestThatComesBackIsUpdatedNotReAdded) {
  Desired before;
  before.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.2", 8080, 1)}));
  Desired gone;
  gone.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {}));
  pb::ListServicesResponse actual = listing(before.services);
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(1);
  DrainState drain;
  apply(planSync(gone, actual, drain, kT0, {}), actual);
  ASSERT_EQ(destStatus(actual, 0, "198.18.1.2")->dest().weight(), 0u);
  Plan back = planSync(before, actual, drain, kT0 + absl::Seconds(10), {});
  EXPECT_THAT(ops(back), ElementsAre("update_dest TCP/198.18.100.1:80 198.18.1.2:8080 w1"));
  EXPECT_TRUE(drain.draining.empty());
  EXPECT_EQ(back.draining, 0u);
}

TEST(PlanSyncTest, AWeightZeroOwnedDestNotDesiredAfterARestartStartsANewDrain) {
  // DrainState lost (controller restart): the dest is already at weight 0 with conns.
  Desired before;
  before.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.2", 8080, 0)}));
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {}));
  pb::ListServicesResponse actual = listing(before.services);
  destStatus(actual, 0, "198.18.1.2")->set_active_conns(1);
  DrainState drain;
  Plan p = planSync(after, actual, drain, kT0, {});
  EXPECT_THAT(ops(p), IsEmpty());
  EXPECT_EQ(p.draining, 1u);
  EXPECT_EQ(drain.draining.begin()->second.since, kT0);
}

TEST(PlanSyncTest, OwnedServicesNoLongerDesiredAreDeletedOthersAreNeverTouched) {
  Desired lbd;
  lbd.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 80, 1)}));
  lbd.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.2", 80, {dest("198.18.1.1", 80, 1)}));
  lbd.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.3", 80, {dest("198.18.1.1", 80, 1)}));
  lbd.services[1].service.set_owner("");  // an operator's (lbctl -A)
  lbd.services[2].service.set_owner("other-controller");
  pb::ListServicesResponse actual = listing(lbd.services);
  destStatus(actual, 0, "198.18.1.1")->set_active_conns(9);  // a service goes whole, at once
  DrainState drain;
  Plan p = planSync(Desired{}, actual, drain, kT0, {});
  EXPECT_THAT(ops(p), ElementsAre("delete_service TCP/198.18.100.1:80"));
  EXPECT_THAT(p.origins, ElementsAre(""));
}

TEST(PlanSyncTest, ADesiredVsHeldByAnotherOwnerIsAConflictNotAnOperation) {
  Desired operators;
  operators.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.2", 80, {dest("198.18.9.9", 80, 1)}));
  operators.services[0].service.set_owner("");
  Desired d;
  d.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.2", 80, {dest("198.18.1.1", 80, 1)}, "shop/clash"));
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.3", 80, {}, "shop/fine"));
  DrainState drain;
  Plan p = planSync(d, listing(operators.services), drain, kT0, {});
  EXPECT_THAT(ops(p), ElementsAre("create_service TCP/198.18.100.3:80"));
  ASSERT_EQ(p.conflicts.count("shop/clash"), 1u);
  EXPECT_EQ(p.conflicts.at("shop/clash")[0].reason, "AddressConflict");
  EXPECT_THAT(p.conflicts.at("shop/clash")[0].message, HasSubstr("an operator"));
}

TEST(PlanSyncTest, OperationsComeInKindOrderWithTheirOrigins) {
  Desired before;
  before.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                               {dest("198.18.1.1", 80, 1), dest("198.18.1.2", 80, 1)}, "a/one"));
  before.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.9", 80, {}, "a/old"));
  Desired after;
  after.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                              {dest("198.18.1.1", 80, 0), dest("198.18.1.3", 80, 1)}, "a/one"));
  after.services.push_back(
      vs(pb::PROTOCOL_TCP, "198.18.100.5", 80, {dest("198.18.1.5", 80, 1)}, "a/new"));
  after.services[0].service.set_scheduler("wrr");
  DrainState drain;
  Plan p = planSync(after, listing(before.services), drain, kT0, {});
  EXPECT_THAT(ops(p), ElementsAre("delete_service TCP/198.18.100.9:80",
                                  "create_service TCP/198.18.100.5:80",
                                  "create_dest TCP/198.18.100.5:80 198.18.1.5:80 w1",
                                  "update_service TCP/198.18.100.1:80",
                                  "delete_dest TCP/198.18.100.1:80 198.18.1.2:80",
                                  "update_dest TCP/198.18.100.1:80 198.18.1.1:80 w0",
                                  "create_dest TCP/198.18.100.1:80 198.18.1.3:80 w1"));
  EXPECT_THAT(p.origins, ElementsAre("", "a/new", "a/new", "a/one", "a/one", "a/one", "a/one"));
}

TEST(PlanSyncTest, ConvergesAndThenPlansNothing) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80,
                          {dest("198.18.1.1", 8080, 1), dest("198.18.1.2", 9090, 0)}));
  d.services.push_back(vs(pb::PROTOCOL_UDP, "2001:2::100:1", 53, {dest("2001:2::1", 53, 1)}));
  pb::ListServicesResponse actual;
  DrainState drain;
  apply(planSync(d, actual, drain, kT0, {}), actual);
  Plan again = planSync(d, actual, drain, kT0, {});
  EXPECT_THAT(ops(again), IsEmpty());
}

TEST(ToReplaceConfigTest, CarriesTheDesiredServicesWithDestsAndTheOwner) {
  Desired d;
  d.services.push_back(vs(pb::PROTOCOL_TCP, "198.18.100.1", 80, {dest("198.18.1.1", 8080, 1)}));
  d.services[0].service.set_owner("");
  pb::ReplaceConfigRequest r = toReplaceConfig(d, "lbd-controller");
  EXPECT_EQ(r.owner(), "lbd-controller");
  ASSERT_EQ(r.config().services_size(), 1);
  EXPECT_EQ(r.config().services(0).owner(), "lbd-controller");
  EXPECT_EQ(r.config().services(0).dests_size(), 1);
}

}  // namespace
}  // namespace lbd::controller::mapping
