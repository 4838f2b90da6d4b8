#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the running kernel does with an encapsulated TCP super-packet handed to it whole
# (tests/perf/tunnel_gso_probe.cc; figures in docs/tunnel-speed.md). Root. Not pass/fail.
#   balancer ns  gt0 (TUN/TAP, the probe writes here)   va 198.18.72.1/24 ── vb 198.18.72.2/24  server ns
# Usage: tunnel_gso_probe.sh [count] [modes...]
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
count=${1:-3000}
shift || true
modes=${*:-"tun-gue tun-gue-opts tap-gue tun-ipip tun-gre pkt-gue pkt-seg"}
tmp=$(mktemp -d /tmp/tgso.XXXXXX)
A=tgso-a-$$
B=tgso-b-$$
rpid=
cleanup() {
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
g++ -O2 -std=c++20 -o "$tmp/probe" "$src/tests/perf/tunnel_gso_probe.cc" || exit 1
uname -r
for m in $modes; do
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  ip netns add "$A"
  ip netns add "$B"
  ip link add va netns "$A" type veth peer name vb netns "$B"
  ip -n "$A" addr add 198.18.72.1/24 dev va
  ip -n "$B" addr add 198.18.72.2/24 dev vb
  ip -n "$A" link set va up
  ip -n "$B" link set vb up
  ip -n "$A" link set lo up
  ip -n "$B" link set lo up
  ip netns exec "$A" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
  ip netns exec "$B" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vb.rp_filter=0
  # VA_SEG=1: the balancer's veth cannot offload UDP tunnel segmentation, so the kernel
  # segments there in software (validate_xmit_skb), as it would before a NIC without it.
  [ "${VA_SEG:-0}" = 1 ] && ip netns exec "$A" ethtool -K va tx-udp_tnl-segmentation off \
    tx-udp_tnl-csum-segmentation off >/dev/null
  # VA_CSUM=0: nor checksums (a NIC without offloads): the kernel finishes them in software.
  [ "${VA_CSUM:-1}" = 0 ] && ip netns exec "$A" ethtool -K va tx off >/dev/null
  dmac=$(ip netns exec "$B" cat /sys/class/net/vb/address)
  ip -n "$A" neigh replace 198.18.72.2 lladdr "$dmac" dev va
  timeout 60 ip netns exec "$B" "$tmp/probe" recv 8 >"$tmp/recv.out" 2>&1 &
  rpid=$!
  for _ in $(seq 50); do grep -q ready "$tmp/recv.out" 2>/dev/null && break; sleep 0.1; done
  echo "== $m"
  timeout 60 ip netns exec "$A" "$tmp/probe" send "$m" "$count" "$dmac"
  ip -n "$A" -s link show gt0 2>/dev/null | sed -n '3,6p'
  ip -n "$A" -s link show va | sed -n '3,6p'
  wait "$rpid" 2>/dev/null  # recv ends a second after the last packet, or at 8 s
  rpid=
  cat "$tmp/recv.out"
done
