#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Active-active connection sync (issue 15, test c): three lbd NAT gateways behind an ECMP route,
# each running a master and a backup sync daemon on one multicast group (224.0.0.81:8848 on a
# sync LAN), so every peer holds every other peer's conns. N long-lived TCP connections (a 64-byte
# ping-pong every 100 ms each, every echo checked byte for byte) are spread over the peers by the
# router's L4 hash. Then peer 3 is removed (lbd SIGKILLed, its nexthop deleted): ECMP rehashes,
# and the flows that now reach another peer (peer 3's, and those of peer 2 that hash-threshold
# hands to peer 1) must find their synced conn there. Every connection must complete 40 more
# round trips, byte-correct, and none may be reset.
#
#   client c 198.18.1.2 -- r (router: VIP 198.18.3.100 nexthop via p1, p2, p3)
#   r 198.18.4.1 -- front LAN -- p1..p3 a0 198.18.4.11-13
#   p1..p3 b0 198.18.2.1-3 -- back LAN -- rs 198.18.2.254 (server-side router: the client
#   network nexthop via p1, p2, p3) -- server LAN -- s1 198.18.6.11, s2 198.18.6.12 (echo
#   servers, NAT: -m)
#   p1..p3 y0 198.18.5.11-13 -- sync LAN (master and backup daemons on y0)
#
# The return path. With NAT the real server sends its replies to the client's address, so they
# must pass a peer that knows the conn: the server-side router routes the client network through
# the same three peers (nexthop via p1, p2, p3, in the router's order), and both multipath routes
# hash the client's address and port alone (fib_multipath_hash_policy=3; r hashes the source
# fields, rs the destination fields, with one hash seed; the kernel orders a flow's keys before
# hashing, so both routers pick the same nexthop). Each flow then crosses one peer both ways,
# before and after the removal, and a flow that moves uses its synced conn in both directions at
# the new peer. The multipath route has to be in a router: the servers' own TCP replies would
# not follow it (Linux picks a locally generated flow's path from the socket's hash, not from the
# configured fields: a SYN-ACK left through another peer than `ip route get` named). The ECMP routers' plain L4 hash (policy 1) would send a reply through a peer other
# than its request's, which a NAT conn cannot take until it is synced (a SYN-ACK never is); full NAT
# would make the reply follow the local address back to the peer that owned the conn, so a moved
# flow would use the synced conn in one direction only.
#
# Scheduler rr over two real servers: a peer that did not know a moved flow would drop its packets
# (a mid-flow TCP segment does not schedule a conn, sloppy_tcp is off), and with rr a conn made
# afresh could go to the other server. SYNCAA_WITHOUT_SYNC=1 runs the same traffic with no sync
# daemon: the moved connections stall and the test fails (that it can fail).
#
# SYNCAA_SCHED=mh SYNCAA_SLOPPY=1 SYNCAA_WITHOUT_SYNC=1 (sync_active_active_mh.sh) is the
# stateless way the kernel's mh scheduler documents: no daemon, sloppy_tcp=1 lets a mid-flow
# segment schedule a conn at the new peer, and mh (one lookup table on every peer) picks the same
# real server, so a moved flow goes on before (or without) any sync. With rr instead of mh the
# moved flows reach the other server half the time, which resets them.
#
# The flow offload is on (lbd's default): each peer's tc program forwards its conns and the master
# syncs what the program reports. SYNCAA_FLOW_OFFLOAD=0 (sync_active_active_userspace.sh) runs
# the same with --flow_offload=false, every packet through lbd's pipeline.
#
# Which peer held a conn before the removal is read from the peers themselves: the clients connect
# while only the backup daemons run, so each peer's lbctl -Lnc shows its own conns alone; the
# masters start after. The router's own lookup (ip route get with the flow's ports) must agree with
# that for every conn, and it then names the peer each flow goes to after the removal.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init syncaa
dp_need ss

HELPER="$(dirname "$0")/sync_active_active.py"
VIP=198.18.3.100
PORT=5001
N_EARLY=40
N_LATE=20
ROUNDS_AFTER=40
SEED=24681
WITH_SYNC=1
[[ ${SYNCAA_WITHOUT_SYNC:-0} == 1 ]] && WITH_SYNC=0
SCHED=${SYNCAA_SCHED:-rr}
SLOPPY=${SYNCAA_SLOPPY:-0}
OFFLOAD=${SYNCAA_FLOW_OFFLOAD:-1}
echo "scheduler $SCHED, sloppy_tcp $SLOPPY, flow offload $OFFLOAD," \
  "sync daemons $( ((WITH_SYNC)) && echo on || echo off)"

dp_ns c
dp_ns r
dp_ns rs
dp_ns sw
for k in 1 2 3; do dp_ns "p$k"; done
for k in 1 2; do dp_ns "s$k"; done
for br in brf brb brs bry; do dp_bridge sw $br; done

# Client and router.
dp_link c c0 r r0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add $VIP/32 via 198.18.1.1
ip -n "$(n r)" addr add 198.18.1.1/24 dev r0
dp_link r r1 sw swr
ip -n "$(n sw)" link set swr master brf
ip -n "$(n r)" addr add 198.18.4.1/24 dev r1
ip netns exec "$(n r)" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
  net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0015 \
  net.ipv4.fib_multipath_hash_seed=$SEED
ip -n "$(n r)" route add $VIP/32 nexthop via 198.18.4.11 nexthop via 198.18.4.12 \
  nexthop via 198.18.4.13

# The peers: front (a0), back (b0) and sync (y0) LANs.
for k in 1 2 3; do
  p="p$k"
  dp_link $p a0 sw "fa$k"
  dp_link $p b0 sw "fb$k"
  dp_link $p y0 sw "fy$k"
  ip -n "$(n sw)" link set "fa$k" master brf
  ip -n "$(n sw)" link set "fb$k" master brb
  ip -n "$(n sw)" link set "fy$k" master bry
  ip -n "$(n $p)" addr add "198.18.4.1$k/24" dev a0
  ip -n "$(n $p)" addr add "198.18.2.$k/24" dev b0
  ip -n "$(n $p)" addr add "198.18.5.1$k/24" dev y0
  ip -n "$(n $p)" route add 198.18.1.0/24 via 198.18.4.1
  ip -n "$(n $p)" route add 198.18.6.0/24 via 198.18.2.254
  ip netns exec "$(n $p)" sysctl -qw net.ipv4.conf.all.rp_filter=0
done

# The server-side router: the client network through the peers, in the router's order.
dp_link rs b0 sw swrs
ip -n "$(n sw)" link set swrs master brb
ip -n "$(n rs)" addr add 198.18.2.254/24 dev b0
dp_link rs s0 sw swrs0
ip -n "$(n sw)" link set swrs0 master brs
ip -n "$(n rs)" addr add 198.18.6.1/24 dev s0
ip netns exec "$(n rs)" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
  net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0026 \
  net.ipv4.fib_multipath_hash_seed=$SEED
ip -n "$(n rs)" route add 198.18.1.0/24 nexthop via 198.18.2.1 nexthop via 198.18.2.2 \
  nexthop via 198.18.2.3

# The real servers.
for k in 1 2; do
  s="s$k"
  dp_link $s s0 sw "fs$k"
  ip -n "$(n sw)" link set "fs$k" master brs
  ip -n "$(n $s)" addr add "198.18.6.1$k/24" dev s0
  ip -n "$(n $s)" route add 198.18.1.0/24 via 198.18.6.1
  ip netns exec "$(n $s)" python3 "$HELPER" server "198.18.6.1$k" $PORT \
    >"$DP_TMP/server$k.log" 2>&1 &
  DP_PIDS+=($!)
done
for k in 1 2; do
  dp_wait 10 listening "s$k" tcp $PORT || dp_fail "echo server s$k did not listen"
done

for k in 1 2 3; do
  dp_lbd "p$k" "p$k" --tun=lbd0 --workers=2 --mode=gateway \
    --flow_offload=$( ((OFFLOAD)) && echo true || echo false) --metrics=127.0.0.1:9100
  lbctl "p$k" -A -t $VIP:$PORT -s "$SCHED"
  if ((SLOPPY)); then lbctl "p$k" --sysctl sloppy_tcp=1; fi
  lbctl "p$k" -a -t $VIP:$PORT -r 198.18.6.11:$PORT -m
  lbctl "p$k" -a -t $VIP:$PORT -r 198.18.6.12:$PORT -m
  if ((WITH_SYNC)); then
    lbctl "p$k" --start-daemon backup --mcast-interface y0 || dp_fail "p$k: --start-daemon backup"
  fi
done

# The clients: N_EARLY connections open before any master daemon runs, N_LATE after.
declare -A CLIENT_PID
start_client() {  # start_client NAME COUNT: COUNT conns, the client's files in $DP_TMP/NAME
  mkdir -p "$DP_TMP/$1"
  ip netns exec "$(n c)" python3 "$HELPER" client $VIP $PORT "$2" "$DP_TMP/$1" \
    >"$DP_TMP/$1.log" 2>&1 &
  CLIENT_PID[$1]=$!
  DP_PIDS+=($!)
}
client_ready() {  # client_ready NAME: all its conns are open
  [[ -s "$DP_TMP/$1/ports" ]] && return 0
  kill -0 "${CLIENT_PID[$1]}" 2>/dev/null ||
    { echo "client $1 exited: $(tail -n 3 "$DP_TMP/$1.log")"; return 1; }
  echo "not yet"
  return 1
}
# conn_rounds NAME COUNT MIN FIELD: every conn "ok" with at least MIN in FIELD (3: rounds, 4:
# rounds since the mark). Prints the first conn short of it and how many are; exits 2 (no point
# waiting) once a conn failed.
conn_rounds() {
  [[ -s "$DP_TMP/$1/status" ]] || { echo "no status of client $1 yet"; return 1; }
  awk -v min="$3" -v f="$4" -v n="$2" -v name="$1" '
    $5 != "ok" { print "client " name " conn " $1 " (port " $2 ") failed: " $5 " after " $3 " rounds"; bad = 1 }
    $5 == "ok" && $f < min { short++; if (!first) first = "conn " $1 " (port " $2 ") at " $f }
    END {
      if (bad) exit 2
      if (NR != n) { print NR " conns in client " name "'"'"'s status"; exit 1 }
      if (short) { print "client " name ": " short " conns short of " min " rounds, e.g. " first; exit 1 }
    }' "$DP_TMP/$1/status"
}
wait_rounds() {  # wait_rounds SECS WHAT NAME COUNT MIN FIELD: bounded; fails at once on a failure
  local deadline=$((SECONDS + $1)) what=$2 out rc
  shift 2
  while :; do
    rc=0
    out=$(conn_rounds "$@") || rc=$?
    ((rc == 0)) && return 0
    ((rc == 2)) && dp_fail "$what: $out"
    ((SECONDS < deadline)) || dp_fail "waited the bound for $what; last seen: $out"
    sleep 0.2
  done
}

# lnc_ports TAG: "CLIENT_PORT DEST" for each ESTABLISHED conn of the client to the VIP.
lnc_ports() {
  lbctl "$1" -Lnc | awk -v vip="$VIP:$PORT" '$1 == "TCP" && $3 == "ESTABLISHED" && $5 == vip &&
    $4 ~ /^198\.18\.1\.2:/ { split($4, a, ":"); print a[2], $6 }' | sort
}
metric() {  # metric TAG NAME: NAME's value in lbd TAG's /metrics (0 when absent)
  ip netns exec "$(n "$1")" curl -s --max-time 5 --noproxy '*' http://127.0.0.1:9100/metrics |
    awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}
# route_peer CLIENT_PORT: the router's own lookup for the flow (the nexthop's peer).
route_peer() {
  ip -n "$(n r)" route get $VIP from 198.18.1.2 iif r0 ipproto tcp sport "$1" dport $PORT |
    sed -n 's/.* via 198\.18\.4\.1\([123]\) .*/p\1/p'
}

start_client early $N_EARLY
dp_poll 30 "the client's first $N_EARLY connections" client_ready early
wait_rounds 30 "the first 3 round trips of the early connections" early $N_EARLY 3 3

# With the flow offload (lbd's default) the conns are forwarded by the tc program: every peer
# offloaded its own.
if ((OFFLOAD)); then
  for k in 1 2 3; do
    c=$(metric "p$k" lb_dataplane_offload_installed_total)
    echo "p$k: $c conns offloaded"
    ((c > 0)) || dp_fail "p$k offloaded no conn (tc fast path off?): $(grep -i 'fast path' "$DP_TMP/lbd-p$k.log")"
  done
fi

# Who holds what before any master runs: each conn on exactly one peer. OWNERS: "PORT DEST PEER".
OWNERS="$DP_TMP/owners"
for k in 1 2 3; do lnc_ports "p$k" | sed "s/\$/ p$k/"; done | sort >"$OWNERS"
awk '{ print $2 }' "$DP_TMP/early/ports" | sort >"$DP_TMP/early_ports"
[[ $(cut -d' ' -f1 "$OWNERS") == "$(cat "$DP_TMP/early_ports")" ]] ||
  dp_fail "each client port on exactly one peer expected; peers show:
$(cat "$OWNERS")
client ports: $(tr '\n' ' ' <"$DP_TMP/early_ports")"
for k in 1 2 3; do
  c=$(grep -c " p$k\$" "$OWNERS" || true)
  echo "p$k holds $c of the $N_EARLY early conns"
  ((c > 0)) || dp_fail "ECMP gave p$k no conn"
done
# The router's lookup agrees with what the peers hold, for every conn.
while read -r port _ peer; do
  got=$(route_peer "$port")
  [[ $got == "$peer" ]] ||
    dp_fail "the router's lookup puts client port $port on '$got', but $peer holds it"
done <"$OWNERS"

if ((WITH_SYNC)); then
  for k in 1 2 3; do
    lbctl "p$k" --start-daemon master --mcast-interface y0 || dp_fail "p$k: --start-daemon master"
    lbctl "p$k" -L --daemon
  done
fi

# The late conns open while every peer is master and backup; their peer by the router's lookup
# (checked against the peers above), their real server from that peer's -Lnc.
start_client late $N_LATE
dp_poll 30 "the client's $N_LATE late connections" client_ready late
wait_rounds 30 "the first 3 round trips of the late connections" late $N_LATE 3 3
while read -r _ port; do
  peer=$(route_peer "$port")
  dest=$(lnc_ports "$peer" | awk -v p="$port" '$1 == p { print $2 }')
  [[ -n $dest ]] || dp_fail "late conn (client port $port) not ESTABLISHED on $peer, its route"
  echo "$port $dest $peer"
done <"$DP_TMP/late/ports" >>"$OWNERS"
sort -o "$OWNERS" "$OWNERS"
cut -d' ' -f1,2 "$OWNERS" >"$DP_TMP/all"
N=$((N_EARLY + N_LATE))

if ((WITH_SYNC)); then
  # Every peer holds every conn, bound to the real server its owner chose. A conn is sent at its
  # client's packet number 3, 53, 103, ... (sync_threshold 3, sync_period 50): within about
  # 50 client packets of the masters' start.
  holds_all() {  # holds_all TAG
    local got
    got=$(lnc_ports "$1")
    [[ $got == "$(cat "$DP_TMP/all")" ]] || {
      echo "$1 holds $(echo -n "$got" | grep -c . || true) of $N:" \
        "$(diff <(echo "$got") "$DP_TMP/all" | head -n 4 | tr '\n' ' ')"
      return 1
    }
  }
  for k in 1 2 3; do dp_poll 40 "p$k to hold all $N conns" holds_all "p$k"; done
  echo "every peer holds all $N conns"

  # No peer applies its own messages (the masters' IP_MULTICAST_LOOP is off): the datagrams a
  # peer's backup took cannot outnumber those the other two masters sent (read after).
  declare -A recv sent
  for k in 1 2 3; do recv[$k]=$(metric "p$k" lb_sync_backup_messages_total); done
  for k in 1 2 3; do sent[$k]=$(metric "p$k" lb_sync_master_messages_total); done
  for k in 1 2 3; do
    others=0
    for j in 1 2 3; do ((j == k)) || others=$((others + sent[$j])); done
    echo "p$k: sent ${sent[$k]} sync messages ($(metric "p$k" lb_sync_master_conns_total) conns)," \
      "received ${recv[$k]} ($(metric "p$k" lb_sync_backup_created_total) conns created)"
    ((recv[$k] > 0 && recv[$k] <= others)) ||
      dp_fail "p$k's backup took ${recv[$k]} messages, the other masters sent $others"
  done
fi

# With the offload, a moved flow's first packet at its new peer finds the synced conn and
# offloads it there: count the installs from here on.
declare -A inst_before moved_into=([p1]=0 [p2]=0)
for k in 1 2; do inst_before[p$k]=$(metric "p$k" lb_dataplane_offload_installed_total); done

# The removal: p3's lbd dies, and its nexthop goes from both routers' routes.
touch "$DP_TMP/early/mark" "$DP_TMP/late/mark"
dp_lbd_kill9 p3
ip -n "$(n r)" route replace $VIP/32 nexthop via 198.18.4.11 nexthop via 198.18.4.12
ip -n "$(n rs)" route replace 198.18.1.0/24 nexthop via 198.18.2.1 nexthop via 198.18.2.2

# Where each flow goes now, by the router's lookup.
moved_p2=0
moved_p3=0
stayed=0
while read -r port _ peer; do
  now=$(route_peer "$port")
  [[ $now == p1 || $now == p2 ]] || dp_fail "client port $port routed to '$now' after the removal"
  [[ $now == "$peer" ]] || moved_into[$now]=$((moved_into[$now] + 1))
  if [[ $now == "$peer" ]]; then
    stayed=$((stayed + 1))
  elif [[ $peer == p3 ]]; then
    moved_p3=$((moved_p3 + 1))
  else
    moved_p2=$((moved_p2 + 1))
    echo "moved: client port $port $peer -> $now"
  fi
done <"$OWNERS"
echo "after the removal: $stayed conns on their peer, $moved_p2 moved between the surviving" \
  "peers, $moved_p3 moved from p3"
((moved_p2 > 0)) || dp_fail "no conn of a surviving peer moved (the test would prove nothing about them)"

for cl in early late; do
  [[ $cl == early ]] && cnt=$N_EARLY || cnt=$N_LATE
  wait_rounds 60 "$ROUNDS_AFTER round trips of every $cl connection after the removal" \
    $cl $cnt $ROUNDS_AFTER 4
done
echo "all $N connections made $ROUNDS_AFTER+ byte-correct round trips after the removal, none reset"
if ((OFFLOAD)); then
  for k in 1 2; do
    c=$(($(metric "p$k" lb_dataplane_offload_installed_total) - inst_before[p$k]))
    echo "p$k offloaded $c conns after the removal; ${moved_into[p$k]} moved to it"
    ((c >= moved_into[p$k])) || dp_fail "p$k offloaded $c conns, fewer than the ${moved_into[p$k]} that moved to it"
  done
fi
for cl in early late; do
  touch "$DP_TMP/$cl/stop"
  dp_wait_pid "${CLIENT_PID[$cl]}" 10 || dp_fail "client $cl did not stop"
  wait "${CLIENT_PID[$cl]}" || dp_fail "client $cl exited with an error: $(tail -n 5 "$DP_TMP/$cl.log")"
done
echo "PASS sync_active_active (scheduler $SCHED, sloppy_tcp $SLOPPY, sync $WITH_SYNC)"
