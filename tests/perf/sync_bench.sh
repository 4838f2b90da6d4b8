#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync figures for the closing note of issue 15. These are measurements, not
# pass/fail tests. Run as root: bash tests/perf/sync_bench.sh [RUNS]
#
# Topology: c -- br0 -- g1 (master daemon), g2 (backup daemon) -- br1 -- s1. g1 NATs UDP
# VIP:9999 to s1, where nothing listens and the datagrams are dropped. tests/perf/connflood.c
# sends one datagram from each of N distinct (address, port) sources, so each datagram is a new
# connection for lbd.
#   1. sync traffic at ~10,000 new conns/s: the master's lb_sync_master_{messages,bytes,conns}
#      deltas over a paced flood of 50,000 conns. A one-datagram UDP conn never reaches the
#      kernel's default sync_threshold (3rd packet), so the run sets sync_threshold=1 (lbctl
#      --sysctl): every new conn is synced on its first packet, the worst case for sync.
#   2. the master's new-conn rate with and without the master daemon, from the same run,
#      alternating: connflood as fast as it can send 300,000 conns, and lbd's rate is the
#      service's connection count (-Ln --stats) over the flood's duration. The UDP timeout is
#      1 s, so the table empties between rounds.
#   3. the failover gap: tests/integration/sync_keepalived_vrrp.sh (VRRP advert_int 1), where
#      the client reports its longest pause between two reads.
# Each figure is the median of RUNS (default 3) runs. The machine is shared, so treat the
# medians as indications.
set -euo pipefail
RUNS=${1:-3}
src=$(cd "$(dirname "$0")/../.." && pwd)
export LBD_BIN=${LBD_BIN:-$src/build/bin/lbd}
export LBCTL_BIN=${LBCTL_BIN:-$src/build/bin/lbctl}
source "$src/tests/integration/dataplane_lib.sh"
dp_init syncbench

VIP=198.18.3.100
dp_ns c
dp_ns g1
dp_ns g2
dp_ns sw
dp_ns s1
dp_bridge sw br0
dp_bridge sw br1
dp_link c c0 sw swc
ip -n "$(n sw)" link set swc master br0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
for g in 1 2; do
  dp_link "g$g" a0 sw "swa$g"
  dp_link "g$g" b0 sw "swb$g"
  ip -n "$(n sw)" link set "swa$g" master br0
  ip -n "$(n sw)" link set "swb$g" master br1
  ip -n "$(n "g$g")" addr add "198.18.1.1$g/24" dev a0
  ip -n "$(n "g$g")" addr add "198.18.2.$g/24" dev b0
  ip netns exec "$(n "g$g")" sysctl -qw net.ipv4.conf.all.rp_filter=0
done
dp_link s1 s0 sw sws1
ip -n "$(n sw)" link set sws1 master br1
ip -n "$(n s1)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s1)" route add 198.18.0.0/15 via 198.18.2.1
# connflood's sources (198.18.60.0/24, spoofed) reach the VIP through g1.
ip -n "$(n c)" route add $VIP/32 via 198.18.1.11
ip netns exec "$(n c)" sysctl -qw net.ipv4.conf.all.rp_filter=0
for g in 1 2; do
  dp_lbd "g$g" "g$g" --tun=lbd0 --workers=2 --mode=gateway --flow_offload=false \
    --metrics=127.0.0.1:9100
  lbctl "g$g" -A -u $VIP:9999 -s rr
  lbctl "g$g" -a -u $VIP:9999 -r 198.18.2.11:9999 -m
  lbctl "g$g" --set 900 120 1
done
lbctl g2 --start-daemon backup --mcast-interface a0

cc -O2 -o "$DP_TMP/connflood" "$src/tests/perf/connflood.c"
metric() {  # metric G NAME: a counter from G's /metrics
  ip netns exec "$(n "$1")" curl -s --max-time 5 http://127.0.0.1:9100/metrics |
    awk -v m="$2" '$1 == m { printf "%d", $2; f = 1 } END { if (!f) printf "0" }'
}
svc_conns() {  # the UDP service's total connections (lbctl -Ln --stats, Conns column)
  lbctl g1 -Ln --stats | awk -v v="$VIP:9999" '$1 == "UDP" && $2 == v { print $3 }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
round=10
flood() {  # flood N RATE X: sources 198.18.X.1-200; prints the flood's duration in seconds; a fresh /24 of sources
  ip netns exec "$(n c)" "$DP_TMP/connflood" $VIP 9999 "$1" "$2" "198.18.$3.1" 200 |
    sed -n 's/^sent [0-9]* packets in \([0-9.]*\) s.*/\1/p'
}

# --- 1. sync traffic at ~10,000 new conns/s -------------------------------------------------
lbctl g1 --sysctl sync_threshold=1
lbctl g1 --start-daemon master --mcast-interface a0
msgs_s="" bytes_s="" conns_s="" entries_per_msg=""
for ((r = 1; r <= RUNS; r++)); do
  m0=$(metric g1 lb_sync_master_messages_total)
  b0=$(metric g1 lb_sync_master_bytes_total)
  k0=$(metric g1 lb_sync_master_conns_total)
  round=$((round + 1))
  t=$(flood 50000 10000 $round)
  # The sender flushes a partly filled message within 2 s.
  sleep 2.5
  m1=$(metric g1 lb_sync_master_messages_total)
  b1=$(metric g1 lb_sync_master_bytes_total)
  k1=$(metric g1 lb_sync_master_conns_total)
  msgs_s+=" $(awk -v d=$((m1 - m0)) -v t="$t" 'BEGIN { printf "%.0f", d / t }')"
  bytes_s+=" $(awk -v d=$((b1 - b0)) -v t="$t" 'BEGIN { printf "%.0f", d / t }')"
  conns_s+=" $(awk -v d=$((k1 - k0)) -v t="$t" 'BEGIN { printf "%.0f", d / t }')"
  entries_per_msg+=" $(awk -v k=$((k1 - k0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.1f", m ? k / m : 0 }')"
  echo "  run $r: 50000 conns in $t s: $((m1 - m0)) messages, $((b1 - b0)) bytes, $((k1 - k0)) entries" >&2
done
backup_conns=$(metric g2 lb_sync_backup_conns_total)
echo "sync at ~10k new conns/s: $(echo "$msgs_s" | median) messages/s, $(echo "$bytes_s" | median) bytes/s (UDP payload), $(echo "$conns_s" | median) entries/s, $(echo "$entries_per_msg" | median) entries/message; backup received $backup_conns entries in all"

# --- 2. the master's new-conn rate with and without the master daemon -----------------------
with="" without=""
for ((r = 1; r <= RUNS; r++)); do
  for mode in without with; do
    if [[ $mode == with ]]; then
      lbctl g1 --start-daemon master --mcast-interface a0 2>/dev/null || true
    else
      lbctl g1 --stop-daemon master 2>/dev/null || true
    fi
    sleep 2.5  # the previous round's conns expire (UDP timeout 1 s)
    c0=$(svc_conns)
    round=$((round + 1))
    t=$(flood 300000 10000000 $round)
    sleep 0.5
    c1=$(svc_conns)
    rate=$(awk -v d=$((c1 - c0)) -v t="$t" 'BEGIN { printf "%.0f", d / t }')
    echo "  run $r $mode sync: $((c1 - c0)) conns in $t s = $rate conns/s" >&2
    if [[ $mode == with ]]; then with+=" $rate"; else without+=" $rate"; fi
  done
done
echo "master new conns/s (UDP, 300,000 per round, sync_threshold=1): without the master daemon $(echo "$without" | median), with it $(echo "$with" | median)"

# --- 3. the failover gap (keepalived VRRP, advert_int 1) ------------------------------------
gaps=""
for ((r = 1; r <= RUNS; r++)); do
  out=$(env CI=true bash "$src/tests/integration/sync_keepalived_vrrp.sh" 2>&1) || {
    echo "  run $r: sync_keepalived_vrrp failed" >&2
    echo "$out" | tail -n 5 >&2
    continue
  }
  g=$(echo "$out" | sed -n 's/^failover gap seen by the client: \([0-9]*\) ms.*/\1/p')
  echo "  run $r: failover gap $g ms" >&2
  gaps+=" $g"
done
echo "failover gap seen by the client (keepalived VRRP advert_int 1, SIGKILL of lbd and keepalived): median $(echo "$gaps" | median) ms of runs:$gaps"
