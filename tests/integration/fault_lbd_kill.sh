#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults (issue 17): lbd killed with SIGKILL while a client opens a new connection every 100 ms,
# then started again with the same --state-file. It comes back with its whole configuration
# (`lbctl -Sn` identical: NAT, full NAT with its pool, UDP, weights, timeouts) and serves again:
# the first new connection that succeeds after the kill does so within BOUND_S (10 s) of the
# kill (the measured gap is printed; the pass/fail is the bound only), both real servers answer
# again, and the client's connection loop recovers by itself.
#
#   client c (198.18.1.2) -- lbd ns l (198.18.1.1 | 198.18.2.1) -- br0 -- s1 (.11), s2 (.12)
#   VIP 198.18.100.1: :80 NAT rr, :81 full NAT (local address 198.18.2.100), udp :53 NAT.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init fkilllbd

VIP=198.18.100.1
BOUND_S=10
STATE="$DP_TMP/lbd.state"

dp_gateway_topology 2 198.18.100.0/24
for i in 1 2; do
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
  dp_udp_echo "s$i" 53 "S$i"
done

dp_lbd l k1 --tun=lbd0 --workers=2 --mode=gateway --state-file="$STATE"
lbctl k1 -A -t $VIP:80 -s rr
lbctl k1 -a -t $VIP:80 -r 198.18.2.11:80 -m -w 2
lbctl k1 -a -t $VIP:80 -r 198.18.2.12:80 -m -w 2
lbctl k1 -A -t $VIP:81 -s wrr -p 30
lbctl k1 -P -t $VIP:81 -z 198.18.2.100
lbctl k1 -a -t $VIP:81 -r 198.18.2.11:80 --fullnat -w 3
lbctl k1 -a -t $VIP:81 -r 198.18.2.12:80 --fullnat -w 1
lbctl k1 -A -u $VIP:53 -s rr
lbctl k1 -a -u $VIP:53 -r 198.18.2.11:53 -m
lbctl k1 -a -u $VIP:53 -r 198.18.2.12:53 -m
lbctl k1 --set 600 60 120
saved=$(lbctl k1 -Sn)
echo "$saved"
[[ $(dp_get c "http://$VIP/") == S? ]] || dp_fail "no answer before the kill"
[[ $(dp_get c "http://$VIP:81/") == S? ]] || dp_fail "no full-NAT answer before the kill"

# The client: a new connection every 100 ms for at most 60 s, one line per attempt
# ("<epoch seconds> <server or FAIL>"), until $DP_TMP/stop exists.
ip netns exec "$(n c)" bash -c '
  end=$((SECONDS + 60))
  while ((SECONDS < end)) && [[ ! -e '"$DP_TMP"'/stop ]]; do
    a=$(curl -s --max-time 1 --noproxy "*" http://'"$VIP"'/) || a=FAIL
    echo "$(date +%s.%N) ${a:-FAIL}"
    sleep 0.1
  done' >"$DP_TMP/loop.log" 2>&1 &
LOOP=$!
DP_PIDS+=($LOOP)
loop_ok() { grep -c ' S[12]$' "$DP_TMP/loop.log"; }
loop_has() { [[ $(loop_ok) -ge $1 ]]; }
dp_wait 10 loop_has 5 || dp_fail "the client's loop gets no answers: $(tail -n 5 "$DP_TMP/loop.log")"

# --- SIGKILL, then the same command line again.
t_kill=$(date +%s.%N)
dp_lbd_kill9 k1
dp_lbd l k2 --tun=lbd0 --workers=2 --mode=gateway --state-file="$STATE"
t_up=$(date +%s.%N)
served() { [[ $(dp_get c "http://$VIP/") == S? ]]; }
deadline=$(python3 -c "print($t_kill + $BOUND_S)")
until served; do
  python3 -c "import sys, time; sys.exit(time.time() < $deadline)" &&
    dp_fail "no new connection served within $BOUND_S s of the kill"
  sleep 0.05
done
t_served=$(date +%s.%N)
python3 -c "
k, u, s = $t_kill, $t_up, $t_served
print('lbd killed -> restarted lbd answers lbctl: %.2f s; -> first new connection served: %.2f s' % (u - k, s - k))
"
(($(python3 -c "print(int($t_served - $t_kill < $BOUND_S))"))) ||
  dp_fail "served again only after the $BOUND_S s bound"

# The whole configuration is back.
restored=$(lbctl k2 -Sn)
if [[ $saved != "$restored" ]]; then
  diff <(echo "$saved") <(echo "$restored") || true
  dp_fail "the restarted lbd's configuration differs from the one before the kill"
fi

# The client's own loop recovered: answers again after the kill.
n_before=$(awk -v t="$t_kill" '$1 < t && $2 != "FAIL"' "$DP_TMP/loop.log" | wc -l)
after_ok() { [[ $(awk -v t="$t_served" '$1 > t && $2 != "FAIL"' "$DP_TMP/loop.log" | wc -l) -ge 5 ]]; }
dp_wait 10 after_ok || dp_fail "the client's loop did not recover: $(tail -n 5 "$DP_TMP/loop.log")"
touch "$DP_TMP/stop"
dp_wait_pid $LOOP 5 || true
fails=$(grep -c ' FAIL$' "$DP_TMP/loop.log" || true)
echo "client loop: $n_before answers before the kill, $fails failed attempts (1 s each) around it"

# It serves every service, over both real servers (the loop has stopped: rr is exact).
answers=()
for i in $(seq 10); do answers+=("$(dp_get c "http://$VIP/")"); done
echo "NAT after restart: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 5 && $(dp_count S2 "${answers[@]}") -eq 5 ]] ||
  dp_fail "rr after the restart: ${answers[*]}"
[[ $(dp_get c "http://$VIP:81/") == S? ]] || dp_fail "full NAT after the restart"
u=$(ip netns exec "$(n c)" timeout 5 socat -T 2 - "UDP:$VIP:53" <<<"q") || true
[[ $u == S? ]] || dp_fail "UDP after the restart: '$u'"

dp_lbd_stop k2
echo "PASS fault_lbd_kill"
