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
sync_udp_servers

sync_lbds
lbctl g1 -A -u $VIP:5002 -s rr
lbctl g2 -A -u $VIP:5002 -s rr
for i in 1 2; do lbctl g1 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
for i in 2 1; do lbctl g2 -a -u $VIP:5002 -r "198.18.2.1$i:5002" -m; done
sync_daemons

sync_udp_client $AFTER

sync_check_offloaded
sync_failover
sync_udp_check
echo "PASS sync_failover_udp"
