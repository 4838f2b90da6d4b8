#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbd-controller benchmark (issue 12) against the test bed's real API server, as root:
#  1. N Services (default 1,000) x E endpoints (default 10), created with one `kubectl create`:
#     the time from its start until lbd holds all N*E real servers (`lbctl -Ln`);
#  2. then R (default 50) single-endpoint changes in that set (`kubectl patch` of one slice): the
#     time from the patch returning until `lbctl -Ln -t VIP` shows it; median and p99.
# lbd runs in sidecar mode in its own namespace; the controller in the root namespace.
#   LBD_BIN=build/bin/lbd LBCTL_BIN=build/bin/lbctl LBD_CONTROLLER_BIN=build/bin/lbd-controller \
#     tests/perf/controller_bench.sh
source "$(dirname "$0")/../integration/dataplane_lib.sh"
source "$(dirname "$0")/../testlib/k8s_testbed.sh"
: "${LBD_CONTROLLER_BIN:?LBD_CONTROLLER_BIN must point at build/bin/lbd-controller}"
N=${N:-1000} E=${E:-10} R=${R:-50}
((N <= 2500 && E <= 250)) || { echo "N <= 2500 and E <= 250" >&2; exit 2; }
dp_init ctlbench
CTL_PID=""
cleanup() {
  local rc=$?
  set +e
  [[ -n $CTL_PID ]] && kill "$CTL_PID" 2>/dev/null && dp_wait_pid "$CTL_PID" 10
  k8s_testbed_stop
  (exit $rc)
  dp_cleanup
}
trap cleanup EXIT
now() { date +%s.%N; }
ms() { python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }

dp_ns app
dp_lbd app sc --tun=lbd0 --workers=1 --mode=sidecar
k8s_testbed_start "$DP_TMP/k8s"
python3 - "$N" "$E" >"$DP_TMP/objects.yaml" <<'PY'
import sys
n, e = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"""apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: default, labels: {{service.kubernetes.io/service-proxy-name: lbd}}}}
spec: {{ports: [{{name: http, port: 80, protocol: TCP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s{i}-1
  namespace: default
  labels: {{kubernetes.io/service-name: s{i}, service.kubernetes.io/service-proxy-name: lbd, endpointslice.kubernetes.io/managed-by: bench}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:""")
    for j in range(e):
        # 198.19.0.0/16: endpoint j of service i, distinct within a service
        print(f"""- addresses: ["198.19.{j}.{1 + i % 250}"]
  conditions: {{ready: true}}""")
    print("---")
PY
"$LBD_CONTROLLER_BIN" --kubeconfig="$K8S_CONTROLLER_KUBECONFIG" --lbd="unix://$DP_TMP/sc.sock" \
  --metrics=127.0.0.1:0 >"$DP_TMP/controller.log" 2>&1 &
CTL_PID=$!
dp_wait 30 grep -q "first full reconcile done" "$DP_TMP/controller.log" || dp_fail "controller not ready"

t0=$(now)
k8s_kubectl create -f "$DP_TMP/objects.yaml" >/dev/null &
KPID=$!
deadline=$((SECONDS + 900))
while :; do
  d=$(lbctl sc -Ln | grep -c -- '-> .*Masq' || true)
  ((d >= N * E)) && break
  ((SECONDS < deadline)) || dp_fail "lbd holds $d of $((N * E)) real servers after 900 s"
  sleep 0.1
done
t1=$(now)
wait "$KPID" || dp_fail "kubectl create failed"
t2=$(now)
echo "create: lbd holds all $N services x $E endpoints $(ms "$t0" "$t1") ms after kubectl create started" \
  "(kubectl create itself took $(ms "$t0" "$t2") ms)"

vip=$(k8s_kubectl get svc s7 -o jsonpath='{.spec.clusterIP}')
: >"$DP_TMP/lat"
for k in $(seq 1 "$R"); do
  ip="198.18.9.$k"
  k8s_kubectl patch endpointslice s7-1 --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/endpoints/0/addresses/0\",\"value\":\"$ip\"}]" >/dev/null
  t0=$(now)
  dl=$((SECONDS + 60))
  until lbctl sc -Ln -t "$vip:80" | grep -q " $ip:8080 "; do
    ((SECONDS < dl)) || dp_fail "change $k not in lbd after 60 s"
    sleep 0.005
  done
  ms "$t0" "$(now)" >>"$DP_TMP/lat"
done
python3 - "$DP_TMP/lat" <<'PY'
import sys
v = sorted(int(x) for x in open(sys.argv[1]))
p = lambda q: v[min(len(v) - 1, int(q * len(v)))]
print(f"one endpoint change -> lbd, {len(v)} changes: median {p(0.5)} ms, p99 {p(0.99)} ms, max {v[-1]} ms")
PY
grep "reconciled" "$DP_TMP/controller.log" | tail -1
