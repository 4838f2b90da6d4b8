// SPDX-License-Identifier: Apache-2.0
// The scheduler registry: one line per algorithm (ip_vs_sched.c's list, made explicit).
#include <array>

#include "core/sched/dh.h"
#include "core/sched/fo.h"
#include "core/sched/lblc.h"
#include "core/sched/lblcr.h"
#include "core/sched/lc.h"
#include "core/sched/mh.h"
#include "core/sched/none.h"
#include "core/sched/nq.h"
#include "core/sched/ovf.h"
#include "core/sched/rr.h"
#include "core/sched/scheduler.h"
#include "core/sched/sed.h"
#include "core/sched/sh.h"
#include "core/sched/twos.h"
#include "core/sched/wlc.h"
#include "core/sched/wrr.h"

namespace lb {
namespace {

const auto& registry() {
  // clang-format off
  static const auto* const kAll = new std::array{
      &sched::rrFactory(),
      &sched::wrrFactory(),
      &sched::lcFactory(),
      &sched::wlcFactory(),
      &sched::sedFactory(),
      &sched::nqFactory(),
      &sched::lblcFactory(),
      &sched::lblcrFactory(),
      &sched::dhFactory(),
      &sched::shFactory(),
      &sched::mhFactory(),
      &sched::foFactory(),
      &sched::ovfFactory(),
      &sched::twosFactory(),
      &sched::noneFactory(),
  };
  // clang-format on

  return *kAll;
}

}  // namespace

const SchedulerFactory* findScheduler(absl::string_view name) {
  for (const SchedulerFactory* f : registry()) {
    if (f->name() == name)
      return f;
  }
  return nullptr;
}

absl::Span<const SchedulerFactory* const> allSchedulers() {
  return absl::MakeConstSpan(registry());
}

}  // namespace lb
