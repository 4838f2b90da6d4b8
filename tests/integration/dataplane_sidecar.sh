#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd as a sidecar: it runs in the client's own namespace and balances the app's connections
# to a VIP over two real servers that have no configuration at all (no route via lbd: the
# client is on their LAN). Replies from RIP:80 are diverted into lbd0 by lbd's policy rules;
# the app's direct connections to a real server still work; all state is gone after stop.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init sidecar

VIP=198.18.100.1
dp_ns app
dp_ns sw
dp_bridge sw br0
dp_link app eth0 sw swa
ip -n "$(n sw)" link set swa master br0
ip -n "$(n app)" addr add 198.18.2.2/24 dev eth0
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" eth0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev eth0
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
done

before=$(dp_kernel_state app)
before_demux=$(ip netns exec "$(n app)" sysctl net.ipv4.tcp_early_demux net.ipv4.udp_early_demux)
dp_lbd app sc --tun=lbd0 --workers=1 --mode=sidecar
lbctl sc -A -t $VIP:80 -s rr
lbctl sc -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl sc -a -t $VIP:80 -r 198.18.2.12:80 -m
answers=()
for i in $(seq 20); do
  a=$(dp_get app "http://$VIP/") || dp_fail "request $i to $VIP failed"
  answers+=("$a")
done
echo "sidecar rr: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 10 && $(dp_count S2 "${answers[@]}") -eq 10 ]] ||
  dp_fail "sidecar rr split wrong: ${answers[*]}"
direct=$(dp_get app "http://198.18.2.11/") || dp_fail "direct connection to a real server failed"
[[ $direct == S1 ]] || dp_fail "direct connection answered '$direct'"
lbctl sc -Ln --stats
# A sidecar makes no GUE TAP device (gateway mode only): one pod, one extra device is all.
if ip -n "$(n app)" link show lbd0g >/dev/null 2>&1; then
  dp_fail "the sidecar created the GUE TAP device lbd0g"
fi

dp_lbd_stop sc
after=$(dp_kernel_state app)
after_demux=$(ip netns exec "$(n app)" sysctl net.ipv4.tcp_early_demux net.ipv4.udp_early_demux)
if [[ "$before" != "$after" || "$before_demux" != "$after_demux" ]]; then
  diff <(echo "$before"; echo "$before_demux") <(echo "$after"; echo "$after_demux") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_sidecar"
