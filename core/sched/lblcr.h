// SPDX-License-Identifier: Apache-2.0
// Locality-based least-connection with replication; the analogue of ip_vs_lblcr.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "lblcr": like lblc, but the cache maps a destination address to a set of dests. The set's
// weighted least-connection member serves; when it is overloaded the wlc choice over the whole
// service joins the set; a set unchanged for lblc_expiration sheds its most loaded member.
// Any thread.
const SchedulerFactory& lblcrFactory();

}  // namespace lb::sched
