#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Health-check cost (issue 14): 10,000 real servers with TCP_CHECK every second (100 virtual
# servers x 100 real servers, lbd --keepalived-conf) against the same configuration without
# checkers. Prints lbd's CPU share (utime+stime over the window, from /proc) and the packet
# path's latency through a VIP (tests/perf/vipping.c: ICMP echo through lbd every 1 ms, p50/p99)
# for both, and the checks lbd ran per second. Root; everything in its own namespaces.
#   tests/perf/health_bench.sh BUILD_DIR [SECONDS]
set -euo pipefail
B=${1:?build dir}
SECS=${2:-20}
src=$(cd "$(dirname "$0")/../.." && pwd)
LBD=$B/bin/lbd
LBCTL=$B/bin/lbctl
tmp=$(mktemp -d /tmp/lbd-health-bench.XXXXXX)
P=hb$$
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in c l s; do
    ip netns pids "$P-$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$P-$ns" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

cc -O2 -o "$tmp/vipping" "$src/tests/perf/vipping.c"
for ns in c l s; do
  ip netns add "$P-$ns"
  ip -n "$P-$ns" link set lo up
done
ip link add c0 netns "$P-c" type veth peer name l0 netns "$P-l"
ip link add l1 netns "$P-l" type veth peer name s0 netns "$P-s"
for x in "c c0" "l l0" "l l1" "s s0"; do
  set -- $x
  ip -n "$P-$1" link set "$2" up
done
ip -n "$P-c" addr add 198.18.1.2/24 dev c0
ip -n "$P-l" addr add 198.18.1.1/24 dev l0
ip -n "$P-l" addr add 198.18.2.1/24 dev l1
ip -n "$P-s" addr add 198.18.2.11/24 dev s0
for r in $(seq 12 110); do ip -n "$P-s" addr add "198.18.2.$r/24" dev s0; done
METHOD=${METHOD:-DR}
ip -n "$P-s" route add 198.18.1.0/24 via 198.18.2.1
ip netns exec "$P-l" sysctl -qw net.ipv4.conf.all.rp_filter=0

# 10,000 listening sockets (198.18.2.11..110 x 1000..1099; NAT: 198.18.2.11 x 20000..29999) and
# 198.18.2.11:80, accepting and closing.
ip netns exec "$P-s" python3 -c '
import resource, selectors, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if sys.argv[1] == "NAT":
    eps = [("198.18.2.11", p) for p in range(20000, 30000)]
else:
    eps = [("198.18.2.%d" % (11 + r), 1000 + v) for v in range(100) for r in range(100)]
sel = selectors.DefaultSelector()
for a, p in [("198.18.2.11", 80)] + eps:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, p))
    s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        while True:
            try:
                c, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            c.close()
' "$METHOD" &
pids+=($!)
for _ in $(seq 200); do
  [[ $(ip netns exec "$P-s" ss -ltnH | wc -l) -ge 10001 ]] && break
  sleep 0.1
done

gen() {  # gen WITH_CHECKS
  echo "virtual_server 198.18.1.100 80 {"
  echo "  lb_algo rr"
  echo "  real_server 198.18.2.11 80 {"
  echo "  }"
  echo "}"
  for v in $(seq 0 99); do
    echo "virtual_server 198.18.1.100 $((1000 + v)) {"
    echo "  delay_loop 1"
    echo "  lb_algo rr"
    echo "  lb_kind $METHOD"
    for r in $(seq 0 99); do
      if [[ $METHOD == NAT ]]; then
        echo "  real_server 198.18.2.11 $((20000 + v * 100 + r)) {"
      else
        echo "  real_server 198.18.2.$((11 + r)) $((1000 + v)) {"
      fi
      [[ $1 == 1 ]] && echo "    TCP_CHECK {" && echo "      connect_timeout 1" && echo "    }"
      echo "  }"
    done
    echo "}"
  done
}
gen 1 >"$tmp/checks.conf"
gen 0 >"$tmp/nochecks.conf"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
checks_total() {
  ip netns exec "$P-l" curl -s --max-time 20 http://127.0.0.1:9482/metrics >"$tmp/metrics" || true
  cat "$tmp/metrics" |
    awk '/^lb_health_checks_total/ { s += $NF } END { printf "%d\n", s }'
}

run() {  # run NAME CONF
  ip netns exec "$P-l" "$LBD" --tun=lbd0 --workers=1 --listen="unix://$tmp/lbd.sock" \
    --keepalived-conf="$2" --metrics=127.0.0.1:9482 >"$tmp/lbd-$1.log" 2>&1 &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 600); do
    n=$(LBD_SERVER="unix://$tmp/lbd.sock" "$LBCTL" -Ln 2>/dev/null | grep -c -- '->' || true)
    [[ $n -ge 10001 ]] && break
    sleep 0.1
  done
  sleep 3  # past the warmup (first checks spread over delay_loop)
  kill -0 $pid 2>/dev/null || { echo "$1: lbd died:"; tail -n 30 "$tmp/lbd-$1.log"; return 1; }
  local hz c0 c1 k0 k1 t0 t1
  hz=$(getconf CLK_TCK)
  k0=$(checks_total)
  c0=$(cpu_ticks $pid)
  t0=$(date +%s%N)
  ping=$(ip netns exec "$P-c" "$tmp/vipping" 198.18.1.100 1000 "$SECS" 2>&1)
  c1=$(cpu_ticks $pid)
  t1=$(date +%s%N)
  k1=$(checks_total)
  local cpu
  cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v t="$(( (t1 - t0) / 1000000 ))" \
    'BEGIN { printf "%.1f", (b - a) / hz * 1000 / t * 100 }')
  echo "$1: $n real servers, lbd CPU ${cpu}% of one core, checks/s $(( (k1 - k0) * 1000 / ((t1 - t0) / 1000000) )), ping through the VIP: $ping"
  [[ -s "$tmp/metrics" ]] || echo "  (no /metrics answer)"
  grep -m2 lb_health_checks_total "$tmp/metrics" || true
  grep -o 'TCP_CHECK of .* failed: .*' "$tmp/lbd-$1.log" | sed 's/.*failed: //' | sort | uniq -c |
    sort -rn | head -n 3 | sed 's/^/  failure reason: /' || true
  echo "  log: $(grep -c 'failed' "$tmp/lbd-$1.log") failures, $(grep -c 'succeeded' "$tmp/lbd-$1.log") recoveries, $(grep -c 'applied ApplyBatch' "$tmp/lbd-$1.log") batch lines; dests now $(LBD_SERVER="unix://$tmp/lbd.sock" "$LBCTL" -Ln | grep -c -- '->')"
  kill -TERM $pid
  wait $pid 2>/dev/null || true
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
[[ ${ONLY_CHECKS:-0} == 1 ]] || run "without checks" "$tmp/nochecks.conf"
run "TCP_CHECK every 1 s" "$tmp/checks.conf"
[[ ${ONLY_CHECKS:-0} == 1 ]] || run "without checks (again)" "$tmp/nochecks.conf"
