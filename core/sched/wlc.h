// SPDX-License-Identifier: Apache-2.0
// Weighted least-connection scheduler (ipvsadm's default); the analogue of ip_vs_wlc.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "wlc": minimises overhead / weight. The first usable dest is the initial least; a later
// non-overloaded dest replaces it only if loh * w(dest) > doh * w(least), so list order wins ties.
// Any thread.
const SchedulerFactory& wlcFactory();

}  // namespace lb::sched
