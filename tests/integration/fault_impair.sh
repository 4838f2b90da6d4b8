#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults (issue 17): transfers through lbd under packet loss, duplication and reordering arrive
# byte-exact, NAT and full NAT, in both directions (4 MiB up and 4 MiB down per service, sha256
# checked at both ends).
#
# The impairment sits in the client's and the real server's own namespaces, on what they send
# and receive, so that lbd (and its tc fast path) meets lost, duplicated and reordered segments
# of both directions. With sch_netem (`tc qdisc ... netem`) it is netem; this kernel has none
# (CONFIG_NET_SCH_NETEM unset), so otherwise it is built from what every kernel here has:
#   loss:        nft `numgen random mod 100 < 2 drop`, output and input
#   duplication: nft `numgen random mod 100 < 2 dup to NEXT-HOP device DEV`, output
#   reordering:  iptables-nft NFQUEUE and lb_nfq_reorder (tests/integration/nfq_reorder.c), which
#                holds back every 7th packet and lets it go after the next one
# Segmentation offloads are off on the end hosts' links, so that the impairment works on
# MTU-sized segments rather than on 64 KiB GSO packets.
# The test fails unless the impairment happened: every counter (drops, duplicates, reordered
# packets) > 0 in each phase, and the client and server retransmitted (nstat TcpRetransSegs).
#
#   client c (c0 198.18.1.2) -- lbd ns l (l0 198.18.1.1 | l1 198.18.2.1) -- real server s (198.18.2.11)
#   VIP 198.18.100.1 (client route via lbd): :80 NAT, :81 full NAT (local address 198.18.2.100).
source "$(dirname "$0")/dataplane_lib.sh"
dp_init fimpair

: "${NFQ_REORDER_BIN:?NFQ_REORDER_BIN must point at the built lb_nfq_reorder}"
for t in nft iptables-nft ethtool nstat sha256sum; do
  command -v "$t" >/dev/null || dp_skip "needs $t"
done

VIP=198.18.100.1
LADDR=198.18.2.100
BYTES=$((4 << 20))
XFER="$(dirname "$0")/fault_xfer.py"

dp_ns c
dp_ns l
dp_ns s
dp_link c c0 l l0
dp_link l l1 s s0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n c)" route add 198.18.100.0/24 via 198.18.1.1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n s)" addr add 198.18.2.11/24 dev s0
ip -n "$(n s)" route add 198.18.1.0/24 via 198.18.2.1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
for h in c:c0 s:s0; do
  ip netns exec "$(n "${h%%:*}")" ethtool -K "${h##*:}" tso off gso off gro off >/dev/null 2>&1 || true
done

ip netns exec "$(n s)" python3 "$XFER" serve 198.18.2.11 5001 S1 >"$DP_TMP/xfer-s1.log" 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s tcp 5001 || dp_fail "transfer server did not start"

dp_lbd l fi --tun=lbd0 --workers=2 --mode=gateway
lbctl fi -A -t $VIP:80 -s rr
lbctl fi -a -t $VIP:80 -r 198.18.2.11:5001 -m
lbctl fi -A -t $VIP:81 -s rr
lbctl fi -P -t $VIP:81 -z $LADDR
lbctl fi -a -t $VIP:81 -r 198.18.2.11:5001 --fullnat
lbctl fi -Ln

# Both paths work before any impairment (a failure here is not the impairment's).
ip netns exec "$(n c)" python3 "$XFER" xfer $VIP 80 65536 1 || dp_fail "NAT transfer without faults"
ip netns exec "$(n c)" python3 "$XFER" xfer $VIP 81 65536 2 || dp_fail "full NAT transfer without faults"

# --- the impairment.
IMPAIR=""
if tc -n "$(n c)" qdisc add dev c0 root netem loss 2% duplicate 2% reorder 25% delay 1ms 2>/dev/null; then
  IMPAIR=netem
  tc -n "$(n s)" qdisc add dev s0 root netem loss 2% duplicate 2% reorder 25% delay 1ms ||
    dp_fail "netem on the real server's link"
else
  IMPAIR=nft
  # nft_impair NS DEV NEXTHOP OUT_MATCH IN_MATCH
  nft_impair() {
    ip netns exec "$(n "$1")" nft -f - <<EOF
table ip fault {
  chain out {
    type filter hook output priority 0;
    $4 numgen random mod 100 < 2 counter drop comment "loss"
    $4 numgen random mod 100 < 2 counter dup to $3 device $2 comment "dup"
  }
  chain in {
    type filter hook input priority 0;
    $5 numgen random mod 100 < 2 counter drop comment "loss"
  }
}
EOF
  }
  nft_impair c c0 198.18.1.1 "ip daddr $VIP tcp dport { 80, 81 }" "ip saddr $VIP tcp sport { 80, 81 }" ||
    dp_fail "nft impairment in the client"
  nft_impair s s0 198.18.2.1 "tcp sport 5001" "tcp dport 5001" ||
    dp_fail "nft impairment in the real server"
  ip netns exec "$(n c)" iptables-nft -t mangle -A OUTPUT -d $VIP -p tcp \
    -j NFQUEUE --queue-num 3 --queue-bypass || dp_fail "NFQUEUE rule in the client"
  ip netns exec "$(n s)" iptables-nft -t mangle -A OUTPUT -p tcp --sport 5001 \
    -j NFQUEUE --queue-num 3 --queue-bypass || dp_fail "NFQUEUE rule in the real server"
  for h in c s; do
    ip netns exec "$(n "$h")" "$NFQ_REORDER_BIN" 3 7 "$DP_TMP/reorder-$h.stats" \
      >"$DP_TMP/reorder-$h.log" 2>&1 &
    DP_PIDS+=($!)
    dp_wait 10 test -s "$DP_TMP/reorder-$h.stats" || dp_fail "lb_nfq_reorder ($h) did not start"
  done
fi
echo "impairment: $IMPAIR"

# counts: "drops dups reordered" summed over both end hosts (netem: drops only; the
# retransmissions prove the rest).
counts() {
  if [[ $IMPAIR == netem ]]; then
    local d
    d=$( (tc -n "$(n c)" -s qdisc show dev c0; tc -n "$(n s)" -s qdisc show dev s0) |
      awk '/dropped/ { gsub(",", "", $7); s += $7 } END { print s + 0 }')
    echo "$d 0 0"
    return
  fi
  local h drops=0 dups=0 reord=0 line p
  for h in c s; do
    while read -r line; do
      p=$(sed -E 's/.*counter packets ([0-9]+) .*/\1/' <<<"$line")
      case $line in
        *'"loss"'*) drops=$((drops + p)) ;;
        *'"dup"'*) dups=$((dups + p)) ;;
      esac
    done < <(ip netns exec "$(n "$h")" nft list table ip fault | grep 'counter packets')
    p=$(awk '{ print $4 }' "$DP_TMP/reorder-$h.stats")
    reord=$((reord + p))
  done
  echo "$drops $dups $reord"
}

retrans() {  # retrans NS: TcpRetransSegs (absolute; nstat's history file is left alone)
  ip netns exec "$(n "$1")" nstat -asz TcpRetransSegs | awk '/TcpRetransSegs/ { print $2 }'
}

phase() {  # phase NAME PORT SEED
  local before after rc=0 rc_c rc_s rc_c0 rc_s0
  rc_c0=$(retrans c)
  rc_s0=$(retrans s)
  read -r -a before < <(counts)
  ip netns exec "$(n c)" timeout 120 python3 "$XFER" xfer $VIP "$2" $BYTES "$3" || rc=$?
  read -r -a after < <(counts)
  rc_c=$(($(retrans c) - rc_c0))
  rc_s=$(($(retrans s) - rc_s0))
  local dd=$((after[0] - before[0])) du=$((after[1] - before[1])) dr=$((after[2] - before[2]))
  echo "$1: dropped $dd, duplicated $du, reordered $dr; retransmitted: client $rc_c, server $rc_s"
  [[ $rc -eq 0 ]] || dp_fail "$1: the transfer under faults was not byte-exact (or timed out)"
  ((dd > 0)) || dp_fail "$1: the impairment dropped nothing"
  if [[ $IMPAIR == nft ]]; then
    ((du > 0)) || dp_fail "$1: the impairment duplicated nothing"
    ((dr > 0)) || dp_fail "$1: the impairment reordered nothing"
  fi
  ((rc_c > 0 && rc_s > 0)) || dp_fail "$1: no retransmission at the client or the server"
}

phase "NAT" 80 10
phase "full NAT" 81 20

# lbd serves on once the faults are gone.
lbctl fi -Ln --stats
ip netns exec "$(n c)" python3 "$XFER" who $VIP 80 | grep -qx S1 || dp_fail "lbd stopped serving"
echo "PASS fault_impair ($IMPAIR)"
