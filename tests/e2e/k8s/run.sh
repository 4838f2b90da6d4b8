#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# e2e: lbd's Helm chart (deploy/helm/lbd) on a real Kubernetes cluster (issue 13). One test body,
# two clusters:
#   default  a single-node cluster started here (tests/testlib/k8s_cluster.sh: kube-apiserver,
#            etcd, kube-controller-manager, kube-scheduler, kube-proxy, kubelet v1.34.4 and
#            bookworm's containerd), images imported with ctr; removed at the end.
#   KIND=1   the cluster KUBECONFIG points at (kind), images loaded with `kind load docker-image`
#            (KIND_CLUSTER_NAME, default kind); .github/workflows/kind-e2e.yml runs it that way.
# Steps:
#   1. a bad value is refused by `helm install` with the field named (values.schema.json);
#   2. gateway placement: `helm install`, pods ready, `helm test`; 3 backends (each answers its
#      pod name) behind a Service labelled service.kubernetes.io/service-proxy-name=lbd (the
#      EndpointSlice controller makes its slices; kube-proxy stands aside); 30 requests from a
#      client pod to the ClusterIP spread over the 3, and 30 from the node's network namespace
#      (outside the cluster) to the Service's externalIP; a deleted backend leaves `lbctl -Ln`;
#   3. sidecar placement: `helm upgrade --set injector.enabled=true`; a client Deployment
#      annotated lbd.io/inject: "true" gets lbd + lbd-controller injected and its requests to a
#      second labelled Service spread over the backends, with nothing changed on the node; scaled
#      to 5, the new backends get requests; a rolling update of the backends under a request
#      every 50 ms fails none (terminating endpoints drain at weight 0);
#   4. `helm uninstall` leaves no pod, RBAC object or webhook of the release.
# The stand-in for a cluster route (gateway placement): the node routes the gateway Service's
# ClusterIP/32 to the gateway pod (`ip route` in the node's namespace; `docker exec <node> ip
# route` on kind, with the full-NAT local address too). Pods answer each other on their own subnet,
# so a gateway in a cluster uses full NAT (lbd.io/forward-method: fullnat) to get the replies
# back; the sidecar uses plain NAT (lbd steers replies inside the pod).
# Environment: LBD_IMAGE (an lbd image already built, kept), LBD_SRC, E2E_TIMEOUT (every wait,
# default 180 s), KIND, KIND_CLUSTER_NAME. Exit 77 = skipped (not root / no docker), except under
# CI=true where that is a failure.
set -euo pipefail
src=${LBD_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
skip() { if [ "${CI:-}" = true ]; then echo "FAIL: $*"; exit 1; fi; echo "SKIP: $*"; exit 77; }
KIND=${KIND:-0}
T=${E2E_TIMEOUT:-180}
if [ "$KIND" != 1 ]; then
  [ "$(id -u)" = 0 ] || skip "needs root (the local cluster)"
  command -v containerd >/dev/null || skip "no containerd (apt-get install containerd)"
fi
command -v docker >/dev/null || skip "no docker"

id=$$
chart=$src/deploy/helm/lbd
rel=lbd-e2e   # not "lbd": the test bed has its own ClusterRole lbd-controller
sysns=lbd-system
ns=lbd-e2e
img=${LBD_IMAGE:-lbd:k8s-e2e-$id}
repo=${img%:*}
tag=${img##*:}
tools=lbd-k8s-tools:e2e-$id
tmp=$(mktemp -d /tmp/lbd-k8s-e2e.XXXXXX)
t_start=$SECONDS
node_routes=()

fail() {
  echo "FAIL: $*"
  set +e
  kc get pods -A -o wide
  kc -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -20
  local p
  [ "$KIND" != 1 ] && grep -iE 'webhook|admission' "$K8S_TESTBED_DIR/kube-apiserver.log" | tail -5
  for p in $(kc -n "$sysns" get pods -o name 2>/dev/null); do
    echo "--- logs $p"; kc -n "$sysns" logs "$p" --all-containers --tail=30
  done
  # The injected sidecar (section 3 on): its lbd and controller, and its conns.
  if [ -n "${app:-}" ]; then
    echo "--- logs pod/$app (lbd, lbd-controller)"
    kc -n "$ns" logs "$app" -c lbd --tail=40
    kc -n "$ns" logs "$app" -c lbd-controller --tail=40
    echo "--- lbctl -Ln / -Lnc in pod/$app"
    kc -n "$ns" exec "$app" -c lbd -- lbctl -Ln
    kc -n "$ns" exec "$app" -c lbd -- lbctl -Lnc | tail -30
  fi
  exit 1
}

if [ "$KIND" = 1 ]; then
  kc() { kubectl --request-timeout=30s "$@"; }
  command -v kind >/dev/null || skip "KIND=1 needs kind"
  command -v kubectl >/dev/null || skip "KIND=1 needs kubectl"
  helm=$(command -v helm || bash "$src/scripts/k8s-helm.sh" | tail -1)  # lint: allow-tool-check (fetches helm)
else
  # shellcheck source=../../testlib/k8s_cluster.sh
  source "$src/tests/testlib/k8s_cluster.sh"
  kc() { k8s_kubectl "$@"; }
  helm=$(bash "$src/scripts/k8s-helm.sh" | tail -1)
fi
h() { "$helm" "$@"; }

cleanup() {
  set +e
  local r
  if [ "$KIND" = 1 ]; then
    h uninstall "$rel" -n "$sysns" --wait --timeout 2m >/dev/null 2>&1
    kc delete namespace "$ns" "$sysns" --wait=false >/dev/null 2>&1
    for r in "${node_routes[@]}"; do eval "docker exec $r" >/dev/null 2>&1; done
  else
    k8s_cluster_stop
  fi
  [ -n "${LBD_IMAGE:-}" ] || docker rmi "$img" >/dev/null 2>&1
  docker rmi "$tools" >/dev/null 2>&1
  docker image prune -f --filter label=lbd.stage=build >/dev/null 2>&1
  rm -rf "$tmp"
  echo "e2e took $((SECONDS - t_start)) s"
}
trap cleanup EXIT

# --- images ---------------------------------------------------------------------------------------
if [ "$KIND" != 1 ]; then
  bash "$src/scripts/start-dockerd.sh"
  bash "$src/scripts/make-base-image.sh"
fi
if [ -z "${LBD_IMAGE:-}" ]; then
  echo "== building $img"
  t0=$SECONDS
  docker build --network host -q -t "$img" "$src" >/dev/null
  echo "image built in $((SECONDS - t0)) s"
fi
docker run --rm --entrypoint sh "$img" -c 'command -v lbd && command -v lbctl && command -v lbd-controller' \
  >/dev/null || { echo "FAIL: $img lacks lbd, lbctl or lbd-controller"; exit 1; }
# Backends and clients: python3 (HTTP answering the pod's name), curl.
docker build --network host -q -t "$tools" - >/dev/null <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 curl iproute2 \
      >/dev/null && rm -rf /var/lib/apt/lists/*
DOCKERFILE

# --- the cluster ----------------------------------------------------------------------------------
if [ "$KIND" = 1 ]; then
  kind load docker-image "$img" "$tools" --name "${KIND_CLUSTER_NAME:-kind}"
else
  t0=$SECONDS
  k8s_cluster_start "$tmp/cluster"
  echo "cluster up in $((SECONDS - t0)) s"
  k8s_cluster_load_image "$img" "$tools"
fi
kc get nodes -o wide

# _wait SECONDS WHAT CMD...: until CMD succeeds, bounded.
_wait() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what not within ${secs}s"
    sleep 1
  done
}

# --- 1. a bad value is refused with the field named ----------------------------------------------
echo "== helm install with a bad value"
if out=$(h install "$rel-bad" "$chart" -n "$sysns" --create-namespace --set gateway.kind=Pod 2>&1); then
  fail "helm install accepted gateway.kind=Pod"
fi
echo "$out" | tail -3
grep -q 'gateway' <<<"$out" && grep -q 'kind' <<<"$out" || fail "the refusal does not name gateway.kind"
if out=$(h install "$rel-bad" "$chart" -n "$sysns" --set controller.drainTimeout=soon 2>&1); then
  fail "helm install accepted controller.drainTimeout=soon"
fi
grep -q 'drainTimeout' <<<"$out" || fail "the refusal does not name controller.drainTimeout: $out"

# --- 2. gateway placement -------------------------------------------------------------------------
echo "== helm install (gateway placement)"
t0=$SECONDS
h install "$rel" "$chart" -n "$sysns" --create-namespace \
  --set image.repository="$repo" --set image.tag="$tag" --set image.pullPolicy=Never \
  --set gateway.workers=1 --set controller.drainTimeout=10s --set logFormat=text \
  --wait --timeout "${T}s" || fail "helm install"
echo "installed and ready in $((SECONDS - t0)) s"
# (no --logs: the chart deletes a test pod that succeeded; a failed one stays for its logs)
h test "$rel" -n "$sysns" --timeout "${T}s" ||
  { kc -n "$sysns" logs "$rel-test" 2>/dev/null; fail "helm test"; }

gw=$(kc -n "$sysns" get pod -l app.kubernetes.io/component=gateway -o jsonpath='{.items[0].metadata.name}')
gw_ip=$(kc -n "$sysns" get pod "$gw" -o jsonpath='{.status.podIP}')
echo "gateway pod $gw ($gw_ip)"
# The gateway Service's full-NAT source address: .250 of the gateway pod's /24, outside what pods
# are given (the local cluster's IPAM stops at .239; kind's starts at .2) and inside the pod CIDR,
# which kind's masquerade rules leave alone. Backends reach it through the node (kind) or on the
# bridge, where lbd answers ARP for it (the local cluster).
local_addr=${gw_ip%.*}.250
ext_ip=${gw_ip%.*}.245   # the gateway Service's externalIP, same reasoning
lbctl_gw() { kc -n "$sysns" exec "$gw" -c lbd -- lbctl "$@"; }

kc create namespace "$ns" >/dev/null
sed -e "s#TOOLS#$tools#g" -e "s#LOCAL_ADDR#$local_addr#g" -e "s#EXT_IP#$ext_ip#g" <<'EOF' | kc apply -n "$ns" -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: TOOLS
          imagePullPolicy: Never
          command: ["python3", "-c"]
          args:
            - |
              import http.server, os
              name = (os.environ["POD_NAME"] + "\n").encode()
              class H(http.server.BaseHTTPRequestHandler):
                  def do_GET(self):
                      self.send_response(200)
                      self.send_header("Content-Length", str(len(name)))
                      self.send_header("Connection", "close")
                      self.end_headers()
                      self.wfile.write(name)
                  def log_message(self, *args):
                      pass
              http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
          # Serve a little after the delete, as real apps do, while the endpoint goes terminating.
          lifecycle: {preStop: {exec: {command: ["sleep", "4"]}}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {service.kubernetes.io/service-proxy-name: lbd}
  annotations:
    lbd.io/forward-method: fullnat
    lbd.io/local-addresses: LOCAL_ADDR
spec:
  selector: {app: web}
  externalIPs: [EXT_IP]
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web-nat
  labels: {service.kubernetes.io/service-proxy-name: lbd}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - {name: app, image: TOOLS, imagePullPolicy: Never, command: ["sleep", "infinity"]}
EOF

backend_ips() {  # the ready backends' pod IPs, sorted
  kc -n "$ns" get pods -l app=web -o jsonpath='{range .items[?(@.status.podIP)]}{.metadata.deletionTimestamp}{"|"}{.status.podIP}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk -F'|' '$1 == "" && $3 == "True" {print $2}' | sort
}
three_ready() { [ "$(backend_ips | wc -l)" = 3 ]; }
_wait "$T" "3 ready backends" three_ready
kc -n "$ns" wait --for=condition=Ready pod/client --timeout="${T}s" >/dev/null || fail "client pod"
kc -n "$ns" get pods -o wide
kc -n "$ns" get endpointslices -o wide

vip=$(kc -n "$ns" get svc web -o jsonpath='{.spec.clusterIP}')
vip_nat=$(kc -n "$ns" get svc web-nat -o jsonpath='{.spec.clusterIP}')
echo "Service web (gateway, full NAT) $vip; web-nat (sidecar) $vip_nat"

# lbd_has LBCTL_FN VIP IP...: the lbctl listing shows VIP:80 with exactly these real servers.
lbd_has() {
  local fn=$1 v=$2 out got want
  shift 2
  out=$("$fn" -Ln 2>/dev/null) || return 1
  # Real servers that take new connections: a ready endpoint is weight 1; one that is not ready
  # yet (or terminating) is listed at weight 0 and does not count.
  got=$(awk -v v="$v:80" '$1 == "TCP" {cur = ($2 == v)} cur && $1 == "->" && $2 ~ /:8080$/ && $4 > 0 {split($2, a, ":"); print a[1]}' <<<"$out" | sort | tr '\n' ' ')
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  [ "$got" = "$want" ]
}
mapfile -t ips < <(backend_ips)
_wait "$T" "lbd (gateway) serving $vip with ${ips[*]}" lbd_has lbctl_gw "$vip" "${ips[@]}"
lbctl_gw -Ln

# kube-proxy stands aside for the labelled Service (local cluster: its rules are readable here).
if [ "$KIND" != 1 ] && iptables-save -t nat | grep -qF -- "-d $vip/32"; then
  fail "kube-proxy has rules for the labelled Service $vip"
fi

# The stand-in for a cluster route: the node sends the VIP (and on kind, whose pods reach each
# other only through the node, the full-NAT local address) to the gateway pod.
if [ "$KIND" = 1 ]; then
  node=$(kc -n "$sysns" get pod "$gw" -o jsonpath='{.spec.nodeName}')
  dev=$(docker exec "$node" ip -o route get "$gw_ip" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  for a in "$vip" "$local_addr" "$ext_ip"; do
    docker exec "$node" ip route replace "$a/32" dev "$dev"
    node_routes+=("$node ip route del $a/32 dev $dev")
  done
else
  ip route replace "$vip/32" via "$gw_ip" dev "$K8S_CLUSTER_BRIDGE"   # gone with the bridge
fi

# spread POD CONTAINER VIP: 30 sequential requests; prints "count name" lines (FAIL for errors).
spread() {
  kc -n "$ns" exec "$1" -c "$2" -- sh -c \
    "for i in \$(seq 30); do curl -s -m 3 http://$3/ || echo FAIL; done" | sort | uniq -c
}
# check_spread OUTPUT: 30 answers, none failed, every ready backend answered at least 5.
check_spread() {
  local out=$1 n total=0 pod
  echo "$out"
  grep -q FAIL <<<"$out" && return 1
  while read -r n pod; do total=$((total + n)); done <<<"$out"
  [ "$total" = 30 ] || return 1
  for pod in $(kc -n "$ns" get pods -l app=web -o jsonpath='{.items[*].metadata.name}'); do
    n=$(awk -v p="$pod" '$2 == p {print $1}' <<<"$out")
    [ "${n:-0}" -ge 5 ] || return 1
  done
}
echo "== 30 requests from pod client to $vip (through the gateway pod)"
check_spread "$(spread client app "$vip")" || fail "requests through the gateway did not spread over 3 backends"
lbctl_gw -Ln --stats 2>/dev/null || lbctl_gw -Ln

echo "== 30 requests from the node's network namespace to externalIP $ext_ip (from outside the cluster)"
from_node() {
  local loop="for i in \$(seq 30); do curl -s -m 3 http://$ext_ip/ || echo FAIL; done"
  if [ "$KIND" = 1 ]; then
    docker exec "$node" sh -c "$loop"
  else
    sh -c "$loop"
  fi | sort | uniq -c
}
check_spread "$(from_node)" || fail "requests from the node to the externalIP did not spread"

echo "== a backend deleted leaves lbd"
victim=$(kc -n "$ns" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
victim_ip=$(kc -n "$ns" get pod "$victim" -o jsonpath='{.status.podIP}')
kc -n "$ns" delete pod "$victim" --wait=false >/dev/null
gone() { ! lbctl_gw -Ln | grep -qF -- "-> $victim_ip:8080"; }
t0=$SECONDS
_wait "$T" "$victim_ip gone from lbctl -Ln (drain timeout 10s)" gone
echo "$victim ($victim_ip) gone from lbd after $((SECONDS - t0)) s"
_wait "$T" "3 ready backends again" three_ready
mapfile -t ips < <(backend_ips)
_wait "$T" "lbd (gateway) serving the new backend" lbd_has lbctl_gw "$vip" "${ips[@]}"
check_spread "$(spread client app "$vip")" || fail "requests after the replacement did not spread"

# --- 3. sidecar placement -------------------------------------------------------------------------
echo "== helm upgrade --set injector.enabled=true (sidecar placement)"
# failurePolicy Fail: a pod the webhook could not see is refused (and its ReplicaSet retries)
# instead of starting without the sidecar, so a webhook not reachable yet cannot pass unnoticed.
h upgrade "$rel" "$chart" -n "$sysns" --reuse-values --set injector.enabled=true \
  --set injector.failurePolicy=Fail \
  --set "injector.bindServiceAccounts[0].namespace=$ns" --set "injector.bindServiceAccounts[0].name=default" \
  --wait --timeout "${T}s" || fail "helm upgrade"
kc -n "$sysns" get pods -o wide
sed -e "s#TOOLS#$tools#g" <<'EOF' | kc apply -n "$ns" -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
      annotations: {lbd.io/inject: "true"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - {name: app, image: TOOLS, imagePullPolicy: Never, command: ["sleep", "infinity"]}
EOF
kc -n "$ns" rollout status deploy/app --timeout="${T}s" || fail "the injected Deployment did not roll out"
app=$(kc -n "$ns" get pod -l app=app -o jsonpath='{.items[0].metadata.name}')
containers=$(kc -n "$ns" get pod "$app" -o jsonpath='{.spec.containers[*].name}')
echo "pod $app containers: $containers"
for c in app lbd lbd-controller; do
  grep -qw "$c" <<<"$containers" || fail "pod $app has no container $c (injection)"
done
lbctl_app() { kc -n "$ns" exec "$app" -c lbd -- lbctl "$@"; }
mapfile -t ips < <(backend_ips)
_wait "$T" "lbd (sidecar) serving $vip_nat with ${ips[*]}" lbd_has lbctl_app "$vip_nat" "${ips[@]}"
echo "== 30 requests from $app to $vip_nat (through its own sidecar)"
check_spread "$(spread "$app" app "$vip_nat")" || fail "requests through the sidecar did not spread"
lbctl_app -Ln

echo "== scale the backends to 5"
kc -n "$ns" scale deploy/web --replicas=5 >/dev/null
five_ready() { [ "$(backend_ips | wc -l)" = 5 ]; }
_wait "$T" "5 ready backends" five_ready
mapfile -t ips < <(backend_ips)
_wait "$T" "lbd (sidecar) serving $vip_nat with ${ips[*]}" lbd_has lbctl_app "$vip_nat" "${ips[@]}"
check_spread "$(spread "$app" app "$vip_nat")" || fail "requests after scaling to 5 did not reach every backend"

echo "== rolling update of the backends under steady load (a request every 50 ms)"
kc -n "$ns" exec "$app" -c app -- sh -c "rm -f /tmp/stop /tmp/load; while [ ! -f /tmp/stop ]; do
    curl -s -m 2 -o /dev/null -w '%{http_code}\n' http://$vip_nat/ >>/tmp/load || echo FAIL >>/tmp/load
    sleep 0.05; done" &
loader=$!
# load_at_least N: the loader has made N requests.
load_at_least() {
  [ "$(kc -n "$ns" exec "$app" -c app -- sh -c 'cat /tmp/load 2>/dev/null | wc -l')" -ge "$1" ]
}
_wait "$T" "the loader's first 20 requests" load_at_least 20
kc -n "$ns" rollout restart deploy/web >/dev/null
kc -n "$ns" rollout status deploy/web --timeout="${T}s" >/dev/null || fail "the rolling update did not finish"
_wait "$T" "5 ready backends after the update" five_ready
only_five() { [ "$(kc -n "$ns" get pods -l app=web -o name | wc -l)" = 5 ]; }
_wait "$T" "the old backends gone (terminated)" only_five
after_update=$(kc -n "$ns" exec "$app" -c app -- sh -c 'wc -l </tmp/load')
_wait "$T" "20 requests after the update" load_at_least $((after_update + 20))
kc -n "$ns" exec "$app" -c app -- touch /tmp/stop
wait "$loader" || true
load=$(kc -n "$ns" exec "$app" -c app -- cat /tmp/load | sort | uniq -c)
echo "$load"
total=$(awk '{n += $1} END {print n + 0}' <<<"$load")
ok=$(awk '$2 == "200" {print $1}' <<<"$load")
[ "$total" -ge 50 ] || fail "only $total requests during the rolling update"
[ "${ok:-0}" = "$total" ] || fail "$((total - ${ok:-0})) of $total requests failed during the rolling update"
echo "rolling update: $total requests, none failed"

# --- 4. uninstall leaves nothing of the release ---------------------------------------------------
echo "== helm uninstall"
h uninstall "$rel" -n "$sysns" --wait --timeout "${T}s" || fail "helm uninstall"
leftovers() {
  kc get clusterroles,clusterrolebindings,mutatingwebhookconfigurations -o name 2>/dev/null | grep -F "$rel-" || true
  kc -n "$sysns" get pods,serviceaccounts,services,configmaps,secrets -l "app.kubernetes.io/instance=$rel" -o name 2>/dev/null || true
}
nothing_left() { [ -z "$(leftovers)" ]; }
_wait "$T" "nothing of release $rel left ($(leftovers | tr '\n' ' '))" nothing_left
echo "PASS k8s e2e ($([ "$KIND" = 1 ] && echo kind || echo local cluster))"
