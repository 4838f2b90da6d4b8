#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd tunnelling (-i) to real servers that decapsulate in userspace with `lbd --mode=decap`
# (no ipip/fou kernel modules needed): client, the LB and two real servers on one LAN. Each
# real server holds the VIP on lo (arp_ignore=1, arp_announce=2); its decap lbd receives the
# IPIP (or GUE, UDP 5555) packets on raw/UDP sockets and writes the inner packet into its own
# TUN device, so the local stack delivers it to the VIP; replies go straight to the client.
# rr over IPIP (10/10, alternating) and GUE (`--tun-type gue --tun-port 5555`, 5/5); each real
# server saw the client's own address; the LB's --stats shows 0 OutPkts; a 5 s iperf3 over
# IPIP (TSO/USO off on the LB's TUN while tunnel dests exist); nothing left after stop.
#
#   c (198.18.2.2)   l (198.18.2.1)   s1 (198.18.2.11)   s2 (198.18.2.12)   all on br0
source "$(dirname "$0")/dataplane_lib.sh"
dp_init tunnel
dp_need ethtool iperf3

VIP=198.18.2.100

dp_ns c
dp_ns l
dp_ns sw
dp_bridge sw br0
dp_link c c0 sw swc
ip -n "$(n sw)" link set swc master br0
ip -n "$(n c)" addr add 198.18.2.2/24 dev c0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip netns exec "$(n "s$i")" sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
    net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.s0.arp_ignore=1 net.ipv4.conf.s0.arp_announce=2
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" addr add "$VIP/32" dev lo
  dp_http "s$i" "$VIP" "S$i" 80
  dp_http "s$i" "$VIP" "S$i" 8080
done

before=$(dp_kernel_state l)
before_s1=$(dp_kernel_state s1)
dp_lbd l lb --tun=lbd0 --workers=2 --mode=gateway
for i in 1 2; do
  dp_lbd "s$i" "d$i" --tun=lbdd0 --mode=decap --gue-port=5555
done

# tso STATE: the LB's TUN device has TCP segmentation offload STATE (on/off). The kernel drops
# GSO super-packets lbd would wrap in IPIP/GUE, so lbd asks for it only while no tunnel dest
# exists (reads then arrive segmented).
tso() {
  ip netns exec "$(n l)" ethtool -k lbd0 | grep -q "^tcp-segmentation-offload: $1"
}
tso on || dp_fail "TSO off on lbd0 before any tunnel dest: $(ip netns exec "$(n l)" ethtool -k lbd0)"

# --- IPIP.
lbctl lb -A -t $VIP:80 -s rr
lbctl lb -a -t $VIP:80 -r 198.18.2.11:80 -i
lbctl lb -a -t $VIP:80 -r 198.18.2.12:80 -i
answers=()
for i in $(seq 20); do
  a=$(dp_get c "http://$VIP/") || dp_fail "IPIP request $i to $VIP failed"
  answers+=("$a")
done
echo "ipip rr: ${answers[*]}"
[[ $(dp_count S1 "${answers[@]}") -eq 10 && $(dp_count S2 "${answers[@]}") -eq 10 ]] ||
  dp_fail "IPIP rr split wrong: ${answers[*]}"
for ((i = 1; i < 20; i++)); do
  [[ ${answers[i]} != "${answers[i - 1]}" ]] || dp_fail "rr did not alternate at $i: ${answers[*]}"
done

# --- GUE.
lbctl lb -A -t $VIP:8080 -s rr
lbctl lb -a -t $VIP:8080 -r 198.18.2.11:8080 -i --tun-type gue --tun-port 5555
lbctl lb -a -t $VIP:8080 -r 198.18.2.12:8080 -i --tun-type gue --tun-port 5555
lbctl lb -Ln
gue=()
for i in $(seq 10); do
  a=$(dp_get c "http://$VIP:8080/") || dp_fail "GUE request $i failed"
  gue+=("$a")
done
echo "gue rr: ${gue[*]}"
[[ $(dp_count S1 "${gue[@]}") -eq 5 && $(dp_count S2 "${gue[@]}") -eq 5 ]] ||
  dp_fail "GUE rr split wrong: ${gue[*]}"

# The real servers saw the client itself (not the LB), and the LB never saw a reply.
for i in 1 2; do
  from_client=$(cat "$DP_TMP/http-S$i-80.log" "$DP_TMP/http-S$i-8080.log" |
    grep -c '^198\.18\.2\.2 - - .*"GET / ' || true)
  [[ $from_client -eq 15 ]] || dp_fail "s$i: $from_client requests from the client, want 15"
done
stats=$(lbctl lb -Ln --stats)
echo "$stats"
python3 - "$stats" <<'PY' || dp_fail "--stats: a tunnel real server shows replies or nothing"
import sys
rs = [l.split() for l in sys.argv[1].splitlines() if l.lstrip().startswith("-> 198")]
if len(rs) != 4:
    sys.exit(1)
for f in rs:
    conns, inpkts, outpkts, inbytes, outbytes = map(int, f[2:7])
    if conns == 0 or inpkts == 0 or outpkts != 0 or outbytes != 0:
        sys.exit(1)
PY

# --- bulk TCP over IPIP (5 s).
ip netns exec "$(n s1)" iperf3 -s -B $VIP -p 5201 -1 >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s1 tcp 5201 || dp_fail "iperf3 server did not start"
lbctl lb -A -t $VIP:5201 -s rr
lbctl lb -a -t $VIP:5201 -r 198.18.2.11:5201 -i
ip netns exec "$(n c)" timeout 30 iperf3 -c $VIP -p 5201 -t 5 -J >"$DP_TMP/iperf.json" ||
  dp_fail "iperf3 over IPIP failed: $(tail -n 5 "$DP_TMP/iperf.json")"
python3 - "$DP_TMP/iperf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bps = r["end"]["sum_received"]["bits_per_second"]
secs = r["end"]["sum_received"]["seconds"]
print(f"iperf3 through lbd (IPIP to a decap lbd, 1 stream): {bps / 1e9:.2f} Gbit/s over {secs:.1f} s")
sys.exit(0 if secs >= 4.5 and bps > 0 else 1)
PY

# Tunnel dests come and go: TSO off while any exists, back on once the last one is gone.
tso off || dp_fail "TSO still on with tunnel dests"
lbctl lb -D -t $VIP:80
lbctl lb -D -t $VIP:8080
tso off || dp_fail "TSO back on while $VIP:5201 still tunnels"
lbctl lb -e -t $VIP:5201 -r 198.18.2.11:5201 -m
tso on || dp_fail "TSO still off after the last tunnel dest became NAT"
lbctl lb -a -t $VIP:5201 -r 198.18.2.12:5201 -i --tun-type gue --tun-port 5555
tso off || dp_fail "TSO on with a GUE dest"
lbctl lb -C
tso on || dp_fail "TSO still off after -C"
echo "TSO on lbd0: on, off with tunnel dests, on again once they are gone"

for i in 1 2; do dp_lbd_stop "d$i"; done
dp_lbd_stop lb
after=$(dp_kernel_state l)
after_s1=$(dp_kernel_state s1)
if [[ "$before" != "$after" || "$before_s1" != "$after_s1" ]]; then
  diff <(echo "$before"; echo "$before_s1") <(echo "$after"; echo "$after_s1") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_tunnel"
