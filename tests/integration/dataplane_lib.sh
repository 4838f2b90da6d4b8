#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Helpers for the dataplane integration tests: namespaces with a unique prefix, veth links,
# HTTP/UDP servers, lbd and lbctl, bounded waits, and a trap that removes all of it.
# Source it, then call dp_init <test-name>. Needs root, /dev/net/tun, python3, curl, socat.
# Exit 77 = skipped (not root / no TUN), except under CI=true where that is a failure.

set -euo pipefail

DP_NS=()
DP_PIDS=()
DP_LBD_PIDS=()
DP_TMP=""
DP_PFX=""

dp_skip() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL (CI=true): $*" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

dp_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

dp_cleanup() {
  local rc=$?
  local pid
  for pid in "${DP_LBD_PIDS[@]}" "${DP_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${DP_LBD_PIDS[@]}" "${DP_PIDS[@]}"; do
    dp_wait_pid "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
  done
  local ns
  for ns in "${DP_NS[@]}"; do
    # Children the servers forked (a connection still open) are not in DP_PIDS; everything
    # still running in a namespace this test made is the test's own.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -n "$DP_TMP" ]]; then
    local f
    for f in "$DP_TMP"/lbd*.log; do
      [[ -f "$f" ]] && { echo "--- $f (tail)"; tail -n 30 "$f"; }
    done
  fi
  [[ -n "$DP_TMP" ]] && rm -rf "$DP_TMP"
  exit $rc
}

# dp_init NAME: checks prerequisites, sets the namespace prefix and the trap.
dp_init() {
  [[ $(id -u) -eq 0 ]] || dp_skip "needs root"
  [[ -c /dev/net/tun ]] || dp_skip "needs /dev/net/tun"
  : "${LBD_BIN:?LBD_BIN must point at build/bin/lbd}"
  : "${LBCTL_BIN:?LBCTL_BIN must point at build/bin/lbctl}"
  [[ -x "$LBD_BIN" && -x "$LBCTL_BIN" ]] || dp_fail "LBD_BIN/LBCTL_BIN not executable"
  local t
  for t in ip python3 curl; do
    command -v "$t" >/dev/null || dp_skip "needs $t"
  done
  DP_PFX="${1:0:8}$$"
  DP_TMP=$(mktemp -d "/tmp/lbd-it-${1}.XXXXXX")
  trap dp_cleanup EXIT
  trap 'exit 130' INT TERM
}

# dp_ns SHORT: creates namespace $DP_PFX-SHORT with lo up; prints nothing.
dp_ns() {
  local ns="$DP_PFX-$1"
  ip netns add "$ns"
  DP_NS+=("$ns")
  ip -n "$ns" link set lo up
  # Deterministic tests: no DAD delay for the IPv6 addresses the tests add.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

n() { echo "$DP_PFX-$1"; }

# dp_link NS_A IF_A NS_B IF_B: a veth pair, both ends up.
dp_link() {
  ip link add "$2" netns "$(n "$1")" type veth peer name "$4" netns "$(n "$3")"
  ip -n "$(n "$1")" link set "$2" up
  ip -n "$(n "$3")" link set "$4" up
}

# dp_bridge NS BR: a bridge in NS.
dp_bridge() {
  ip -n "$(n "$1")" link add "$2" type bridge
  ip -n "$(n "$1")" link set "$2" up
}

# dp_wait TIMEOUT_S CMD...: polls CMD every 50 ms until it succeeds or the deadline passes.
dp_wait() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# dp_poll TIMEOUT_S WHAT CMD...: the bounded wait before a hard assertion (never a fixed sleep):
# runs CMD every 100 ms until it succeeds; after TIMEOUT_S fails the test naming WHAT was awaited
# and CMD's last output (a predicate prints the value it saw). tests/lint/integration_rules_test.sh
# flags a bare `sleep` of 1 s or more.
dp_poll() {
  local secs=$1 what=$2 out=""
  shift 2
  local deadline=$((SECONDS + secs))
  until out=$("$@" 2>&1); do
    ((SECONDS < deadline)) || dp_fail "waited ${secs} s for ${what}; last seen: ${out:-<no output>}"
    sleep 0.1
  done
}

# dp_poll_eq TIMEOUT_S WHAT WANT CMD...: dp_poll until CMD prints exactly WANT.
dp_poll_eq() {
  local secs=$1 what=$2 want=$3 out=""
  shift 3
  local deadline=$((SECONDS + secs))
  until out=$("$@" 2>&1) && [[ $out == "$want" ]]; do
    ((SECONDS < deadline)) || dp_fail "waited ${secs} s for ${what} = '${want}'; last seen: '${out}'"
    sleep 0.1
  done
}

# dp_need TOOL...: the test needs these commands (scripts/deps.sh's test group installs them): a
# missing one skips the whole test, visibly (a failure under CI=true), never a section of it.
dp_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || dp_skip "needs $t (scripts/deps.sh test)"
  done
}

dp_wait_pid() {
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

listening() {  # listening NS PROTO PORT
  local flag=-ltnH
  [[ $2 == udp ]] && flag=-lunH
  [[ -n $(ip netns exec "$(n "$1")" ss $flag "sport = :$3") ]]
}

# dp_http NS ADDR NAME [PORT]: an HTTP server on ADDR:PORT answering "NAME".
dp_http() {
  local port=${4:-80}
  local dir="$DP_TMP/www-$3-$port"
  mkdir -p "$dir"
  echo "$3" >"$dir/index.html"
  local bind=$2
  ip netns exec "$(n "$1")" python3 -m http.server "$port" --bind "$bind" --directory "$dir" \
    >"$DP_TMP/http-$3-$port.log" 2>&1 &
  DP_PIDS+=($!)
  dp_wait 10 listening "$1" tcp "$port" || dp_fail "HTTP server $3 on $bind:$port did not start"
}

# dp_udp_echo NS PORT NAME: answers every datagram with "NAME\n". One process (socat's
# RECVFROM,fork forks a shell per datagram, which a loaded machine can delay past a client's
# timeout).
dp_udp_echo() {
  ip netns exec "$(n "$1")" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
reply = (sys.argv[2] + "\n").encode()
while True:
    d, a = s.recvfrom(65535)
    s.sendto(reply, a)
' "$2" "$3" >/dev/null 2>&1 &
  DP_PIDS+=($!)
  dp_wait 10 listening "$1" udp "$2" || dp_fail "UDP server $3 did not start"
}

# dp_lbd NS TAG [lbd flags...]: starts lbd in NS with its socket in $DP_TMP/TAG.sock.
dp_lbd() {
  local ns=$1 tag=$2
  shift 2
  local sock="$DP_TMP/$tag.sock"
  ip netns exec "$(n "$ns")" "$LBD_BIN" --listen="unix://$sock" "$@" >"$DP_TMP/lbd-$tag.log" 2>&1 &
  local pid=$!
  DP_LBD_PIDS+=($pid)
  eval "DP_LBD_PID_$tag=$pid"
  dp_wait 15 env LBD_SERVER="unix://$sock" "$LBCTL_BIN" -Ln ||
    dp_fail "lbd ($tag) did not answer on $sock: $(tail -n 20 "$DP_TMP/lbd-$tag.log")"
}

# dp_lbd_stop TAG: SIGTERM and wait (bounded) for exit 0.
dp_lbd_stop() {
  local var="DP_LBD_PID_$1"
  local pid=${!var}
  kill -TERM "$pid"
  dp_wait_pid "$pid" 15 || dp_fail "lbd ($1) did not stop within 15 s"
  local rc=0
  wait "$pid" || rc=$?
  local keep=()
  local p
  for p in "${DP_LBD_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  DP_LBD_PIDS=("${keep[@]}")
  [[ $rc -eq 0 ]] || dp_fail "lbd ($1) exited with $rc: $(tail -n 20 "$DP_TMP/lbd-$1.log")"
}

# lbctl TAG args...: lbctl against lbd TAG.
lbctl() {
  local tag=$1
  shift
  LBD_SERVER="unix://$DP_TMP/$tag.sock" "$LBCTL_BIN" "$@"
}

# dp_get NS URL: one new HTTP connection; prints the body.
dp_get() {
  ip netns exec "$(n "$1")" curl -s --max-time 5 --noproxy '*' "$2"
}

# dp_kernel_state NS: everything lbd may install, as text, for a before/after diff.
dp_kernel_state() {
  local ns
  ns=$(n "$1")
  ip -n "$ns" route show table all
  # Link-local addresses appear when DAD ends, whatever lbd does.
  ip -n "$ns" -6 route show table all | grep -v 'fe80::' || true
  ip -n "$ns" rule show
  ip -n "$ns" -6 rule show
  ip -n "$ns" addr show
  ip -n "$ns" neigh show proxy
  ip -n "$ns" -6 neigh show proxy
  ip netns exec "$ns" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding \
    net.ipv4.conf.all.rp_filter net.ipv4.conf.all.accept_local \
    net.ipv4.tcp_early_demux net.ipv4.udp_early_demux
  ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv4/neigh/*/proxy_delay \
    /proc/sys/net/ipv6/neigh/*/proxy_delay /proc/sys/net/ipv6/conf/*/proxy_ndp \
    /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv4/conf/*/proxy_arp \
    /proc/sys/net/ipv4/conf/*/accept_local /proc/sys/net/ipv4/conf/*/rp_filter; do
    echo "$f $(cat "$f")"; done'
  # lbd's tc ingress filters (fast path). An empty clsact qdisc may stay behind a kill -9:
  # lbd removes only a qdisc it knows it created, never one another program may use.
  local dev
  for dev in $(ip -n "$ns" -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    tc -n "$ns" filter show dev "$dev" ingress 2>/dev/null | sed "s/^/$dev: /"
  done
}

# dp_lbd_kill9 TAG: SIGKILL (no cleanup at all), reaped within a bounded wait.
dp_lbd_kill9() {
  local var="DP_LBD_PID_$1"
  local pid=${!var}
  kill -KILL "$pid"
  dp_wait_pid "$pid" 10 || dp_fail "lbd ($1) survived SIGKILL"
  { wait "$pid"; } 2>/dev/null || true
  local keep=()
  local p
  for p in "${DP_LBD_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  DP_LBD_PIDS=("${keep[@]}")
}

# dp_expect_alternating "A B A B ...": every answer differs from the previous one.
dp_count() {  # dp_count WORD LIST...
  local w=$1 c=0 x
  shift
  for x in "$@"; do [[ $x == "$w" ]] && c=$((c + 1)); done
  echo $c
}

# dp_gateway_topology [-n] N [PREFIX...]: the gateway test network, lbd not started:
#   c (c0 198.18.1.2/24) -- l (l0 198.18.1.1/24 | l1 198.18.2.1/24) -- bridge br0 in sw --
#   s1..sN (s0 198.18.2.1<i>/24, a route to 198.18.1.0/24 via l)
# with rp_filter off in l; c routes each PREFIX (a VIP range) via l. -n: the servers get no
# route back to the clients (full NAT: their replies can only go to lbd's local addresses).
dp_gateway_topology() {
  local back=1
  if [[ $1 == -n ]]; then
    back=0
    shift
  fi
  local servers=$1 prefix i
  shift
  dp_ns c
  dp_ns l
  dp_ns sw
  dp_link c c0 l l0
  ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
  for prefix in "$@"; do
    ip -n "$(n c)" route add "$prefix" via 198.18.1.1
  done
  ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
  dp_bridge sw br0
  dp_link l l1 sw swl
  ip -n "$(n sw)" link set swl master br0
  ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
  ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
  for ((i = 1; i <= servers; i++)); do
    dp_ns "s$i"
    dp_link "s$i" s0 sw "sws$i"
    ip -n "$(n sw)" link set "sws$i" master br0
    ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
    if ((back)); then
      ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
    fi
  done
}
