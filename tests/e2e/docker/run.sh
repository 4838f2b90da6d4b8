#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# e2e: lbd's image as a Docker sidecar. Starts dockerd if none answers, makes the base image
# offline if missing, builds lbd's image, puts two backends and an app on an --internal network
# (198.18.0.0/15), attaches lbd to the app's network namespace, configures a VIP with lbctl
# (docker exec, and from the host through the mounted socket), proves 10 sequential connections
# from the app split 5/5, then kills lbd, starts a new one on the same state directory and proves
# the configuration came back and still balances. Removes everything it made.
# Exit 77 = skipped (not root / no docker), except under CI=true where that is a failure.
set -euo pipefail
src=${LBD_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
lbctl_host=${LBCTL_BIN:-$src/build/bin/lbctl}
skip() { if [ "${CI:-}" = true ]; then echo "FAIL: $*"; exit 1; fi; echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v dockerd >/dev/null || skip "no docker engine (apt-get install docker.io)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"

id=$$
net=lbd-e2e-net-$id
img=${LBD_IMAGE:-lbd:e2e-$id}   # LBD_IMAGE: use an image already built (not removed)
tools=lbd-e2e-tools:$id
tmp=$(mktemp -d /tmp/lbd-e2e.XXXXXX)
state=$tmp/state
sock=$tmp/run
mkdir -p "$state" "$sock"
containers=()
cleanup() {
  set +e
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  docker network rm "$net" >/dev/null 2>&1
  [ -n "${LBD_IMAGE:-}" ] || docker rmi "$img" >/dev/null 2>&1
  docker rmi "$tools" >/dev/null 2>&1
  docker image prune -f --filter label=lbd.stage=build >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

bash "$src/scripts/start-dockerd.sh"
bash "$src/scripts/make-base-image.sh"

if [ -z "${LBD_IMAGE:-}" ]; then
  echo "== building $img"
  t0=$(date +%s)
  docker build --network host -q -t "$img" "$src" >/dev/null
  echo "image built in $(( $(date +%s) - t0 )) s"
fi
size=$(docker image inspect -f '{{.Size}}' "$img")
echo "image size: $((size / 1000 / 1000)) MB"
if [ "$size" -ge 150000000 ]; then echo "FAIL: runtime image is $size bytes (limit 150 MB)"; exit 1; fi
if docker run --rm --entrypoint sh "$img" -c 'command -v g++ || command -v cc || test -d /src'; then
  echo "FAIL: runtime image holds a compiler or the build tree"; exit 1
fi

# A small tools image for the backends and the app (socat).
docker build --network host -q -t "$tools" - >/dev/null <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends socat >/dev/null \
 && rm -rf /var/lib/apt/lists/*
DOCKERFILE

docker network create --internal --subnet 198.18.40.0/24 "$net" >/dev/null
vip=198.19.40.1
backend() {  # backend <name> <ip>: every connection gets the backend's name (its hostname)
  local name=$1 addr=$2
  containers+=("$name")
  docker run -d --name "$name" --hostname "$name" --network "$net" --ip "$addr" "$tools" \
    socat TCP-LISTEN:8080,fork,reuseaddr EXEC:/bin/hostname >/dev/null
}
backend b1-$id 198.18.40.11
backend b2-$id 198.18.40.12
app=app-$id
containers+=("$app")
docker run -d --name "$app" --network "$net" --ip 198.18.40.20 "$tools" sleep infinity >/dev/null

start_lbd() {  # start_lbd <name> [docker run options; default: NET_ADMIN and /dev/net/tun]
  local name=$1
  shift
  containers+=("$name")
  [ $# -gt 0 ] || set -- --cap-add NET_ADMIN --device /dev/net/tun
  docker run -d --name "$name" --network "container:$app" "$@" \
    -v "$state:/var/lib/lbd" -v "$sock:/run/lbd" "$img" --mode=sidecar --workers=1 >/dev/null
  set -- "$name"
  local t0 i
  t0=$(date +%s%N)
  for i in $(seq 1 100); do
    if docker exec "$1" lbctl -Ln >/dev/null 2>&1; then
      echo "lbd $1 answering after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL: lbd $1 did not answer within 10 s"; docker logs "$1" 2>&1 | tail -20; return 1
}

spread() {  # 10 sequential connections from the app to the VIP; prints "b1 b2" counts
  docker exec "$app" sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do socat -T3 - TCP:$vip:80 </dev/null; done" \
    | sort | uniq -c | awk '{printf "%s=%s ", $2, $1} END {print ""}'
}

lbd1=lbd1-$id
start_lbd "$lbd1"
docker exec "$lbd1" lbctl -A -t $vip:80 -s rr
docker exec "$lbd1" lbctl -a -t $vip:80 -r 198.18.40.11:8080 -m
# And from the host, through the mounted socket directory.
"$lbctl_host" --server="unix://$sock/lbd.sock" -a -t $vip:80 -r 198.18.40.12:8080 -m
docker exec "$lbd1" lbctl -Ln
got=$(spread)
echo "spread: $got"
want="b1-$id=5 b2-$id=5 "
[ "$got" = "$want" ] || { echo "FAIL: expected '$want'"; docker logs "$lbd1" 2>&1 | tail -20; exit 1; }
before=$(docker exec "$lbd1" lbctl -S -n)

echo "== killing $lbd1, starting a new lbd on the same state directory"
docker kill "$lbd1" >/dev/null
docker rm -f "$lbd1" >/dev/null
# The second one runs as the Helm chart runs it in a pod: no /dev/net/tun from the runtime (lbd
# makes the node), every capability dropped but NET_ADMIN, NET_RAW and MKNOD, a read-only root.
lbd2=lbd2-$id
start_lbd "$lbd2" --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW --cap-add MKNOD --read-only
# The log is read whole first: under pipefail, `docker logs | grep -q` fails when grep exits at the
# match while docker logs still writes (SIGPIPE), which failed this check in a CI run.
lbd2_log=$(docker logs "$lbd2" 2>&1)
grep -q "/dev/net/tun was missing: created it" <<<"$lbd2_log" ||
  { echo "FAIL: lbd did not say it created /dev/net/tun"; echo "$lbd2_log"; exit 1; }
after=$(docker exec "$lbd2" lbctl -S -n)
if [ "$before" != "$after" ]; then
  echo "FAIL: configuration differs after restart"; diff <(echo "$before") <(echo "$after"); exit 1
fi
echo "configuration restored:"; echo "$after"
got=$(spread)
echo "spread after restart: $got"
[ "$got" = "$want" ] || { echo "FAIL: expected '$want'"; exit 1; }
echo "PASS docker sidecar e2e"
