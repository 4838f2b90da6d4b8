#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The sidecar injector (issue 13) against a real kube-apiserver: lbd-controller --lbd=none serves
# the webhook, with the injection template the Helm chart renders (applied as the chart's
# ConfigMap and read back), behind a MutatingWebhookConfiguration the API server calls.
#  - a pod annotated lbd.io/inject: "true" is stored with lbd (--mode=sidecar), lbd-controller
#    and the socket volume added, and lbd.io/injected: "true";
#  - a pod without the annotation is stored as written;
#  - a pod whose volume clashes with the sidecar's is refused with the volume's name;
#  - the injector's /metrics counts one injection and one refusal.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source tests/testlib/k8s_testbed.sh

skip() {
  if [[ "${CI:-}" == "true" ]]; then echo "FAIL (CI=true): $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2
  exit 77
}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || skip "needs root (the binary cache is /var/cache/lbd-k8s)"
for t in curl openssl python3; do command -v "$t" >/dev/null || skip "needs $t"; done
CTL=${LBD_CONTROLLER_BIN:?LBD_CONTROLLER_BIN (ctest sets it)}
HELM=$(bash scripts/k8s-helm.sh | tail -1)

TMP=$(mktemp -d /tmp/lbd-it-inject.XXXXXX)
ctl_pid=
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    [[ -f $TMP/injector.log ]] && { echo "--- injector log"; tail -30 "$TMP/injector.log"; } >&2
    [[ -n "${K8S_TESTBED_DIR:-}" && -d "$K8S_TESTBED_DIR" ]] && _k8s_tail_logs
  fi
  if [[ -n $ctl_pid ]]; then kill "$ctl_pid" 2>/dev/null || true; wait "$ctl_pid" 2>/dev/null || true; fi
  k8s_testbed_stop
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

k8s_testbed_start "$TMP/k8s"

# The chart's injection template, as the chart renders it, stored by the API server and read back.
"$HELM" template lb deploy/helm/lbd --namespace lbd-system --set injector.enabled=true \
  --show-only templates/injector.yaml >"$TMP/injector.yaml"
python3 - "$TMP/injector.yaml" >"$TMP/cm.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print(next(d for d in docs if "kind: ConfigMap" in d))
PY
k8s_kubectl create namespace lbd-system >/dev/null
k8s_kubectl -n lbd-system apply -f "$TMP/cm.yaml" >/dev/null
k8s_kubectl -n lbd-system get configmap lb-lbd-injector-template \
  -o jsonpath='{.data.template\.json}' >"$TMP/template.json"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); assert [c["name"] for c in t["containers"]] == ["lbd","lbd-controller"], t' "$TMP/template.json" ||
  fail "the chart's template.json is not lbd + lbd-controller"

# The injector: a serving certificate for 127.0.0.1 from the test bed's CA.
k8s_testbed_issue_cert injector lbd-injector "" "IP:127.0.0.1" >/dev/null
ports=$(_k8s_free_ports 2)
port=${ports% *} mport=${ports#* }
"$CTL" --lbd=none --webhook="127.0.0.1:$port" \
  --webhook-tls-cert="$K8S_TESTBED_DIR/certs/injector.crt" \
  --webhook-tls-key="$K8S_TESTBED_DIR/certs/injector.key" \
  --inject-template="$TMP/template.json" --metrics="127.0.0.1:$mport" >"$TMP/injector.log" 2>&1 &
ctl_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1 && break
  kill -0 "$ctl_pid" 2>/dev/null || fail "lbd-controller --lbd=none exited"
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$mport/readyz" >/dev/null || fail "injector not ready in 10 s"

cat >"$TMP/webhook.yaml" <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: lbd-injector-test}
webhooks:
  - name: inject.lbd.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 10
    clientConfig:
      url: https://127.0.0.1:$port/inject
      caBundle: $(base64 -w0 "$K8S_CA_CERT")
    rules:
      - {operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: Namespaced}
    namespaceSelector:
      matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: ["kube-system", "lbd-system"]}
YAML
k8s_kubectl apply -f "$TMP/webhook.yaml" >/dev/null
k8s_kubectl create namespace shop >/dev/null
# No kube-controller-manager here: the namespace's default ServiceAccount is made by hand.
k8s_kubectl -n shop create serviceaccount default >/dev/null

pod() {  # pod NAME ANNOTATION(true|none) [extra volume name]
  local vols=""
  [[ -n ${3:-} ]] && vols="  volumes: [{name: $3, emptyDir: {}}]"
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  $([[ $2 == true ]] && echo 'annotations: {lbd.io/inject: "true"}')
spec:
  containers: [{name: app, image: "debian:bookworm-slim", command: ["sleep", "infinity"]}]
$vols
YAML
}
containers() { k8s_kubectl -n shop get pod "$1" -o jsonpath='{.spec.containers[*].name}'; }

# The API server's webhook client may need a moment to see the new configuration: retry the
# first create until the pod comes back injected or 30 s pass.
injected=""
for _ in $(seq 1 30); do
  pod web true | k8s_kubectl -n shop create -f - >"$TMP/create.out" 2>&1 || { sleep 1; continue; }
  injected=$(containers web)
  [[ $injected == "app lbd lbd-controller" ]] && break
  k8s_kubectl -n shop delete pod web --grace-period=0 --force >/dev/null 2>&1 || true
  sleep 1
done
[[ $injected == "app lbd lbd-controller" ]] ||
  fail "annotated pod has containers '$injected' ($(cat "$TMP/create.out"))"
args=$(k8s_kubectl -n shop get pod web -o jsonpath='{.spec.containers[1].args}')
[[ $args == *--mode=sidecar* ]] || fail "injected lbd runs '$args', not --mode=sidecar"
[[ $(k8s_kubectl -n shop get pod web -o jsonpath='{.metadata.annotations.lbd\.io/injected}') == true ]] ||
  fail "no lbd.io/injected annotation"
vols=$(k8s_kubectl -n shop get pod web -o jsonpath='{.spec.volumes[*].name}')
[[ $vols == *lbd-run* ]] || fail "injected pod lacks the lbd-run volume ($vols)"
caps=$(k8s_kubectl -n shop get pod web -o jsonpath='{.spec.containers[1].securityContext.capabilities.add}')
[[ $caps == *NET_ADMIN* && $caps != *SYS_ADMIN* ]] || fail "injected lbd capabilities: $caps"
echo "annotated pod: containers '$injected', volumes '$vols'"

pod plain none | k8s_kubectl -n shop create -f - >/dev/null
[[ $(containers plain) == app ]] || fail "a pod without the annotation was changed: $(containers plain)"
echo "plain pod: unchanged"

if out=$(pod clash true lbd-run | k8s_kubectl -n shop create -f - 2>&1); then
  fail "a pod with a clashing volume was admitted: $out"
fi
[[ $out == *"volume lbd-run"* ]] || fail "refusal does not name the volume: $out"
echo "clashing pod refused: $out"

m=$(curl -fsS "http://127.0.0.1:$mport/metrics")
grep -qx 'lbd_controller_webhook_injected_total 1' <<<"$m" || fail "metrics: $m"
grep -qx 'lbd_controller_webhook_refused_total 1' <<<"$m" || fail "metrics: $m"
echo "PASS controller_injector"
