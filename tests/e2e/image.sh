#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The lbd image the e2e tests share (ctest fixture lbd_image), so one ctest run builds it once:
# a cold build compiles lbd, lbctl and lbd-controller inside the container (~25 min on 2 busy
# cores here).
#   tests/e2e/image.sh build IMAGE    starts dockerd if needed, makes the base image offline,
#                                     docker build
#   tests/e2e/image.sh remove IMAGE   removes it and the build stage's dangling image
# Exit 77 = skipped (not root / no docker), except under CI=true where that is a failure.
set -euo pipefail
src=${LBD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
img=${2:?usage: image.sh build|remove IMAGE}
skip() { if [ "${CI:-}" = true ]; then echo "FAIL: $*"; exit 1; fi; echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v dockerd >/dev/null || skip "no docker engine (apt-get install docker.io)"
case $1 in
  build)
    bash "$src/scripts/start-dockerd.sh"
    bash "$src/scripts/make-base-image.sh"
    t0=$SECONDS
    docker build --network host -q -t "$img" "$src" >/dev/null
    echo "$img built in $((SECONDS - t0)) s"
    ;;
  remove)
    docker rmi "$img" >/dev/null 2>&1 || true
    docker image prune -f --filter label=lbd.stage=build >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 build|remove IMAGE" >&2; exit 2 ;;
esac
