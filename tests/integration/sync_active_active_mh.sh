#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Active-active without sync (issue 15 item 4): sync_active_active.sh's three ECMP peers and
# traffic with the mh scheduler and sloppy_tcp=1 and no sync daemon. A flow that ECMP moves to
# another peer schedules a conn there from its mid-flow segment, and mh picks the same real
# server on every peer, so every connection goes on. (With rr instead the moved flows reach the
# other real server half the time and are reset.)
SYNCAA_SCHED=mh SYNCAA_SLOPPY=1 SYNCAA_WITHOUT_SYNC=1 exec bash "$(dirname "$0")/sync_active_active.sh"
