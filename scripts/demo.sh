#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd in 60 seconds: run as root on a fresh Debian bookworm machine, from the repository root.
#
#   sudo scripts/demo.sh
#
# Installs what is missing (apt-get), builds if needed, then builds a small network of
# namespaces on 198.18.0.0/15 (the benchmarking range; nothing leaves the machine):
#
#   client 198.18.1.2 ── lbd 198.18.1.1 | 198.18.2.1 ── switch ── rs1 198.18.2.11
#                         (lbd0 TUN)                           ├── rs2 198.18.2.12
#                                                              └── rs3 198.18.2.13
#
# starts lbd in its namespace, adds a virtual service 198.18.1.100:80 (round robin, NAT) with
# three real servers that answer their own name, sends 30 HTTP requests from the client,
# prints who answered and `lbctl -Ln --stats`, and removes everything on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-$ROOT/build}
VIP=198.18.1.100
PFX=lbddemo$$
TMP=$(mktemp -d /tmp/lbd-demo.XXXXXX)
PIDS=()
NSS=()

say() { printf '\n== %s\n' "$*"; }

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
  for ns in "${NSS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -f $TMP/lbd.log ]]; then
    echo "--- lbd log (tail)"
    tail -n 20 "$TMP/lbd.log"
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {  # wait_for SECONDS CMD...: poll every 50 ms, bounded
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.05
  done
}

[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (namespaces, TUN)" >&2; exit 1; }
[[ -c /dev/net/tun ]] || { echo "demo.sh: /dev/net/tun is missing" >&2; exit 1; }

# 1. Packages: the build's and the demo's.
PKGS=(cmake g++ pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
      protobuf-compiler libabsl-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
      libnl-route-3-dev libmnl-dev libbpf-dev clang iproute2 curl python3 socat iperf3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  say "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Build (only if the binaries are missing).
LBD=$BUILD/bin/lbd
LBCTL=$BUILD/bin/lbctl
if [[ ! -x $LBD || ! -x $LBCTL ]]; then
  say "building lbd and lbctl in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" --target lbd lbctl -j"$(nproc)"
fi

# 3. Namespaces.
say "namespaces: client, lbd, switch, rs1..rs3 (prefix $PFX)"
ns() { echo "$PFX-$1"; }
mkns() { ip netns add "$(ns "$1")"; NSS+=("$(ns "$1")"); ip -n "$(ns "$1")" link set lo up; }
veth() {  # veth NS_A IF_A NS_B IF_B
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
  ip -n "$(ns "$1")" link set "$2" up
  ip -n "$(ns "$3")" link set "$4" up
}
mkns client
mkns lbd
mkns switch
veth client eth0 lbd lan0
ip -n "$(ns client)" addr add 198.18.1.2/24 dev eth0
ip -n "$(ns lbd)" addr add 198.18.1.1/24 dev lan0
ip -n "$(ns switch)" link add br0 type bridge
ip -n "$(ns switch)" link set br0 up
veth lbd srv0 switch p0
ip -n "$(ns switch)" link set p0 master br0
ip -n "$(ns lbd)" addr add 198.18.2.1/24 dev srv0
for i in 1 2 3; do
  mkns "rs$i"
  veth "rs$i" eth0 switch "p$i"
  ip -n "$(ns switch)" link set "p$i" master br0
  ip -n "$(ns "rs$i")" addr add "198.18.2.1$i/24" dev eth0
  # NAT: replies to clients go back through lbd.
  ip -n "$(ns "rs$i")" route add 198.18.1.0/24 via 198.18.2.1
  mkdir -p "$TMP/rs$i"
  echo "rs$i" >"$TMP/rs$i/index.html"
  ip netns exec "$(ns "rs$i")" python3 -m http.server 80 --bind "198.18.2.1$i" \
    --directory "$TMP/rs$i" >/dev/null 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do
  wait_for 10 sh -c "ip netns exec $(ns "rs$i") ss -ltnH 'sport = :80' | grep -q ." ||
    { echo "rs$i: HTTP server did not start" >&2; exit 1; }
done

# 4. lbd. The VIP is in the client's subnet: lbd answers ARP for it (proxy ARP) and installs
#    the routes and rules it needs itself.
say "starting lbd in $(ns lbd)"
SOCK=$TMP/lbd.sock
ip netns exec "$(ns lbd)" "$LBD" --tun=lbd0 --mode=gateway --listen="unix://$SOCK" \
  >"$TMP/lbd.log" 2>&1 &
LBD_PID=$!
PIDS+=($LBD_PID)
export LBD_SERVER="unix://$SOCK"
wait_for 15 "$LBCTL" -Ln || { echo "lbd did not start" >&2; exit 1; }

say "lbctl -A -t $VIP:80 -s rr; three real servers with -m (NAT)"
"$LBCTL" -A -t $VIP:80 -s rr
for i in 1 2 3; do "$LBCTL" -a -t $VIP:80 -r "198.18.2.1$i:80" -m; done
"$LBCTL" -Ln

# 5. Traffic.
say "30 HTTP requests from the client to http://$VIP/"
declare -A count=()
for i in $(seq 30); do
  who=$(ip netns exec "$(ns client)" curl -s --max-time 5 "http://$VIP/") ||
    { echo "request $i failed" >&2; exit 1; }
  count[$who]=$((${count[$who]:-0} + 1))
  printf '%s ' "$who"
done
echo
say "spread"
for k in $(printf '%s\n' "${!count[@]}" | sort); do printf '  %s: %d\n' "$k" "${count[$k]}"; done

say "lbctl -Ln --stats"
"$LBCTL" -Ln --stats

# 6. Stop lbd cleanly: it removes its routes, rules, proxy entries and sysctls.
kill -TERM $LBD_PID
wait_for 15 sh -c "! kill -0 $LBD_PID" || { echo "lbd did not stop" >&2; exit 1; }
say "done; cleaning up"
