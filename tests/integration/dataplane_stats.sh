#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What lbd counts and lists, checked against what the test sent, through lbd as a NAT gateway:
#  - `-Ln --stats`: (after at most one offload sweep) 40 UDP datagrams of 100 bytes (stop-and-wait, each answered with 50 bytes)
#    give exactly Conns 1, InPkts 40, InBytes 40*128, OutPkts 40, OutBytes 40*78 (IP lengths:
#    20 + 8 + payload) on the service and its real server; the same over IPv6 (40 + 8 + payload);
#  - `-Lnc`: the kernel's state names (UDP, ESTABLISHED for an open TCP session, TIME_WAIT once
#    it closed) and an expiry that counts down: the same entry listed twice, seconds apart,
#    shows a smaller MM:SS; the UDP entry starts from the 5:00 udp timeout, ESTABLISHED from
#    15:00, TIME_WAIT from 2:00.
#
#   client (198.18.1.2, 2001:2:1::2) -- lbd (l0 | l1) -- s1 (198.18.2.11, 2001:2:2::11)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init stats
command -v socat >/dev/null || dp_skip "needs socat"

VIP=198.18.1.100
VIP6=2001:2:1::100

dp_ns c
dp_ns l
dp_ns s1
dp_link c c0 l l0
dp_link l l1 s1 s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" addr add 2001:2:1::2/64 dev c0 nodad
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 2001:2:1::1/64 dev l0 nodad
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" addr add 2001:2:2::1/64 dev l1 nodad
ip -n "$(n s1)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s1)" addr add 2001:2:2::11/64 dev s0 nodad
ip -n "$(n s1)" route add 198.18.1.0/24 via 198.18.2.1
ip -n "$(n s1)" -6 route add 2001:2:1::/64 via 2001:2:2::1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0

# UDP responder on the real server: 50 bytes back for every datagram.
ip netns exec "$(n s1)" python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 9))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"r" * 50, a)
' >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s1 udp 9 || dp_fail "UDP responder did not start"
# TCP line server for the -Lnc states.
ip netns exec "$(n s1)" socat TCP-LISTEN:7,bind=198.18.2.11,fork,reuseaddr PIPE >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s1 tcp 7 || dp_fail "TCP echo server did not start"

# send FAMILY HOST COUNT: COUNT datagrams of 100 bytes from one socket, each waiting for its
# 50-byte answer (nothing in flight is lost to a race); fails on any timeout.
send() {
  ip netns exec "$(n c)" python3 - "$@" <<'PY'
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(int(sys.argv[3])):
    s.sendto(b"q" * 100, (sys.argv[2], 9))
    d = s.recv(2048)
    assert len(d) == 50, len(d)
PY
}

# stats_of TEXT KEY: "Conns InPkts OutPkts InBytes OutBytes" of the line whose 2nd field is KEY.
stats_of() {
  echo "$1" | awk -v k="$2" '$2 == k { print $3, $4, $5, $6, $7; exit }'
}

before=$(dp_kernel_state l)
dp_lbd l st --tun=lbd0 --workers=2 --mode=gateway
lbctl st -A -u $VIP:9 -s rr
lbctl st -a -u $VIP:9 -r 198.18.2.11:9 -m
lbctl st -A -u "[$VIP6]:9" -s rr
lbctl st -a -u "[$VIP6]:9" -r "[2001:2:2::11]:9" -m
lbctl st -A -t $VIP:7 -s rr
lbctl st -a -t $VIP:7 -r 198.18.2.11:7 -m

send 4 $VIP 40 || dp_fail "IPv4 UDP exchange failed"
send 6 $VIP6 40 || dp_fail "IPv6 UDP exchange failed"
want4="1 40 40 $((40 * 128)) $((40 * 78))"
want6="1 40 40 $((40 * 148)) $((40 * 98))"
# With the flow offload (the default where the tc fast path loads) the conns are handed to
# the tc program after their first packet; its counters reach the stats at the next tick or
# sweep (at most 1 s), so the totals may lag that long, and then must be exact.
for _ in $(seq 30); do
  stats=$(lbctl st -Ln --stats)
  [[ $(stats_of "$stats" "$VIP:9") == "$want4" && $(stats_of "$stats" "[$VIP6]:9") == "$want6" ]] &&
    break
  sleep 0.2
done
echo "$stats"
for key in "$VIP:9" "198.18.2.11:9"; do
  got=$(stats_of "$stats" "$key")
  [[ $got == "$want4" ]] || dp_fail "--stats $key: '$got', want '$want4'"
done
for key in "[$VIP6]:9" "[2001:2:2::11]:9"; do
  got=$(stats_of "$stats" "$key")
  [[ $got == "$want6" ]] || dp_fail "--stats $key: '$got', want '$want6'"
done

# --- -Lnc: state names and a countdown.
# expiry_of REGEX: the MM:SS of the first -Lnc line matching REGEX, in seconds.
expiry_of() {
  lbctl st -Lnc | awk -v re="$1" '$0 ~ re { split($2, t, ":"); print t[1] * 60 + t[2]; exit }'
}
udp_re="^UDP +[0-9:]+ +UDP +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:9 +198\\.18\\.2\\.11:9"
e1=$(expiry_of "$udp_re")
[[ -n $e1 ]] || dp_fail "-Lnc shows no UDP entry: $(lbctl st -Lnc)"
((e1 > 290 && e1 <= 300)) || dp_fail "UDP entry expires in $e1 s, want just under 300"

coproc SESS { exec ip netns exec "$(n c)" socat -T60 - "TCP4:$VIP:7"; }
DP_PIDS+=("$SESS_PID")
echo hello >&"${SESS[1]}"
read -t 3 -r reply <&"${SESS[0]}" || dp_fail "TCP session: no echo"
[[ $reply == hello ]] || dp_fail "TCP session echoed '$reply'"
est_re="^TCP +[0-9:]+ +ESTABLISHED +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:7 +198\\.18\\.2\\.11:7"
t1=$(expiry_of "$est_re")
[[ -n $t1 ]] || dp_fail "-Lnc shows no ESTABLISHED entry: $(lbctl st -Lnc)"
((t1 > 890 && t1 <= 900)) || dp_fail "ESTABLISHED entry expires in $t1 s, want just under 900"

# Let the clock move on: poll (bounded, 8 s) until the UDP entry's expiry is 2 s lower; the
# ESTABLISHED one, listed after it, must have gone down too.
start=$SECONDS
e2=$e1
while ((e1 - e2 < 2 && SECONDS - start < 8)); do
  sleep 0.2
  e2=$(expiry_of "$udp_re")
done
t2=$(expiry_of "$est_re")
echo "-Lnc countdown over $((SECONDS - start)) s: UDP $e1 -> $e2 s, ESTABLISHED $t1 -> $t2 s"
((e2 < e1 && e1 - e2 <= 6)) || dp_fail "UDP expiry did not count down: $e1 -> $e2"
((t2 < t1 && t1 - t2 <= 6)) || dp_fail "ESTABLISHED expiry did not count down: $t1 -> $t2"

# Close the session: the entry moves on to the closing states and ends in TIME_WAIT (2:00).
kill "$SESS_PID" 2>/dev/null || true
dp_wait_pid "$SESS_PID" 5 || true
tw_re="^TCP +[0-9:]+ +TIME_WAIT +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:7 "
dp_wait 5 bash -c "LBD_SERVER=unix://$DP_TMP/st.sock $LBCTL_BIN -Lnc | grep -Eq '$tw_re'" ||
  dp_fail "closed session not in TIME_WAIT: $(lbctl st -Lnc)"
tw=$(expiry_of "$tw_re")
((tw > 110 && tw <= 120)) || dp_fail "TIME_WAIT entry expires in $tw s, want just under 120"
lbctl st -Lnc

dp_lbd_stop st
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_stats"
