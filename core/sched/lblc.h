// SPDX-License-Identifier: Apache-2.0
// Locality-based least-connection scheduler; the analogue of ip_vs_lblc.c.
#pragma once

#include "core/sched/scheduler.h"

namespace lb::sched {

// "lblc": a cache from the packet's destination address to a dest. A cached dest is kept while
// it has weight > 0 and is not "overloaded" in lblc's sense (activeconns > weight while some dest
// has activeconns * 2 < weight); otherwise the wlc choice is made and cached. Entries idle for
// SchedulerOptions::lblc_expiration are forgotten. Any thread.
const SchedulerFactory& lblcFactory();

}  // namespace lb::sched
