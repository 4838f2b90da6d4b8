// SPDX-License-Identifier: Apache-2.0
// The "none" scheduler: a service that schedules nothing (ip_vs_sched.c, name "none").
#ifndef LBD_CORE_SCHED_NONE_H_
#define LBD_CORE_SCHED_NONE_H_

#include "core/sched/scheduler.h"

namespace lb::sched {

// "none": every pick is nullopt, so new connections are dropped as kNoDest.
// Any thread.
const SchedulerFactory& noneFactory();

}  // namespace lb::sched

#endif  // LBD_CORE_SCHED_NONE_H_
