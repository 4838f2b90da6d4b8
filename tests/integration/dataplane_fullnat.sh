#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd full NAT (--fullnat with a -P local-address pool): real servers with NO route back to the
# client. The local address sits in the real servers' own subnet and lbd answers ARP/ND for it
# on their LAN (proxy entries it installs itself), so replies to it reach lbd by plain L2.
# rr over two real servers (exact 10/10, alternating), IPv4 and IPv6; each real server's access
# log names the local address as the client; -Lnc and --stats; nothing left after stop.
#
#   client (c0 198.18.1.2, 2001:2:1::2) -- lbd ns (l0 198.18.1.1 | l1 198.18.2.1) -- br0 -- s1 s2
#   VIP 198.18.1.100 / 2001:2:1::100, LADDR 198.18.2.100 / 2001:2:2::100.
#   s1, s2: only their connected /24 and /64; no default route, nothing towards 198.18.1.0/24.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init fullnat

VIP=198.18.1.100
VIP6=2001:2:1::100
LADDR=198.18.2.100
LADDR6=2001:2:2::100

dp_ns c
dp_ns l
dp_ns sw
dp_link c c0 l l0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" addr add 2001:2:1::2/64 dev c0 nodad
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 2001:2:1::1/64 dev l0 nodad
dp_bridge sw br0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" addr add 2001:2:2::1/64 dev l1 nodad
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" addr add "2001:2:2::1$i/64" dev s0 nodad
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
  dp_http "s$i" "2001:2:2::1$i" "S$i" 81
  # The point of full NAT: the real server cannot reach the client at all.
  if ip -n "$(n "s$i")" route get 198.18.1.2 >/dev/null 2>&1 ||
    ip -n "$(n "s$i")" -6 route get 2001:2:1::2 >/dev/null 2>&1; then
    dp_fail "s$i has a route to the client; the test needs none"
  fi
done
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0

before=$(dp_kernel_state l)
dp_lbd l fn --tun=lbd0 --workers=2 --mode=gateway

# --- IPv4: pool first (-P), then full-NAT real servers.
lbctl fn -A -t $VIP:80 -s rr
lbctl fn -P -t $VIP:80 -z $LADDR
lbctl fn -a -t $VIP:80 -r 198.18.2.11:80 --fullnat
lbctl fn -a -t $VIP:80 -r 198.18.2.12:80 --fullnat
lbctl fn -Ln
answers=()
for i in $(seq 20); do
  a=$(dp_get c "http://$VIP/") || dp_fail "request $i to $VIP failed"
  answers+=("$a")
done
echo "fullnat rr: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 10 && $(dp_count S2 "${answers[@]}") -eq 10 ]] ||
  dp_fail "full NAT rr split wrong: ${answers[*]}"
for ((i = 1; i < 20; i++)); do
  [[ ${answers[i]} != "${answers[i - 1]}" ]] || dp_fail "rr did not alternate at $i: ${answers[*]}"
done

# Each real server saw exactly 10 requests, all from the local address (python's access log
# starts with the peer address), none from the client.
for i in 1 2; do
  log="$DP_TMP/http-S$i-80.log"
  from_laddr=$(grep -c "^$LADDR - - .*\"GET / " "$log" || true)
  from_client=$(grep -c "^198.18.1.2 " "$log" || true)
  echo "s$i: $from_laddr requests from $LADDR, $from_client from the client"
  [[ $from_laddr -eq 10 && $from_client -eq 0 ]] ||
    dp_fail "s$i access log: want 10 from $LADDR: $(cat "$log")"
done

# -Lnc lists the full-NAT conns; --stats counted both directions through lbd.
conns=$(lbctl fn -Lnc)
echo "$conns" | head -n 4
echo "$conns" | grep -Eq "^TCP .* 198\.18\.1\.2:[0-9]+ +$VIP:80 +198\.18\.2\.1[12]:80" ||
  dp_fail "-Lnc shows no full-NAT conn"
stats=$(lbctl fn -Ln --stats)
echo "$stats"
python3 - "$stats" <<'PY' || dp_fail "--stats: want Conns 20 and OutPkts > 0 for the service"
import sys
for line in sys.argv[1].splitlines():
    f = line.split()
    if f and f[0] == "TCP" and f[1] == "198.18.1.100:80":
        conns, inpkts, outpkts = int(f[2]), int(f[3]), int(f[4])
        sys.exit(0 if conns == 20 and inpkts > 0 and outpkts > 0 else 1)
sys.exit(1)
PY

# --- IPv6: the same, with the local address answered by proxy NDP.
lbctl fn -A -t "[$VIP6]:80" -s rr
lbctl fn -P -t "[$VIP6]:80" -z "$LADDR6"
lbctl fn -a -t "[$VIP6]:80" -r "[2001:2:2::11]:81" --fullnat
lbctl fn -a -t "[$VIP6]:80" -r "[2001:2:2::12]:81" --fullnat
v6=()
for i in $(seq 10); do
  a=$(dp_get c "http://[$VIP6]/") || dp_fail "IPv6 request $i failed"
  v6+=("$a")
done
echo "fullnat ipv6 rr: ${v6[*]}"
[[ $(dp_count S1 "${v6[@]}") -eq 5 && $(dp_count S2 "${v6[@]}") -eq 5 ]] ||
  dp_fail "IPv6 full NAT rr split wrong: ${v6[*]}"
for i in 1 2; do
  log="$DP_TMP/http-S$i-81.log"
  from_laddr=$(grep -c "^$LADDR6 - - .*\"GET / " "$log" || true)
  [[ $from_laddr -eq 5 ]] || dp_fail "s$i IPv6 access log: want 5 from $LADDR6: $(cat "$log")"
done

# --- everything lbd installed is gone after it stops.
dp_lbd_stop fn
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_fullnat"
