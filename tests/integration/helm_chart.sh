#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Helm chart (issue 13) checked the way CI can without a cluster: `helm lint` and
# `helm template` with its default values and every values file under deploy/helm/lbd/ci/, each
# rendering sent to a real kube-apiserver (the test bed) with `kubectl apply --dry-run=server`,
# so every object is validated by the API server's own schemas and admission; bad values are
# refused by values.schema.json with the field named.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/testlib/k8s_testbed.sh

skip() {
  if [[ "${CI:-}" == "true" ]]; then echo "FAIL (CI=true): $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2
  exit 77
}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || skip "needs root (the binary cache is /var/cache/lbd-k8s)"
for t in curl openssl python3; do command -v "$t" >/dev/null || skip "needs $t"; done
HELM=$(bash scripts/k8s-helm.sh | tail -1)
CHART=deploy/helm/lbd

TMP=$(mktemp -d /tmp/lbd-it-helm.XXXXXX)
cleanup() {
  local rc=$?
  set +e
  [[ $rc -ne 0 && -n "${K8S_TESTBED_DIR:-}" && -d "$K8S_TESTBED_DIR" ]] && _k8s_tail_logs
  k8s_testbed_stop
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HELM" lint "$CHART" --strict >"$TMP/lint" 2>&1 || { cat "$TMP/lint"; fail "helm lint"; }
for f in "$CHART"/ci/*.yaml; do
  "$HELM" lint "$CHART" --strict -f "$f" >"$TMP/lint" 2>&1 || { cat "$TMP/lint"; fail "helm lint -f $f"; }
done
echo "helm lint: ok (defaults and $(ls "$CHART"/ci/*.yaml | wc -l) values files)"

# Bad values: refused, naming the field.
bad() {  # bad FIELD --set ...
  local field=$1 out
  shift
  if out=$("$HELM" template t "$CHART" "$@" 2>&1); then fail "helm template $* was accepted"; fi
  [[ $out == *"$field"* ]] || fail "helm template $*: the error does not name $field: $out"
}
bad gateway.kind --set gateway.kind=StatefulSet
bad controller.drainTimeout --set controller.drainTimeout=soon
bad injector.failurePolicy --set injector.failurePolicy=Maybe
bad gateway.connCapacity --set gateway.connCapacity=10
bad replica --set gateway.replica=2
echo "bad values: refused with the field named"

k8s_testbed_start "$TMP/k8s"
k8s_kubectl create namespace lbd-system >/dev/null
# No kube-controller-manager here: the helm test pod's ServiceAccount is made by hand.
k8s_kubectl -n lbd-system create serviceaccount default >/dev/null
render=("defaults:" "injector:--set injector.enabled=true")
for f in "$CHART"/ci/*.yaml; do render+=("$(basename "$f"):-f $f"); done
for r in "${render[@]}"; do
  name=${r%%:*} args=${r#*:}
  # shellcheck disable=SC2086
  "$HELM" template lb "$CHART" --namespace lbd-system $args >"$TMP/out.yaml"
  kinds=$(grep -c '^kind:' "$TMP/out.yaml")
  if ! k8s_kubectl apply --dry-run=server -n lbd-system -f "$TMP/out.yaml" >"$TMP/dry" 2>&1; then
    cat "$TMP/dry"
    fail "kubectl apply --dry-run=server refused the $name rendering"
  fi
  n=$(grep -c 'server dry run' "$TMP/dry")
  [[ $n -eq $kinds ]] || { cat "$TMP/dry"; fail "$name: $kinds objects rendered, $n accepted"; }
  echo "$name: $n objects accepted by the API server (dry run)"
done
echo "PASS helm_chart"
