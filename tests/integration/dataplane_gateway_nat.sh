#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd as a NAT gateway (-m) in its own namespace: rr over 2 real servers (exact 20/20,
# alternating), wrr 4/3/2 (the kernel's sequence), UDP rr, IPv6 rr, a 10 s iperf3
# transfer through the VIP, flow offload (30 MB downloads over IPv4 and IPv6 arrive
# intact while the tc program forwards them, the stats count every byte, the FINs reach
# lbd's state machine), -Lnc state names, proxy ARP/NDP for on-link VIPs, and every route,
# rule, proxy entry and sysctl lbd installed gone after it stops.
#
#   client (c0 198.18.1.2, 2001:2:1::2)  --  lbd ns (l0 198.18.1.1 | l1 198.18.2.1)  --  br0  --  s1 s2 s3
#   VIP 198.18.1.100 / 2001:2:1::100 sits in the client's subnet: the client ARPs/NDs for it and
#   lbd's proxy entries answer. Real servers route only 198.18.1.0/24 back via lbd.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init gwnat
dp_need iperf3

VIP=198.18.1.100
VIP6=2001:2:1::100

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
for i in 1 2 3; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" addr add "2001:2:2::1$i/64" dev s0 nodad
  ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
  ip -n "$(n "s$i")" -6 route add 2001:2:1::/64 via 2001:2:2::1
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
  dp_http "s$i" "198.18.2.1$i" "S$i" 8080
  dp_http "s$i" "2001:2:2::1$i" "S$i" 81
done
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0

before=$(dp_kernel_state l)
dp_lbd l gw --tun=lbd0 --workers=2 --mode=gateway --metrics=127.0.0.1:9479

# --- rr over two NAT real servers: 40 new connections, exactly 20/20, alternating.
lbctl gw -A -t $VIP:80 -s rr
lbctl gw -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl gw -a -t $VIP:80 -r 198.18.2.12:80 -m
answers=()
for i in $(seq 40); do
  a=$(dp_get c "http://$VIP/") || dp_fail "request $i to $VIP failed"
  answers+=("$a")
done
c1=$(dp_count S1 "${answers[@]}")
c2=$(dp_count S2 "${answers[@]}")
echo "rr: S1=$c1 S2=$c2"
[[ $c1 -eq 20 && $c2 -eq 20 ]] || dp_fail "rr split $c1/$c2, want 20/20: ${answers[*]}"
for ((i = 1; i < 40; i++)); do
  [[ ${answers[i]} != "${answers[i - 1]}" ]] || dp_fail "rr did not alternate at $i: ${answers[*]}"
done

# --- -Lnc: live conns with the kernel's state names.
conns=$(lbctl gw -Lnc)
echo "$conns" | head -n 5
echo "$conns" | grep -Eq '^TCP +[0-9:]+ +(TIME_WAIT|FIN_WAIT|CLOSE|CLOSE_WAIT|LAST_ACK|ESTABLISHED) ' ||
  dp_fail "-Lnc shows no TCP conn with a state name"

# --- wrr 4/3/2. The kernel's dest list is newest first (ip_vs_ctl.c __ip_vs_update_dest:
# list_add_rcu at the head), so adding S3(2), S2(3), S1(4) gives the list S1 S2 S3. ip_vs_wrr.c
# ip_vs_wrr_dest_changed runs on each add: after S3 alone, di = gcd(2) = 2 and mw = 2 - (2-1) = 1,
# so cw goes 0 -> mw = 1; the later adds (di 1, mw 3 then 4) keep cw = 1 since 0 < cw <= mw.
# The walk then runs: cw 1: S1 S2 S3; wrap, cw 0 -> mw 4: S1; cw 3: S1 S2; cw 2: S1 S2 S3;
# cw 1: S1 S2 S3; ... (core's unit tests check the A A B A B C A B C cycle from cw = mw.)
lbctl gw -A -t $VIP:8080 -s wrr
lbctl gw -a -t $VIP:8080 -r 198.18.2.13:8080 -m -w 2
lbctl gw -a -t $VIP:8080 -r 198.18.2.12:8080 -m -w 3
lbctl gw -a -t $VIP:8080 -r 198.18.2.11:8080 -m -w 4
expected=(S1 S2 S3 S1 S1 S2 S1 S2 S3 S1 S2 S3 S1 S1 S2 S1 S2 S3)
got=()
for i in $(seq 18); do got+=("$(dp_get c "http://$VIP:8080/")"); done
echo "wrr expected: ${expected[*]}"
echo "wrr got:      ${got[*]}"
[[ "${got[*]}" == "${expected[*]}" ]] || dp_fail "wrr sequence differs"

# --- UDP rr: 10 datagrams from new source ports, 5/5 alternating. (Not socat: after its stdin's
#     EOF it waits only 0.5 s for the reply.)
udp_ask() {
  ip netns exec "$(n c)" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(15)
s.sendto(b"q\n", (sys.argv[1], 53))
print(s.recv(100).decode().strip())
' "$VIP"
}
dp_udp_echo s1 53 U1
dp_udp_echo s2 53 U2
lbctl gw -A -u $VIP:53 -s rr
lbctl gw -a -u $VIP:53 -r 198.18.2.11:53 -m
lbctl gw -a -u $VIP:53 -r 198.18.2.12:53 -m
udp=()
for i in $(seq 10); do
  udp+=("$(udp_ask)") || dp_fail "UDP datagram $i to $VIP:53: no answer in 15 s"
done
echo "udp: ${udp[*]}"
[[ $(dp_count U1 "${udp[@]}") -eq 5 && $(dp_count U2 "${udp[@]}") -eq 5 ]] ||
  dp_fail "UDP rr split wrong: ${udp[*]}"
for ((i = 1; i < 10; i++)); do
  [[ ${udp[i]} != "${udp[i - 1]}" ]] || dp_fail "UDP rr did not alternate: ${udp[*]}"
done

# --- IPv6 rr (VIP answered by proxy NDP).
lbctl gw -A -t "[$VIP6]:80" -s rr
lbctl gw -a -t "[$VIP6]:80" -r "[2001:2:2::11]:81" -m
lbctl gw -a -t "[$VIP6]:80" -r "[2001:2:2::12]:81" -m
v6=()
for i in $(seq 10); do
  v6+=("$(dp_get c "http://[$VIP6]/")") || dp_fail "IPv6 request $i failed"
done
echo "ipv6 rr: ${v6[*]}"
[[ $(dp_count S1 "${v6[@]}") -eq 5 && $(dp_count S2 "${v6[@]}") -eq 5 ]] ||
  dp_fail "IPv6 rr split wrong: ${v6[*]}"

# --- 10 s iperf3 through the VIP.
ip netns exec "$(n s3)" iperf3 -s -B 198.18.2.13 -p 5201 -1 >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s3 tcp 5201 || dp_fail "iperf3 server did not start"
lbctl gw -A -t $VIP:5201 -s rr
lbctl gw -a -t $VIP:5201 -r 198.18.2.13:5201 -m
ip netns exec "$(n c)" timeout 40 iperf3 -c $VIP -p 5201 -t 10 -J >"$DP_TMP/iperf.json" ||
  dp_fail "iperf3 through the VIP failed: $(tail -n 5 "$DP_TMP/iperf.json")"
python3 - "$DP_TMP/iperf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bps = r["end"]["sum_received"]["bits_per_second"]
secs = r["end"]["sum_received"]["seconds"]
print(f"iperf3 through lbd (NAT, 1 stream): {bps / 1e9:.2f} Gbit/s over {secs:.1f} s")
sys.exit(0 if secs >= 9.5 and bps > 0 else 1)
PY

# --- flow offload: once lbd scheduled the SYN, a conn's packets are rewritten and forwarded
#     by the tc program (no copy through lbd). A rate-limited 30 MB download (~2 s) arrives
#     intact over IPv4 and IPv6 (the receivers check every TCP checksum the program
#     rewrote), the service's OutBytes count all of it once the counters are folded, and the
#     FINs the program forwarded reach lbd's state machine: the conn ends in TIME_WAIT, as if
#     lbd had seen them, and the offload gives it back.
metric() { dp_get l http://127.0.0.1:9479/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# The metrics port answers the Helm chart's probes.
[[ $(dp_get l http://127.0.0.1:9479/healthz) == ok ]] || dp_fail "/healthz did not answer ok"
if [[ -n $(metric lb_dataplane_offload_installed_total) ]]; then
  head -c 30000000 /dev/urandom >"$DP_TMP/www-S3-8080/big30.bin"
  cp "$DP_TMP/www-S3-8080/big30.bin" "$DP_TMP/www-S3-81/big30.bin"
  lbctl gw -A -t $VIP:8081 -s rr
  lbctl gw -a -t $VIP:8081 -r 198.18.2.13:8080 -m
  lbctl gw -A -t "[$VIP6]:8081" -s rr
  lbctl gw -a -t "[$VIP6]:8081" -r "[2001:2:2::13]:81" -m
  fwd_before=$(metric lb_dataplane_bpf_flow_forwarded_total)
  inst_before=$(metric lb_dataplane_offload_installed_total)
  active_before=$(metric lb_dataplane_offload_active)  # the UDP conns above stay offloaded
  for url in "http://$VIP:8081/big30.bin" "http://[$VIP6]:8081/big30.bin"; do
    ip netns exec "$(n c)" curl -s --max-time 30 --noproxy '*' --limit-rate 15M \
      -o "$DP_TMP/got30.bin" "$url" || dp_fail "offloaded download $url failed"
    cmp -s "$DP_TMP/got30.bin" "$DP_TMP/www-S3-8080/big30.bin" ||
      dp_fail "offloaded download $url arrived corrupted ($(stat -c %s "$DP_TMP/got30.bin") bytes)"
  done
  installed=$(($(metric lb_dataplane_offload_installed_total) - inst_before))
  fwd=$(($(metric lb_dataplane_bpf_flow_forwarded_total) - fwd_before))
  echo "offload: $installed conns installed, $fwd packets forwarded by the tc program," \
    "$(metric lb_dataplane_bpf_flow_slow_total) flow packets sent the slow way"
  [[ $installed -ge 2 && $fwd -gt 1000 ]] || dp_fail "the downloads were not offloaded"
  # The sweep (every 1 s) folds the program's counters and gives closed conns back.
  out_bytes() {
    local b
    b=$(lbctl gw -Ln --stats --exact | awk -v s="$VIP:8081" '$1 == "TCP" && $2 == s { print $7 }')
    echo "OutBytes ${b:-none}"
    [[ ${b:-0} -ge 30000000 ]]
  }
  dp_poll 30 "the offloaded service's OutBytes to count the 30 MB download" out_bytes
  echo "offloaded service: $(out_bytes)"
  dp_poll_eq 30 "conns offloaded (the downloads' given back after their FINs)" "$active_before" \
    metric lb_dataplane_offload_active
  tw_8081() { lbctl gw -Lnc | grep -E ":8081 " | grep -c TIME_WAIT; }
  dp_poll_eq 30 "the offloaded downloads' conns in TIME_WAIT after their FINs" 2 tw_8081
  lbctl gw -Lnc | grep -E ":8081 "
elif [[ ${CI:-} == true ]]; then
  dp_fail "CI builds the tc fast path; this lbd has no flow offload"
fi

lbctl gw -Ln --stats

# --- direct egress: forwarded packets left through AF_PACKET on l0/l1 once their next hops
#     were learned; with a foreign policy rule in the namespace lbd goes back to the TUN device
#     (a destination-only lookup could disagree with the rule), and traffic still flows.
direct=$(metric lb_dataplane_tx_direct_total)
echo "direct egress: $direct packets, $(metric lb_dataplane_tx_tun_total) through the TUN device"
[[ ${direct:-0} -gt 0 ]] || dp_fail "no packet left through direct egress"
# --- the tc ingress fast path took the VIP's packets and the NAT replies past the kernel's
#     first pass (CI builds it: libbpf-dev; a build without it must say so).
bpf_dst=$(metric lb_dataplane_bpf_redirected_dst_total)
bpf_reply=$(metric lb_dataplane_bpf_redirected_reply_total)
echo "tc ingress fast path: $bpf_dst packets by destination, $bpf_reply replies"
if [[ -z $bpf_dst ]]; then
  grep -q "fast path not built" "$DP_TMP/lbd-gw.log" || dp_fail "no fast-path metrics, no reason logged"
  [[ ${CI:-} != true ]] || dp_fail "CI builds the tc fast path; this lbd has none"
else
  # With the flow offload on, every reply of an offloaded conn (the SYN-ACK on) is forwarded
  # by its flow entry instead of redirected: a reply redirect then needs a conn lbd did not
  # offload.
  flow_fwd=$(metric lb_dataplane_bpf_flow_forwarded_total)
  [[ $bpf_dst -gt 0 && ($bpf_reply -gt 0 || ${flow_fwd:-0} -gt 0) ]] ||
    dp_fail "the tc fast path redirected nothing"
fi
# --- path MTU with direct egress: the client-side link shrinks to 1280 bytes. The servers'
#     1500-byte segments (and GSO super-packets) no longer fit it, so lbd hands them to the
#     kernel through the TUN device; the kernel's frag-needed goes to the VIP, lbd translates
#     it for the real server, whose route learns MTU 1280, and the transfer completes intact.
for i in 1 2; do head -c 300000 /dev/urandom >"$DP_TMP/www-S$i-80/big.bin"; done
cmp -s "$DP_TMP/www-S1-80/big.bin" "$DP_TMP/www-S2-80/big.bin" && dp_fail "random files equal"
tun_before=$(metric lb_dataplane_tx_tun_total)
ip -n "$(n l)" link set l0 mtu 1280
# lbd re-reads the link MTU at its next full neighbour refresh (every 2 s), which nothing
# outside shows: transfers run until a real server has learned the path MTU (bounded), and every
# one of them must arrive intact. (Before the refresh an oversized frame fails on the packet
# socket and goes through the TUN device as well; a GSO one could pass, so no server learns.)
tries=0
while :; do
  tries=$((tries + 1))
  got="$DP_TMP/big-$tries.bin"
  ip netns exec "$(n c)" curl -s --max-time 20 --noproxy '*' -o "$got" "http://$VIP/big.bin" ||
    dp_fail "big transfer $tries through a 1280-byte link failed"
  cmp -s "$got" "$DP_TMP/www-S1-80/big.bin" || cmp -s "$got" "$DP_TMP/www-S2-80/big.bin" ||
    dp_fail "big transfer $tries arrived corrupted or short ($(stat -c %s "$got") bytes)"
  routes=$(for i in 1 2; do echo "s$i: $(ip -n "$(n "s$i")" route get 198.18.1.2 | xargs);"; done)
  [[ $routes == *"mtu 1280"* ]] && break
  ((tries < 30)) || dp_fail "after $tries intact transfers no real server learned the path MTU: $routes"
  sleep 0.5
done
echo "path MTU: learned after $tries transfers, all intact ($routes)"
[[ $(metric lb_dataplane_tx_tun_total) -gt $tun_before ]] ||
  dp_fail "no too-big packet was handed to the kernel"
ip -n "$(n l)" link set l0 mtu 1500

ip -n "$(n l)" rule add from 198.18.1.2 lookup main pref 1000
# The next full neighbour refresh (every 2 s) re-reads the rules and logs the switch.
dp_poll 30 "lbd to log 'direct Ethernet egress off' after a foreign rule" \
  grep "direct Ethernet egress off" "$DP_TMP/lbd-gw.log"
before_rule=$(metric lb_dataplane_tx_direct_total)
for i in $(seq 1 10); do
  dp_get c "http://$VIP/" >/dev/null || dp_fail "request $i with a foreign rule failed"
done
[[ $(metric lb_dataplane_tx_direct_total) -eq $before_rule ]] ||
  dp_fail "direct egress stayed on with a foreign policy rule"
ip -n "$(n l)" rule del from 198.18.1.2 lookup main pref 1000

# --- everything lbd installed is gone after it stops.
dp_lbd_stop gw
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_gateway_nat"
