#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The connection sync failover tests' shared topology and steps (sync_failover*.sh): two lbd
# gateways on one LAN, g1 running a master sync daemon and g2 a backup (224.0.0.81:8848 on a0),
# real servers behind them, and the failover itself (g1 SIGKILLed, the routes moved to g2).
#
#   client c (198.18.1.2, .3) -- lan br0 -- g1 (198.18.1.11 | 198.18.2.1), g2 (198.18.1.12 | 198.18.2.2)
#   g1, g2 -- srv br1 -- s1 (198.18.2.11), s2 (198.18.2.12). VIP 198.18.3.100 is routed by the
#   client via g1; the servers route the client's LAN (and the full-NAT local address) via g1.
# Source dataplane_lib.sh and call dp_init first.

SYNC_VIP=198.18.3.100
SYNC_LADDR=198.18.4.100  # full NAT's local address: outside every LAN, routed by the servers

# The next hops the topology routes through: the servers' for the client LAN and the full-NAT
# local address (SYNC_SRV_GW), the client's for the VIP (SYNC_CLIENT_GW). g1's by default; the
# keepalived test sets its VRRP addresses (whichever gateway is master carries the traffic).
SYNC_SRV_GW=${SYNC_SRV_GW:-198.18.2.1}
SYNC_CLIENT_GW=${SYNC_CLIENT_GW:-198.18.1.11}

# sync_topology NSERVERS: the namespaces, bridges and addresses above, with s1..sNSERVERS.
sync_topology() {
  local nsrv=${1:-1} g i
  dp_ns c
  dp_ns g1
  dp_ns g2
  dp_ns sw
  dp_bridge sw br0
  dp_bridge sw br1
  dp_link c c0 sw swc
  ip -n "$(n sw)" link set swc master br0
  ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
  ip -n "$(n c)" addr add 198.18.1.3/24 dev c0
  for g in 1 2; do
    dp_link "g$g" a0 sw "swa$g"
    dp_link "g$g" b0 sw "swb$g"
    ip -n "$(n sw)" link set "swa$g" master br0
    ip -n "$(n sw)" link set "swb$g" master br1
    ip -n "$(n "g$g")" addr add "198.18.1.1$g/24" dev a0
    ip -n "$(n "g$g")" addr add "198.18.2.$g/24" dev b0
    ip netns exec "$(n "g$g")" sysctl -qw net.ipv4.conf.all.rp_filter=0
  done
  for ((i = 1; i <= nsrv; i++)); do
    dp_ns "s$i"
    dp_link "s$i" s0 sw "sws$i"
    ip -n "$(n sw)" link set "sws$i" master br1
    ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
    ip -n "$(n "s$i")" route add 198.18.1.0/24 via $SYNC_SRV_GW
    ip -n "$(n "s$i")" route add $SYNC_LADDR/32 via $SYNC_SRV_GW
  done
  SYNC_NSERVERS=$nsrv
  ip -n "$(n c)" route add $SYNC_VIP/32 via $SYNC_CLIENT_GW
}

# sync_lbds [lbd flags...]: lbd on g1 and g2 (gateway mode, 2 workers, metrics on
# 127.0.0.1:9479 in their namespaces) with the flags given. The flow offload (tc fast path) is
# on, lbd's default, unless LB_SYNC_FLOW_OFFLOAD=false.
sync_lbds() {
  local g
  SYNC_OFFLOAD=${LB_SYNC_FLOW_OFFLOAD:-true}
  for g in 1 2; do
    dp_lbd "g$g" "g$g" --tun=lbd0 --workers=2 --mode=gateway --metrics=127.0.0.1:9479 \
      --flow_offload="$SYNC_OFFLOAD" "$@"
  done
}

# sync_metric TAG NAME: the value of metric NAME of lbd TAG (empty when it has none).
sync_metric() {
  ip netns exec "$(n "$1")" curl -s --max-time 5 --noproxy '*' http://127.0.0.1:9479/metrics |
    awk -v m="$2" '$1 == m { print $2 }'
}

# sync_check_offloaded: with the flow offload on, g1's fast path carries the conns under test
# (so their sync came from the offload's reports): at least one installed, none refused.
sync_check_offloaded() {
  [[ $SYNC_OFFLOAD == true ]] || return 0
  local n
  n=$(sync_metric g1 lb_dataplane_offload_installed_total)
  [[ -n $n ]] || dp_fail "g1 has no flow offload metrics: $(grep -i 'offload\|fast path' "$DP_TMP/lbd-g1.log")"
  ((n >= 1)) || dp_fail "g1's flow offload installed no conn"
  echo "g1: $n conns offloaded to the fast path"
}

# sync_daemons: g1's master and g2's backup sync daemons on a0, listed.
sync_daemons() {
  lbctl g1 --start-daemon master --mcast-interface a0 || dp_fail "--start-daemon master"
  lbctl g2 --start-daemon backup --mcast-interface a0 || dp_fail "--start-daemon backup"
  lbctl g1 -L --daemon
  lbctl g2 -L --daemon
}

# The deterministic stream a TCP server sends: BYTES bytes of a 64 KiB pattern.
SYNC_PATTERN='block = bytes((i * 7 + 3) % 251 for i in range(65536))'

# sync_tcp_server NS ADDR PORT BYTES: sends BYTES pattern bytes (paced, about 6 s for 24 MiB)
# to the first client, then closes; records the client's address in $DP_TMP/peer-NS.
sync_tcp_server() {
  ip netns exec "$(n "$1")" python3 -c '
import socket, time, sys
addr, port, n, peer_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
'"$SYNC_PATTERN"'
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(1)
c, a = s.accept()
open(peer_file, "w").write("%s:%d\n" % a)
sent = 0
while sent < n:
    k = min(65536, n - sent); c.sendall(block[:k]); sent += k
    time.sleep(0.016)
c.close()
' "$2" "$3" "$4" "$DP_TMP/peer-$1" &
  DP_PIDS+=($!)
  dp_wait 10 listening "$1" tcp "$3" || dp_fail "the real server in $1 did not listen"
}

# sync_tcp_client PORT: the client reads from VIP:PORT to EOF (a reset fails it) and prints
# "BYTES SHA256" into $DP_TMP/client.out. Its pid: SYNC_CLIENT.
sync_tcp_client() {
  ip netns exec "$(n c)" python3 -c '
import socket, hashlib, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
h = hashlib.sha256(); n = 0
while True:
    b = s.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
' "$SYNC_VIP" "$1" >"$DP_TMP/client.out" 2>"$DP_TMP/client.err" &
  SYNC_CLIENT=$!
  DP_PIDS+=($SYNC_CLIENT)
}

# sync_want BYTES: "BYTES SHA256" of the pattern stream.
sync_want() {
  python3 -c '
import hashlib, sys
n = int(sys.argv[1]); '"$SYNC_PATTERN"'; h = hashlib.sha256(); sent = 0
while sent < n:
    k = min(65536, n - sent); h.update(block[:k]); sent += k
print(n, h.hexdigest())' "$1"
}

# sync_failover: the master dies (SIGKILL), its links go down as a dead machine's would, and
# the routes move to the backup: first the servers' (the client's LAN, the local address), then
# the client's route to the VIP.
sync_failover() {
  local i
  kill -9 "$DP_LBD_PID_g1"
  dp_wait_pid "$DP_LBD_PID_g1" 10 || dp_fail "g1 did not die"
  ip -n "$(n g1)" link set a0 down
  ip -n "$(n g1)" link set b0 down
  for ((i = 1; i <= SYNC_NSERVERS; i++)); do
    ip -n "$(n "s$i")" route replace 198.18.1.0/24 via 198.18.2.2
    ip -n "$(n "s$i")" route replace $SYNC_LADDR/32 via 198.18.2.2
  done
  ip -n "$(n c)" route replace $SYNC_VIP/32 via 198.18.1.12
}

# sync_check_transfer BYTES: the client finished within 60 s of the failover, without an
# error, with exactly the stream the server sent.
sync_check_transfer() {
  local want got
  want=$(sync_want "$1")
  dp_wait_pid "$SYNC_CLIENT" 60 || dp_fail "the transfer did not finish within 60 s after the failover"
  wait "$SYNC_CLIENT" || dp_fail "the client failed: $(cat "$DP_TMP/client.err")"
  got=$(cat "$DP_TMP/client.out")
  [[ $got == "$want" ]] || dp_fail "received '$got', want '$want'"
  echo "transfer complete across the failover: $got"
}

# --- The UDP flow (sync_failover_udp, sync_keepalived_vrrp udp) ---
# Datagram SEQ: "%08d " then 503 bytes derived from SEQ (512 in all).
SYNC_UDP_PAYLOAD='def dgram(q): return (b"%08d " % q) + bytes((q * 31 + i) % 251 for i in range(503))'

# sync_udp_servers: a UDP server on 198.18.2.1N:5002 in s1 and s2, each appending every datagram
# to $DP_TMP/udp-sN.bin and echoing it.
sync_udp_servers() {
  local i
  for i in 1 2; do
    ip netns exec "$(n "s$i")" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5002))
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d, a = s.recvfrom(65535)
        f.write(d)
        s.sendto(d, a)
' "198.18.2.1$i" "$DP_TMP/udp-s$i.bin" &
    DP_PIDS+=($!)
    dp_wait 10 listening "s$i" udp 5002 || dp_fail "the UDP server in s$i did not start"
  done
}

# sync_udp_client AFTER: the client sends a datagram to VIP:5002 every 4 ms from one socket;
# once $DP_TMP/moved exists it marks its next datagram and sends AFTER more, then waits (10 s at
# most) for their echoes, and writes "MOVED_AT TOTAL MISSING ERRORS" to $DP_TMP/udp-client.out.
# Its pid: SYNC_CLIENT. Returns once g2's -Lnc shows the synced UDP conn.
sync_udp_client() {
  ip netns exec "$(n c)" python3 -c '
import socket, sys, os, time
'"$SYNC_UDP_PAYLOAD"'
vip, moved_file, after, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.1.2", 0)); s.connect((vip, 5002)); s.setblocking(False)
echoes = set(); moved_at = None; q = 0; errors = 0
def drain():
    global errors
    while True:
        try: d = s.recv(65535)
        except BlockingIOError: return
        except OSError: errors += 1; continue
        echoes.add(int(d[:8]))
while q < 30000:  # about 2 minutes at most; the test ends it much earlier
    if moved_at is None and os.path.exists(moved_file): moved_at = q
    if moved_at is not None and q >= moved_at + after: break
    try: s.send(dgram(q))
    except OSError: errors += 1
    q += 1
    drain()
    time.sleep(0.004)
deadline = time.monotonic() + 10
while moved_at is not None and time.monotonic() < deadline and not all(x in echoes for x in range(moved_at, q)):
    drain(); time.sleep(0.01)
missing = [x for x in range(moved_at or 0, q) if x not in echoes]
open(out, "w").write("%s %d %d %d\n" % (moved_at, q, len(missing), errors))
' "$SYNC_VIP" "$DP_TMP/moved" "$1" "$DP_TMP/udp-client.out" 2>"$DP_TMP/udp-client.err" &
  SYNC_CLIENT=$!
  DP_PIDS+=($SYNC_CLIENT)
  dp_poll 10 "the synced UDP conn in the backup's -Lnc" sync_udp_backup_has_conn
  echo "backup: $(sync_udp_backup_has_conn)"
  kill -0 "$SYNC_CLIENT" 2>/dev/null || dp_fail "the client ended early: $(cat "$DP_TMP/udp-client.err")"
}

sync_udp_backup_has_conn() {
  lbctl g2 -Lnc | grep -E "^UDP .* 198\.18\.1\.2:[0-9]+ +$SYNC_VIP:5002 +198\.18\.2\.1[12]:5002"
}

# sync_udp_check: tells the client the move is done, then asserts that every datagram sent
# after it was echoed, that every datagram reached the same real server (the other got none),
# that those before the move arrived in order with at most one gap (the switch), and that from
# the move on all arrived, in order, byte for byte (sha256).
sync_udp_check() {
  local moved_at total missing errors
  touch "$DP_TMP/moved"
  dp_wait_pid "$SYNC_CLIENT" 60 || dp_fail "the client did not finish within 60 s after the move"
  wait "$SYNC_CLIENT" || dp_fail "the client failed: $(cat "$DP_TMP/udp-client.err")"
  read -r moved_at total missing errors <"$DP_TMP/udp-client.out"
  echo "client: $total datagrams, the move at #$moved_at, $missing of the later ones not echoed, $errors send/receive errors"
  [[ $moved_at != None ]] || dp_fail "the client never saw the move"
  [[ $missing -eq 0 ]] || dp_fail "$missing datagrams sent after the move were not echoed back"
  python3 - "$DP_TMP" "$moved_at" "$total" <<PY || dp_fail "the servers' datagrams (above)"
import hashlib, os, sys
$SYNC_UDP_PAYLOAD
tmp, moved_at, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
got = {}
for i in (1, 2):
    p = os.path.join(tmp, "udp-s%d.bin" % i)
    b = open(p, "rb").read() if os.path.exists(p) else b""
    got[i] = [b[k:k + 512] for k in range(0, len(b), 512)]
    print("s%d received %d datagrams" % (i, len(got[i])))
main = [i for i in (1, 2) if got[i]]
if len(main) != 1: sys.exit("want every datagram at one real server, got %s" % [len(got[1]), len(got[2])])
dg = got[main[0]]
seqs = [int(d[:8]) for d in dg]
if seqs != sorted(set(seqs)): sys.exit("out of order or duplicated")
if any(d != dgram(q) for d, q in zip(dg, seqs)): sys.exit("a datagram's bytes differ")
before = [q for q in seqs if q < moved_at]
holes = sum(1 for a, b in zip([-1] + before, before) if b != a + 1)
if holes > 1: sys.exit("more than one gap before the move: %d" % holes)
lost = moved_at - len(before)
after = [d for d, q in zip(dg, seqs) if q >= moved_at]
want = hashlib.sha256(b"".join(dgram(q) for q in range(moved_at, total))).hexdigest()
have = hashlib.sha256(b"".join(after)).hexdigest()
print("s%d: %d before the move (%d lost in the switch), %d after it, sha256 %s (want %s)"
      % (main[0], len(before), lost, len(after), have, want))
if have != want: sys.exit("the datagrams after the move are not complete and in order")
PY
}
