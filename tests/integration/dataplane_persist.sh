#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Persistence (-p), quiescing (weight 0) and real-server removal through lbd as a NAT gateway,
# against the kernel's semantics (ip_vs_core.c ip_vs_sched_persist / ip_vs_check_template,
# ip_vs_in's expire_nodest_conn branch):
#  - each client lands on one real server for every new connection; rr spreads the templates;
#  - `-e ... -w 0`: a long-lived session to that server keeps passing data; new clients go to
#    the other servers; the quiesced server's own persistent client still lands on it
#    (expire_quiescent_template=0, the default);
#  - `-d` with expire_nodest_conn=0 (default): the session's packets are dropped (no reply, the
#    entry stays in -Lnc); the client's next new connection is scheduled to a live server;
#  - expire_nodest_conn=1 (set through the state file lbd reads at start): removing the server
#    flushes its entries, the session's and the template, from -Lnc at once (no packet needed),
#    and the session's data is not delivered.
#
#   clients c0: 198.18.1.2 .3 .4 .5 -- lbd (l0 198.18.1.1 | l1 198.18.2.1) -- br0 -- s1 s2 s3
source "$(dirname "$0")/dataplane_lib.sh"
dp_init persist
dp_need socat

VIP=198.18.1.100

dp_ns c
dp_ns l
dp_ns sw
dp_link c c0 l l0
for a in 2 3 4 5; do ip -n "$(n c)" addr add "198.18.1.$a/24" dev c0; done
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
dp_bridge sw br0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
for i in 1 2 3; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
  # A line server: answers every line with "S<i> <line>".
  ip netns exec "$(n "s$i")" socat TCP-LISTEN:7,bind=198.18.2.1$i,fork,reuseaddr \
    SYSTEM:"while read -r l; do echo \"S$i \$l\"; done" >/dev/null 2>&1 &
  DP_PIDS+=($!)
  dp_wait 10 listening "s$i" tcp 7 || dp_fail "line server s$i did not start"
done

# ask CLIENT_SUFFIX: one new connection from 198.18.1.SUFFIX; prints the server name (S1..S3).
# socat -t 15: after its stdin's EOF it waits up to 15 s (default 0.5 s) for the reply and the
# server's close, which ends it at once.
ask() {
  local out
  out=$(echo q | ip netns exec "$(n c)" timeout 30 socat -t 15 -T 15 - \
    "TCP4:$VIP:7,bind=198.18.1.$1") || return 1
  echo "${out%% *}"
}

# A long-lived session (bash coprocess) from 198.18.1.$1; session_say LINE [SECONDS] prints the
# reply or fails after SECONDS (15). A check that no reply comes waits 3 s (a real server
# answers in milliseconds): the one wall-clock window left, and only on the negative side.
session_open() {
  coproc SESS { exec ip netns exec "$(n c)" socat -T120 - "TCP4:$VIP:7,bind=198.18.1.$1"; }
  DP_PIDS+=("$SESS_PID")
}
session_say() {
  local reply
  echo "$1" >&"${SESS[1]}"
  read -t "${2:-15}" -r reply <&"${SESS[0]}" || return 1
  echo "$reply"
}
session_close() {
  kill "$SESS_PID" 2>/dev/null || true
  dp_wait_pid "$SESS_PID" 5 || true
}

# conn_listed TAG CLIENT_SUFFIX: -Lnc has an ESTABLISHED entry from 198.18.1.SUFFIX (polled for
# up to 15 s: with the flow offload, the handshake's last ACK reaches lbd's state machine at the
# next housekeeping tick).
conn_listed() {
  dp_wait 15 eval "lbctl $1 -Lnc | grep -Eq '^TCP +[0-9:]+ +ESTABLISHED +198\.18\.1\.$2:[0-9]+ +$VIP:7 '"
}

before=$(dp_kernel_state l)
dp_lbd l p --tun=lbd0 --workers=2 --mode=gateway
lbctl p -A -t $VIP:7 -s rr -p 300
for i in 1 2 3; do lbctl p -a -t $VIP:7 -r "198.18.2.1$i:7" -m; done

# --- persistence: three clients, 8 new connections each: one server per client, and rr gave
# the three templates three different servers.
declare -A home
for a in 2 3 4; do
  got=()
  for k in $(seq 8); do got+=("$(ask $a)") || dp_fail "client .$a connection $k failed"; done
  echo "client .$a: ${got[*]}"
  [[ $(dp_count "${got[0]}" "${got[@]}") -eq 8 && ${got[0]} == S[123] ]] ||
    dp_fail "client .$a was not persistent: ${got[*]}"
  home[$a]=${got[0]}
done
[[ ${home[2]} != "${home[3]}" && ${home[3]} != "${home[4]}" && ${home[2]} != "${home[4]}" ]] ||
  dp_fail "rr gave the templates ${home[*]}, want three different servers"
lbctl p -Lnc | grep -Eq "^TCP +[0-9:]+ +ASSURED +198\.18\.1\.2:0 +$VIP:7 " ||
  dp_fail "-Lnc shows no persistence template for client .2"

# --- weight 0 on client .2's server while a session of .2 is open.
X=${home[2]}
XIP=198.18.2.1${X#S}
session_open 2
r=$(session_say one) || dp_fail "session: no reply before the edit"
[[ $r == "$X one" ]] || dp_fail "session answered '$r', want '$X one'"
lbctl p -e -t $VIP:7 -r "$XIP:7" -m -w 0
lbctl p -Ln | grep -Eq -- "-> $XIP:7 +Masq +0 " || dp_fail "weight 0 not listed"
r=$(session_say two) || dp_fail "session stopped passing data after weight 0"
[[ $r == "$X two" ]] || dp_fail "session answered '$r' after weight 0"
a=$(ask 5) || dp_fail "new client .5 failed"
echo "weight 0 on $X: new client .5 -> $a"
[[ $a != "$X" ]] || dp_fail "a new client was scheduled to the weight-0 server $X"
a=$(ask 2) || dp_fail "client .2 failed after weight 0"
echo "weight 0 on $X: client .2 (template to $X) -> $a"
[[ $a == "$X" ]] || dp_fail "client .2 left its quiesced server (expire_quiescent_template=0)"
r=$(session_say three) || dp_fail "session stopped passing data"
[[ $r == "$X three" ]] || dp_fail "session answered '$r'"

# --- remove X with expire_nodest_conn=0: the session's packets are dropped, its entry stays.
lbctl p -d -t $VIP:7 -r "$XIP:7"
if r=$(session_say four 3); then dp_fail "removed server still answered: '$r'"; fi
conn_listed p 2 || dp_fail "expire_nodest_conn=0: the session's entry vanished"
a=$(ask 2) || dp_fail "client .2 failed after removal"
echo "removed $X: client .2 -> $a (session entry kept, its data dropped)"
[[ $a != "$X" && $a == S[123] ]] || dp_fail "client .2 went to '$a' after $X was removed"
session_close
dp_lbd_stop p

# --- expire_nodest_conn=1, from the state file lbd reads at start.
echo 'sysctls { expire_nodest_conn: true }' >"$DP_TMP/state.txt"
dp_lbd l p1 --tun=lbd0 --workers=2 --mode=gateway --state-file="$DP_TMP/state.txt"
lbctl p1 -A -t $VIP:7 -s rr -p 300
for i in 1 2 3; do lbctl p1 -a -t $VIP:7 -r "198.18.2.1$i:7" -m; done
session_open 2
r=$(session_say one) || dp_fail "session (expire_nodest_conn=1): no reply"
X=${r%% *}
XIP=198.18.2.1${X#S}
conn_listed p1 2 || dp_fail "session not in -Lnc"
lbctl p1 -d -t $VIP:7 -r "$XIP:7"
# The removal alone flushes the removed server's conns (ip_vs_expire_nodest_conn_flush), before
# any packet of the session arrives.
dp_wait 5 bash -c "! LBD_SERVER=unix://$DP_TMP/p1.sock $LBCTL_BIN -Lnc |
  grep -Eq '^TCP +[0-9:]+ +[A-Z_]+ +198\.18\.1\.2:[0-9]+ .* $XIP:7'" ||
  dp_fail "expire_nodest_conn=1: the removed server's entries were not flushed: $(lbctl p1 -Lnc)"
echo "expire_nodest_conn=1: entries (session and template) to removed $X flushed on removal"
if r=$(session_say two 3); then dp_fail "removed server still answered: '$r'"; fi
a=$(ask 2) || dp_fail "client .2 failed after removal"
[[ $a != "$X" ]] || dp_fail "client .2 went to removed $X"
session_close
dp_lbd_stop p1

after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS dataplane_persist"
