#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The local single-node cluster by hand (tests/testlib/k8s_cluster.sh), for poking at the chart:
#   tests/e2e/k8s/cluster.sh up [IMAGE...]   starts it, imports the docker IMAGEs, writes
#                                            /run/lbd-k8s-cluster.env (KUBECONFIG=...), and
#                                            stays in the foreground until INT/TERM
#   tests/e2e/k8s/cluster.sh down            TERM to that process: it removes everything it made
# As root. `source /run/lbd-k8s-cluster.env; kubectl ...` (kubectl from scripts/k8s-build.sh).
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
envfile=/run/lbd-k8s-cluster.env
case ${1:-} in
  up)
    shift
    source "$src/tests/testlib/k8s_cluster.sh"
    tmp=$(mktemp -d /tmp/lbd-k8s-cluster.XXXXXX)
    sleeper=
    trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; k8s_cluster_stop; rm -rf "$tmp" "$envfile"' EXIT
    trap 'exit 0' INT TERM
    k8s_cluster_start "$tmp/cluster"
    [ $# -gt 0 ] && k8s_cluster_load_image "$@"
    {
      echo "export KUBECONFIG=$KUBECONFIG"
      echo "export PATH=$K8S_BIN:\$PATH"
      echo "LBD_K8S_CLUSTER_PID=$$"
    } >"$envfile"
    echo "cluster up: source $envfile; kubectl get nodes   (stop: $0 down, or Ctrl-C)"
    sleep infinity &
    sleeper=$!
    wait "$sleeper" || true
    ;;
  down)
    [ -f "$envfile" ] || { echo "no cluster ($envfile missing)"; exit 0; }
    pid=$(sed -n 's/^LBD_K8S_CLUSTER_PID=//p' "$envfile")
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
    echo "cluster process $pid still running after 120 s" >&2
    exit 1
    ;;
  *)
    echo "usage: $0 up [IMAGE...] | down" >&2
    exit 2
    ;;
esac
