// SPDX-License-Identifier: Apache-2.0
// Weighted round-robin scheduler; the analogue of ip_vs_wrr.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "wrr": the kernel's {cl, cw, mw, di} walk. Weights 4,3,2 in list order give A A B A B C A B C.
// Every update() is ip_vs_wrr_dest_changed: the cursor returns to the head and cw is clamped.
// Any thread.
const SchedulerFactory& wrrFactory();

}  // namespace lb::sched
