#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync failover (issue 15), NAT UDP (sync_lib.sh's topology, two real servers): a
# client sends a long flow of numbered 512-byte datagrams (one socket, one source port) to
# VIP:5002 via g1, and each real server echoes what it gets. Once g2's -Lnc shows the synced
# UDP conn, g1 is SIGKILLed and the routes move to g2; the client marks the first datagram it
# sends after the move and sends 1000 more. Asserted: every datagram reached the same real
# server (the other got none, and g2 lists its dests in the other order, so a fresh schedule
# there would have chosen the other); the datagrams before the move arrived in order with at
# most one gap (the switch); from the move on all arrived, in order, byte for byte (sha256),
# and every one of them was echoed back to the client through g2.
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
dp_init syncfu

VIP=$SYNC_VIP
AFTER=1000

sync_topology 2
# Each server appends every datagram to $DP_TMP/udp-sN.bin and echoes it.
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

sync_lbds
lbctl g1 -A -u $VIP:5002 -s rr
lbctl g2 -A -u $VIP:5002 -s rr
for i in 1 2; do lbctl g1 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
for i in 2 1; do lbctl g2 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
sync_daemons

# Datagram SEQ: "%08d " then 503 bytes derived from SEQ (512 in all).
PAYLOAD='def dgram(q): return (b"%08d " % q) + bytes((q * 31 + i) % 251 for i in range(503))'
ip netns exec "$(n c)" python3 -c '
import socket, sys, os, time
'"$PAYLOAD"'
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
' "$VIP" "$DP_TMP/moved" "$AFTER" "$DP_TMP/udp-client.out" 2>"$DP_TMP/udp-client.err" &
CLIENT=$!
DP_PIDS+=($CLIENT)

backup_has_conn() {
  lbctl g2 -Lnc | grep -E "^UDP .* 198\.18\.1\.2:[0-9]+ +$VIP:5002 +198\.18\.2\.1[12]:5002"
}
dp_poll 10 "the synced UDP conn in the backup's -Lnc" backup_has_conn
echo "backup: $(backup_has_conn)"
kill -0 $CLIENT 2>/dev/null || dp_fail "the client ended early: $(cat "$DP_TMP/udp-client.err")"

sync_check_offloaded
sync_failover
touch "$DP_TMP/moved"
dp_wait_pid $CLIENT 60 || dp_fail "the client did not finish within 60 s after the failover"
wait $CLIENT || dp_fail "the client failed: $(cat "$DP_TMP/udp-client.err")"
read -r moved_at total missing errors <"$DP_TMP/udp-client.out"
echo "client: $total datagrams, the move at #$moved_at, $missing of the later ones not echoed, $errors send/receive errors"
[[ $moved_at != None ]] || dp_fail "the client never saw the move"
[[ $missing -eq 0 ]] || dp_fail "$missing datagrams sent after the move were not echoed back"

python3 - "$DP_TMP" "$moved_at" "$total" <<PY || dp_fail "the servers' datagrams (above)"
import hashlib, os, sys
$PAYLOAD
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
echo "PASS sync_failover_udp"
