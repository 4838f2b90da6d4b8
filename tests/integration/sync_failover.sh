#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Connection sync failover (issue 15), NAT TCP: two lbd gateways on one LAN, g1 running a master
# sync daemon and g2 a backup (sync_lib.sh's topology). A client streams a long TCP download
# from a real server through the VIP via g1; g2's lbctl -Lnc must show the conn (ESTABLISHED,
# to the same real server). g1 is killed with SIGKILL and the routes move to g2 (the client's
# route to the VIP, the server's route back to the client): the download goes on without a
# reset and the bytes that arrive are complete (length and sha256).
# The gateways run with the tc flow offload (lbd's default), so the conn reaches the backup
# through the offload's reports; LB_SYNC_FLOW_OFFLOAD=false runs them without it.
source "$(dirname "$0")/dataplane_lib.sh"
source "$(dirname "$0")/sync_lib.sh"
dp_init syncfo

BYTES=$((24 * 1024 * 1024))
VIP=$SYNC_VIP

sync_topology 1
sync_tcp_server s1 198.18.2.11 5001 "$BYTES"
sync_lbds
for g in 1 2; do
  lbctl "g$g" -A -t $VIP:5001 -s rr
  lbctl "g$g" -a -t $VIP:5001 -r 198.18.2.11:5001 -m
done
sync_daemons
sync_tcp_client 5001

backup_has_conn() {
  lbctl g2 -Lnc | grep -E "^TCP .* ESTABLISHED +198\.18\.1\.2:[0-9]+ +$VIP:5001 +198\.18\.2\.11:5001"
}
dp_poll 10 "the synced conn in the backup's -Lnc" backup_has_conn
echo "backup: $(backup_has_conn)"
kill -0 "$SYNC_CLIENT" 2>/dev/null ||
  dp_fail "the transfer ended before the failover: $(cat "$DP_TMP/client.out" "$DP_TMP/client.err")"

sync_check_offloaded
sync_failover
sync_check_transfer "$BYTES"
echo "PASS sync_failover"
