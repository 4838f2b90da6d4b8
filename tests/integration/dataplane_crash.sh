#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Nothing lbd installs outlives it, even a `kill -9`: every route, rule, address, proxy entry
# and sysctl (global and per device) is back to what it was once lbd stops, and after a
# SIGKILL the next lbd started in that namespace removes the leftovers (protocol-245 routes,
# rules and proxy entries, a moved local rule) and puts back the sysctls the crashed run had
# changed (from its journal under /run/lbd) before it installs its own.
# Gateway (NAT v4/v6 with proxy ARP/NDP, full NAT local address) and sidecar modes.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init crash

VIP=198.18.1.100
VIP6=2001:2:1::100

dp_ns l
dp_ns x
dp_link l l0 x x0
dp_link l l1 x x1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 2001:2:1::1/64 dev l0 nodad
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" addr add 2001:2:2::1/64 dev l1 nodad
ip -n "$(n x)" addr add 198.18.1.2/24 dev x0
ip -n "$(n x)" addr add 198.18.2.11/24 dev x1
ip -n "$(n x)" route add 198.18.1.100/32 via 198.18.1.1 dev x0 2>/dev/null || true
ip -n "$(n x)" -6 addr add 2001:2:2::11/64 dev x1 nodad

configure() {  # configure TAG: NAT v4 + v6, full NAT with a local address on l1's subnet.
  lbctl "$1" -A -t $VIP:80 -s rr
  lbctl "$1" -a -t $VIP:80 -r 198.18.2.11:80 -m
  lbctl "$1" -A -t "[$VIP6]:80" -s rr
  lbctl "$1" -a -t "[$VIP6]:80" -r "[2001:2:2::11]:80" -m
  lbctl "$1" -A -u $VIP:53 -s rr
  lbctl "$1" -P -u $VIP:53 -z 198.18.2.100
  lbctl "$1" -a -u $VIP:53 -r 198.18.2.11:53 --fullnat
}

leftovers() {  # leftovers NS: lbd's rules and proxy entries, one per line
  ip -n "$(n "$1")" rule show | grep -E '^1[0-9][0-9]:' || true
  ip -n "$(n "$1")" -6 rule show | grep -E '^1[0-9][0-9]:' || true
  ip -n "$(n "$1")" neigh show proxy
  ip -n "$(n "$1")" -6 neigh show proxy
}

# --- gateway: clean stop first.
before=$(dp_kernel_state l)
dp_lbd l g1 --tun=lbd0 --workers=1 --mode=gateway
configure g1
during=$(dp_kernel_state l)
[[ "$during" != "$before" ]] || dp_fail "lbd changed nothing (the test would prove nothing)"
dp_lbd_stop g1
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "gateway: kernel state differs after a clean stop"
fi

# --- gateway: kill -9 leaves rules, proxy entries and sysctls behind ...
dp_lbd l g2 --tun=lbd0 --workers=1 --mode=gateway
configure g2
dp_lbd_kill9 g2
crashed=$(dp_kernel_state l)
left=$(leftovers l)
echo "after kill -9 (gateway):"
echo "$left"
[[ $(echo "$left" | grep -c 'pref\|^1[0-9][0-9]:' || true) -ge 3 ]] ||
  dp_fail "kill -9 left no rules behind (the test would prove nothing)"
echo "$left" | grep -q "$VIP" || dp_fail "kill -9 left no proxy entry behind"
ip netns exec "$(n l)" sysctl -n net.ipv4.ip_forward | grep -qx 1 ||
  dp_fail "kill -9 did not leave ip_forward=1 behind"
# ... which the next lbd removes at start (it has no services yet: none of them may remain) ...
dp_lbd l g3 --tun=lbd0 --workers=1 --mode=gateway
left=$(leftovers l | grep -Ev '^1(00|50):' || true)
[[ -z $left ]] || dp_fail "the new lbd kept the crashed run's leftovers: $left"
grep -q "restoring leftover sysctl" "$DP_TMP/lbd-g3.log" ||
  dp_fail "the new lbd did not restore the crashed run's sysctls"
# ... and after it stops, the namespace is as it was before either run.
dp_lbd_stop g3
after=$(dp_kernel_state l)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "gateway: kernel state differs after kill -9 + restart + stop"
fi
echo "gateway: clean after stop, and after kill -9 + restart + stop"

# --- sidecar: the local rule moved to pref 150 and early demux off; kill -9; restart; stop.
dp_ns app
dp_link app eth0 x xa
ip -n "$(n app)" addr add 198.18.3.2/24 dev eth0
ip -n "$(n x)" addr add 198.18.3.11/24 dev xa
before=$(dp_kernel_state app)
dp_lbd app s1 --tun=lbd0 --workers=1 --mode=sidecar
lbctl s1 -A -t 198.18.100.1:80 -s rr
lbctl s1 -a -t 198.18.100.1:80 -r 198.18.3.11:80 -m
dp_lbd_kill9 s1
ip -n "$(n app)" rule show | grep -q '^0:' && dp_fail "sidecar: expected the local rule moved"
ip netns exec "$(n app)" sysctl -n net.ipv4.tcp_early_demux | grep -qx 0 ||
  dp_fail "sidecar: kill -9 did not leave tcp_early_demux=0 behind"
dp_lbd app s2 --tun=lbd0 --workers=1 --mode=sidecar
dp_lbd_stop s2
after=$(dp_kernel_state app)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  dp_fail "sidecar: kernel state differs after kill -9 + restart + stop"
fi
echo "sidecar: clean after kill -9 + restart + stop"
echo "PASS dataplane_crash"
