#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sync_active_active.sh with lbd --flow_offload=false: the three ECMP peers' conns, their sync and
# the moved flows at their new peer all go through lbd's userspace pipeline.
SYNCAA_FLOW_OFFLOAD=0 exec bash "$(dirname "$0")/sync_active_active.sh"
