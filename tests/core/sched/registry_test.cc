// SPDX-License-Identifier: Apache-2.0
#include <set>
#include <string>

#include "gtest/gtest.h"

#include "core/sched/scheduler.h"

namespace lb {
namespace {

TEST(RegistryTest, HasEveryKernelSchedulerOnce) {
  std::set<std::string> names;
  for (const SchedulerFactory* f : allSchedulers())
    names.insert(std::string(f->name()));
  EXPECT_EQ(names, (std::set<std::string>{"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr",
                                          "dh", "sh", "mh", "fo", "ovf", "twos", "none"}));
  EXPECT_EQ(allSchedulers().size(), names.size());
}

TEST(RegistryTest, FindsByNameAndRejectsUnknown) {
  ASSERT_NE(findScheduler("wlc"), nullptr);
  EXPECT_EQ(findScheduler("wlc")->name(), "wlc");
  EXPECT_EQ(findScheduler("WLC"), nullptr);
  EXPECT_EQ(findScheduler("maglev"), nullptr);
  EXPECT_EQ(findScheduler(""), nullptr);
}

TEST(RegistryTest, CreateRejectsBadDestLists) {
  DestInfo a;
  a.id = 1;
  a.weight = 1;
  DestInfo dup = a;
  DestInfo noid;
  noid.weight = 1;
  DestInfo neg;
  neg.id = 2;
  neg.weight = -1;
  for (const SchedulerFactory* f : allSchedulers()) {
    EXPECT_EQ(f->create({a, dup}, {}).status().code(), absl::StatusCode::kInvalidArgument)
        << f->name();
    EXPECT_EQ(f->create({noid}, {}).status().code(), absl::StatusCode::kInvalidArgument)
        << f->name();
    EXPECT_EQ(f->create({neg}, {}).status().code(), absl::StatusCode::kInvalidArgument)
        << f->name();
  }
}

TEST(RegistryTest, AnySchedulerAcceptsAnySchedFlags) {
  // The kernel passes IP_VS_SVC_F_SCHED1..3 to every scheduler; only sh and mh read them.
  SchedulerOptions opts;
  opts.flags = kSchedFlag1 | kSchedFlag2 | kSchedFlag3;
  DestInfo a;
  a.id = 0;
  a.weight = 1;
  for (const SchedulerFactory* f : allSchedulers()) {
    EXPECT_TRUE(f->create({a}, opts).ok()) << f->name();
  }
}

}  // namespace
}  // namespace lb
