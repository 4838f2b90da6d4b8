#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Memory follows use (issue 19, docs/memory.md). An idle sidecar lbd stays under
# $IDLE_LIMIT_KB resident; a gateway lbd's resident memory grows with the conns it tracks (UDP
# flows from tests/perf/connflood.c, one datagram each, NATed to a real server) and comes
# back down once they expire (a short UDP timeout through lbctl --set). Bounds, not timings:
#   - the growth per tracked conn stays at or below $MAX_BYTES_PER_CONN;
#   - after expiry at most $MAX_LEFT_PCT % of the growth is left.
# With MEM_REPORT=1 (the memory row of scripts/bench.sh) it prints the figures for every count
# in MEM_CONNS (e.g. "100000 1000000") and asserts only that the counts were reached.
source "$(dirname "$0")/dataplane_lib.sh"

dp_init memory
if [[ -z "${CONNFLOOD_BIN:-}" ]]; then
  command -v cc >/dev/null || dp_skip "needs cc (or CONNFLOOD_BIN)"
  CONNFLOOD_BIN="$DP_TMP/connflood"
  cc -O2 -o "$CONNFLOOD_BIN" "$(dirname "$0")/../perf/connflood.c" || dp_fail "connflood.c did not build"
fi

MEM_CONNS=${MEM_CONNS:-60000}
MEM_CAPACITY=${MEM_CAPACITY:-262144}
MEM_RATE=${MEM_RATE:-40000}
MEM_REPORT=${MEM_REPORT:-0}
IDLE_LIMIT_KB=${IDLE_LIMIT_KB:-20480}
MAX_BYTES_PER_CONN=${MAX_BYTES_PER_CONN:-320}
MAX_LEFT_PCT=${MAX_LEFT_PCT:-25}
VIP=198.18.1.100
METRICS=127.0.0.1:9482

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
metric() {
  ip netns exec "$(n l)" curl -s --max-time 5 "http://$METRICS/metrics" |
    awk -v m="$1" '$1 == m { print $2 }'
}
entries() { local e; e=$(metric lb_conn_entries); echo "${e:-0}"; }

# --- 1. idle sidecar ---------------------------------------------------------------------------
dp_ns app
dp_lbd app sc --tun=lbd0 --workers=1 --mode=sidecar
sleep 2 # lint: allow-sleep (the workers and gRPC threads settle before RSS is read; the bound has margin)
side_kb=$(rss_kb "$DP_LBD_PID_sc")
dp_lbd_stop sc

# --- 2. gateway: grow, expire ------------------------------------------------------------------
dp_ns c
dp_ns l
dp_ns s1
dp_link c c0 l l0
dp_link l l1 s1 s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add $VIP/32 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" route add 198.19.0.0/16 via 198.18.1.2
ip -n "$(n s1)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s1)" route add 198.19.0.0/16 via 198.18.2.1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
# The real server has no UDP listener: its port-unreachable errors are rate-limited by its
# kernel and change nothing in lbd's table.

# The test checks the conn table: without the tc flow offload, whose own per-conn state (a hash
# map of up to 65,536 offloaded conns, filled by a flow's second packet) would come on top and
# stays allocated after they expire. The bench's report mode keeps lbd's defaults.
offload=--flow-offload=false
[[ $MEM_REPORT == 1 ]] && offload=
dp_lbd l gw --tun=lbd0 --workers=2 --mode=gateway --metrics=$METRICS --conn_capacity="$MEM_CAPACITY" $offload
lbctl gw -A -u $VIP:53 -s rr
lbctl gw -a -u $VIP:53 -r 198.18.2.11:53 -m
dp_wait 10 bash -c "[[ -n \$(ip netns exec $(n l) curl -s --max-time 2 http://$METRICS/metrics) ]]" ||
  dp_fail "no metrics on $METRICS"
sleep 1 # lint: allow-sleep (the idle gateway settles before its RSS is read; only reported)
gw_kb=$(rss_kb "$DP_LBD_PID_gw")
echo "memory: idle sidecar ${side_kb} kB, idle gateway ${gw_kb} kB (capacity $MEM_CAPACITY)"

fail=0
for want in $MEM_CONNS; do
  # Every flow must outlive the sending of all of them (twice the time the rate asks, for a
  # loaded machine that sends slower); then they go within seconds.
  timeout_s=$((2 * want / MEM_RATE + 10))
  lbctl gw --set 900 120 "$timeout_s"
  base_kb=$(rss_kb "$DP_LBD_PID_gw")
  # Sources 198.19.0.1-16 x ports 1024-65535: one distinct flow per datagram.
  send() {
    ip netns exec "$(n c)" "$CONNFLOOD_BIN" $VIP 53 "$want" "$MEM_RATE" 198.19.0.1 16 \
      >"$DP_TMP/udp-$want.txt" 2>&1 || dp_fail "connflood: $(cat "$DP_TMP/udp-$want.txt")"
  }
  settle() {  # the count stops moving (bounded)
    local prev=-1
    got=$(entries)
    for _ in $(seq 1 40); do
      [[ $got == "$prev" ]] && break
      prev=$got
      sleep 0.25
      got=$(entries)
    done
  }
  send
  settle
  if ((got < want * 99 / 100)); then
    # lbd, sharing the CPUs with the sender, dropped some at its TUN queue: the same flows
    # again refresh the conns made and make the missing ones.
    send
    settle
  fi
  peak_kb=$(rss_kb "$DP_LBD_PID_gw")
  dp_wait $((timeout_s + 60)) bash -c "[[ \$(ip netns exec $(n l) curl -s --max-time 2 http://$METRICS/metrics | awk '\$1 == \"lb_conn_entries\" { print \$2 }') == 0 ]]" ||
    dp_fail "$want flows: the conns did not expire ($(entries) left)"
  # Empty chunks go back in the housekeeping thread's next rounds (256 chunks a round).
  after_kb=$(rss_kb "$DP_LBD_PID_gw")
  for _ in $(seq 1 20); do
    sleep 0.25
    now_kb=$(rss_kb "$DP_LBD_PID_gw")
    ((now_kb < after_kb)) || break
    after_kb=$now_kb
  done
  grow=$((peak_kb - base_kb))
  per=$((got > 0 ? grow * 1024 / got : 0))
  left=$((after_kb - base_kb))
  echo "memory: $(cat "$DP_TMP/udp-$want.txt")"
  echo "memory: $got conns: ${peak_kb} kB (+${grow} kB, ${per} B/conn); after expiry ${after_kb} kB (+${left} kB over ${base_kb} kB)"
  ((got >= want / 2)) || { echo "FAIL: only $got of $want flows became conns" >&2; fail=1; }
  [[ $MEM_REPORT == 1 ]] && continue
  ((per <= MAX_BYTES_PER_CONN)) ||
    { echo "FAIL: ${per} B per conn > ${MAX_BYTES_PER_CONN}" >&2; fail=1; }
  ((grow * 1024 >= got * 150)) ||
    { echo "FAIL: ${grow} kB for $got conns: the conns' memory is not where this test looks" >&2; fail=1; }
  ((left * 100 <= grow * MAX_LEFT_PCT)) ||
    { echo "FAIL: ${left} kB of ${grow} kB still resident after expiry" >&2; fail=1; }
done
if [[ $MEM_REPORT != 1 ]]; then
  ((side_kb < IDLE_LIMIT_KB)) ||
    { echo "FAIL: idle sidecar ${side_kb} kB >= ${IDLE_LIMIT_KB} kB" >&2; fail=1; }
fi
dp_lbd_stop gw
((fail == 0)) || dp_fail "memory bounds"
echo "PASS: memory follows use"
