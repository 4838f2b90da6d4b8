#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync failover (issue 15): two lbd NAT gateways on one LAN, g1 running a master
# sync daemon and g2 a backup (multicast 224.0.0.81:8848 on the LAN). A client streams a long
# TCP download from a real server through the VIP via g1; g2's lbctl -Lnc must show the conn
# (ESTABLISHED, to the same real server). g1 is killed with SIGKILL and the routes move to g2
# (the client's route to the VIP, the server's route back to the client): the download goes on
# without a reset and the bytes that arrive are complete (length and sha256).
#
#   client c (198.18.1.2) -- lan br0 -- g1 (198.18.1.11 | 198.18.2.1), g2 (198.18.1.12 | 198.18.2.2)
#   g1, g2 -- srv br1 -- s1 (198.18.2.11). VIP 198.18.3.100 is routed by the client via g1.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init syncfo

VIP=198.18.3.100
BYTES=$((24 * 1024 * 1024))

dp_ns c
dp_ns g1
dp_ns g2
dp_ns sw
dp_ns s1
dp_bridge sw br0
dp_bridge sw br1
dp_link c c0 sw swc
ip -n "$(n sw)" link set swc master br0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
for g in 1 2; do
  dp_link "g$g" a0 sw "swa$g"
  dp_link "g$g" b0 sw "swb$g"
  ip -n "$(n sw)" link set "swa$g" master br0
  ip -n "$(n sw)" link set "swb$g" master br1
  ip -n "$(n "g$g")" addr add "198.18.1.1$g/24" dev a0
  ip -n "$(n "g$g")" addr add "198.18.2.$g/24" dev b0
  ip netns exec "$(n "g$g")" sysctl -qw net.ipv4.conf.all.rp_filter=0
done
dp_link s1 s0 sw sws1
ip -n "$(n sw)" link set sws1 master br1
ip -n "$(n s1)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s1)" route add 198.18.1.0/24 via 198.18.2.1
ip -n "$(n c)" route add $VIP/32 via 198.18.1.11

# The real server: BYTES deterministic bytes, paced (about 6 s), then close.
ip netns exec "$(n s1)" python3 -c '
import socket, time, sys
n = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.11", 5001)); s.listen(1)
c, _ = s.accept()
block = bytes((i * 7 + 3) % 251 for i in range(65536))
sent = 0
while sent < n:
    c.sendall(block[: min(65536, n - sent)]); sent += min(65536, n - sent)
    time.sleep(0.016)
c.close()
' "$BYTES" &
DP_PIDS+=($!)
dp_wait 10 listening s1 tcp 5001 || dp_fail "the real server did not listen"

for g in 1 2; do
  dp_lbd "g$g" "g$g" --tun=lbd0 --workers=2 --mode=gateway --flow_offload=false
  lbctl "g$g" -A -t $VIP:5001 -s rr
  lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 -m
done
lbctl g1 --start-daemon master --mcast-interface a0 || dp_fail "--start-daemon master"
lbctl g2 --start-daemon backup --mcast-interface a0 || dp_fail "--start-daemon backup"
lbctl g1 -L --daemon
lbctl g2 -L --daemon

# The client: reads to EOF; a reset fails it. Prints "BYTES SHA256".
ip netns exec "$(n c)" python3 -c '
import socket, hashlib, sys
s = socket.create_connection(("'$VIP'", 5001), timeout=30)
h = hashlib.sha256(); n = 0
while True:
    b = s.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
' >"$DP_TMP/client.out" 2>"$DP_TMP/client.err" &
CLIENT=$!
DP_PIDS+=($CLIENT)
want_sha=$(python3 -c '
import hashlib, sys
n = int(sys.argv[1]); block = bytes((i * 7 + 3) % 251 for i in range(65536)); h = hashlib.sha256(); sent = 0
while sent < n:
    k = min(65536, n - sent); h.update(block[:k]); sent += k
print(h.hexdigest())' "$BYTES")

backup_has_conn() {
  lbctl g2 -Lnc | grep -E "^TCP .* ESTABLISHED +198\.18\.1\.2:[0-9]+ +$VIP:5001 +198\.18\.2\.11:5001"
}
dp_poll 10 "the synced conn in the backup's -Lnc" backup_has_conn
echo "backup: $(backup_has_conn)"
kill -0 $CLIENT 2>/dev/null || dp_fail "the transfer ended before the failover: $(cat "$DP_TMP/client.out" "$DP_TMP/client.err")"

# Failover: the master dies, the routes move to the backup.
kill -9 "$DP_LBD_PID_g1"
ip -n "$(n c)" route replace $VIP/32 via 198.18.1.12
ip -n "$(n s1)" route replace 198.18.1.0/24 via 198.18.2.2
dp_wait_pid $CLIENT 60 || dp_fail "the transfer did not finish within 60 s after the failover"
wait $CLIENT || dp_fail "the client failed: $(cat "$DP_TMP/client.err")"
got=$(cat "$DP_TMP/client.out")
[[ $got == "$BYTES $want_sha" ]] || dp_fail "received '$got', want '$BYTES $want_sha'"
echo "transfer complete across the failover: $got"
echo "PASS sync_failover"
