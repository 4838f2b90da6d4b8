#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hot restart (lbd --takeover) to another binary (a copy of lbd) under traffic: a 40 MB TCP
# transfer paced over ~20 s, a full-NAT UDP flow (a datagram every 20 ms), a client of a persistent
# service (-p) opening a new connection every 100 ms, and a new HTTP connection every 50 ms.
# The transfer arrives byte-exact (sha256), no new connection fails, the persistent client
# keeps its real server, the UDP flow keeps its real server, `lbctl -Lnc` after the takeover
# lists every connection the old lbd listed just before, lbctl answers throughout, the old lbd
# exits 0 and nothing it installed is removed. A takeover that fails late changes nothing
# first; a second takeover, back to the first binary, keeps the persistent client's server;
# then the last lbd stops and removes it all.
# The clients' longest silences are printed (not asserted: timings are the benchmark's).
#
#   client c0 198.18.1.2  --  l0 198.18.1.1 [lbd] l1 198.18.2.1  --  br0  --  s1 .11, s2 .12
source "$(dirname "$0")/dataplane_lib.sh"
dp_init hotrst

VIP=198.18.1.100
TRAFFIC="$(dirname "$0")/traffic.py"
BULK=$((40 * 1024 * 1024))
RATE=$((2 * 1024 * 1024))
# Long enough for both takeovers to start while every client runs (checked), on a loaded machine
# too: with 8 s here the failed takeover alone could outlast the traffic.
SECONDS_OF_TRAFFIC=20

dp_ns c
dp_ns l
dp_ns sw
dp_link c c0 l l0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add $VIP/32 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
dp_bridge sw br0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
  dp_http "s$i" "198.18.2.1$i" "S$i" 8080
  ip netns exec "$(n "s$i")" python3 "$TRAFFIC" serve-udp "198.18.2.1$i" 5300 "S$i" >/dev/null 2>&1 &
  DP_PIDS+=($!)
  dp_wait 10 listening "s$i" udp 5300 || dp_fail "UDP server S$i did not start"
done
ip netns exec "$(n s1)" python3 "$TRAFFIC" serve-bulk 198.18.2.11 7001 >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s1 tcp 7001 || dp_fail "bulk server did not start"
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0

# Two binaries: the upgrade goes from one file to another, as a package upgrade would.
cp "$LBD_BIN" "$DP_TMP/lbd-a"
cp "$LBD_BIN" "$DP_TMP/lbd-b"
before=$(dp_kernel_state l)
LBD_BIN="$DP_TMP/lbd-a" dp_lbd l hr --tun=lbd0 --workers=2 --mode=gateway \
  --state-file="$DP_TMP/state"
pid_a=$DP_LBD_PID_hr
lbctl hr -A -t $VIP:80 -s rr
lbctl hr -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl hr -a -t $VIP:80 -r 198.18.2.12:80 -m
lbctl hr -A -t $VIP:8080 -s rr -p 300
lbctl hr -a -t $VIP:8080 -r 198.18.2.11:8080 -m
lbctl hr -a -t $VIP:8080 -r 198.18.2.12:8080 -m
lbctl hr -A -t $VIP:7001 -s rr
lbctl hr -a -t $VIP:7001 -r 198.18.2.11:7001 -m
lbctl hr -A -u $VIP:53 -s rr  # full NAT: the conn keeps its local address and port
lbctl hr -P -u $VIP:53 -z 198.18.2.100
lbctl hr -a -u $VIP:53 -r 198.18.2.11:5300 --fullnat
lbctl hr -a -u $VIP:53 -r 198.18.2.12:5300 --fullnat
[[ $(dp_get c "http://$VIP/") == S* ]] || dp_fail "no answer through the VIP"
rules_a=$(lbctl hr -S -n)
during=$(dp_kernel_state l)

run() {  # run NAME traffic.py-args...: a client in the client namespace, output in NAME.out
  local name=$1
  shift
  ip netns exec "$(n c)" python3 "$TRAFFIC" "$@" >"$DP_TMP/$name.out" 2>&1 &
  DP_PIDS+=($!)
  eval "PID_$name=$!"
}
run bulk bulk $VIP 7001 $BULK $RATE
run udp udp $VIP 53 $SECONDS_OF_TRAFFIC
run conns conns $VIP 80 $SECONDS_OF_TRAFFIC 50
run persist conns $VIP 8080 $SECONDS_OF_TRAFFIC 100
# lbctl answers throughout: a listing every 50 ms for as long as the other clients run (bound by
# time, not by a count: under TSan on a loaded machine one lbctl can take 100 ms), every failure
# counted.
(
  fails=0 runs=0 end=$((SECONDS + SECONDS_OF_TRAFFIC))
  while ((SECONDS < end)); do
    lbctl hr -Ln >/dev/null 2>&1 || fails=$((fails + 1))
    runs=$((runs + 1))
    sleep 0.05
  done
  echo "lbctl_failures $fails of $runs listings"
) >"$DP_TMP/lbctl.out" 2>&1 &
DP_PIDS+=($!)
PID_lbctl=$!
# vip_conns PORT: the -Lnc entries to VIP:PORT.
vip_conns() { lbctl hr -Lnc | awk -v v="$VIP:$1" '$5 == v' | wc -l; }
# The traffic is under way: every client has a conn through lbd.
traffic_listed() {
  local p c ok=0
  for p in 7001 53 8080 80; do
    c=$(vip_conns $p)
    echo -n "$VIP:$p: $c conns; "
    ((c > 0)) || ok=1
  done
  return $ok
}
dp_poll 30 "every client's conn in -Lnc" traffic_listed

# A takeover that fails late (the new lbd cannot bind its metrics port, after it took the TUN
# queues, the kernel state and the conns) changes nothing: the old lbd carries on, serves and
# accepts changes again, and no connection notices (checked with the rest below).
rc=0
t_failed=$SECONDS
timeout 60 ip netns exec "$(n l)" "$DP_TMP/lbd-b" --listen="unix://$DP_TMP/hr.sock" \
  --tun=lbd0 --workers=2 --mode=gateway --state-file="$DP_TMP/state" --takeover \
  --metrics=198.18.99.99:9 >"$DP_TMP/lbd-failed.log" 2>&1 || rc=$?
echo "the failed takeover took $((SECONDS - t_failed)) s"
[[ $rc -ne 0 && $rc -ne 124 ]] || dp_fail "the failing takeover exited with $rc"
kill -0 "$pid_a" || dp_fail "the old lbd died in a failed takeover"
grep -q "takeover failed" "$DP_TMP/lbd-hr.log" || dp_fail "the old lbd did not see the failure"
[[ $(dp_get c "http://$VIP/") == S* ]] || dp_fail "no answer through the VIP after a failed takeover"
lbctl hr -A -t $VIP:9 -s rr || dp_fail "changes still refused after a failed takeover"
lbctl hr -D -t $VIP:9
echo "failed takeover: $(grep -m1 "takeover failed" "$DP_TMP/lbd-hr.log" | cut -d' ' -f4-)"
# The old lbd carries on: 10 more of the HTTP client's connections (one every 50 ms) go through
# it before the real takeover. The client stops after SECONDS_OF_TRAFFIC; on a machine so slow
# that it stopped already, this fails rather than hand over without traffic.
n80=$(vip_conns 80)
more_conns() {
  local c
  c=$(vip_conns 80)
  echo "$c conns to $VIP:80, $n80 before; the HTTP client $(kill -0 "$PID_conns" 2>/dev/null &&
    echo runs || echo "has stopped: $(cat "$DP_TMP/conns.out")")"
  ((c >= n80 + 10))
}
dp_poll 30 "10 new connections through the old lbd after the failed takeover" more_conns

# The takeover: -Lnc of the old lbd just before, of the new one just after.
conns_of() { lbctl hr -Lnc | awk 'NR > 2 { print $1, $4, $5, $6 }' | sort; }
lnc_a=$(conns_of)
LBD_BIN="$DP_TMP/lbd-b" ip netns exec "$(n l)" "$DP_TMP/lbd-b" --listen="unix://$DP_TMP/hr.sock" \
  --tun=lbd0 --workers=2 --mode=gateway --state-file="$DP_TMP/state" --takeover \
  >"$DP_TMP/lbd-hrb.log" 2>&1 &
pid_b=$!
DP_LBD_PIDS+=($pid_b)
DP_LBD_PID_hrb=$pid_b
dp_wait_pid "$pid_a" 20 || dp_fail "the old lbd did not exit after the takeover"
# The handover happened while every client ran (else it would prove nothing about them):
# each is still running (state R, S or D; not a zombie) once the old lbd has gone.
for c in bulk udp conns persist lbctl; do
  var="PID_$c"
  [[ $(awk '{ print $3 }' "/proc/${!var}/stat" 2>/dev/null) == [RSD] ]] ||
    dp_fail "the $c client ended before the takeover, which did not cross it" \
      "($(cat "$DP_TMP/$c.out"); SECONDS_OF_TRAFFIC=$SECONDS_OF_TRAFFIC is too short here)"
done
rc=0
wait "$pid_a" || rc=$?
[[ $rc -eq 0 ]] || dp_fail "the old lbd exited with $rc: $(tail -n 20 "$DP_TMP/lbd-hr.log")"
keep=()
for p in "${DP_LBD_PIDS[@]}"; do [[ $p == "$pid_a" ]] || keep+=("$p"); done
DP_LBD_PIDS=("${keep[@]}")
kill -0 "$pid_b" || dp_fail "the new lbd died: $(tail -n 20 "$DP_TMP/lbd-hrb.log")"
lnc_b=$(conns_of)
grep -q "handed over" "$DP_TMP/lbd-hr.log" || dp_fail "the old lbd did not hand over"
grep -q "took over" "$DP_TMP/lbd-hrb.log" || dp_fail "the new lbd did not say it took over"
grep -m1 "workers stopped" "$DP_TMP/lbd-hr.log" || true
grep -m1 "conns taken over" "$DP_TMP/lbd-hrb.log" || true
grep -q "conns taken over, 0 left out" "$DP_TMP/lbd-hrb.log" ||
  dp_fail "the new lbd left conns out (full NAT? removed dests?)"
grep -m1 "prepared in" "$DP_TMP/lbd-hrb.log" || true

missing=$(comm -23 <(echo "$lnc_a") <(echo "$lnc_b"))
echo "-Lnc before: $(echo "$lnc_a" | wc -l) conns, after: $(echo "$lnc_b" | wc -l)"
[[ $(echo "$lnc_a" | wc -l) -ge 4 ]] || dp_fail "-Lnc listed too few conns before: $lnc_a"
[[ -z $missing ]] || dp_fail "conns the old lbd listed that the new one does not: $missing"
echo "$lnc_b" | grep -q "$VIP:7001" || dp_fail "the transfer's conn is not listed after"
[[ $(lbctl hr -S -n) == "$rules_a" ]] || dp_fail "the configuration changed in the takeover"

for c in bulk udp conns persist lbctl; do
  var="PID_$c"
  dp_wait_pid "${!var}" 40 || dp_fail "$c did not finish"
  rc=0
  wait "${!var}" || rc=$?
  echo "$c: $(cat "$DP_TMP/$c.out")"
  [[ $rc -eq 0 ]] || dp_fail "$c failed across the takeover"
done
grep -q "sha256 equal" "$DP_TMP/bulk.out" || dp_fail "the transfer is not byte-exact"
grep -q "failed 0 " "$DP_TMP/conns.out" || dp_fail "a new connection failed"
grep -q "failed 0 " "$DP_TMP/persist.out" || dp_fail "a persistent client's connection failed"
grep -Eq "servers S[12]=[0-9]+ " "$DP_TMP/persist.out" ||
  dp_fail "the persistent client changed real server: $(cat "$DP_TMP/persist.out")"
grep -Eq "servers S[12] peers 1 " "$DP_TMP/udp.out" ||
  dp_fail "the UDP flow changed real server or local port (a new conn): $(cat "$DP_TMP/udp.out")"
grep -q "lbctl_failures 0 of" "$DP_TMP/lbctl.out" || dp_fail "lbctl failed during the takeover"

# Nothing the old lbd installed was removed; the new one removes it all when it stops.
[[ $(dp_kernel_state l) == "$during" ]] || {
  diff <(echo "$during") <(dp_kernel_state l) || true
  dp_fail "the takeover changed the kernel state"
}

# The new lbd hands over in turn: back to the first binary.
ip netns exec "$(n l)" "$DP_TMP/lbd-a" --listen="unix://$DP_TMP/hr.sock" --tun=lbd0 --workers=2 \
  --mode=gateway --state-file="$DP_TMP/state" --takeover >"$DP_TMP/lbd-hrc.log" 2>&1 &
pid_c=$!
DP_LBD_PIDS+=($pid_c)
dp_wait_pid "$pid_b" 20 || dp_fail "the second takeover did not end the lbd it replaced"
rc=0
wait "$pid_b" || rc=$?
[[ $rc -eq 0 ]] || dp_fail "the replaced lbd exited with $rc: $(tail -n 20 "$DP_TMP/lbd-hrb.log")"
keep=()
for p in "${DP_LBD_PIDS[@]}"; do [[ $p == "$pid_b" ]] || keep+=("$p"); done
DP_LBD_PIDS=("${keep[@]}")
DP_LBD_PID_hrb=$pid_c
[[ $(dp_get c "http://$VIP:8080/") == "$(grep -Eo 'servers S[12]' "$DP_TMP/persist.out" | cut -c9-)" ]] ||
  dp_fail "after a second takeover the persistent client went elsewhere"
[[ $(dp_kernel_state l) == "$during" ]] || dp_fail "the second takeover changed the kernel state"
echo "second takeover: $(grep -m1 "conns taken over" "$DP_TMP/lbd-hrc.log" | cut -d' ' -f4-)"

dp_lbd_stop hrb
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after the new lbd stopped"
fi
echo "PASS hot_restart"
