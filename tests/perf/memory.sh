#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The memory row of scripts/bench.sh (issue 19): lbd's resident memory (VmRSS) idle as a sidecar
# and as a gateway, with 100,000 and 1,000,000 tracked conns in a 1,048,576-entry table, and
# after they expire. It runs tests/integration/memory.sh in report mode (UDP flows from
# tests/perf/connflood.c, NATed by a gateway lbd; lbctl --set shortens the UDP timeout so
# that they expire within seconds of the last one). Needs root.
#   tests/perf/memory.sh [--quick]      --quick: 100,000 conns only
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
conns="100000 1000000"
[[ " $* " == *" --quick "* ]] && conns=100000
export LBD_BIN=${LBD_BIN:-$src/build/bin/lbd}
export LBCTL_BIN=${LBCTL_BIN:-$src/build/bin/lbctl}
echo "== memory (VmRSS; table capacity 1048576)"
MEM_REPORT=1 MEM_CAPACITY=1048576 MEM_CONNS=$conns MEM_RATE=${MEM_RATE:-30000} \
  bash "$src/tests/integration/memory.sh" 2>&1 | sed -n 's/^memory: /   /p'
