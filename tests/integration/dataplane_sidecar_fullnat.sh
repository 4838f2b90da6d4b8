#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Full NAT through a sidecar: lbd runs in the app's namespace (--mode=sidecar) and a service with
# --fullnat real servers takes its source from a -P local address on the app's own subnet, one
# the namespace does not own. The real servers reply to that address on the LAN; lbd must answer
# ARP/NDP for it on the app's interface (as it does at a gateway), or nothing ever comes back.
# rr over two real servers (10/10), IPv4 and IPv6; each real server's access log names the local
# address; the app's direct connections still work; all kernel state is gone after stop.
#
#   app (eth0 198.18.2.2/24, 2001:2:2::2/64, lbd) -- br0 in sw -- s1 (.11/::11), s2 (.12/::12)
#   VIP 198.18.100.1 / 2001:2:100::1 (only the app knows them), LADDR 198.18.2.100 / 2001:2:2::100.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init scfullnat

VIP=198.18.100.1
VIP6=2001:2:100::1
LADDR=198.18.2.100
LADDR6=2001:2:2::100

dp_ns app
dp_ns sw
dp_bridge sw br0
dp_link app eth0 sw swa
ip -n "$(n sw)" link set swa master br0
ip -n "$(n app)" addr add 198.18.2.2/24 dev eth0
ip -n "$(n app)" addr add 2001:2:2::2/64 dev eth0 nodad
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" eth0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev eth0
  ip -n "$(n "s$i")" addr add "2001:2:2::1$i/64" dev eth0 nodad
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
  dp_http "s$i" "2001:2:2::1$i" "S$i" 81
done

before=$(dp_kernel_state app)
dp_lbd app scfn --tun=lbd0 --workers=1 --mode=sidecar

# --- IPv4: pool first (-P), then full-NAT real servers.
lbctl scfn -A -t $VIP:80 -s rr
lbctl scfn -P -t $VIP:80 -z $LADDR
lbctl scfn -a -t $VIP:80 -r 198.18.2.11:80 --fullnat
lbctl scfn -a -t $VIP:80 -r 198.18.2.12:80 --fullnat
lbctl scfn -Ln
answers=()
for i in $(seq 20); do
  a=$(dp_get app "http://$VIP/") || dp_fail "request $i to $VIP failed (full NAT in a sidecar)"
  answers+=("$a")
done
echo "sidecar fullnat rr: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 10 && $(dp_count S2 "${answers[@]}") -eq 10 ]] ||
  dp_fail "sidecar full NAT rr split wrong: ${answers[*]}"
for i in 1 2; do
  log="$DP_TMP/http-S$i-80.log"
  from_laddr=$(grep -c "^$LADDR - - .*\"GET / " "$log" || true)
  from_app=$(grep -c "^198.18.2.2 " "$log" || true)
  echo "s$i: $from_laddr requests from $LADDR, $from_app from the app"
  [[ $from_laddr -eq 10 && $from_app -eq 0 ]] ||
    dp_fail "s$i access log: want 10 from $LADDR: $(cat "$log")"
done
conns=$(lbctl scfn -Lnc)
echo "$conns" | grep -Eq "^TCP .* 198\.18\.2\.2:[0-9]+ +$VIP:80 +198\.18\.2\.1[12]:80" ||
  dp_fail "-Lnc shows no full-NAT conn: $conns"

# --- IPv6: the same, the local address answered by proxy NDP.
lbctl scfn -A -t "[$VIP6]:80" -s rr
lbctl scfn -P -t "[$VIP6]:80" -z "$LADDR6"
lbctl scfn -a -t "[$VIP6]:80" -r "[2001:2:2::11]:81" --fullnat
lbctl scfn -a -t "[$VIP6]:80" -r "[2001:2:2::12]:81" --fullnat
v6=()
for i in $(seq 10); do
  a=$(dp_get app "http://[$VIP6]/") || dp_fail "IPv6 request $i to $VIP6 failed"
  v6+=("$a")
done
echo "sidecar fullnat ipv6 rr: ${v6[*]}"
[[ $(dp_count S1 "${v6[@]}") -eq 5 && $(dp_count S2 "${v6[@]}") -eq 5 ]] ||
  dp_fail "IPv6 sidecar full NAT rr split wrong: ${v6[*]}"
for i in 1 2; do
  log="$DP_TMP/http-S$i-81.log"
  from_laddr=$(grep -c "^$LADDR6 - - .*\"GET / " "$log" || true)
  [[ $from_laddr -eq 5 ]] || dp_fail "s$i IPv6 access log: want 5 from $LADDR6: $(cat "$log")"
done

# The app's own direct connection to a real server is untouched.
direct=$(dp_get app "http://198.18.2.11/") || dp_fail "direct connection to a real server failed"
[[ $direct == S1 ]] || dp_fail "direct connection answered '$direct'"
lbctl scfn -Ln --stats

dp_lbd_stop scfn
after=$(dp_kernel_state app)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_sidecar_fullnat"
