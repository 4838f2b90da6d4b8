#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Starts Debian's dockerd when no engine answers; waits (bounded) until it does. Idempotent.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install docker.io" >&2; exit 1; }
if ! pgrep -x containerd >/dev/null && command -v containerd >/dev/null; then
  nohup containerd >/var/log/lbd-containerd.log 2>&1 &
fi
nohup dockerd --host=unix:///var/run/docker.sock >/var/log/lbd-dockerd.log 2>&1 &
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 60 s:" >&2
tail -20 /var/log/lbd-dockerd.log >&2
exit 1
