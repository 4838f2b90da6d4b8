// SPDX-License-Identifier: Apache-2.0
// Never-queue scheduler; the analogue of ip_vs_nq.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "nq": the first usable dest with no active conns; otherwise the sed choice.
// Any thread.
const SchedulerFactory& nqFactory();

}  // namespace lb::sched
