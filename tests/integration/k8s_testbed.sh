#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Kubernetes test bed itself (tests/testlib/k8s_testbed.sh): a real kube-apiserver + etcd on
# loopback, as lbd-controller's integration test uses it.
#  - a Service labelled service.kubernetes.io/service-proxy-name=lbd (no selector) gets a
#    ClusterIP from the test range; an EndpointSlice names its backends;
#  - the controller's kubeconfig (token, and client certificate) lists and watches both with the
#    controller's label selector, and sees a change on its watch; RBAC forbids it to delete a
#    Service, create one, or read Secrets;
#  - after etcd is compacted (and the API server restarted, so its watch cache starts empty) a
#    watch from the old resourceVersion gets 410 Gone, while one from the current
#    resourceVersion does not; with the watch cache off, compaction alone gives the 410;
#  - k8s_testbed_stop leaves no process and no workdir.
# Builds the binaries with scripts/k8s-build.sh when the cache is empty (long: see README.md).
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

TMP=$(mktemp -d /tmp/lbd-it-k8s.XXXXXX)
cleanup() {
  local rc=$?
  [[ $rc -ne 0 && -n "${K8S_TESTBED_DIR:-}" && -d "$K8S_TESTBED_DIR" ]] && _k8s_tail_logs
  k8s_testbed_stop
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# watch_status PATH TOKEN: a watch for at most 5 s; prints "<http code> <410 in an ERROR event?>".
watch_status() {
  local code
  code=$(curl -sS --max-time 8 --cacert "$K8S_CA_CERT" -H "Authorization: Bearer $2" \
    -o "$TMP/watch.body" -w '%{http_code}' "$K8S_APISERVER_URL$1&timeoutSeconds=5" || true)
  if grep -q '"type":"ERROR".*"code":410' "$TMP/watch.body"; then echo "$code event410"; else echo "$code none"; fi
}
is_gone() { [[ $1 == 410* || $1 == *event410 ]]; }

k8s_testbed_start "$TMP/k8s"
echo "test bed: $K8S_APISERVER_URL, binaries in $K8S_BIN"
versions=$(k8s_kubectl version)
[[ $versions == *"Client Version: v1.34."*"Server Version: v1.34."* ]] || fail "not 1.34: $versions"

# --- a Service and an EndpointSlice as a user would create them ---------------------------------
k8s_kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {service.kubernetes.io/service-proxy-name: lbd}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: default}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
    service.kubernetes.io/service-proxy-name: lbd
    endpointslice.kubernetes.io/managed-by: lbd-testbed
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: ["198.18.2.11"]
  conditions: {ready: true, serving: true, terminating: false}
- addresses: ["198.18.2.12"]
  conditions: {ready: false, serving: true, terminating: true}
EOF
ip=$(k8s_kubectl get svc web -o jsonpath='{.spec.clusterIP}')
python3 -c 'import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network("198.18.128.0/20"))' \
  "$ip" || fail "ClusterIP $ip is not in 198.18.128.0/20"
echo "Service web has ClusterIP $ip"

# --- the controller's view: list + watch, with its label selector -------------------------------
SEL='service.kubernetes.io/service-proxy-name=lbd,!service.kubernetes.io/headless'
for kc in "$K8S_CONTROLLER_KUBECONFIG" "$K8S_CONTROLLER_CERT_KUBECONFIG"; do
  names=$("$K8S_KUBECTL" --kubeconfig "$kc" get svc -A -l "$SEL" -o jsonpath='{.items[*].metadata.name}')
  [[ $names == web ]] || fail "controller ($kc) listed services '$names', want 'web'"
  eps=$("$K8S_KUBECTL" --kubeconfig "$kc" get endpointslices.discovery.k8s.io -A \
    -l kubernetes.io/service-name=web -o jsonpath='{.items[*].endpoints[*].addresses[0]}')
  [[ $eps == "198.18.2.11 198.18.2.12" ]] || fail "controller listed endpoints '$eps'"
done
whoami=$(k8s_kubectl_controller auth whoami -o jsonpath='{.status.userInfo.username}')
[[ $whoami == "$K8S_CONTROLLER_USER" ]] || fail "controller is '$whoami'"

# A watch from the list's resourceVersion, as the controller would open it, sees a change.
list_rv=$(curl -sS --max-time 10 --cacert "$K8S_CA_CERT" -H "Authorization: Bearer $K8S_CONTROLLER_TOKEN" \
  "$K8S_APISERVER_URL/apis/discovery.k8s.io/v1/endpointslices?limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
curl -sS -N --max-time 20 --cacert "$K8S_CA_CERT" -H "Authorization: Bearer $K8S_CONTROLLER_TOKEN" \
  "$K8S_APISERVER_URL/apis/discovery.k8s.io/v1/endpointslices?watch=1&allowWatchBookmarks=true&resourceVersion=$list_rv&timeoutSeconds=15" \
  >"$TMP/cwatch" 2>&1 &
watch_pid=$!
sleep 1 # lint: allow-sleep (let the watch open; the assertion below starts from list_rv)
k8s_kubectl patch endpointslice web-1 --type=json \
  -p '[{"op":"add","path":"/endpoints/-","value":{"addresses":["198.18.2.13"],"conditions":{"ready":true}}}]' >/dev/null
deadline=$((SECONDS + 20))
until grep -q '"type":"MODIFIED".*198.18.2.13' "$TMP/cwatch"; do
  ((SECONDS < deadline)) || { cat "$TMP/cwatch"; fail "the controller's watch did not see the change"; }
  sleep 0.2
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
echo "controller: list + watch of services and endpointslices OK"

# --- RBAC: what the controller may not do --------------------------------------------------------
if out=$(k8s_kubectl_controller delete svc web 2>&1); then fail "controller deleted a Service"; fi
[[ $out == *forbidden* ]] || fail "delete not forbidden: $out"
k8s_kubectl get svc web >/dev/null || fail "Service web is gone"
for verb_res in "create services" "delete services" "update services" "get secrets" \
  "delete endpointslices.discovery.k8s.io"; do
  # shellcheck disable=SC2086
  [[ $(k8s_kubectl_controller auth can-i $verb_res -A 2>/dev/null || true) == no ]] ||
    fail "controller can $verb_res"
done
[[ $(k8s_kubectl_controller auth can-i create events -n default) == yes ]] || fail "cannot create events"
echo "RBAC: the controller cannot delete/create/update services or read secrets"

# --- 410 Gone after compaction -------------------------------------------------------------------
old_rv=$(k8s_kubectl get svc web -o jsonpath='{.metadata.resourceVersion}')
for i in 1 2 3 4 5; do k8s_kubectl annotate svc web --overwrite "lbd.io/test=$i" >/dev/null; done
SVC_WATCH="/api/v1/services?watch=1&labelSelector=service.kubernetes.io%2Fservice-proxy-name%3Dlbd"
st=$(watch_status "$SVC_WATCH&resourceVersion=$old_rv" "$K8S_CONTROLLER_TOKEN")
! is_gone "$st" || fail "a watch from rv $old_rv got 410 before any compaction ($st)"
rev=$(k8s_testbed_compact_etcd)
echo "etcd compacted to revision $rev (the old resourceVersion is $old_rv)"
st=$(watch_status "$SVC_WATCH&resourceVersion=$old_rv" "$K8S_CONTROLLER_TOKEN")
echo "watch from rv $old_rv right after compaction (watch cache still warm): $st"
k8s_testbed_restart_apiserver
st=$(watch_status "$SVC_WATCH&resourceVersion=$old_rv" "$K8S_CONTROLLER_TOKEN")
is_gone "$st" || { cat "$TMP/watch.body"; fail "watch from compacted rv $old_rv: $st, want 410"; }
echo "after the API server restart, watch from rv $old_rv: $st (410 Gone)"
cur_rv=$(k8s_testbed_curl "/api/v1/services?limit=1" --max-time 10 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
st=$(watch_status "$SVC_WATCH&resourceVersion=$cur_rv" "$K8S_CONTROLLER_TOKEN")
[[ $st == "200 none" ]] || fail "watch from the current rv $cur_rv: $st"
# The controller's kubeconfig still works after the restart.
[[ $(k8s_kubectl_controller get svc -A -l "$SEL" -o name) == service/web ]] || fail "list after restart"

# The same without the watch cache: compaction alone makes the old resourceVersion gone.
dir1=$K8S_TESTBED_DIR pids1="${K8S_TESTBED_PIDS[*]}"
k8s_testbed_stop
for p in $pids1; do kill -0 "$p" 2>/dev/null && fail "pid $p still running after stop"; done
[[ ! -e $dir1 ]] || fail "workdir $dir1 left behind"
K8S_TESTBED_WATCH_CACHE=0 k8s_testbed_start "$TMP/k8s-nocache"
k8s_kubectl create service clusterip nocache --tcp=80 >/dev/null
k8s_kubectl label svc nocache service.kubernetes.io/service-proxy-name=lbd >/dev/null
old_rv=$(k8s_kubectl get svc nocache -o jsonpath='{.metadata.resourceVersion}')
for i in 1 2 3; do k8s_kubectl annotate svc nocache --overwrite "lbd.io/test=$i" >/dev/null; done
st=$(watch_status "$SVC_WATCH&resourceVersion=$old_rv" "$K8S_CONTROLLER_TOKEN")
! is_gone "$st" || fail "(no watch cache) 410 before compaction ($st)"
k8s_testbed_compact_etcd >/dev/null
st=$(watch_status "$SVC_WATCH&resourceVersion=$old_rv" "$K8S_CONTROLLER_TOKEN")
is_gone "$st" || { cat "$TMP/watch.body"; fail "(no watch cache) watch from rv $old_rv: $st, want 410"; }
echo "without the watch cache, compaction alone: watch from rv $old_rv: $st (410 Gone)"

dir2=$K8S_TESTBED_DIR pids2="${K8S_TESTBED_PIDS[*]}"
k8s_testbed_stop
for p in $pids2; do kill -0 "$p" 2>/dev/null && fail "pid $p still running after stop"; done
[[ ! -e $dir2 ]] || fail "workdir $dir2 left behind"
echo "PASS k8s_testbed"
