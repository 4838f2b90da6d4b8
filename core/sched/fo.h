// SPDX-License-Identifier: Apache-2.0
// Weighted failover scheduler; the analogue of ip_vs_fo.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "fo": the non-overloaded dest with the highest weight; the first of equals wins.
// Any thread.
const SchedulerFactory& foFactory();

}  // namespace lb::sched
