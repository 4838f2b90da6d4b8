#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The sidecar's flow offload (issue 19 item 2): lbd --mode=sidecar in the app's namespace with
# CAP_BPF. Once lbd scheduled a conn's SYN, the app's packets to the VIP are rewritten by the
# tc egress program on lbd0 and leave through the app's veth, and the real server's replies are
# un-NATed by the ingress program on that veth and delivered through lbd0's ingress: neither
# direction reaches lbd's workers. A 32 MiB download over IPv4 and over IPv6 arrives byte-exact;
# the programs' flow counter moves by hundreds of (GSO) packets while lbd's workers send a handful
# (the handshake before the install); the service's InPkts/OutBytes count both directions once
# folded; the FINs the program forwarded take the conn to TIME_WAIT in lbctl -Lnc, and the
# offload gives it back. A conn whose app is killed mid-transfer: the RST the programs forwarded
# finishes it, lbd puts it in CLOSE and it expires from -Lnc 10 s later. 20 short conns are all
# offloaded and given back.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init sidecar_offload
dp_need curl cmp

VIP=198.18.100.1
VIP6=2001:2:100::1
dp_ns app
dp_ns sw
dp_bridge sw br0
dp_link app eth0 sw swa
ip -n "$(n sw)" link set swa master br0
ip -n "$(n app)" addr add 198.18.2.2/24 dev eth0
ip -n "$(n app)" addr add 2001:2:2::2/64 dev eth0 nodad
dp_ns s1
dp_link s1 eth0 sw sws1
ip -n "$(n sw)" link set sws1 master br0
ip -n "$(n s1)" addr add 198.18.2.11/24 dev eth0
ip -n "$(n s1)" addr add 2001:2:2::11/64 dev eth0 nodad
dp_http s1 198.18.2.11 S1 80
dp_http s1 2001:2:2::11 S1v6 81
head -c $((32 << 20)) /dev/urandom >"$DP_TMP/www-S1-80/big.bin"
cp "$DP_TMP/www-S1-80/big.bin" "$DP_TMP/www-S1v6-81/big.bin"

dp_lbd app sc --tun=lbd0 --workers=1 --mode=sidecar --metrics=127.0.0.1:9479
metric() { dp_get app http://127.0.0.1:9479/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
if [[ -z $(metric lb_dataplane_offload_installed_total) ]]; then
  grep -iE "fast path|offload|sidecar egress" "$DP_TMP/lbd-sc.log" || true
  [[ ${CI:-} == true ]] && dp_fail "CI builds the tc fast path; this sidecar has no flow offload"
  dp_skip "no flow offload in this lbd (no CAP_BPF or no libbpf)"
fi
grep -q "bpf sidecar egress attached" "$DP_TMP/lbd-sc.log" ||
  dp_fail "the sidecar egress program was not attached: $(grep -i bpf "$DP_TMP/lbd-sc.log")"
lbctl sc -A -t $VIP:8081 -s rr
lbctl sc -a -t $VIP:8081 -r 198.18.2.11:80 -m
lbctl sc -A -t "[$VIP6]:8081" -s rr
lbctl sc -a -t "[$VIP6]:8081" -r "[2001:2:2::11]:81" -m

# Packets lbd's workers sent (every packet of a conn they forward leaves by one of these).
lbd_tx() {
  echo $(($(metric lb_dataplane_tx_tun_total) + $(metric lb_dataplane_tx_direct_total) +
    $(metric lb_dataplane_tx_l2_total)))
}
stat_of() {  # stat_of SERVICE COLUMN: lbctl -Ln --stats --exact's column for the TCP service
  lbctl sc -Ln --stats --exact | awk -v s="$1" -v c="$2" '$1 == "TCP" && $2 == s { print $c }'
}
for svc in "$VIP:8081" "[$VIP6]:8081"; do
  url="http://$svc/big.bin"
  fwd_before=$(metric lb_dataplane_bpf_flow_forwarded_total)
  tx_before=$(lbd_tx)
  inst_before=$(metric lb_dataplane_offload_installed_total)
  ip netns exec "$(n app)" curl -s --max-time 60 --noproxy '*' -o "$DP_TMP/got.bin" "$url" ||
    dp_fail "offloaded download $url failed"
  cmp -s "$DP_TMP/got.bin" "$DP_TMP/www-S1-80/big.bin" ||
    dp_fail "offloaded download $url arrived corrupted ($(stat -c %s "$DP_TMP/got.bin") bytes)"
  fwd=$(($(metric lb_dataplane_bpf_flow_forwarded_total) - fwd_before))
  tx=$(($(lbd_tx) - tx_before))
  installed=$(($(metric lb_dataplane_offload_installed_total) - inst_before))
  echo "$url: $installed conn(s) installed, $fwd packets forwarded by the tc programs," \
    "$tx sent by lbd's workers, $(metric lb_dataplane_bpf_flow_slow_total) flow packets slow"
  [[ $installed -eq 1 ]] || dp_fail "$url: $installed conns offloaded, want 1"
  # GSO/GRO super-packets (up to 64 KiB each): 32 MiB is at least 512 data skbs plus ACKs.
  [[ $fwd -gt 500 ]] || dp_fail "$url: only $fwd packets forwarded by the tc programs"
  # The SYN (and at most a retransmission or two) before the install; never the transfer.
  [[ $tx -lt 20 ]] || dp_fail "$url: lbd's workers sent $tx packets of an offloaded conn"
  # Both directions were forwarded by the programs: the sweep (1 s) folds their counters.
  both_ways() {
    local inp outb
    inp=$(stat_of "$svc" 4)
    outb=$(stat_of "$svc" 7)
    echo "InPkts ${inp:-none} OutBytes ${outb:-none}"
    [[ ${inp:-0} -gt 100 && ${outb:-0} -ge $((32 << 20)) ]]
  }
  dp_poll 30 "$svc's InPkts and OutBytes to count the offloaded download" both_ways
  echo "$svc: $(both_ways)"
  tw() { lbctl sc -Lnc | grep -F " ${svc%:8081}:8081 " | grep -c TIME_WAIT; }
  dp_poll_eq 30 "$svc's conn in TIME_WAIT after the FINs the programs forwarded" 1 tw
  lbctl sc -Lnc | grep -F " ${svc%:8081}:8081 "
done
dp_poll_eq 30 "offloaded conns (both given back after their FINs)" 0 \
  metric lb_dataplane_offload_active
echo "offload: installed $(metric lb_dataplane_offload_installed_total)," \
  "finished by the program $(metric lb_dataplane_offload_finished_total)," \
  "removed $(metric lb_dataplane_offload_removed_total)," \
  "bpf flow done $(metric lb_dataplane_bpf_flow_done_total)," \
  "dropped $(metric lb_dataplane_bpf_flow_dropped_total)"
[[ $(metric lb_dataplane_bpf_flow_dropped_total) -eq 0 ]] || dp_fail "the programs dropped packets"
# A conn reset mid-transfer (the app is killed): the programs forward the RST and finish the
# conn, lbd's state machine takes it to CLOSE and the conn expires from -Lnc (CLOSE: 10 s).
ip netns exec "$(n app)" curl -s --max-time 60 --noproxy '*' --limit-rate 1M -o /dev/null \
  "http://$VIP:8081/big.bin" &
curl_pid=$!
DP_PIDS+=("$curl_pid")
dp_poll_eq 20 "the slow download offloaded" 1 metric lb_dataplane_offload_active
done_before=$(metric lb_dataplane_bpf_flow_done_total)
kill -9 "$curl_pid"
conns_8081() { lbctl sc -Lnc | grep -F " $VIP:8081 " | grep -vc TIME_WAIT || true; }
dp_poll_eq 20 "the reset conn given back" 0 metric lb_dataplane_offload_active
echo "reset conn: $(lbctl sc -Lnc | grep -F " $VIP:8081 " | grep -v TIME_WAIT || true)"
[[ $(metric lb_dataplane_bpf_flow_done_total) -gt $done_before ]] ||
  dp_fail "the programs did not finish the reset conn"
t0=$SECONDS
dp_poll_eq 30 "the reset conn expired from -Lnc" 0 conns_8081
echo "reset conn expired after $((SECONDS - t0)) s"
# Short conns (the request rows): many conns, each offloaded and given back.
inst_before=$(metric lb_dataplane_offload_installed_total)
for i in $(seq 20); do
  [[ $(dp_get app "http://$VIP:8081/") == S1 ]] || dp_fail "short request $i failed"
done
dp_poll_eq 30 "the short conns given back" 0 metric lb_dataplane_offload_active
installed=$(($(metric lb_dataplane_offload_installed_total) - inst_before))
echo "short conns: $installed of 20 offloaded"
[[ $installed -eq 20 ]] || dp_fail "$installed of 20 short conns offloaded"
# The app's direct connection to a real server is not the offload's.
[[ $(dp_get app "http://198.18.2.11/") == S1 ]] || dp_fail "direct connection to a real server failed"
lbctl sc -Ln --stats
dp_lbd_stop sc
echo "PASS dataplane_sidecar_offload"
