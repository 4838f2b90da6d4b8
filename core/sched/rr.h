// SPDX-License-Identifier: Apache-2.0
// Round-robin scheduler; the analogue of ip_vs_rr.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "rr": the next usable dest after the last pick, in list order, wrapping. The cursor survives
// update(); when the dest under it is removed it moves to that dest's predecessor
// (ip_vs_rr_del_dest), so the rotation continues where it would have. Any thread.
const SchedulerFactory& rrFactory();

}  // namespace lb::sched
