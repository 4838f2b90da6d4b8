#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd tunnelling (-i) to real servers that decapsulate in userspace with `lbd --mode=decap`
# (no ipip/fou kernel modules needed): client, the LB and two real servers on one LAN. Each
# real server holds the VIP on lo (arp_ignore=1, arp_announce=2); its decap lbd receives the
# IPIP (or GUE, UDP 5555) packets on raw/UDP sockets and writes the inner packet into its own
# TUN device, so the local stack delivers it to the VIP; replies go straight to the client.
# rr over IPIP (10/10, alternating) and GUE (`--tun-type gue --tun-port 5555`, 5/5); each real
# server saw the client's own address; the LB's --stats shows 0 OutPkts; a 5 s iperf3 over
# IPIP; a 16 MB upload through IPIP, GUE and GRE arrives byte-exact (sha256): the conns are
# offloaded to the LB's tc program, which encapsulates the client's TCP super-packets whole
# (lb_dataplane_bpf_flow_forwarded_total grows, lbd reads a few packets from lbd0 and cuts
# none), so the decap lbd receives up to 64 KB IPIP / GRE packets and GUE datagrams and writes
# them on as GSO packets (docs/tunnel-speed.md); the same upload through GRE with checksums
# (--tun-csum) is cut by lbd and every checksum verified by the decap lbd, and with GRE
# segmentation offload off on the LB's egress the kernel cuts the program's GRE super-packets; a GRE packet with a
# bad checksum and one of GRE version 1 are dropped and counted by the decap lbd; on Linux
# 6.17+ lbd has the GUE TAP device lbd0g (TSO stays on on the LB's TUN with tunnel dests);
# nothing left after stop.
#
#   c (198.18.2.2)   l (198.18.2.1)   s1 (198.18.2.11)   s2 (198.18.2.12)   all on br0
source "$(dirname "$0")/dataplane_lib.sh"
dp_init tunnel
dp_need ethtool iperf3 curl socat

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
dp_lbd l lb --tun=lbd0 --workers=2 --mode=gateway --metrics=127.0.0.1:9479
for i in 1 2; do
  dp_lbd "s$i" "d$i" --tun=lbdd0 --mode=decap --gue-port=5555 --metrics=127.0.0.1:9479
done

# tso STATE: the LB's TUN device has TCP segmentation offload STATE (on/off). The kernel drops
# GSO super-packets wrapped in IPIP/GUE, so lbd cuts them into wire packets itself and TSO
# stays on whatever the dests are.
tso() {
  ip netns exec "$(n l)" ethtool -k lbd0 | grep -q "^tcp-segmentation-offload: $1"
}
tso on || dp_fail "TSO off on lbd0 before any tunnel dest: $(ip netns exec "$(n l)" ethtool -k lbd0)"
metric() {  # metric NAME: one sample of the LB's /metrics
  ip netns exec "$(n l)" curl -s --max-time 5 http://127.0.0.1:9479/metrics |
    awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}

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

# --- bulk uploads through IPIP and GUE, byte-exact. The client's 64 KB super-packets reach the
# LB whole (TSO on) and leave it whole, encapsulated by the tc program; each sink records the
# sha256 and length of what it received.
tso on || dp_fail "TSO off on lbd0 with tunnel dests"
head -c 16777216 /dev/urandom >"$DP_TMP/bulk.bin"
want_sum=$(sha256sum <"$DP_TMP/bulk.bin" | cut -d' ' -f1)
upload() {  # upload NAME PORT PATH DEST-FLAGS...: one upload through a tunnel dest on PORT
  # PATH offload: the tc program encapsulates it; lbd: lbd cuts it (a dest it does not offer)
  local name=$1 port=$2 path=$3
  shift 3
  ip netns exec "$(n s2)" timeout 60 python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
open(sys.argv[3], "w").write("%s %d\n" % (h.hexdigest(), n))
' "$VIP" "$port" "$DP_TMP/sink-$name.txt" &
  DP_PIDS+=($!)
  local sink=$!
  dp_wait 10 listening s2 tcp "$port" || dp_fail "$name sink did not start"
  lbctl lb -A -t "$VIP:$port" -s rr
  lbctl lb -a -t "$VIP:$port" -r "198.18.2.12:$port" -i "$@"
  local split0 tap0 fwd0 tun0
  split0=$(metric lb_dataplane_tunnel_gso_split_total)
  tap0=$(tap_rx)
  fwd0=$(metric lb_dataplane_bpf_flow_forwarded_total)
  tun0=$(tun_tx)
  ip netns exec "$(n c)" timeout 60 python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
with open(sys.argv[3], "rb") as f:
    c.sendfile(f)
c.shutdown(socket.SHUT_WR); c.recv(1)
' "$VIP" "$port" "$DP_TMP/bulk.bin" || dp_fail "$name upload failed"
  dp_wait_pid "$sink" 30 || dp_fail "$name sink did not finish"
  local got
  got=$(cat "$DP_TMP/sink-$name.txt" 2>/dev/null)
  [[ $got == "$want_sum 16777216" ]] || dp_fail "$name upload arrived as '$got', want '$want_sum 16777216'"
  local split1 tap1 fwd1 tun1
  split1=$(metric lb_dataplane_tunnel_gso_split_total)
  tap1=$(tap_rx)
  fwd1=$(metric lb_dataplane_bpf_flow_forwarded_total)
  tun1=$(tun_tx)
  # The conn is offloaded from its SYN: the tc program encapsulates the client's packets
  # (super-packets whole: UDP-tunnel GSO for GUE, IPXIP4 for IPIP) and sends them to the real
  # server itself; lbd (and its TAP device lbd0g) sees the SYN and what follows the client's FIN.
  echo "$name: 16 MB byte-exact; forwarded by the tc program: $((fwd1 - fwd0)), read by lbd from lbd0: $((tun1 - tun0)), through lbd0g: $((${tap1:-0} - ${tap0:-0})), cut by lbd: $((split1 - split0))"
  if [[ $path == lbd ]]; then
    ((fwd1 - fwd0 < 10)) || dp_fail "$name: the tc program forwarded $((fwd1 - fwd0)) packets"
    ((split1 - split0 > 100)) || dp_fail "$name: lbd cut $((split1 - split0)) super-packets"
    return
  fi
  ((fwd1 - fwd0 > 100)) || dp_fail "$name: the tc program forwarded $((fwd1 - fwd0)) packets of the upload"
  ((tun1 - tun0 < 50)) || dp_fail "$name: $((tun1 - tun0)) packets of the upload went through lbd"
  ((${tap1:-0} - ${tap0:-0} < 20)) || dp_fail "$name: $((tap1 - tap0)) super-packets went through lbd0g"
  ((split1 == split0)) || dp_fail "$name: lbd cut $((split1 - split0)) super-packets itself"
}
tun_tx() {  # packets the LB's kernel handed lbd on its TUN device (the tc program's included)
  ip netns exec "$(n l)" cat /sys/class/net/lbd0/statistics/tx_packets
}
tap_rx() {  # packets the LB's GUE TAP device took from lbd; empty without the device
  ip netns exec "$(n l)" cat /sys/class/net/lbd0g/statistics/rx_packets 2>/dev/null
}
# Linux 6.17+ takes a UDP-tunnel GSO packet from a TAP device: lbd's start-up probe must find
# it (docs/tunnel-speed.md); before, GUE super-packets are cut by lbd like IPIP ones.
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
if ((kv >= 6017)); then
  [[ -n $(tap_rx) ]] || dp_fail "kernel $(uname -r): no lbd0g (GUE kernel GSO path not taken)"
else
  [[ -z $(tap_rx) ]] || dp_fail "kernel $(uname -r) < 6.17 but lbd0g exists"
fi
s2_metric() {  # s2_metric NAME: one sample of s2's decap lbd's /metrics
  ip netns exec "$(n s2)" curl -s --max-time 5 http://127.0.0.1:9479/metrics |
    awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}
upload ipip 9001 offload
upload gue 9002 offload --tun-type gue --tun-port 5555
upload gre 9004 offload --tun-type gre
# The LB's egress without GRE segmentation offload (as a NIC without it): the kernel cuts the
# program's GRE super-packets itself at l1 (gre_gso_segment, from the SKB_GSO_GRE and inner
# headers bpf_skb_adjust_room set); the upload still arrives byte-exact, as wire-sized packets.
l1_tx() { ip netns exec "$(n l)" cat /sys/class/net/l1/statistics/tx_packets; }
ip netns exec "$(n l)" ethtool -K l1 tx-gre-segmentation off >/dev/null ||
  dp_fail "cannot turn off tx-gre-segmentation on l1"
l1_0=$(l1_tx)
upload gre-segmented 9006 offload --tun-type gre
l1_1=$(l1_tx)
ip netns exec "$(n l)" ethtool -K l1 tx-gre-segmentation on >/dev/null
echo "gre-segmented: l1 sent $((l1_1 - l1_0)) packets"
((l1_1 - l1_0 > 11000)) || dp_fail "gre-segmented: l1 sent $((l1_1 - l1_0)) packets, want wire-sized ones"
# A GRE checksum covers the whole inner packet: such a dest is not offered to the tc program;
# lbd cuts the super-packets and sums each segment, the decap lbd verifies every sum.
upload gre-csum 9005 lbd --tun-type gre --tun-csum
decap_drops=$(s2_metric lb_dataplane_decap_dropped_total)
[[ $decap_drops == 0 && $(s2_metric lb_dataplane_decap_csum_errors_total) == 0 ]] ||
  dp_fail "s2's decap lbd dropped $decap_drops packets of the uploads"

# --- malformed GRE to s2's decap lbd: a bad checksum and GRE version 1 are dropped and
# counted (a good one beside them is the control: decap_packets grows by one).
pkts0=$(s2_metric lb_dataplane_decap_packets_total)
ip netns exec "$(n c)" python3 - 198.18.2.12 <<'PY' || dp_fail "sending GRE packets failed"
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
inner = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0,
                              socket.inet_aton("198.18.2.2"), socket.inet_aton("198.18.2.100")))
inner[10:12] = struct.pack("!H", csum(bytes(inner)))
inner += struct.pack("!HHHH", 9, 9, 8, 0)  # UDP to a closed port, no checksum
def with_csum(flip):
    g = bytearray(struct.pack("!HHHH", 0x8000, 0x0800, 0, 0)) + inner
    g[4:6] = struct.pack("!H", csum(bytes(g)) ^ flip)
    return bytes(g)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
for pkt in (with_csum(1), struct.pack("!HH", 0x0001, 0x0800) + inner, with_csum(0)):
    s.sendto(pkt, (sys.argv[1], 0))
PY
decap_counts() {
  [[ $(s2_metric lb_dataplane_decap_dropped_total) == 2 &&
    $(s2_metric lb_dataplane_decap_csum_errors_total) == 1 &&
    $(s2_metric lb_dataplane_decap_packets_total) == $((pkts0 + 1)) ]]
}
dp_poll 10 "s2's decap lbd counting 2 malformed GRE packets (1 checksum) and 1 good" decap_counts
echo "malformed GRE: s2 decap dropped=$(s2_metric lb_dataplane_decap_dropped_total) csum_errors=$(s2_metric lb_dataplane_decap_csum_errors_total)"

# --- a held GUE conn: the tc program forwards it, and -Lnc follows the client's packets (lbd's
# housekeeping feeds the flags the program recorded into the conn's input-only TCP states):
# ESTABLISHED while open, then a closing state with a closing timeout after the client's FIN.
ip netns exec "$(n s2)" socat TCP-LISTEN:9003,bind=$VIP,fork,reuseaddr PIPE >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s2 tcp 9003 || dp_fail "echo server on s2 did not start"
lbctl lb -A -t $VIP:9003 -s rr
lbctl lb -a -t $VIP:9003 -r 198.18.2.12:9003 -i --tun-type gue --tun-port 5555
fwd0=$(metric lb_dataplane_bpf_flow_forwarded_total)
coproc SESS { exec ip netns exec "$(n c)" socat -T60 - "TCP4:$VIP:9003"; }
DP_PIDS+=("$SESS_PID")
for i in 1 2 3; do
  echo "hello $i" >&"${SESS[1]}"
  read -t 15 -r reply <&"${SESS[0]}" || dp_fail "GUE session: no echo $i in 15 s"
  [[ $reply == "hello $i" ]] || dp_fail "GUE session echoed '$reply'"
done
gue_re="^TCP +[0-9:]+ +%s +198\\.18\\.2\\.2:[0-9]+ +198\\.18\\.2\\.100:9003 +198\\.18\\.2\\.12:9003"
gue_line() {  # gue_line STATE-REGEX: the session's -Lnc line in that state
  lbctl lb -Lnc | grep -E "$(printf "$gue_re" "$1")"
}
dp_poll 10 "the GUE session's -Lnc entry in ESTABLISHED" gue_line ESTABLISHED
fwd1=$(metric lb_dataplane_bpf_flow_forwarded_total)
((fwd1 - fwd0 >= 3)) || dp_fail "GUE session: the tc program forwarded $((fwd1 - fwd0)) packets"
echo "GUE session: $(gue_line ESTABLISHED); forwarded by the tc program: $((fwd1 - fwd0))"
exec {SESS[1]}>&-  # the client's FIN
closing() {  # the entry in a closing state with at most TIME_WAIT's 2:00 left
  gue_line '(CLOSE_WAIT|TIME_WAIT|CLOSE|LAST_ACK|FIN_WAIT)' |
    awk '{ split($2, t, ":"); if (t[1] * 60 + t[2] <= 120) { print; ok = 1 } } END { exit !ok }'
}
dp_poll 10 "the GUE session's -Lnc entry expiring after the close" closing
echo "GUE session closed: $(closing)"
# How many runs s2's decap lbd joined back into super-packets depends on how many segments
# were queued at once (timing): printed, not asserted. The joining is unit-tested
# (TcpCoalesceTest); the byte-exact uploads cover the joined writes end to end.
echo "s2 decap: $(ip netns exec "$(n s2)" curl -s --max-time 5 http://127.0.0.1:9479/metrics |
  awk '/^lb_dataplane_(decap_packets|tx_gso)_total / { printf "%s=%s ", $1, $2 }')"
[[ $(metric lb_dataplane_tunnel_gso_dropped_total) == 0 ]] ||
  dp_fail "tunnel GSO drops: $(metric lb_dataplane_tunnel_gso_dropped_total)"

# Tunnel dests come and go: TSO stays on throughout.
lbctl lb -D -t $VIP:80
lbctl lb -D -t $VIP:8080
tso on || dp_fail "TSO off while $VIP:5201 tunnels"
lbctl lb -e -t $VIP:5201 -r 198.18.2.11:5201 -m
lbctl lb -a -t $VIP:5201 -r 198.18.2.12:5201 -i --tun-type gue --tun-port 5555
tso on || dp_fail "TSO off with a GUE dest"
lbctl lb -C
tso on || dp_fail "TSO off after -C"
echo "TSO on lbd0: on throughout, tunnel dests or not"

for i in 1 2; do dp_lbd_stop "d$i"; done
dp_lbd_stop lb
after=$(dp_kernel_state l)
after_s1=$(dp_kernel_state s1)
if [[ "$before" != "$after" || "$before_s1" != "$after_s1" ]]; then
  diff <(echo "$before"; echo "$before_s1") <(echo "$after"; echo "$after_s1") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_tunnel"
