// SPDX-License-Identifier: Apache-2.0
// Weighted overflow scheduler; the analogue of ip_vs_ovf.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "ovf": the highest-weight dest among those with activeconns <= weight; the first of equals
// wins.
// Any thread.
const SchedulerFactory& ovfFactory();

}  // namespace lb::sched
