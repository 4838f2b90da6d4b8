#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync failover (issue 15), full NAT TCP (sync_lib.sh's topology): both gateways
# serve the VIP with --fullnat and the same local address 198.18.4.100 (-P), which the real
# server routes via the active gateway and never sees the client's address. A long download
# through g1; g2's synced conn carries g1's local address and port (lbd's sync option 0x4C) and
# the server's peer is that address:port. g1 SIGKILLed, the routes moved: the download completes
# without a reset, complete and in order (length and sha256), so the backup rewrote with the
# same local address and port (the server's socket would answer any other with a reset).
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
dp_init syncfn

BYTES=$((24 * 1024 * 1024))
VIP=$SYNC_VIP

sync_topology 1
sync_tcp_server s1 198.18.2.11 5001 "$BYTES"
sync_lbds
for g in 1 2; do
  lbctl "g$g" -A -t $VIP:5001 -s rr
  lbctl "g$g" -P -t $VIP:5001 -z $SYNC_LADDR
  lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 --fullnat
done
sync_daemons
sync_tcp_client 5001

# local_address:local_port of the ESTABLISHED conn from the client in TAG's -Lnc (JSON).
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
  lbctl g2 -Lnc | grep -E "^TCP .* ESTABLISHED +198\.18\.1\.2:[0-9]+ +$VIP:5001 +198\.18\.2\.11:5001" &&
    conn_laddr g2
}
dp_poll 10 "the synced full-NAT conn in the backup's -Lnc" backup_has_conn
master=$(conn_laddr g1) || dp_fail "g1's conn: $master"
backup=$(conn_laddr g2) || dp_fail "g2's conn: $backup"
peer=$(cat "$DP_TMP/peer-s1")
echo "local address:port: g1 $master, g2 $backup, the server's peer $peer"
[[ $master == "$SYNC_LADDR:"* ]] || dp_fail "g1's conn has local address $master, want $SYNC_LADDR"
[[ $backup == "$master" ]] || dp_fail "the backup's conn has $backup, the master's $master"
[[ $peer == "$master" ]] || dp_fail "the server's peer is $peer, the conn's local address $master"
kill -0 "$SYNC_CLIENT" 2>/dev/null ||
  dp_fail "the transfer ended before the failover: $(cat "$DP_TMP/client.out" "$DP_TMP/client.err")"

sync_check_offloaded
sync_failover
sync_check_transfer "$BYTES"
echo "PASS sync_failover_fullnat"
