// SPDX-License-Identifier: Apache-2.0
// Least-connection scheduler; the analogue of ip_vs_lc.c.
#ifndef LBD_CORE_SCHED_LC_H_
#define LBD_CORE_SCHED_LC_H_

#include "core/sched/scheduler.h"

namespace lb::sched {

// "lc": the usable dest with the least overhead (activeconns * 256 + inactconns); the first
// in list order wins a tie.
// Any thread.
const SchedulerFactory& lcFactory();

}  // namespace lb::sched

#endif  // LBD_CORE_SCHED_LC_H_
