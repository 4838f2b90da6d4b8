#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Active-active as issue 15 item 4 describes it: sync_active_active.sh's three ECMP peers, each
# running a master and a backup sync daemon, with the mh scheduler and sloppy_tcp=1. A flow that
# ECMP moves finds its synced conn at the new peer; one whose conn was not synced yet schedules
# there from its mid-flow segment, and mh picks the same real server on every peer. Every
# connection goes on (sync_active_active_mh.sh runs the same without the daemons).
SYNCAA_SCHED=mh SYNCAA_SLOPPY=1 exec bash "$(dirname "$0")/sync_active_active.sh"
