#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync across a hot restart (issue 15): `lbd --takeover` starts the sync daemons the
# old lbd ran (from the handed-over configuration) once the handover is complete. Two lbd NAT
# gateways on one LAN as in sync_failover.sh, g1 with a master daemon, g2 with a backup one;
# both hand over to a new lbd process (--takeover, g2 first). The new processes list the same
# daemons (lbctl -L --daemon) and serve them: a client's download through the VIP via the new
# g1 appears in the new g2's lbctl -Lnc (the new master sends, the new backup receives), and
# after SIGKILL of the new g1 and the routes moved to g2 the download completes byte-exact
# without a reset.
#
# sync_lib.sh's sync_topology 1:
#   client c (198.18.1.2) -- lan br0 -- g1 (198.18.1.11 | 198.18.2.1), g2 (198.18.1.12 | 198.18.2.2)
#   g1, g2 -- srv br1 -- s1 (198.18.2.11). VIP 198.18.3.100 is routed by the client via g1.
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
dp_init synctko

VIP=$SYNC_VIP
BYTES=$((32 * 1024 * 1024))

sync_topology 1

# The real server: BYTES deterministic bytes, paced (about 8 s), then close.
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
  dp_lbd "g$g" "g$g" --tun=lbd0 --workers=2 --mode=gateway --flow_offload=false \
    --state-file="$DP_TMP/state-g$g"
  lbctl "g$g" -A -t $VIP:5001 -s rr
  lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 -m
done

lbctl g1 --start-daemon master --mcast-interface a0 --syncid 7 || dp_fail "--start-daemon master"
lbctl g2 --start-daemon backup --mcast-interface a0 --syncid 7 || dp_fail "--start-daemon backup"
before_g1=$(lbctl g1 -L --daemon)
before_g2=$(lbctl g2 -L --daemon)
echo "before: g1: $before_g1"
echo "before: g2: $before_g2"

# takeover G: a new lbd takes over from the running one (same socket, state file and flags).
takeover() {
  local g=$1 var="DP_LBD_PID_g$1"
  local old=${!var}
  ip netns exec "$(n "g$g")" "$LBD_BIN" --listen="unix://$DP_TMP/g$g.sock" --tun=lbd0 \
    --workers=2 --mode=gateway --flow_offload=false --state-file="$DP_TMP/state-g$g" \
    --takeover >"$DP_TMP/lbd-g$g-new.log" 2>&1 &
  local pid=$!
  DP_LBD_PIDS+=($pid)
  eval "DP_LBD_PID_g$g=$pid"
  dp_wait_pid "$old" 30 || dp_fail "the old lbd of g$g did not exit after the takeover"
  wait "$old" || dp_fail "the old lbd of g$g exited with $?"
  grep -q "took over" "$DP_TMP/lbd-g$g-new.log" || dp_fail "g$g: no takeover: $(tail -n 20 "$DP_TMP/lbd-g$g-new.log")"
}
takeover 2
takeover 1
daemons_now() { lbctl "$1" -L --daemon; }
dp_poll_eq 10 "g1's daemons after the takeover" "$before_g1" daemons_now g1
dp_poll_eq 10 "g2's daemons after the takeover" "$before_g2" daemons_now g2
grep -q "sync daemon not started" "$DP_TMP"/lbd-g*-new.log && dp_fail "a daemon did not start again"

# The client: reads to EOF; a reset fails it. Prints "BYTES SHA256 LONGEST_PAUSE_MS".
ip netns exec "$(n c)" python3 -c '
import socket, hashlib, time
s = socket.create_connection(("'$VIP'", 5001), timeout=30)
h = hashlib.sha256(); n = 0; last = time.monotonic(); gap = 0.0
while True:
    b = s.recv(65536)
    now = time.monotonic(); gap = max(gap, now - last); last = now
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), int(gap * 1000))
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
backup_has_conn() {
  lbctl g2 -Lnc | grep -E "^TCP .* ESTABLISHED +198\.18\.1\.2:[0-9]+ +$VIP:5001 +198\.18\.2\.11:5001"
}
dp_poll 10 "the synced conn in the new backup's -Lnc" backup_has_conn
echo "backup: $(backup_has_conn)"
kill -0 $CLIENT 2>/dev/null || dp_fail "the transfer ended before the failover: $(cat "$DP_TMP/client.out" "$DP_TMP/client.err")"

# Failover: the new master dies, the routes move to the new backup.
dp_lbd_kill9 g1
ip -n "$(n c)" route replace $VIP/32 via 198.18.1.12
ip -n "$(n s1)" route replace 198.18.1.0/24 via 198.18.2.2
dp_wait_pid $CLIENT 60 || dp_fail "the transfer did not finish within 60 s after the failover"
wait $CLIENT || dp_fail "the client failed: $(cat "$DP_TMP/client.err")"
read -r got_n got_sha _ <"$DP_TMP/client.out"
[[ "$got_n $got_sha" == "$BYTES $want_sha" ]] ||
  dp_fail "received '$got_n $got_sha', want '$BYTES $want_sha'"
echo "transfer complete across takeover + failover: $got_n $got_sha"
echo "PASS sync_takeover"
