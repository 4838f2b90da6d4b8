#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The traffic gap a client sees when lbd restarts (issue 18), measured, not asserted:
#   plain: SIGTERM, then a new lbd on the same --state-file (configuration back, kernel state
#          rebuilt, connections lost);
#   hot:   `lbd --takeover` (TUN queues, configuration, kernel state and conns handed over).
# Under both: a new HTTP connection every 20 ms, a UDP flow (a datagram every 20 ms) and a paced
# 20 MB TCP transfer through a NAT VIP, in namespaces (gateway mode, flow offload as default).
# For each restart it prints the longest silence each client saw and what broke.
#   scripts/restart_gap.sh [RUNS]        (root; LBD_BIN/LBCTL_BIN default to build/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
export LBD_BIN=${LBD_BIN:-$PWD/build/bin/lbd} LBCTL_BIN=${LBCTL_BIN:-$PWD/build/bin/lbctl}
source tests/integration/dataplane_lib.sh
dp_init rgap

VIP=198.18.1.100
TRAFFIC=$PWD/tests/integration/traffic.py
dp_ns c
dp_ns l
dp_ns s
dp_link c c0 l l0
dp_link l l1 s s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add $VIP/32 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n s)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s)" route add 198.18.1.0/24 via 198.18.2.1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
dp_http s 198.18.2.11 S1 80
ip netns exec "$(n s)" python3 "$TRAFFIC" serve-udp 198.18.2.11 5300 S1 >/dev/null 2>&1 &
DP_PIDS+=($!)
ip netns exec "$(n s)" python3 "$TRAFFIC" serve-bulk 198.18.2.11 7001 >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s tcp 7001 || dp_fail "bulk server did not start"

STATE=$DP_TMP/state
LOG=$DP_TMP/lbd-r.log  # the running lbd's log
RUN=0
FLAGS=(--tun=lbd0 --workers=2 --mode=gateway --state-file="$STATE")
dp_lbd l r "${FLAGS[@]}"
lbctl r -A -t $VIP:80 -s rr
lbctl r -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl r -A -t $VIP:7001 -s rr
lbctl r -a -t $VIP:7001 -r 198.18.2.11:7001 -m
lbctl r -A -u $VIP:53 -s rr
lbctl r -a -u $VIP:53 -r 198.18.2.11:5300 -m

transfer_flows() {
  [[ -n $(ip netns exec "$(n c)" ss -tnH state established "dport = :7001") ]]
}

field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" "$2"; }

one() {  # one plain|hot: a restart under traffic; prints one row
  local kind=$1
  ip netns exec "$(n c)" python3 "$TRAFFIC" conns $VIP 80 6 20 >"$DP_TMP/conns.out" 2>&1 &
  local pc=$!
  ip netns exec "$(n c)" python3 "$TRAFFIC" udp $VIP 53 6 >"$DP_TMP/udp.out" 2>&1 &
  local pu=$!
  ip netns exec "$(n c)" python3 "$TRAFFIC" bulk $VIP 7001 $((20 << 20)) $((4 << 20)) \
    >"$DP_TMP/bulk.out" 2>&1 &
  local pb=$!
  # The restart happens once the transfer flows (a loaded machine starts python slowly).
  dp_wait 20 transfer_flows || dp_fail "the transfer did not start"
  sleep 1
  local old=$DP_LBD_PID_r t0 t1 paused=""
  t0=$(date +%s%N)
  if [[ $kind == plain ]]; then
    dp_lbd_stop r
    dp_lbd l r "${FLAGS[@]}"
    LOG=$DP_TMP/lbd-r.log
  else
    RUN=$((RUN + 1))
    ip netns exec "$(n l)" "$LBD_BIN" --listen="unix://$DP_TMP/r.sock" "${FLAGS[@]}" --takeover \
      >"$DP_TMP/lbd-hot$RUN.log" 2>&1 &
    DP_LBD_PID_r=$!
    DP_LBD_PIDS+=($!)
    dp_wait_pid "$old" 20 || dp_fail "the old lbd did not exit"
    # What the old lbd measured: its workers' last batch to the new lbd's "ok".
    paused=$(sed -n 's/.*workers stopped \([0-9]*\) ms before.*/\1/p' "$LOG" | tail -n 1)
    LOG=$DP_TMP/lbd-hot$RUN.log
  fi
  t1=$(date +%s%N)
  local rb=0
  wait "$pc" || true
  wait "$pu" || true
  wait "$pb" || rb=$?
  grep "took" "$DP_TMP/conns.out" || true  # new connections slower than 500 ms
  printf '%-6s restart %5d ms%s | new conns: gap %7s ms, %s failed | udp: gap %7s ms, %s lost | 20 MB transfer: %s\n' \
    "$kind" $(((t1 - t0) / 1000000)) "${paused:+ (workers stopped $paused ms)}" \
    "$(field max_gap_ms "$DP_TMP/conns.out")" \
    "$(field failed "$DP_TMP/conns.out")" "$(field max_gap_ms "$DP_TMP/udp.out")" \
    "$(field lost "$DP_TMP/udp.out")" \
    "$([[ $rb -eq 0 ]] && echo "intact, gap $(field max_gap_ms "$DP_TMP/bulk.out") ms" || echo broken)"
}

echo "lbd restart gap, $RUNS runs each ($(nproc) CPUs; conns every 20 ms, udp every 20 ms):"
for _ in $(seq "$RUNS"); do
  one plain
  one hot
done
dp_lbd_stop r
