#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd direct routing (-g): client, lbd and two real servers on one LAN. The VIP is on each real
# server's loopback with arp_ignore=1 / arp_announce=2, so only lbd (its proxy ARP/NDP entry)
# answers for it. lbd rewrites nothing but the destination MAC and sends the frame with
# AF_PACKET; the real servers answer the client directly. rr 10/10 alternating over IPv4 and
# 5/5 over IPv6; `-Ln --stats` shows InPkts but 0 OutPkts/OutBytes for every real server (lbd
# never sees a reply); nothing left after stop.
#
#   c (198.18.2.2)   l (l1 198.18.2.1)   s1 (198.18.2.11)   s2 (198.18.2.12)   all on br0
#   VIP 198.18.2.100 / 2001:2:2::100 on s1/s2 lo.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init dr

VIP=198.18.2.100
VIP6=2001:2:2::100

dp_ns c
dp_ns l
dp_ns sw
dp_bridge sw br0
dp_link c c0 sw swc
ip -n "$(n sw)" link set swc master br0
ip -n "$(n c)" addr add 198.18.2.2/24 dev c0
ip -n "$(n c)" addr add 2001:2:2::2/64 dev c0 nodad
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" addr add 2001:2:2::1/64 dev l1 nodad
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip netns exec "$(n "s$i")" sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
    net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.s0.arp_ignore=1 net.ipv4.conf.s0.arp_announce=2
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" addr add "2001:2:2::1$i/64" dev s0 nodad
  ip -n "$(n "s$i")" addr add "$VIP/32" dev lo
  ip -n "$(n "s$i")" addr add "$VIP6/128" dev lo nodad
  dp_http "s$i" "$VIP" "S$i" 80
  dp_http "s$i" "$VIP6" "S$i" 81
done

before=$(dp_kernel_state l)
dp_lbd l dr --tun=lbd0 --workers=2 --mode=gateway

lbctl dr -A -t $VIP:80 -s rr
lbctl dr -a -t $VIP:80 -r 198.18.2.11:80 -g
lbctl dr -a -t $VIP:80 -r 198.18.2.12:80 -g
answers=()
for i in $(seq 20); do
  a=$(dp_get c "http://$VIP/") || dp_fail "request $i to $VIP failed"
  answers+=("$a")
done
echo "dr rr: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 10 && $(dp_count S2 "${answers[@]}") -eq 10 ]] ||
  dp_fail "DR rr split wrong: ${answers[*]}"
for ((i = 1; i < 20; i++)); do
  [[ ${answers[i]} != "${answers[i - 1]}" ]] || dp_fail "rr did not alternate at $i: ${answers[*]}"
done
# The client reached the VIP at lbd's MAC (the real servers stayed silent for it).
lmac=$(ip -n "$(n l)" -br link show l1 | awk '{print $3}')
cmac=$(ip -n "$(n c)" neigh show $VIP | awk '{print $5}')
[[ $lmac == "$cmac" ]] || dp_fail "client resolved $VIP to $cmac, not lbd's $lmac"

lbctl dr -A -t "[$VIP6]:81" -s rr
lbctl dr -a -t "[$VIP6]:81" -r "[2001:2:2::11]:81" -g
lbctl dr -a -t "[$VIP6]:81" -r "[2001:2:2::12]:81" -g
v6=()
for i in $(seq 10); do
  a=$(ip netns exec "$(n c)" curl -s --max-time 5 --noproxy '*' -g "http://[$VIP6]:81/") ||
    dp_fail "IPv6 request $i failed"
  v6+=("$a")
done
echo "dr ipv6 rr: ${v6[*]}"
[[ $(dp_count S1 "${v6[@]}") -eq 5 && $(dp_count S2 "${v6[@]}") -eq 5 ]] ||
  dp_fail "IPv6 DR rr split wrong: ${v6[*]}"

stats=$(lbctl dr -Ln --stats)
echo "$stats"
# Every real server: InPkts > 0, OutPkts = OutBytes = 0.
python3 - "$stats" <<'PY' || dp_fail "--stats: a DR real server shows replies or no requests"
import sys
rs = [l.split() for l in sys.argv[1].splitlines() if l.lstrip().startswith("->") and ":" in l]
rs = [f for f in rs if f[1][0].isdigit() or f[1].startswith("[")]
if len(rs) != 4:
    sys.exit(1)
for f in rs:
    conns, inpkts, outpkts, inbytes, outbytes = map(int, f[2:7])
    if conns == 0 or inpkts == 0 or outpkts != 0 or outbytes != 0:
        sys.exit(1)
PY

dp_lbd_stop dr
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_dr"
