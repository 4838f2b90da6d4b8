// SPDX-License-Identifier: Apache-2.0
// Weighted random two-choices scheduler; the analogue of ip_vs_twos.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "twos": two weighted random draws from PickContext::random (low and high 32 bits); the
// one with the lower overhead per weight wins, the first draw on a tie.
// Any thread.
const SchedulerFactory& twosFactory();

}  // namespace lb::sched
