// SPDX-License-Identifier: Apache-2.0
// Least-connection scheduler; the analogue of ip_vs_lc.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "lc": the usable dest with the least overhead (activeconns * 256 + inactconns); the first
// in list order wins a tie.
// Any thread.
const SchedulerFactory& lcFactory();

}  // namespace lb::sched
