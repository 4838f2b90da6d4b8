// SPDX-License-Identifier: Apache-2.0
// The "none" scheduler: a service that schedules nothing (ip_vs_sched.c, name "none").
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "none": every pick is nullopt, so new connections are dropped as kNoDest.
// Any thread.
const SchedulerFactory& noneFactory();

}  // namespace lb::sched
