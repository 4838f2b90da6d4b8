// SPDX-License-Identifier: Apache-2.0
// Shortest expected delay scheduler; the analogue of ip_vs_sed.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "sed": like wlc with overhead activeconns + 1 (inactive conns ignored).
// Any thread.
const SchedulerFactory& sedFactory();

}  // namespace lb::sched
