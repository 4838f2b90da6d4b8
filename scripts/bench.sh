#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole-system benchmark (issue 6): lbd against plain routing, the kernel's nftables DNAT and
# HAProxy in TCP mode, in one run, on one namespace topology. Not part of CI's pass/fail.
#   scripts/bench.sh [--quick] [--contenders=routing,nft,haproxy,lbd-nat,lbd-nat-nobpf,
#     lbd-synproxy,lbd-fullnat,lbd-dr,lbd-tunnel,lbd-tunnel-gue,lbd-tunnel-gre,lbd-sidecar]
# Installs what is missing (iperf3 wrk nginx-light haproxy nftables), builds lbd if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
install_deps build bench test
[ -x build/bin/lbd ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)"; }
bash tests/perf/run.sh "$@"
# The memory row (issue 19): idle RSS, RSS at 100,000 and 1,000,000 conns, after they expire.
exec bash tests/perf/memory.sh "$@"
