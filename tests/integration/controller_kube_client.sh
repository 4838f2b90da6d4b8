#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd-controller's Kubernetes client (cmd/lbd-controller/kube) against a real kube-apiserver
# (tests/testlib/k8s_testbed.sh), through lbd_controller_kube_probe, which runs the controller's
# two reflectors and writes their caches and counters to a file:
#  - paginated lists (page size 2) with the label selector: only labelled, non-headless objects;
#  - watch: an added, a modified, a deleted and an unlabelled Service and a patched slice show up;
#  - 410: with the probe frozen (SIGSTOP), objects change, etcd is compacted and the API server
#    restarted; resumed, the probe meets 410 Gone, re-lists, and its cache equals the server's
#    (the deleted Service gone by a synthesized deletion);
#  - authentication: bearer token, client certificate, a token file re-read after a 401;
#    a user without RBAC is refused and logged FORBIDDEN; a Warning Event is posted on a Service.
# Every wait is bounded.
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
PROBE=${KUBE_PROBE_BIN:-build/bin/lbd_controller_kube_probe}
[[ -x $PROBE ]] || fail "no probe binary at $PROBE (build lbd_controller_kube_probe)"
for t in openssl python3 base64; do command -v "$t" >/dev/null || skip "needs $t"; done

TMP=$(mktemp -d /tmp/lbd-it-kubeclient.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p
  set +e  # a failing step here must not skip the rest of the cleanup
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $rc -ne 0 ]]; then
    for f in "$TMP"/*.log "$TMP"/*.out; do [[ -f $f ]] && { echo "--- $f"; tail -25 "$f"; }; done
    [[ -n "${K8S_TESTBED_DIR:-}" && -d "$K8S_TESTBED_DIR" ]] && _k8s_tail_logs
  fi
  k8s_testbed_stop
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_probe NAME KUBECONFIG: the probe writes $TMP/NAME.out, logs to $TMP/NAME.log.
start_probe() {
  "$PROBE" --kubeconfig="$2" --out="$TMP/$1.out" >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}
# wait_for SECS DESC CMD...: until CMD succeeds.
wait_for() {
  local secs=$1 desc=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s: $desc"
    sleep 0.2
  done
}
# objects NAME RESOURCE: "key rv" lines of the probe's cache, sorted.
objects() { grep "^object $2 " "$TMP/$1.out" 2>/dev/null | cut -d' ' -f3,4 | sort || true; }
stat_of() { grep "^stat $2 " "$TMP/$1.out" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$3=//p"; }
synced() { [[ $(stat_of "$1" services synced) == 1 && $(stat_of "$1" endpointslices synced) == 1 ]]; }
# server NAME RESOURCE: what the API server holds for the selector, as "key rv" lines.
SEL='service.kubernetes.io/service-proxy-name=lbd,!service.kubernetes.io/headless'
server() {
  k8s_kubectl get "$1" -A -l "$SEL" \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.resourceVersion}{"\n"}{end}' |
    sort
}
same_as_server() { [[ "$(objects "$1" services)" == "$(server services)" &&
  "$(objects "$1" endpointslices)" == "$(server endpointslices.discovery.k8s.io)" ]]; }
keys() { objects "$1" "$2" | cut -d' ' -f1 | tr '\n' ' '; }

k8s_testbed_start "$TMP/k8s"
echo "API server $K8S_APISERVER_URL"

# --- objects: 5 labelled Services, one unlabelled, slices labelled / headless / unlabelled ------
{
  for i in 1 2 3 4 5; do
    cat <<Y
apiVersion: v1
kind: Service
metadata: {name: s$i, namespace: default, labels: {service.kubernetes.io/service-proxy-name: lbd}}
spec: {ports: [{name: http, port: 80, protocol: TCP}]}
---
Y
  done
  cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: default, labels: {service.kubernetes.io/service-proxy-name: not-lbd}}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s1-a
  namespace: default
  labels: {kubernetes.io/service-name: s1, service.kubernetes.io/service-proxy-name: lbd, endpointslice.kubernetes.io/managed-by: test}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["198.18.2.11"], conditions: {ready: true}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s1-headless
  namespace: default
  labels: {kubernetes.io/service-name: s1, service.kubernetes.io/service-proxy-name: lbd, service.kubernetes.io/headless: "", endpointslice.kubernetes.io/managed-by: test}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["198.18.2.12"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: plain-a
  namespace: default
  labels: {kubernetes.io/service-name: plain, endpointslice.kubernetes.io/managed-by: test}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: ["198.18.2.13"]}]
Y
} | k8s_kubectl apply -f - >/dev/null

# --- token kubeconfig: list (3 pages of 2) + watch ---------------------------------------------
start_probe token "$K8S_CONTROLLER_KUBECONFIG"
TOKEN_PID=$LAST_PID
wait_for 30 "token probe synced" synced token
[[ "$(keys token services)" == "default/s1 default/s2 default/s3 default/s4 default/s5 " ]] ||
  fail "services listed: $(keys token services)"
[[ "$(keys token endpointslices)" == "default/s1-a " ]] || fail "slices listed: $(keys token endpointslices)"
same_as_server token || fail "list differs from the server"
echo "list: 5 labelled Services (pages of 2) and 1 slice; unlabelled, foreign and headless left out"

k8s_kubectl create service clusterip s6 --tcp=80 >/dev/null
k8s_kubectl label svc s6 service.kubernetes.io/service-proxy-name=lbd >/dev/null
k8s_kubectl delete svc s5 >/dev/null
k8s_kubectl label svc s4 service.kubernetes.io/service-proxy-name- >/dev/null  # leaves the selection
k8s_kubectl patch endpointslice s1-a --type=json \
  -p '[{"op":"add","path":"/endpoints/-","value":{"addresses":["198.18.2.14"],"conditions":{"ready":true}}}]' >/dev/null
wait_for 20 "watch reflects add/delete/unlabel/patch" same_as_server token
[[ "$(keys token services)" == "default/s1 default/s2 default/s3 default/s6 " ]] ||
  fail "after the watch: $(keys token services)"
[[ $(stat_of token services lists) == 1 && $(stat_of token services relists) == 0 ]] ||
  fail "the watch re-listed: $(grep '^stat services' "$TMP/token.out")"
echo "watch: added, deleted, unlabelled Service and a patched slice reflected without a re-list"

# --- 410: changes while the probe is frozen, etcd compacted, API server restarted -------------
kill -STOP "$TOKEN_PID"
k8s_kubectl delete svc s2 >/dev/null
k8s_kubectl create service clusterip s7 --tcp=80 >/dev/null
k8s_kubectl label svc s7 service.kubernetes.io/service-proxy-name=lbd >/dev/null
k8s_kubectl annotate svc s3 lbd.io/x=1 >/dev/null
k8s_kubectl delete endpointslice s1-a >/dev/null
rev=$(k8s_testbed_compact_etcd)
k8s_testbed_restart_apiserver
for i in 1 2 3; do k8s_kubectl annotate svc s1 --overwrite "lbd.io/n=$i" >/dev/null; done
k8s_testbed_compact_etcd >/dev/null
kill -CONT "$TOKEN_PID"
wait_for 90 "re-list after 410 converges" same_as_server token
[[ "$(keys token services)" == "default/s1 default/s3 default/s6 default/s7 " ]] ||
  fail "after the re-list: $(keys token services)"
[[ -z "$(keys token endpointslices)" ]] || fail "slice s1-a still cached"
gone=$(stat_of token services gone) relists=$(stat_of token services relists)
((gone >= 1 && relists >= 1)) || fail "no 410/re-list: $(grep '^stat' "$TMP/token.out")"
grep -q "re-listing" "$TMP/token.log" || fail "no re-list logged"
echo "410 (etcd compacted to $rev, API server restarted): services gone=$gone relists=$relists;" \
  "cache equals the server, s2 and slice s1-a deleted by the re-list"
grep '^stat' "$TMP/token.out"

# --- client certificate ----------------------------------------------------------------------
start_probe cert "$K8S_CONTROLLER_CERT_KUBECONFIG"
wait_for 30 "client-cert probe synced" synced cert
same_as_server cert || fail "client-cert probe differs from the server"
echo "client certificate: synced"

# --- token file, wrong at first: 401, then re-read after the file is fixed ---------------------
echo "not-a-valid-token" >"$TMP/token"
sed -e "s|^    token: .*|    tokenFile: $TMP/token|" "$K8S_CONTROLLER_KUBECONFIG" >"$TMP/tokenfile.kubeconfig"
grep -q tokenFile "$TMP/tokenfile.kubeconfig" || fail "could not make a tokenFile kubeconfig"
start_probe tokenfile "$TMP/tokenfile.kubeconfig"
wait_for 30 "401 seen" grep -q "HTTP 401" "$TMP/tokenfile.log"
synced tokenfile && fail "synced with a bad token"
echo "$K8S_CONTROLLER_TOKEN" >"$TMP/token"
wait_for 60 "token file re-read after 401" synced tokenfile
same_as_server tokenfile || fail "token-file probe differs from the server"
echo "token file: 401 with a bad token, synced once the file holds a good one"

# --- no RBAC: 403, logged loudly ---------------------------------------------------------------
k8s_testbed_issue_cert nobody nobody
k8s_testbed_write_kubeconfig "$TMP/nobody.kubeconfig" nobody cert \
  "$K8S_TESTBED_DIR/certs/nobody.crt" "$K8S_TESTBED_DIR/certs/nobody.key"
start_probe nobody "$TMP/nobody.kubeconfig"
wait_for 30 "403 logged" grep -q "error reflector FORBIDDEN.*HTTP 403" "$TMP/nobody.log"
synced nobody && fail "synced without RBAC"
echo "no RBAC: FORBIDDEN logged at error level, nothing cached"

# --- a Warning Event on a Service -------------------------------------------------------------
"$PROBE" --kubeconfig="$K8S_CONTROLLER_KUBECONFIG" --event=default/s1 >"$TMP/event.log" 2>&1 ||
  fail "posting the Event failed"
ev=$(k8s_kubectl get events -n default --field-selector involvedObject.name=s1,reason=LbdRefused \
  -o jsonpath='{range .items[*]}{.type} {.involvedObject.kind} {.source.component}{"\n"}{end}')
[[ $ev == "Warning Service lbd-controller" ]] || fail "event: '$ev'"
echo "Event: Warning LbdRefused on Service default/s1"

echo "PASS controller_kube_client"
