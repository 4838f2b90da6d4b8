#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync failover (issue 15 part b), persistence templates (sync_lib.sh's topology, two
# real servers): a persistent service (-p 300, rr) on both gateways, g2 listing its dests in the
# other order. Two clients (198.18.1.2 and .3) each fetch once through g1, so rr sends them to
# different real servers; their templates reach g2 with their conns (g2's -Lnc shows both,
# bound to the same servers). g1 SIGKILLed, the routes moved: each client's new connections
# through g2 land on the real server g1 chose for it (a fresh rr on g2 would have given the
# first client the other server).
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
dp_init syncfp
dp_need curl

VIP=$SYNC_VIP

sync_topology 2
dp_http s1 198.18.2.11 S1 80
dp_http s2 198.18.2.12 S2 80
sync_lbds
lbctl g1 -A -t $VIP:80 -s rr -p 300
lbctl g2 -A -t $VIP:80 -s rr -p 300
for i in 1 2; do lbctl g1 -a -t $VIP:80 -r "198.18.2.1$i:80" -m; done
for i in 2 1; do lbctl g2 -a -t $VIP:80 -r "198.18.2.1$i:80" -m; done
sync_daemons

get_from() {  # get_from CLIENT_ADDR: one new connection to the VIP; prints the body
  ip netns exec "$(n c)" curl -s --max-time 5 --noproxy '*' --interface "$1" "http://$VIP/"
}
a=$(get_from 198.18.1.2) || dp_fail "client .2 through g1"
b=$(get_from 198.18.1.3) || dp_fail "client .3 through g1"
echo "through g1: 198.18.1.2 -> $a, 198.18.1.3 -> $b"
[[ -n $a && -n $b && $a != "$b" ]] || dp_fail "rr on g1 should have sent the two clients to different servers"
server_of() { [[ $1 == S1 ]] && echo 198.18.2.11 || echo 198.18.2.12; }

# The templates (client network, port 0) in g2's table, bound to g1's choices.
templates() {
  local out
  out=$(lbctl g2 -Lnc)
  echo "$out" | grep -E "^TCP .* 198\.18\.1\.2:0 +$VIP:80 +$(server_of "$a"):80" &&
    echo "$out" | grep -E "^TCP .* 198\.18\.1\.3:0 +$VIP:80 +$(server_of "$b"):80" || {
    echo "$out"
    return 1
  }
}
dp_poll 10 "both persistence templates in the backup's -Lnc" templates
templates

sync_check_offloaded
sync_failover
for k in 1 2 3; do
  a2=$(get_from 198.18.1.2) || dp_fail "client .2 through g2 (attempt $k)"
  b2=$(get_from 198.18.1.3) || dp_fail "client .3 through g2 (attempt $k)"
  echo "through g2: 198.18.1.2 -> $a2, 198.18.1.3 -> $b2"
  [[ $a2 == "$a" && $b2 == "$b" ]] || dp_fail "a persistent client moved: want $a and $b"
done
echo "PASS sync_failover_persist"
