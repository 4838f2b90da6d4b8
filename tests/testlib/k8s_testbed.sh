# SPDX-License-Identifier: Apache-2.0
# A real Kubernetes API server for integration tests (issue 12; the cluster e2e reuses it).
# Source it from a root bash script:
#
#   source tests/testlib/k8s_testbed.sh
#   k8s_testbed_start "$tmp/k8s"         # etcd + kube-apiserver on 127.0.0.1, RBAC, kubeconfigs
#   k8s_kubectl get ns                   # kubectl as the admin (system:masters)
#   k8s_kubectl_controller get svc -A    # kubectl as the lbd-controller user
#   k8s_testbed_compact_etcd             # prints the revision compacted to
#   k8s_testbed_restart_apiserver        # same port, same certs; waits for /readyz
#   k8s_testbed_stop                     # kills by pid, removes the workdir (put it in your trap)
#
# The binaries come from scripts/k8s-build.sh (cached under /var/cache/lbd-k8s/<version>/bin; a
# cold cache builds them, which takes long: see README.md). Everything listens on free ports of
# 127.0.0.1 chosen at start (K8S_TESTBED_BIND to change the address). Every wait is bounded by
# K8S_TESTBED_TIMEOUT seconds (default 180).
#
# After k8s_testbed_start these are exported:
#   K8S_BIN                   dir with kube-apiserver, kubectl, etcd (+ any K8S_TESTBED_COMPONENTS)
#   K8S_KUBECTL               the kubectl binary
#   K8S_TESTBED_DIR           the workdir (certs/, etcd data, logs: etcd.log, kube-apiserver.log)
#   K8S_APISERVER_URL         https://127.0.0.1:<port>;  K8S_APISERVER_PORT
#   K8S_ETCD_URL              http://127.0.0.1:<port> (v3 JSON gateway too);  K8S_ETCD_PORT
#   K8S_ADMIN_KUBECONFIG      admin: bearer token, user "admin", group system:masters
#   K8S_CONTROLLER_KUBECONFIG the controller: bearer token, user
#                             system:serviceaccount:kube-system:lbd-controller bound by RBAC to
#                             ClusterRole lbd-controller (reference kubernetes-mapping.md §5)
#   K8S_CONTROLLER_CERT_KUBECONFIG  the same user by client certificate (no token)
#   K8S_ADMIN_TOKEN, K8S_CONTROLLER_TOKEN, K8S_CONTROLLER_USER
#   K8S_CA_CERT, K8S_CA_KEY   the CA that signed the serving cert and client certs (and is
#                             --client-ca-file): k8s_testbed_issue_cert signs more
#   K8S_SA_KEY, K8S_SA_PUB    service-account signing key pair (kube-controller-manager needs it)
#   K8S_SERVICE_CIDR          the service-cluster-ip-range (default 198.18.128.0/20,2001:2:0:8000::/112)
#   K8S_APISERVER_PID, K8S_ETCD_PID
# Knobs (set before start): K8S_VERSION, K8S_TESTBED_BIND, K8S_TESTBED_SERVICE_CIDR,
#   K8S_TESTBED_COMPONENTS (extra binaries to build, e.g. "kube-controller-manager kubelet"),
#   K8S_TESTBED_APISERVER_ARGS (extra kube-apiserver flags, word-split), K8S_TESTBED_EXTRA_SANS
#   (comma list, e.g. "IP:198.18.0.1,DNS:node1"), K8S_TESTBED_WATCH_CACHE (1 default; 0 serves
#   watches straight from etcd), K8S_TESTBED_AUTHZ (default RBAC).
# Without kube-controller-manager: namespaces stay Terminating when deleted, Services with a
# selector get no EndpointSlices (create them yourself), no ServiceAccount tokens are minted.

K8S_TESTBED_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_TESTBED_ROOT=$(cd "$K8S_TESTBED_LIB_DIR/../.." && pwd)
K8S_TESTBED_PIDS=()

_k8s_log() { printf '[k8s-testbed] %s\n' "$*" >&2; }
_k8s_err() { printf '[k8s-testbed] error: %s\n' "$*" >&2; return 1; }

# _k8s_free_ports N: prints N distinct free TCP ports of the bind address, outside the ephemeral range.
_k8s_free_ports() {
  python3 - "$1" "${K8S_TESTBED_BIND:-127.0.0.1}" <<'EOF'
import random, socket, sys
n, addr = int(sys.argv[1]), sys.argv[2]
held, ports = [], []
rnd = random.Random()
for _ in range(2000):
    if len(ports) == n:
        break
    p = rnd.randrange(20000, 32000)
    if p in ports:
        continue
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    try:
        s.bind((addr, p))
    except OSError:
        s.close()
        continue
    held.append(s)
    ports.append(p)
print(*ports)
sys.exit(0 if len(ports) == n else 1)
EOF
}

# _k8s_wait_http URL SECONDS [curl args...]: until URL answers 2xx with a body, bounded.
_k8s_wait_http() {
  local url=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if curl -sf --max-time 3 "$@" "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

_k8s_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# _k8s_kill PID: TERM, bounded wait, then KILL.
_k8s_kill() {
  local pid=$1 i
  _k8s_alive "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    _k8s_alive "$pid" || break
    sleep 0.1
  done
  if _k8s_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

# k8s_testbed_spawn NAME CMD...: runs CMD in the background with its log at $K8S_TESTBED_DIR/NAME.log
# and sets K8S_TESTBED_LAST_PID; k8s_testbed_stop kills it (for components the cluster e2e adds).
# Call it directly, not in $(...): the pid list lives in this shell.
k8s_testbed_spawn() {
  local name=$1
  shift
  "$@" >>"$K8S_TESTBED_DIR/$name.log" 2>&1 </dev/null &
  K8S_TESTBED_LAST_PID=$!
  K8S_TESTBED_PIDS+=("$K8S_TESTBED_LAST_PID")
}

# _k8s_forget PID: drops a pid that was stopped from the list k8s_testbed_stop kills.
_k8s_forget() {
  local p keep=()
  for p in "${K8S_TESTBED_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  K8S_TESTBED_PIDS=("${keep[@]}")
}

# k8s_testbed_issue_cert NAME CN [GROUPS] [SANs]: GROUPS is a comma list (one O each): a key and a cert signed by the test bed's CA, at
# $K8S_TESTBED_DIR/certs/NAME.{key,crt}. SANs like "IP:127.0.0.1,DNS:localhost" make it a
# serving cert too.
k8s_testbed_issue_cert() {
  local name=$1 cn=$2 org=${3:-} sans=${4:-} d=$K8S_TESTBED_DIR/certs subj="" o
  # Several groups: O=a,b (comma list) gives one O entry each.
  local IFS=,
  for o in $org; do subj="$subj/O=$o"; done
  unset IFS
  subj="$subj/CN=$cn"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$name.key" -subj "$subj" \
    -out "$d/$name.csr" 2>/dev/null || return 1
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$K8S_CA_CERT" -CAkey "$K8S_CA_KEY" -CAcreateserial \
    -days 30 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null || return 1
  rm -f "$d/$name.csr" "$d/$name.ext"
}

# k8s_testbed_write_kubeconfig FILE USER token TOKEN | FILE USER cert CERTFILE KEYFILE
k8s_testbed_write_kubeconfig() {
  local file=$1 user=$2 kind=$3 ca
  ca=$(base64 -w0 <"$K8S_CA_CERT")
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "- name: lbd-testbed"
    echo "  cluster:"
    echo "    server: $K8S_APISERVER_URL"
    echo "    certificate-authority-data: $ca"
    echo "users:"
    echo "- name: $user"
    echo "  user:"
    if [ "$kind" = token ]; then
      echo "    token: $4"
    else
      echo "    client-certificate-data: $(base64 -w0 <"$4")"
      echo "    client-key-data: $(base64 -w0 <"$5")"
    fi
    echo "contexts:"
    echo "- name: $user@lbd-testbed"
    echo "  context:"
    echo "    cluster: lbd-testbed"
    echo "    user: $user"
    echo "    namespace: default"
    echo "current-context: $user@lbd-testbed"
  } >"$file"
  chmod 600 "$file"
}

k8s_kubectl() { "$K8S_KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" --request-timeout=30s "$@"; }
k8s_kubectl_controller() {
  "$K8S_KUBECTL" --kubeconfig "$K8S_CONTROLLER_KUBECONFIG" --request-timeout=30s "$@"
}

# k8s_testbed_curl PATH [curl args...]: an HTTPS request to the API server as the admin.
k8s_testbed_curl() {
  local path=$1
  shift
  curl -sS --cacert "$K8S_CA_CERT" -H "Authorization: Bearer $K8S_ADMIN_TOKEN" "$@" \
    "$K8S_APISERVER_URL$path"
}

_k8s_tail_logs() {
  local f
  for f in "$K8S_TESTBED_DIR"/*.log; do
    [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 25 "$f" >&2; }
  done
}

_k8s_start_etcd() {
  local t=${K8S_TESTBED_TIMEOUT:-180} peer=$1 bind=${K8S_TESTBED_BIND:-127.0.0.1}
  # No fsync: test data only, and a 1,000-Service benchmark should measure lbd, not the disk.
  k8s_testbed_spawn etcd "$K8S_BIN/etcd" --name testbed \
    --data-dir "$K8S_TESTBED_DIR/etcd" \
    --listen-client-urls "$K8S_ETCD_URL" --advertise-client-urls "$K8S_ETCD_URL" \
    --listen-peer-urls "http://$bind:$peer" --initial-advertise-peer-urls "http://$bind:$peer" \
    --initial-cluster "testbed=http://$bind:$peer" --initial-cluster-state new \
    --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level warn
  export K8S_ETCD_PID=$K8S_TESTBED_LAST_PID
  _k8s_wait_http "$K8S_ETCD_URL/health" "$t" || { _k8s_tail_logs; _k8s_err "etcd not healthy in ${t}s"; }
}

_k8s_start_apiserver() {
  local t=${K8S_TESTBED_TIMEOUT:-180} args
  mapfile -t args <"$K8S_TESTBED_DIR/kube-apiserver.args"
  k8s_testbed_spawn kube-apiserver "$K8S_BIN/kube-apiserver" "${args[@]}"
  export K8S_APISERVER_PID=$K8S_TESTBED_LAST_PID
  k8s_testbed_wait_ready "$t"
}

# k8s_testbed_wait_ready [SECONDS]: until /readyz answers ok (all post-start hooks done).
k8s_testbed_wait_ready() {
  local t=${1:-${K8S_TESTBED_TIMEOUT:-180}} deadline body
  deadline=$((SECONDS + t))
  while ((SECONDS < deadline)); do
    _k8s_alive "$K8S_APISERVER_PID" || { _k8s_tail_logs; _k8s_err "kube-apiserver exited"; return 1; }
    body=$(k8s_testbed_curl /readyz --max-time 3 2>/dev/null) && [ "$body" = ok ] && return 0
    sleep 0.5
  done
  k8s_testbed_curl '/readyz?verbose' --max-time 3 >&2 || true
  _k8s_tail_logs
  _k8s_err "kube-apiserver not ready in ${t}s"
}

# k8s_testbed_start WORKDIR
k8s_testbed_start() {
  local dir=${1:?usage: k8s_testbed_start WORKDIR} bind=${K8S_TESTBED_BIND:-127.0.0.1} ports bin
  local t=${K8S_TESTBED_TIMEOUT:-180}
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    _k8s_err "workdir $dir exists and is not empty"
    return 1
  fi
  local c
  for c in curl openssl python3 base64; do
    command -v "$c" >/dev/null || { _k8s_err "needs $c"; return 1; }
  done
  # shellcheck disable=SC2086
  bin=$("$K8S_TESTBED_ROOT/scripts/k8s-build.sh" kube-apiserver kubectl etcd \
    ${K8S_TESTBED_COMPONENTS:-} | tail -1) || { _k8s_err "scripts/k8s-build.sh failed"; return 1; }
  mkdir -p "$dir/certs"
  : >"$dir/.k8s-testbed"
  export K8S_TESTBED_DIR
  K8S_TESTBED_DIR=$(cd "$dir" && pwd)
  export K8S_BIN=$bin K8S_KUBECTL=$bin/kubectl
  K8S_TESTBED_PIDS=()

  ports=$(_k8s_free_ports 3) || { _k8s_err "no free ports"; return 1; }
  read -r K8S_APISERVER_PORT K8S_ETCD_PORT K8S_ETCD_PEER_PORT <<<"$ports"
  local host=$bind
  [[ $bind == *:* ]] && host="[$bind]"
  export K8S_APISERVER_PORT K8S_ETCD_PORT K8S_ETCD_PEER_PORT
  export K8S_APISERVER_URL="https://$host:$K8S_APISERVER_PORT" K8S_ETCD_URL="http://$host:$K8S_ETCD_PORT"
  export K8S_SERVICE_CIDR=${K8S_TESTBED_SERVICE_CIDR:-198.18.128.0/20,2001:2:0:8000::/112}
  local svc_ip
  svc_ip=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1].split(",")[0])[1])' \
    "$K8S_SERVICE_CIDR")

  # --- certificates and keys (openssl) ---
  local d=$K8S_TESTBED_DIR/certs
  export K8S_CA_CERT=$d/ca.crt K8S_CA_KEY=$d/ca.key K8S_SA_KEY=$d/sa.key K8S_SA_PUB=$d/sa.pub
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$K8S_CA_KEY" -out "$K8S_CA_CERT" \
    -days 30 -sha256 -subj "/CN=lbd-testbed-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null || { _k8s_err "openssl CA failed"; return 1; }
  local sans="IP:$bind,IP:127.0.0.1,DNS:localhost,IP:$svc_ip,DNS:kubernetes,DNS:kubernetes.default"
  sans="$sans,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  [ -n "${K8S_TESTBED_EXTRA_SANS:-}" ] && sans="$sans,$K8S_TESTBED_EXTRA_SANS"
  k8s_testbed_issue_cert apiserver kube-apiserver "" "$sans" || { _k8s_err "serving cert"; return 1; }
  openssl genrsa -out "$K8S_SA_KEY" 2048 2>/dev/null &&
    openssl rsa -in "$K8S_SA_KEY" -pubout -out "$K8S_SA_PUB" 2>/dev/null ||
    { _k8s_err "service-account key"; return 1; }

  # --- users: a static token file ---
  export K8S_CONTROLLER_USER=system:serviceaccount:kube-system:lbd-controller
  export K8S_ADMIN_TOKEN K8S_CONTROLLER_TOKEN
  K8S_ADMIN_TOKEN=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
  K8S_CONTROLLER_TOKEN=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
  {
    echo "$K8S_ADMIN_TOKEN,admin,admin-uid,\"system:masters\""
    echo "$K8S_CONTROLLER_TOKEN,$K8S_CONTROLLER_USER,lbd-controller-uid,\"system:serviceaccounts,system:serviceaccounts:kube-system\""
  } >"$d/tokens.csv"
  chmod 600 "$d/tokens.csv"
  k8s_testbed_issue_cert controller "$K8S_CONTROLLER_USER" \
    "system:serviceaccounts,system:serviceaccounts:kube-system" ||
    { _k8s_err "controller client cert"; return 1; }
  export K8S_ADMIN_KUBECONFIG=$K8S_TESTBED_DIR/admin.kubeconfig
  export K8S_CONTROLLER_KUBECONFIG=$K8S_TESTBED_DIR/controller.kubeconfig
  export K8S_CONTROLLER_CERT_KUBECONFIG=$K8S_TESTBED_DIR/controller-cert.kubeconfig
  k8s_testbed_write_kubeconfig "$K8S_ADMIN_KUBECONFIG" admin token "$K8S_ADMIN_TOKEN"
  k8s_testbed_write_kubeconfig "$K8S_CONTROLLER_KUBECONFIG" lbd-controller token "$K8S_CONTROLLER_TOKEN"
  k8s_testbed_write_kubeconfig "$K8S_CONTROLLER_CERT_KUBECONFIG" lbd-controller cert \
    "$d/controller.crt" "$d/controller.key"

  # --- etcd ---
  _k8s_start_etcd "$K8S_ETCD_PEER_PORT" || return 1

  # --- kube-apiserver: the flags, kept for restarts ---
  {
    printf '%s\n' --etcd-servers="$K8S_ETCD_URL" \
      --bind-address="$bind" --secure-port="$K8S_APISERVER_PORT" --advertise-address="$bind" \
      --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
      --client-ca-file="$K8S_CA_CERT" --token-auth-file="$d/tokens.csv" \
      --authorization-mode="${K8S_TESTBED_AUTHZ:-RBAC}" --anonymous-auth=false \
      --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$K8S_SA_PUB" --service-account-signing-key-file="$K8S_SA_KEY" \
      --api-audiences=https://kubernetes.default.svc.cluster.local \
      --endpoint-reconciler-type=none --allow-privileged=true \
      --enable-priority-and-fairness=true \
      --watch-cache="$([ "${K8S_TESTBED_WATCH_CACHE:-1}" = 0 ] && echo false || echo true)" \
      --profiling=false --v=1
    # shellcheck disable=SC2086
    [ -n "${K8S_TESTBED_APISERVER_ARGS:-}" ] && printf '%s\n' ${K8S_TESTBED_APISERVER_ARGS}
  } >"$K8S_TESTBED_DIR/kube-apiserver.args"
  _k8s_start_apiserver || return 1

  # --- RBAC for the controller (reference kubernetes-mapping.md §5) ---
  k8s_kubectl apply -f - >/dev/null <<'EOF' || { _k8s_err "RBAC objects"; return 1; }
apiVersion: v1
kind: ServiceAccount
metadata: {name: lbd-controller, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: lbd-controller}
rules:
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "update", "patch"]
- apiGroups: [""]
  resources: ["services/status"]
  verbs: ["update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: lbd-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lbd-controller}
subjects:
- {kind: ServiceAccount, name: lbd-controller, namespace: kube-system}
EOF
  # The RBAC authorizer reads its informers: wait until the binding is in effect.
  local deadline=$((SECONDS + t))
  until [ "$(k8s_kubectl_controller auth can-i watch endpointslices.discovery.k8s.io -A 2>/dev/null)" = yes ]; do
    ((SECONDS < deadline)) || { _k8s_err "controller RBAC not in effect in ${t}s"; return 1; }
    sleep 0.3
  done
  _k8s_log "ready: $K8S_APISERVER_URL (etcd $K8S_ETCD_URL), workdir $K8S_TESTBED_DIR"
}

# k8s_testbed_restart_apiserver: stops kube-apiserver (TERM) and starts it again with the same
# flags, port and certificates; waits for /readyz. The watch cache starts empty again.
k8s_testbed_restart_apiserver() {
  _k8s_kill "$K8S_APISERVER_PID"
  _k8s_forget "$K8S_APISERVER_PID"
  _k8s_start_apiserver
}

# k8s_testbed_restart_etcd: the same for etcd (data kept).
k8s_testbed_restart_etcd() {
  _k8s_kill "$K8S_ETCD_PID"
  _k8s_forget "$K8S_ETCD_PID"
  _k8s_start_etcd "$K8S_ETCD_PEER_PORT"
}

_k8s_etcd_revision() {
  curl -sS --max-time 10 -X POST "$K8S_ETCD_URL/v3/kv/range" -d '{"key":"AA=="}' |
    sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p'
}

# k8s_testbed_compact_etcd: compacts etcd to its current revision (physically) and defragments;
# prints that revision. A watch asking etcd for an older resourceVersion then fails with 410
# Gone. The API server's watch cache still holds its recent history: to make a watch from an
# older resourceVersion meet 410 whatever served it, restart the API server as well
# (k8s_testbed_restart_apiserver), or start with K8S_TESTBED_WATCH_CACHE=0.
k8s_testbed_compact_etcd() {
  local rev out
  rev=$(_k8s_etcd_revision)
  [ -n "$rev" ] || { _k8s_err "could not read etcd's revision"; return 1; }
  out=$(curl -sS --max-time 30 -X POST "$K8S_ETCD_URL/v3/kv/compaction" \
    -d "{\"revision\":\"$rev\",\"physical\":true}") || { _k8s_err "compaction failed"; return 1; }
  case $out in *'"error"'* | *'"code"'*)
    _k8s_err "compaction: $out"
    return 1
    ;;
  esac
  curl -sS --max-time 60 -X POST "$K8S_ETCD_URL/v3/maintenance/defragment" -d '{}' >/dev/null ||
    { _k8s_err "defragment failed"; return 1; }
  echo "$rev"
}

# k8s_testbed_stop: kills every process the test bed started (by pid), removes the workdir.
# Safe to call twice and from a trap.
k8s_testbed_stop() {
  local i
  for ((i = ${#K8S_TESTBED_PIDS[@]} - 1; i >= 0; i--)); do
    _k8s_kill "${K8S_TESTBED_PIDS[$i]}"
  done
  K8S_TESTBED_PIDS=()
  if [ -n "${K8S_TESTBED_DIR:-}" ] && [ -f "$K8S_TESTBED_DIR/.k8s-testbed" ]; then
    rm -rf "$K8S_TESTBED_DIR"
  fi
}
