#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The keepalived VRRP recipe of docs/sync-failover.md (issue 15): two lbd gateways on one LAN,
# each paired with Debian's keepalived running VRRP only (keepalived -P). A vrrp_sync_group
# of two instances moves the gateways' next-hop addresses together: 198.18.1.10 on the client
# side (the client routes the VIP through it) and 198.18.2.10 on the server side (the real
# servers' route back: to the client's LAN for NAT, to the full-NAT local address 198.18.4.100
# for full NAT). keepalived's notify_master / notify_backup / notify_fault call lbctl: master
# starts the master sync daemon (the backup one keeps running), backup and fault stop the
# master daemon and keep the backup one. No test step starts a sync daemon itself.
#
# SYNC_VRRP_MODE picks the flow (default nat):
#   nat      a long TCP download from s1 (-m). Once g2's lbctl -Lnc shows the synced conn, g1's
#            lbd and g1's keepalived (both of its processes) are SIGKILLed; g2's keepalived
#            misses the adverts, becomes master, takes both addresses (and announces them with
#            gratuitous ARPs) and its notify_master starts g2's master daemon. The download must
#            complete without a reset, with every byte (length and sha256).
#   fullnat  the same download, --fullnat with the local address 198.18.4.100 (-P) on both
#            gateways; s1 routes it via 198.18.2.10. g2's synced conn must carry g1's local
#            address and port (the server's peer), and the download completes as above.
#   udp      sync_failover_udp.sh's flow: numbered 512-byte datagrams from one socket to VIP:5002,
#            echoed by two real servers (g2 lists its dests in the other order). After the VRRP
#            move (g2 holds both addresses and the client and the flow's server resolve them to
#            g2's MACs) the client marks its next datagram and sends 1000 more: all reach the same
#            real server as before, in order, byte for byte, and all are echoed back via g2.
#
#   client c (198.18.1.2, .3) -- lan br0 -- g1 (198.18.1.11 | 198.18.2.1), g2 (198.18.1.12 | 198.18.2.2)
#   g1, g2 -- srv br1 -- s1 (198.18.2.11) [, s2 (198.18.2.12) for udp].
#   VRRP: 198.18.1.10 (a0), 198.18.2.10 (b0). VIP 198.18.3.100 is routed by the client via 198.18.1.10.
#
# The TCP client prints the longest pause between two reads (the failover gap it saw) for
# tests/perf/sync_bench.sh; it is information, not a pass/fail condition.
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
MODE=${SYNC_VRRP_MODE:-nat}
case $MODE in
  nat | fullnat | udp) ;;
  *)
    echo "SYNC_VRRP_MODE=$MODE: want nat, fullnat or udp" >&2
    exit 2
    ;;
esac
dp_init "syncvrrp-$MODE"
dp_need keepalived

VIP=$SYNC_VIP
LADDR=$SYNC_LADDR  # full NAT's local address: outside every LAN, routed by the servers via 198.18.2.10
BYTES=$((32 * 1024 * 1024))
AFTER=1000  # udp: datagrams sent after the move
NSRV=1
[[ $MODE == udp ]] && NSRV=2
declare -A KA_PID

# sync_lib.sh's topology, routed through the VRRP addresses: whichever gateway is master
# carries the traffic (the servers also reach the full-NAT local address that way).
SYNC_SRV_GW=198.18.2.10
SYNC_CLIENT_GW=198.18.1.10
sync_topology $NSRV

if [[ $MODE == udp ]]; then
  sync_udp_servers
else
  # The real server: BYTES deterministic bytes, paced (about 8 s), then close; it records the
  # client's address (full NAT: the local address and port) in $DP_TMP/peer-s1.
  ip netns exec "$(n s1)" python3 -c '
import socket, time, sys
n = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.11", 5001)); s.listen(1)
c, a = s.accept()
open(sys.argv[2], "w").write("%s:%d\n" % a)
block = bytes((i * 7 + 3) % 251 for i in range(65536))
sent = 0
while sent < n:
    c.sendall(block[: min(65536, n - sent)]); sent += min(65536, n - sent)
    time.sleep(0.016)
c.close()
' "$BYTES" "$DP_TMP/peer-s1" &
  DP_PIDS+=($!)
  dp_wait 10 listening s1 tcp 5001 || dp_fail "the real server did not listen"
fi

for g in 1 2; do
  dp_lbd "g$g" "g$g" --tun=lbd0 --workers=2 --mode=gateway --flow_offload=false
done
case $MODE in
  nat)
    for g in 1 2; do
      lbctl "g$g" -A -t $VIP:5001 -s rr
      lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 -m
    done
    ;;
  fullnat)
    for g in 1 2; do
      lbctl "g$g" -A -t $VIP:5001 -s rr
      lbctl "g$g" -P -t $VIP:5001 -z $LADDR
      lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 --fullnat
    done
    ;;
  udp)
    # g2 lists its dests in the other order: a fresh schedule there would pick the other server.
    lbctl g1 -A -u $VIP:5002 -s rr
    lbctl g2 -A -u $VIP:5002 -s rr
    for i in 1 2; do lbctl g1 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
    for i in 2 1; do lbctl g2 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
    ;;
esac

# The recipe's notify script (docs/sync-failover.md), with the test's lbctl and socket.
cat >"$DP_TMP/lbd-sync-notify" <<EOF
#!/bin/sh
# lbd-sync-notify GATEWAY master|backup|fault: keepalived's notify_* for lbd's sync daemons.
export LBD_SERVER="unix://$DP_TMP/\$1.sock"
LBCTL="$LBCTL_BIN"
IFACE=a0
log() { echo "\$(date +%s.%N) \$*" >>"$DP_TMP/notify-\$1.log"; }
case "\$2" in
  master)
    "\$LBCTL" --start-daemon master --mcast-interface \$IFACE 2>&1 | grep -v 'has already run'
    "\$LBCTL" --start-daemon backup --mcast-interface \$IFACE 2>&1 | grep -v 'has already run' ;;
  backup|fault)
    "\$LBCTL" --stop-daemon master 2>&1 | grep -v 'No daemon is running'
    "\$LBCTL" --start-daemon backup --mcast-interface \$IFACE 2>&1 | grep -v 'has already run' ;;
esac
log "\$1" "\$2 -> \$("\$LBCTL" -L --daemon | tr '\n' ';')"
exit 0
EOF
chmod 0755 "$DP_TMP/lbd-sync-notify"

# keepalived_conf G PRIORITY
keepalived_conf() {
  local g=$1 prio=$2 peer=$((3 - $1))
  cat <<EOF
global_defs {
  router_id lbd-g$g
  script_user root
  vrrp_garp_master_repeat 3
}
vrrp_sync_group LBD {
  group {
    LAN
    SRV
  }
  notify_master "$DP_TMP/lbd-sync-notify g$g master"
  notify_backup "$DP_TMP/lbd-sync-notify g$g backup"
  notify_fault "$DP_TMP/lbd-sync-notify g$g fault"
}
vrrp_instance LAN {
  state BACKUP
  interface a0
  virtual_router_id 51
  priority $prio
  advert_int 1
  unicast_src_ip 198.18.1.1$g
  unicast_peer {
    198.18.1.1$peer
  }
  virtual_ipaddress {
    198.18.1.10/24 dev a0
  }
}
vrrp_instance SRV {
  state BACKUP
  interface b0
  virtual_router_id 52
  priority $prio
  advert_int 1
  unicast_src_ip 198.18.2.$g
  unicast_peer {
    198.18.2.$peer
  }
  virtual_ipaddress {
    198.18.2.10/24 dev b0
  }
}
EOF
}

start_keepalived() {  # start_keepalived G PRIORITY
  local g=$1
  keepalived_conf "$g" "$2" >"$DP_TMP/keepalived-g$g.conf"
  ip netns exec "$(n "g$g")" keepalived -n -l -D -P -f "$DP_TMP/keepalived-g$g.conf" \
    -p "$DP_TMP/keepalived-g$g.pid" -r "$DP_TMP/keepalived-vrrp-g$g.pid" \
    >"$DP_TMP/keepalived-g$g.log" 2>&1 &
  KA_PID[$g]=$!
  DP_PIDS+=($!)
}
# Its VRRP child (keepalived forks one even with -n), read from the -r pid file.
vrrp_child() { cat "$DP_TMP/keepalived-vrrp-g$1.pid" 2>/dev/null; }
has_addr() { ip -n "$(n "$1")" -4 addr show dev "$2" | grep -q "inet $3/"; }
daemons() { lbctl "$1" -L --daemon; }
notified() { grep -q " $2 -> " "$DP_TMP/notify-$1.log" 2>/dev/null; }

start_keepalived 1 150
start_keepalived 2 100
dp_poll 20 "g1 VRRP master (198.18.1.10 and 198.18.2.10 on g1)" \
  sh -c "ip -n $(n g1) -4 addr show dev a0 | grep -q 'inet 198.18.1.10/' &&
         ip -n $(n g1) -4 addr show dev b0 | grep -q 'inet 198.18.2.10/'"
dp_poll 20 "g1's notify_master" notified g1 master
dp_poll 20 "g2's notify_backup" notified g2 backup
has_addr g2 a0 198.18.1.10 && dp_fail "g2 holds 198.18.1.10 while g1 is master"
echo "g1: $(daemons g1 | tr '\n' ';')"
echo "g2: $(daemons g2 | tr '\n' ';')"
daemons g1 | grep -q '^master sync daemon (mcast=a0' || dp_fail "no master daemon on g1"
daemons g1 | grep -q '^backup sync daemon (mcast=a0' || dp_fail "no backup daemon on g1"
daemons g2 | grep -q '^master' && dp_fail "a master daemon on the VRRP backup g2"
daemons g2 | grep -q '^backup sync daemon (mcast=a0' || dp_fail "no backup daemon on g2"
[[ -n $(vrrp_child 1) ]] || dp_fail "no VRRP child pid for g1's keepalived"

if [[ $MODE == udp ]]; then
  sync_udp_client $AFTER
  CLIENT=$SYNC_CLIENT
else
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

  # local_address:local_port of the ESTABLISHED full-NAT conn from the client in TAG's -Lnc.
  conn_laddr() {
    lbctl "$1" --output=json -Lnc | python3 -c '
import json, sys
d = json.load(sys.stdin)
def walk(o):
    if isinstance(o, dict):
        if o.get("client_address") == "198.18.1.2" and o.get("local_address"):
            yield o
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
c = [o for o in walk(d) if o.get("state") == "ESTABLISHED"]
if len(c) != 1: sys.exit("want one ESTABLISHED full-NAT conn from the client, have %d: %s" % (len(c), d))
print("%s:%s" % (c[0]["local_address"], c[0]["local_port"]))'
  }
  backup_has_conn() {
    lbctl g2 -Lnc | grep -E "^TCP .* ESTABLISHED +198\.18\.1\.2:[0-9]+ +$VIP:5001 +198\.18\.2\.11:5001" || return 1
    [[ $MODE == fullnat ]] || return 0
    conn_laddr g2
  }
  dp_poll 10 "the synced conn in the backup's -Lnc" backup_has_conn
  echo "backup: $(backup_has_conn)"
  if [[ $MODE == fullnat ]]; then
    master=$(conn_laddr g1) || dp_fail "g1's conn: $master"
    backup=$(conn_laddr g2) || dp_fail "g2's conn: $backup"
    peer=$(cat "$DP_TMP/peer-s1")
    echo "local address:port: g1 $master, g2 $backup, the server's peer $peer"
    [[ $master == "$LADDR:"* ]] || dp_fail "g1's conn has local address $master, want $LADDR"
    [[ $backup == "$master" ]] || dp_fail "the backup's conn has $backup, the master's $master"
    [[ $peer == "$master" ]] || dp_fail "the server's peer is $peer, the conn's local address $master"
  fi
  kill -0 $CLIENT 2>/dev/null || dp_fail "the transfer ended before the failover: $(cat "$DP_TMP/client.out" "$DP_TMP/client.err")"
fi

# Failover: g1's lbd and keepalived (parent and VRRP child) die at once, with no goodbye
# (no priority-0 advert): g2 must notice the missing adverts.
child=$(vrrp_child 1)
kill -KILL "$child" "${KA_PID[1]}" "$DP_LBD_PID_g1"
dp_wait_pid "${KA_PID[1]}" 10 || dp_fail "g1's keepalived survived SIGKILL"
dp_wait_pid "$DP_LBD_PID_g1" 10 || dp_fail "g1's lbd survived SIGKILL"
echo "$(date +%s.%N) g1 killed" >"$DP_TMP/killed"
dp_poll 20 "g2 VRRP master (198.18.1.10 on g2)" has_addr g2 a0 198.18.1.10
dp_poll 20 "g2 VRRP master (198.18.2.10 on g2)" has_addr g2 b0 198.18.2.10
dp_poll 20 "g2's notify_master" notified g2 master
daemons g2 | grep -q '^master sync daemon (mcast=a0' || dp_fail "no master daemon on g2 after notify_master"
daemons g2 | grep -q '^backup sync daemon (mcast=a0' || dp_fail "g2's backup daemon stopped"

if [[ $MODE == udp ]]; then
  # The move is complete once the client and the real server that has the flow send to the
  # VRRP addresses at g2's MACs (keepalived's gratuitous ARPs update their ARP entries; the other
  # server has none, a gratuitous ARP does not create one): only then does the client mark it.
  mac() { ip -n "$(n "$1")" link show dev "$2" | awk '/link\/ether/ { print $2 }'; }
  neigh_is() { ip -n "$(n "$1")" neigh show "$2" | grep -q "lladdr $3 "; }
  a0_mac=$(mac g2 a0)
  b0_mac=$(mac g2 b0)
  dp_poll 30 "the client's ARP entry for 198.18.1.10 at g2 ($a0_mac)" neigh_is c 198.18.1.10 "$a0_mac"
  for i in 1 2; do
    [[ -s $DP_TMP/udp-s$i.bin ]] || continue
    dp_poll 30 "s$i's ARP entry for 198.18.2.10 at g2 ($b0_mac)" neigh_is "s$i" 198.18.2.10 "$b0_mac"
  done
  sync_udp_check
else
  dp_wait_pid $CLIENT 60 || dp_fail "the transfer did not finish within 60 s after the failover"
  wait $CLIENT || dp_fail "the client failed: $(cat "$DP_TMP/client.err")"
  read -r got_n got_sha gap_ms <"$DP_TMP/client.out"
  [[ "$got_n $got_sha" == "$BYTES $want_sha" ]] ||
    dp_fail "received '$got_n $got_sha', want '$BYTES $want_sha'"
  echo "transfer complete across the VRRP failover: $got_n $got_sha"
  echo "failover gap seen by the client: ${gap_ms} ms (longest pause between two reads)"
fi
cat "$DP_TMP/notify-g1.log" "$DP_TMP/notify-g2.log"
echo "PASS sync_keepalived_vrrp ($MODE)"
