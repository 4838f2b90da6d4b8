// SPDX-License-Identifier: Apache-2.0
// Never-queue scheduler; the analogue of ip_vs_nq.c.
#ifndef LBD_CORE_SCHED_NQ_H_
#define LBD_CORE_SCHED_NQ_H_

#include "core/sched/scheduler.h"

namespace lb::sched {

// "nq": the first usable dest with no active conns; otherwise the sed choice.
// Any thread.
const SchedulerFactory& nqFactory();

}  // namespace lb::sched

#endif  // LBD_CORE_SCHED_NQ_H_
