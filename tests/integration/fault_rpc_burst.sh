#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults (issue 17): a burst of 1,000 concurrent control RPCs (tests/integration/rpc_burst.py,
# Debian's python3-grpcio: valid ApplyBatch, reads, and malformed ones: non-protobuf bytes,
# operations without a kind, bad addresses, unknown services, an unknown method) while a
# client opens a TCP connection through the VIP every 10 ms. Asserts: every valid RPC succeeds
# and every malformed one is refused; lbd still runs; `lbctl -Sn` afterwards is exactly the
# expected configuration (the base service plus one per valid batch); a service created in the
# burst serves; and the client's connects through the VIP during the burst keep a p99 under
# P99_BOUND_MS (generous: a SYN that waits for a retransmission takes 1 s; this is a bound, not
# a benchmark; the measured figures are printed).
#
#   client c (198.18.1.2) -- lbd ns l (198.18.1.1 | 198.18.2.1) -- s1 (198.18.2.11)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init frpc

: "${LBD_PROTO_DIR:?LBD_PROTO_DIR must point at api/proto}"
PY=/usr/bin/python3  # Debian's, with python3-grpcio and python3-protobuf
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || dp_skip "needs python3-grpcio and python3-protobuf"
command -v protoc >/dev/null || dp_skip "needs protoc"
VIP=198.18.100.1
TOTAL=1000
P99_BOUND_MS=1000

mkdir -p "$DP_TMP/py"
protoc -I "$LBD_PROTO_DIR" -I /usr/include --python_out="$DP_TMP/py" lbd/v1/lbd.proto ||
  dp_fail "protoc --python_out"

dp_ns c
dp_ns l
dp_ns s
dp_link c c0 l l0
dp_link l l1 s s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add 198.18.100.0/22 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n s)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s)" route add 198.18.1.0/24 via 198.18.2.1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
dp_http s 198.18.2.11 S1 80

dp_lbd l rb --tun=lbd0 --workers=2 --mode=gateway
lbctl rb -A -t $VIP:80 -s rr
lbctl rb -a -t $VIP:80 -r 198.18.2.11:80 -m
base=$(lbctl rb -Sn)
[[ $(dp_get c "http://$VIP/") == S1 ]] || dp_fail "no answer before the burst"

# The probe: a TCP connect through the VIP every 10 ms (each bounded by 3 s) until the stop
# file appears (at most 120 s); one line per connect, milliseconds or "FAIL".
ip netns exec "$(n c)" python3 -c '
import os, socket, sys, time
stop, end = sys.argv[1], time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < end:
    t = time.monotonic()
    try:
        socket.create_connection((sys.argv[2], 80), timeout=3).close()
        print("%.3f" % ((time.monotonic() - t) * 1000), flush=True)
    except OSError:
        print("FAIL", flush=True)
    time.sleep(0.01)
' "$DP_TMP/stop" $VIP >"$DP_TMP/probe.log" 2>&1 &
PROBE=$!
DP_PIDS+=($PROBE)
probes() { [[ $(wc -l <"$DP_TMP/probe.log") -ge $1 ]]; }
dp_wait 10 probes 20 || dp_fail "the probe does not run: $(cat "$DP_TMP/probe.log")"
before_burst=$(wc -l <"$DP_TMP/probe.log")

rc=0
timeout 300 "$PY" "$(dirname "$0")/rpc_burst.py" "$DP_TMP/py" "$DP_TMP/rb.sock" $TOTAL \
  "$DP_TMP/expected" || rc=$?
after_burst=$(wc -l <"$DP_TMP/probe.log")
touch "$DP_TMP/stop"
dp_wait_pid $PROBE 5 || dp_fail "the probe did not stop"
[[ $rc -eq 0 ]] || dp_fail "the burst's answers were not all as expected (rc $rc)"
kill -0 "$DP_LBD_PID_rb" || dp_fail "lbd died in the burst"

# The probe's connects made while the burst ran.
sed -n "$((before_burst + 1)),${after_burst}p" "$DP_TMP/probe.log" >"$DP_TMP/during"
stats=$(python3 - "$DP_TMP/during" <<'PY'
import sys
v = [l.strip() for l in open(sys.argv[1]) if l.strip()]
fails = sum(1 for x in v if x == "FAIL")
ms = sorted(float(x) for x in v if x != "FAIL")
if not ms:
    print("0 %d 0 0 0" % fails)
    sys.exit()
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print("%d %d %.1f %.1f %.1f" % (len(ms), fails, p(0.5), p(0.99), ms[-1]))
PY
)
read -r n_ok n_fail p50 p99 pmax <<<"$stats"
echo "connects through the VIP during the burst: $n_ok ok, $n_fail failed; p50 $p50 ms, p99 $p99 ms, max $pmax ms"
((n_ok >= 5)) || dp_fail "too few connects during the burst to judge ($n_ok)"
((n_fail == 0)) || dp_fail "$n_fail connects through the VIP failed during the burst"
python3 -c "import sys; sys.exit(0 if $p99 < $P99_BOUND_MS else 1)" ||
  dp_fail "connect p99 $p99 ms during the burst is over the $P99_BOUND_MS ms bound"

# lbd's state afterwards: exactly the base service and one service per valid batch.
after=$(lbctl rb -Sn | sort)
want=$( (echo "$base"; cat "$DP_TMP/expected") | sed '/^$/d' | sort)
if [[ $after != "$want" ]]; then
  diff <(echo "$want") <(echo "$after") | head -n 20 || true
  dp_fail "lbctl -Sn after the burst differs from the expected configuration"
fi
echo "lbctl -Sn: $(echo "$after" | grep -c '^-A') services, as expected"
[[ $(dp_get c "http://198.18.101.1/") == S1 ]] || dp_fail "a service made in the burst does not serve"
[[ $(dp_get c "http://$VIP/") == S1 ]] || dp_fail "the base service does not serve after the burst"
dp_lbd_stop rb
echo "PASS fault_rpc_burst"
