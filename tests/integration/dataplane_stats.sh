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
# No wall-clock window: every wait is a bounded poll, and each expiry is checked against the time
# this script measured since the entry's last packet (however slow the machine).
#
#   client (198.18.1.2, 2001:2:1::2) -- lbd (l0 | l1) -- s1 (198.18.2.11, 2001:2:2::11)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init stats
dp_need socat

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
# 50-byte answer (nothing in flight is lost to a race); fails on any timeout (15 s).
send() {
  ip netns exec "$(n c)" python3 - "$@" <<'PY'
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(15)
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

# ms: milliseconds since the epoch (the script's clock for the expiry bounds below).
ms() {
  local t=${EPOCHREALTIME//[!0-9]/}
  echo $((10#$t / 1000))
}
# secs_since MS: whole seconds since MS, rounded up.
secs_since() { echo $((($(ms) - $1 + 999) / 1000)); }

udp_sent=$(ms)
send 4 $VIP 40 || dp_fail "IPv4 UDP exchange failed"
send 6 $VIP6 40 || dp_fail "IPv6 UDP exchange failed"
want4="1 40 40 $((40 * 128)) $((40 * 78))"
want6="1 40 40 $((40 * 148)) $((40 * 98))"
# With the flow offload (the default where the tc fast path loads) the conns are handed to
# the tc program after their first packet; its counters reach the stats at the next tick or
# sweep (every 1 s), so the totals may lag, and then must be exact (polled, bounded).
stats_exact() {
  local stats key
  stats=$(lbctl st -Ln --stats)
  echo "want '$want4' (IPv4), '$want6' (IPv6); listed:"
  echo "$stats"
  for key in "$VIP:9" "198.18.2.11:9"; do [[ $(stats_of "$stats" "$key") == "$want4" ]] || return 1; done
  for key in "[$VIP6]:9" "[2001:2:2::11]:9"; do
    [[ $(stats_of "$stats" "$key") == "$want6" ]] || return 1
  done
}
dp_poll 30 "exact --stats of the service and real server" stats_exact
lbctl st -Ln --stats

# --- -Lnc: state names and a countdown.
# expiry_of REGEX: the MM:SS of the first -Lnc line matching REGEX, in seconds.
expiry_of() {
  lbctl st -Lnc | awk -v re="$1" '$0 ~ re { split($2, t, ":"); print t[1] * 60 + t[2]; exit }'
}
udp_re="^UDP +[0-9:]+ +UDP +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:9 +198\\.18\\.2\\.11:9"
# expect_expiry WHAT GOT TIMEOUT SINCE_MS: GOT is at most TIMEOUT and at least TIMEOUT minus the
# seconds since SINCE_MS (before the entry's last packet), minus 1 for MM:SS's rounding.
expect_expiry() {
  local el
  el=$(secs_since "$4")
  (($2 <= $3 && $2 >= $3 - el - 1)) ||
    dp_fail "$1 expires in $2 s, want $(($3 - el - 1))..$3 (its last packet at most $el s ago)"
}
e1_at=$(ms)
e1=$(expiry_of "$udp_re")
[[ -n $e1 ]] || dp_fail "-Lnc shows no UDP entry: $(lbctl st -Lnc)"
expect_expiry "the UDP entry" "$e1" 300 "$udp_sent"

tcp_sent=$(ms)
coproc SESS { exec ip netns exec "$(n c)" socat -T120 - "TCP4:$VIP:7"; }
DP_PIDS+=("$SESS_PID")
echo hello >&"${SESS[1]}"
read -t 15 -r reply <&"${SESS[0]}" || dp_fail "TCP session: no echo in 15 s"
[[ $reply == hello ]] || dp_fail "TCP session echoed '$reply'"
est_re="^TCP +[0-9:]+ +ESTABLISHED +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:7 +198\\.18\\.2\\.11:7"
# With the flow offload the handshake's last ACK goes by in the tc program: lbd's state follows
# at the housekeeping thread's next look (20 ms, longer on a loaded machine), so poll for it.
has_established() { [[ -n $(expiry_of "$est_re") ]]; }
dp_poll 10 "the TCP session's -Lnc entry in ESTABLISHED" has_established
t1_at=$(ms)
t1=$(expiry_of "$est_re")
[[ -n $t1 ]] || dp_fail "-Lnc shows no ESTABLISHED entry: $(lbctl st -Lnc)"
expect_expiry "the ESTABLISHED entry" "$t1" 900 "$tcp_sent"

# Let the clock move on: poll (bounded) until both expiries are at least 2 s lower; neither may
# have gone down by more than the time that passed (plus 1 for MM:SS's rounding).
counted_down() {
  e2=$(expiry_of "$udp_re")
  t2=$(expiry_of "$est_re")
  echo "UDP $e1 -> $e2 s, ESTABLISHED $t1 -> $t2 s"
  [[ -n $e2 && -n $t2 ]] && ((e1 - e2 >= 2 && t1 - t2 >= 2))
}
dp_poll 30 "both -Lnc expiries to count down by 2 s" counted_down
counted_down >/dev/null  # e2 and t2 (dp_poll ran the predicate in a subshell)
e_el=$(secs_since "$e1_at")
t_el=$(secs_since "$t1_at")
echo "-Lnc countdown: UDP $e1 -> $e2 s over at most $e_el s, ESTABLISHED $t1 -> $t2 s over at most $t_el s"
((e2 < e1 && e1 - e2 <= e_el + 1)) || dp_fail "UDP expiry: $e1 -> $e2 in at most $e_el s"
((t2 < t1 && t1 - t2 <= t_el + 1)) || dp_fail "ESTABLISHED expiry: $t1 -> $t2 in at most $t_el s"

# Close the session: the entry moves on to the closing states and ends in TIME_WAIT (2:00).
closed_at=$(ms)
kill "$SESS_PID" 2>/dev/null || true
dp_wait_pid "$SESS_PID" 5 || true
tw_re="^TCP +[0-9:]+ +TIME_WAIT +198\\.18\\.1\\.2:[0-9]+ +198\\.18\\.1\\.100:7 "
in_time_wait() { lbctl st -Lnc | grep -E ":7 |^Pro"; lbctl st -Lnc | grep -Eq "$tw_re"; }
dp_poll 30 "the closed session's entry in TIME_WAIT" in_time_wait
tw=$(expiry_of "$tw_re")
expect_expiry "the TIME_WAIT entry" "$tw" 120 "$closed_at"
lbctl st -Lnc

dp_lbd_stop st
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_stats"
