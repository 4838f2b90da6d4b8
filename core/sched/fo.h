// SPDX-License-Identifier: Apache-2.0
// Weighted failover scheduler; the analogue of ip_vs_fo.c.
#ifndef LBD_CORE_SCHED_FO_H_
#define LBD_CORE_SCHED_FO_H_

#include "core/sched/scheduler.h"

namespace lb::sched {

// "fo": the non-overloaded dest with the highest weight; the first of equals wins.
// Any thread.
const SchedulerFactory& foFactory();

}  // namespace lb::sched

#endif  // LBD_CORE_SCHED_FO_H_
