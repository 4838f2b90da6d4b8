#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults (issue 17): a real server killed (SIGKILL) in the middle of transfers. Its clients get
# a reset (ECONNRESET/EPIPE on their next send, within a bounded wait, not a hang), through NAT
# and full NAT; the other real server's transfers go on untouched; once the health check
# (keepalived TCP_CHECK) has taken the dead server out, every new connection is answered by
# the live one.
#
#   client c (198.18.1.2) -- lbd ns l (198.18.1.1 | 198.18.2.1) -- br0 -- s1 (.11), s2 (.12)
#   VIP 198.18.100.1: :80 NAT with TCP_CHECK (lbd --keepalived-conf), :81 full NAT (lbctl,
#   local address 198.18.2.100). Each real server runs tests/integration/fault_xfer.py, which
#   names itself to every client.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init fkillrs

VIP=198.18.100.1
LADDR=198.18.2.100
XFER="$(dirname "$0")/fault_xfer.py"

dp_ns c
dp_ns l
dp_ns sw
dp_link c c0 l l0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add 198.18.100.0/24 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
dp_bridge sw br0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
declare -A SRV_PID
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
  ip netns exec "$(n "s$i")" python3 "$XFER" serve "198.18.2.1$i" 5001 "S$i" \
    >"$DP_TMP/xfer-s$i.log" 2>&1 &
  SRV_PID[$i]=$!
  DP_PIDS+=($!)
  dp_wait 10 listening "s$i" tcp 5001 || dp_fail "server S$i did not start"
done

CONF="$DP_TMP/keepalived.conf"
cat >"$CONF" <<EOF
virtual_server $VIP 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.18.2.11 5001 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.18.2.12 5001 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
EOF
dp_lbd l fk --tun=lbd0 --workers=2 --mode=gateway --keepalived-conf="$CONF"
lbctl fk -A -t $VIP:81 -s rr
lbctl fk -P -t $VIP:81 -z $LADDR
lbctl fk -a -t $VIP:81 -r 198.18.2.11:5001 --fullnat
lbctl fk -a -t $VIP:81 -r 198.18.2.12:5001 --fullnat

rs_count() {  # rs_count SERVICE: real servers listed under SERVICE
  lbctl fk -Ln | awk -v s="$1" '$1 == "TCP" { cur = $2 } $1 == "->" && cur == s { c++ } END { print c + 0 }'
}
rs_is() { [[ $(rs_count "$1") -eq $2 ]]; }
dp_wait 15 rs_is $VIP:80 2 || dp_fail "the health checks did not bring both servers in"
lbctl fk -Ln

# Two long transfers per service (rr: one on each real server), each into a slow sink so that
# the real server has unread data when it dies.
HOLDS=()
for port in 80 81; do
  for k in 1 2; do
    out="$DP_TMP/hold-$port-$k"
    ip netns exec "$(n c)" python3 "$XFER" hold $VIP $port "$out" 15 >"$out.log" 2>&1 &
    DP_PIDS+=($!)
    HOLDS+=("$out")
  done
done
for out in "${HOLDS[@]}"; do
  dp_wait 10 test -s "$out" || dp_fail "transfer $out did not start: $(cat "$out.log")"
done
on_s1=()
on_s2=()
for out in "${HOLDS[@]}"; do
  case $(head -n 1 "$out") in
    S1) on_s1+=("$out") ;;
    S2) on_s2+=("$out") ;;
    *) dp_fail "transfer $out: no server name" ;;
  esac
done
((${#on_s1[@]} == 2 && ${#on_s2[@]} == 2)) ||
  dp_fail "rr did not spread the transfers: S1 has ${#on_s1[*]}, S2 ${#on_s2[*]}"
sleep 1  # the transfers are under way (the sink's buffers fill)
for out in "${HOLDS[@]}"; do
  [[ $(wc -l <"$out") -eq 1 ]] || dp_fail "transfer $out ended before the kill: $(cat "$out")"
done

ended() { [[ $(wc -l <"$1") -ge 2 ]]; }

# --- kill S1 outright.
kill -KILL "${SRV_PID[1]}"
t0=$SECONDS
for out in "${on_s1[@]}"; do
  dp_wait 20 ended "$out" || dp_fail "S1's client $out neither reset nor ended within 20 s"
  how=$(sed -n 2p "$out")
  echo "client $(basename "$out") on S1: $how after $((SECONDS - t0)) s"
  [[ $how == reset ]] || dp_fail "S1's client $out: want a reset, got '$how'"
done
# S2's transfers were not touched.
for out in "${on_s2[@]}"; do
  [[ $(wc -l <"$out") -eq 1 ]] || dp_fail "S2's client $out ended: $(sed -n 2p "$out")"
done

# --- the health check takes S1 out of the NAT service; new connections all go to S2.
dp_wait 15 rs_is $VIP:80 1 || dp_fail "dead S1 not removed within 15 s"
echo "S1 removed from $VIP:80 after $((SECONDS - t0)) s"
lbctl fk -Ln
answers=()
for i in $(seq 10); do
  a=$(ip netns exec "$(n c)" python3 "$XFER" who $VIP 80) || dp_fail "new connection $i failed"
  answers+=("$a")
done
echo "new connections: ${answers[*]}"
[[ $(dp_count S2 "${answers[@]}") -eq 10 ]] || dp_fail "a new connection went to dead S1: ${answers[*]}"
for out in "${on_s2[@]}"; do
  [[ $(wc -l <"$out") -eq 1 ]] || dp_fail "S2's client $out ended: $(sed -n 2p "$out")"
done
echo "PASS fault_server_kill"
