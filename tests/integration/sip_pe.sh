#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The SIP persistence engine (--pe sip, ip_vs_pe_sip.c) through lbd as a NAT gateway, with
# Debian's sipp (sip-tester): a UAC runs its built-in uac scenario (INVITE, ACK, pause, BYE)
# against the VIP, one UDP socket per call (-t un: every call from its own source port), and
# two sipp UAS servers behind lbd log every message they get (-trace_msg).
#  - the UDP conn timeout is 1 s (--set) and each call pauses 4 s before its BYE, so the BYE
#    finds no conn and is scheduled again: the Call-ID template sends it to the INVITE's server;
#  - all calls come from one client address, so plain persistence would put every call on one
#    server: rr over the Call-ID templates spreads them over both;
#  - -Lnc --persistent-conn lists each call's template with "sip <Call-ID>"; -Ln and -S show
#    "pe sip", and the state file brings it back after a restart.
#
#   client c0: 198.18.1.2 -- lbd (l0 198.18.1.1 | l1 198.18.2.1) -- br0 -- s1 .11, s2 .12
source "$(dirname "$0")/dataplane_lib.sh"
dp_init sip_pe
dp_need sipp

VIP=198.18.1.100
CALLS=8

dp_gateway_topology 2 198.18.2.0/24
for i in 1 2; do
  # A UAS answering every call, logging each message it receives and sends.
  (cd "$DP_TMP" && exec ip netns exec "$(n "s$i")" sipp -sn uas -i "198.18.2.1$i" -p 5060 \
    -nostdin -trace_msg -message_file "$DP_TMP/uas$i.msg" >"$DP_TMP/uas$i.out" 2>&1) &
  DP_PIDS+=($!)
  dp_wait 10 listening "s$i" udp 5060 || dp_fail "sipp UAS s$i did not start"
done

before=$(dp_kernel_state l)
dp_lbd l p --tun=lbd0 --workers=2 --mode=gateway --state-file="$DP_TMP/state.txt"
lbctl p -A -u $VIP:5060 -s rr -p 60 --pe sip
for i in 1 2; do lbctl p -a -u $VIP:5060 -r "198.18.2.1$i:5060" -m; done
lbctl p --set 900 120 1
lbctl p -Ln | grep -Eq "^UDP +$VIP:5060 rr persistent 60 pe sip\$" ||
  dp_fail "-Ln does not show 'persistent 60 pe sip': $(lbctl p -Ln)"
lbctl p -S -n | grep -Fxq -- "-A -u $VIP:5060 -s rr -p 60 --pe sip" ||
  dp_fail "-S does not save --pe sip: $(lbctl p -S -n)"

# The UAC: CALLS calls, 2 at a time, each on its own socket, 4 s between ACK and BYE.
ip netns exec "$(n c)" timeout 120 sipp -sn uac "$VIP:5060" -i 198.18.1.2 -t un -m $CALLS \
  -l 2 -r 4 -d 4000 -max_socket 100 -nostdin -timeout 100 -trace_msg -message_file "$DP_TMP/uac.msg" \
  >"$DP_TMP/uac.out" 2>&1 || dp_fail "sipp UAC failed: $(tail -n 30 "$DP_TMP/uac.out")"

# Call-IDs per UAS and method: "METHOD CALLID" for each request a UAS received.
received() {
  awk '/message received/ {st = 1; next}
       st == 1 && NF {m = $1; st = 2; next}
       st == 2 && tolower($1) ~ /^call-id:/ {sub(/\r$/, ""); print m, $2; st = 0}' \
    "$DP_TMP/uas$1.msg"
}
r1=$(received 1)
r2=$(received 2)
ids=$( (echo "$r1"; echo "$r2") | awk 'NF {print $2}' | sort -u)
ncalls=$(echo "$ids" | grep -c . || true)
[[ $ncalls -eq $CALLS ]] || dp_fail "the servers saw $ncalls Call-IDs, want $CALLS"
on1=0
on2=0
for id in $ids; do
  m1=$(echo "$r1" | awk -v id="$id" '$2 == id {print $1}' | sort | tr '\n' ' ')
  m2=$(echo "$r2" | awk -v id="$id" '$2 == id {print $1}' | sort | tr '\n' ' ')
  echo "call $id: s1 got [${m1}] s2 got [${m2}]"
  if [[ -n $m1 && -z $m2 ]]; then
    on1=$((on1 + 1))
    m=$m1
  elif [[ -n $m2 && -z $m1 ]]; then
    on2=$((on2 + 1))
    m=$m2
  else
    dp_fail "call $id was split between the servers"
  fi
  [[ $m == "ACK BYE INVITE " ]] || dp_fail "call $id: its server got [$m], want ACK BYE INVITE"
done
echo "calls on s1: $on1, on s2: $on2"
((on1 > 0 && on2 > 0)) || dp_fail "the calls did not spread over both servers"

# Each BYE came after its conn expired: two conns per call (INVITE+ACK, BYE), one template.
stats=$(lbctl p -Ln --stats)
echo "$stats"
conns=$(echo "$stats" | awk -v v="$VIP:5060" '$1 == "UDP" && $2 == v {print $3}')
[[ $conns -eq $((2 * CALLS)) ]] ||
  dp_fail "the service made $conns conns, want $((2 * CALLS)) (each BYE scheduled again)"

# -Lnc --persistent-conn: each call's template with its Call-ID as pe_data.
listing=$(lbctl p -Lnc --persistent-conn)
echo "$listing" | head -n 4
for id in $ids; do
  echo "$listing" | grep -Eq "^UDP +[0-9:]+ +(NONE|ASSURED) +198\.18\.1\.2:0 +$VIP:5060 +198\.18\.2\.1[12]:5060 +sip +$id\$" ||
    dp_fail "-Lnc --persistent-conn has no template 'sip $id': $listing"
done

# The state file keeps --pe sip across a restart.
dp_lbd_stop p
dp_lbd l p2 --tun=lbd0 --workers=2 --mode=gateway --state-file="$DP_TMP/state.txt"
lbctl p2 -Ln | grep -Eq "^UDP +$VIP:5060 rr persistent 60 pe sip\$" ||
  dp_fail "after a restart -Ln does not show 'pe sip': $(lbctl p2 -Ln)"
dp_lbd_stop p2

after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "kernel state differs after lbd stopped"
fi
echo "PASS sip_pe"
