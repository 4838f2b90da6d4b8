#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One lbd per network namespace. With a client streaming through a VIP of a running lbd, a
# second lbd started in the same namespace exits non-zero naming the running one (pid and
# control socket) and changes nothing: the stream goes on, every route, rule, address, proxy
# entry and sysctl is byte-identical, the running lbd's control socket is still there and
# answers, and the running lbd serves a new connection. Three ways to start the second one:
# the same flags (same socket), another TUN name and socket, and another run directory (no
# shared lock file: caught because lbd's live routes point into a live device). Once the first
# lbd has stopped, the lock is free and a new lbd starts.
#
#   client c0 198.18.1.2  --  l0 198.18.1.1 [lbd] l1 198.18.2.1  --  s0 198.18.2.11 (real server)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init owner

VIP=198.18.1.100
TRAFFIC="$(dirname "$0")/traffic.py"

dp_ns c
dp_ns l
dp_ns s
dp_link c c0 l l0
dp_link l l1 s s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n s)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s)" route add 198.18.1.0/24 via 198.18.2.1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
dp_http s 198.18.2.11 S1 80
ip netns exec "$(n s)" python3 "$TRAFFIC" serve-ticks 198.18.2.11 7000 >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s tcp 7000 || dp_fail "tick server did not start"

# The tc fast path off: the stream crosses lbd's TUN queues, so a second lbd attaching queues
# to the device (what it did before) would take packets of it.
dp_lbd l one --tun=lbd0 --workers=2 --mode=gateway --bpf-fast-path=false
lbctl one -A -t $VIP:80 -s rr
lbctl one -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl one -A -t $VIP:7000 -s rr
lbctl one -a -t $VIP:7000 -r 198.18.2.11:7000 -m
[[ $(dp_get c "http://$VIP/") == S1 ]] || dp_fail "no answer through the VIP before the test"
pid_one=$DP_LBD_PID_one
sock="$DP_TMP/one.sock"
sock_inode=$(stat -c %i "$sock")

ip netns exec "$(n c)" python3 "$TRAFFIC" ticks $VIP 7000 8 >"$DP_TMP/ticks.out" 2>&1 &
stream=$!
DP_PIDS+=($stream)
# The second lbds below start while the stream flows: its conn is ESTABLISHED first.
stream_listed() { lbctl one -Lnc | grep -E "^TCP +[0-9:]+ +ESTABLISHED +.* $VIP:7000 "; }
dp_poll 30 "the stream's conn ESTABLISHED in -Lnc" stream_listed
before=$(dp_kernel_state l)

# second ARGS...: starts a second lbd in the namespace; it must exit non-zero, naming why.
second() {
  local tag=$1
  shift
  local rc=0
  timeout 20 ip netns exec "$(n l)" "$LBD_BIN" "$@" >"$DP_TMP/lbd-$tag.log" 2>&1 || rc=$?
  [[ $rc -ne 0 && $rc -ne 124 ]] || dp_fail "second lbd ($tag) exited with $rc (expected a refusal)"
  echo "second lbd ($tag) refused (exit $rc): $(grep -m1 -E 'owns|own this' "$DP_TMP/lbd-$tag.log")"
}

# 1. The same command line: same TUN, same socket.
second same --listen="unix://$sock" --tun=lbd0 --workers=2 --mode=gateway
grep -q "another lbd owns this network namespace: pid $pid_one " "$DP_TMP/lbd-same.log" ||
  dp_fail "the refusal does not name the running lbd's pid $pid_one: $(cat "$DP_TMP/lbd-same.log")"
grep -q "control socket unix://$sock" "$DP_TMP/lbd-same.log" ||
  dp_fail "the refusal does not name the running lbd's socket"
# 2. Another TUN name and socket, sidecar mode (which would move the local rule).
second other --listen="unix://$DP_TMP/other.sock" --tun=lbd1 --workers=1 --mode=sidecar
grep -q "pid $pid_one " "$DP_TMP/lbd-other.log" || dp_fail "second lbd (other) did not name pid $pid_one"
[[ ! -e "$DP_TMP/other.sock" ]] || dp_fail "the refused lbd created its socket"
# 3. Another run directory: no shared lock file. lbd's live routes give the running one away.
second rundir --run-dir="$DP_TMP/run2" --listen="unix://$DP_TMP/r2.sock" --tun=lbd2 --workers=1
grep -q "another lbd seems to own this network namespace" "$DP_TMP/lbd-rundir.log" ||
  dp_fail "second lbd (rundir) did not say why: $(cat "$DP_TMP/lbd-rundir.log")"

after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "a refused lbd changed the namespace's kernel state"
fi
[[ -S "$sock" && $(stat -c %i "$sock") == "$sock_inode" ]] ||
  dp_fail "the running lbd's control socket was removed or replaced"
lbctl one -Ln | grep -q "$VIP:7000" || dp_fail "the running lbd stopped answering lbctl"
kill -0 "$pid_one" || dp_fail "the running lbd died"

dp_wait_pid "$stream" 20 || dp_fail "the stream did not end"
rc=0
wait "$stream" || rc=$?
cat "$DP_TMP/ticks.out"
[[ $rc -eq 0 ]] || dp_fail "the stream through the VIP broke: $(cat "$DP_TMP/ticks.out")"
[[ $(dp_get c "http://$VIP/") == S1 ]] || dp_fail "the running lbd does not serve a new connection"

# Once the owner has stopped, the lock is free: the next lbd starts.
dp_lbd_stop one
dp_lbd l two --tun=lbd0 --workers=1 --mode=gateway
dp_lbd_stop two
echo "PASS single_owner"
