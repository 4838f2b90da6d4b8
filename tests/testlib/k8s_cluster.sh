# SPDX-License-Identifier: Apache-2.0
# A single-node Kubernetes cluster on this machine, for the chart's e2e (issue 13). Source it from
# a root bash script:
#
#   source tests/testlib/k8s_cluster.sh
#   trap k8s_cluster_stop EXIT
#   k8s_cluster_start "$tmp/cluster"           # ~1 min warm; returns when the node is Ready
#   k8s_cluster_load_image lbd:e2e             # docker save | ctr -n k8s.io images import
#   k8s_kubectl apply -f ...                   # admin kubectl (KUBECONFIG is exported too)
#   k8s_cluster_stop                           # everything it made goes, by pid and by name
#
# Built on tests/testlib/k8s_testbed.sh (etcd + kube-apiserver; read its header) and adds
# kube-controller-manager, kube-scheduler, kube-proxy and kubelet from the same release
# (scripts/k8s-build.sh), with Debian bookworm's containerd, runc and CNI plugins.
#
# Pinned, and why:
#   Kubernetes v1.34.4 (K8S_VERSION): the test bed's release. Its kubelet still runs on cgroup v1
#     with failCgroupV1: false, which this machine needs (cgroup v1 hybrid hierarchy: cgroup2 only
#     at /sys/fs/cgroup/unified); from 1.35 on v1 support is on its way out (KEP 5573).
#   containerd 1.6.20 (Debian bookworm): speaks CRI v1, which is all kubelet 1.34 asks for; kubelet
#     1.34 accepts it (containerd 1.x is deprecated only from 1.35 on). runc 1.1.5, and
#     containernetworking-plugins 1.1.1 (bridge, host-local, loopback), all bookworm.
#   The pause image: tests/e2e/k8s/pause.c, compiled static into a FROM-scratch image
#     (localhost/lbd-k8s-pause:1), containerd's sandbox_image. No registry is ever asked. It stays
#     in docker as a cache (683 kB); everything else goes at stop.
#
# What the node is (one cluster per machine at a time: a lock, /run/lbd-k8s-cluster.lock):
#   bridge lbdk8s0 with 198.18.224.1/24 = the node's IP (kube-apiserver, kubelet, kube-proxy bind
#   there); pods get 198.18.224.10-239 from the bridge CNI plugin (host-local IPAM, no masquerade;
#   .240-.254 stay free for addresses a test places, e.g. a full-NAT local address);
#   Services 198.18.228.0/22 (IPv4 only); kube-proxy in iptables mode (as in kind) for the
#   Services not labelled for another proxy; no cluster DNS (pods find Services through the
#   kubelet's *_SERVICE_HOST variables). containerd's root, state, socket, CNI config, IPAM data,
#   kubelet's root and pod logs all live in the workdir.
# Host state it changes and restores at stop: net.ipv4.ip_forward=1 (Services reached from pods),
#   the six kernel tunables kubelet sets (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
#   kernel.panic_on_oops, kernel.keys.root_max{keys,bytes}), two iptables FORWARD rules accepting
#   the bridge (Docker's FORWARD policy is DROP and br_netfilter is built in here), kube-proxy's
#   and kubelet's KUBE-* chains, cgroups /kubepods, the bridge, pods' network namespaces.
#
# After k8s_cluster_start: everything k8s_testbed_start exports, plus KUBECONFIG (= the admin's),
# K8S_NODE_NAME, K8S_NODE_IP, K8S_POD_CIDR, K8S_CONTAINERD_SOCK, K8S_CLUSTER_DIR.
# k8s_ctr ARGS runs ctr against the cluster's containerd in namespace k8s.io.
# Knobs: K8S_CLUSTER_TIMEOUT (every wait, default 180 s), K8S_CLUSTER_LOCK_WAIT (default 1800 s).

source "$(dirname "${BASH_SOURCE[0]}")/k8s_testbed.sh"

K8S_NODE_NAME=lbd-node
K8S_NODE_IP=198.18.224.1
K8S_POD_CIDR=198.18.224.0/24
K8S_CLUSTER_BRIDGE=lbdk8s0
K8S_CLUSTER_SERVICE_CIDR=198.18.228.0/22
K8S_CLUSTER_PAUSE_IMAGE=localhost/lbd-k8s-pause:1
K8S_CLUSTER_LOCK=/run/lbd-k8s-cluster.lock
_K8SC_SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic
  kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
_K8SC_SAVED_SYSCTLS=()
_K8SC_CONTAINERD_PID=
_K8SC_STARTED=0

_k8sc_log() { printf '[k8s-cluster] %s\n' "$*" >&2; }
_k8sc_err() { printf '[k8s-cluster] error: %s\n' "$*" >&2; return 1; }

k8s_ctr() { ctr --address "$K8S_CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# _k8sc_wait SECONDS WHAT CMD...: runs CMD until it succeeds, bounded.
_k8sc_wait() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { _k8sc_err "$what not in ${secs}s"; return 1; }
    sleep 0.5
  done
}

_k8sc_tail() {  # _k8sc_tail FILE...: the last lines of logs, on stderr
  local f
  for f in "$@"; do [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 30 "$f" >&2; }; done
}

# _k8sc_cert NAME CN [ORG]: a client cert signed by the test bed's CA, and a kubeconfig with it.
_k8sc_client() {
  k8s_testbed_issue_cert "$1" "$2" "${3:-}" || return 1
  k8s_testbed_write_kubeconfig "$K8S_CLUSTER_DIR/$1.kubeconfig" "$2" cert \
    "$K8S_TESTBED_DIR/certs/$1.crt" "$K8S_TESTBED_DIR/certs/$1.key"
}

# _k8sc_pause_image: builds the pause image (static C binary, FROM scratch) unless docker has it.
_k8sc_pause_image() {
  docker image inspect "$K8S_CLUSTER_PAUSE_IMAGE" >/dev/null 2>&1 && return 0
  local d
  d=$(mktemp -d /tmp/lbd-k8s-pause.XXXXXX)
  gcc -static -Os -s -o "$d/pause" "$K8S_TESTBED_ROOT/tests/e2e/k8s/pause.c" &&
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$d/Dockerfile" &&
    docker build -q -t "$K8S_CLUSTER_PAUSE_IMAGE" "$d" >/dev/null
  local rc=$?
  rm -rf "$d"
  return $rc
}

# k8s_cluster_load_image IMAGE...: docker save | ctr import into the cluster's containerd.
k8s_cluster_load_image() {
  local img
  for img in "$@"; do
    docker save "$img" | k8s_ctr images import - >/dev/null ||
      { _k8sc_err "importing $img"; return 1; }
  done
}

_k8sc_write_configs() {
  local d=$K8S_CLUSTER_DIR kubelet_port healthz_port kp_healthz kp_metrics
  read -r kubelet_port healthz_port kp_healthz kp_metrics <<<"$(K8S_TESTBED_BIND=$K8S_NODE_IP _k8s_free_ports 4)"
  mkdir -p "$d/containerd/root" "$d/containerd/state" "$d/cni/net.d" "$d/cni/ipam" "$d/kubelet" \
    "$d/pod-logs"
  cat >"$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$K8S_CONTAINERD_SOCK"
[ttrpc]
  address = "$K8S_CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_CLUSTER_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: an oom_score_adj below containerd's own (0) cannot be set,
  # and runc fails the sandbox (-998) and Guaranteed pods (-997) with EPERM. Clamp them at 0.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/containerd/runc"
        BinaryName = "${K8S_CLUSTER_RUNC:-$(command -v runc)}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
EOF
  cat >"$d/cni/net.d/10-lbd-k8s.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "lbd-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$K8S_CLUSTER_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$K8S_POD_CIDR", "rangeStart": "198.18.224.10",
                     "rangeEnd": "198.18.224.239", "gateway": "$K8S_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0", "gw": "$K8S_NODE_IP"}],
        "dataDir": "$d/cni/ipam"
      }
    },
    {"type": "loopback"}
  ]
}
EOF
  printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$d/resolv.conf"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here (hybrid hierarchy): kubelet 1.34 runs on it only when told not to fail.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$K8S_CONTAINERD_SOCK
address: $K8S_NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
# Only the API server (a client cert of the cluster's kubelet CA) talks to the kubelet.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $d/pki/kubelet-ca.crt}
authorization: {mode: AlwaysAllow}
podLogsDir: $d/pod-logs
resolvConf: $d/resolv.conf
clusterDomain: cluster.local
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
maxPods: 40
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
fileCheckFrequency: 0s
syncFrequency: 10s
# No CAP_SYS_RESOURCE here (see containerd's restrict_oom_score_adj): keep the kubelet's own at 0.
oomScoreAdj: 0
EOF
  cat >"$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $d/kube-proxy.kubeconfig}
hostnameOverride: $K8S_NODE_NAME
bindAddress: $K8S_NODE_IP
healthzBindAddress: 127.0.0.1:$kp_healthz
metricsBindAddress: 127.0.0.1:$kp_metrics
mode: iptables
clusterCIDR: $K8S_POD_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$K8S_NODE_IP/32"]
iptables: {localhostNodePorts: false}
# 0: leave the machine's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
oomScoreAdj: 0
EOF
}

# _k8sc_pki: the kubelet's client CA and the API server's client cert for it, made before the API
# server starts (it reads them at start).
_k8sc_pki() {
  local p=$K8S_CLUSTER_DIR/pki
  mkdir -p "$p"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$p/kubelet-ca.key" -out "$p/kubelet-ca.crt" \
    -days 30 -sha256 -subj "/CN=lbd-k8s-kubelet-client-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null || return 1
  openssl req -new -newkey rsa:2048 -nodes -keyout "$p/apiserver-kubelet.key" \
    -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" -out "$p/apiserver-kubelet.csr" \
    2>/dev/null || return 1
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' \
    >"$p/client.ext"
  openssl x509 -req -in "$p/apiserver-kubelet.csr" -CA "$p/kubelet-ca.crt" -CAkey "$p/kubelet-ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$p/client.ext" -out "$p/apiserver-kubelet.crt" \
    2>/dev/null
}

_k8sc_node_ready() {
  [ "$(k8s_kubectl get node "$K8S_NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# k8s_cluster_start WORKDIR
k8s_cluster_start() {
  local dir=${1:?usage: k8s_cluster_start WORKDIR} t=${K8S_CLUSTER_TIMEOUT:-180} c
  for c in containerd ctr runc docker gcc iptables ip openssl; do
    command -v "$c" >/dev/null || { _k8sc_err "needs $c"; return 1; }
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    { _k8sc_err "needs the CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)"; return 1; }
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    _k8sc_err "workdir $dir exists and is not empty"
    return 1
  fi
  exec {_K8SC_LOCK_FD}>"$K8S_CLUSTER_LOCK"
  flock -w "${K8S_CLUSTER_LOCK_WAIT:-1800}" "$_K8SC_LOCK_FD" ||
    { _k8sc_err "another local cluster holds $K8S_CLUSTER_LOCK"; return 1; }
  _K8SC_STARTED=1
  mkdir -p "$dir"
  : >"$dir/.k8s-cluster"
  export K8S_CLUSTER_DIR
  K8S_CLUSTER_DIR=$(cd "$dir" && pwd)
  export K8S_CONTAINERD_SOCK=$K8S_CLUSTER_DIR/containerd/containerd.sock
  export K8S_NODE_NAME K8S_NODE_IP K8S_POD_CIDR
  local t0=$SECONDS
  bash "$K8S_TESTBED_ROOT/scripts/start-dockerd.sh" >&2 || { _k8sc_err "no docker engine"; return 1; }
  # A run killed before its cleanup left these: the lock says no cluster is running now.
  _k8sc_host_cleanup

  local s
  _K8SC_SAVED_SYSCTLS=()
  for s in "${_K8SC_SYSCTLS[@]}"; do _K8SC_SAVED_SYSCTLS+=("$s=$(cat "/proc/sys/$s")"); done
  echo 1 >/proc/sys/net/ipv4/ip_forward

  # The bridge first: its address is the node's, and the API server binds there.
  ip link add "$K8S_CLUSTER_BRIDGE" type bridge || { _k8sc_err "bridge $K8S_CLUSTER_BRIDGE"; return 1; }
  ip addr add "$K8S_NODE_IP/24" dev "$K8S_CLUSTER_BRIDGE" && ip link set "$K8S_CLUSTER_BRIDGE" up ||
    return 1
  iptables -w 10 -I FORWARD 1 -i "$K8S_CLUSTER_BRIDGE" -j ACCEPT -m comment --comment lbd-k8s-cluster &&
    iptables -w 10 -I FORWARD 1 -o "$K8S_CLUSTER_BRIDGE" -j ACCEPT -m comment --comment lbd-k8s-cluster ||
    { _k8sc_err "iptables FORWARD rules"; return 1; }

  _k8sc_pki || { _k8sc_err "kubelet client CA"; return 1; }
  local p=$K8S_CLUSTER_DIR/pki
  K8S_TESTBED_BIND=$K8S_NODE_IP K8S_TESTBED_SERVICE_CIDR=$K8S_CLUSTER_SERVICE_CIDR \
    K8S_TESTBED_AUTHZ=Node,RBAC \
    K8S_TESTBED_COMPONENTS="kube-controller-manager kube-scheduler kube-proxy kubelet" \
    K8S_TESTBED_APISERVER_ARGS="--endpoint-reconciler-type=lease --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate=$p/apiserver-kubelet.crt --kubelet-client-key=$p/apiserver-kubelet.key
      --kubelet-preferred-address-types=InternalIP" \
    k8s_testbed_start "$K8S_CLUSTER_DIR/testbed" || return 1
  export KUBECONFIG=$K8S_ADMIN_KUBECONFIG
  _k8sc_log "API server up after $((SECONDS - t0))s"

  _k8sc_write_configs
  _k8sc_client kube-controller-manager system:kube-controller-manager &&
    _k8sc_client kube-scheduler system:kube-scheduler &&
    _k8sc_client kube-proxy system:kube-proxy &&
    _k8sc_client kubelet "system:node:$K8S_NODE_NAME" system:nodes || { _k8sc_err "client certs"; return 1; }

  # containerd (its own root, state and socket: the machine's containerd, if any, is untouched).
  "$(command -v containerd)" --config "$K8S_CLUSTER_DIR/containerd/config.toml" \
    >>"$K8S_CLUSTER_DIR/containerd.log" 2>&1 </dev/null &
  _K8SC_CONTAINERD_PID=$!
  _k8sc_wait "$t" "containerd" k8s_ctr version ||
    { _k8sc_tail "$K8S_CLUSTER_DIR/containerd.log"; return 1; }
  _k8sc_pause_image || { _k8sc_err "building the pause image"; return 1; }
  k8s_cluster_load_image "$K8S_CLUSTER_PAUSE_IMAGE" || return 1

  local kcm_port sched_port
  read -r kcm_port sched_port <<<"$(K8S_TESTBED_BIND=127.0.0.1 _k8s_free_ports 2)"
  local d=$K8S_CLUSTER_DIR
  k8s_testbed_spawn kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$d/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$d/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$d/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file="$K8S_SA_KEY" \
    --root-ca-file="$K8S_CA_CERT" --service-cluster-ip-range="$K8S_CLUSTER_SERVICE_CIDR" \
    --allocate-node-cidrs=false --controllers='*,-nodeipam' --profiling=false --v=1
  k8s_testbed_spawn kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$d/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$d/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$d/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false --profiling=false --v=1
  k8s_testbed_spawn kubelet "$K8S_BIN/kubelet" --config="$d/kubelet.yaml" \
    --kubeconfig="$d/kubelet.kubeconfig" --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" \
    --hostname-override="$K8S_NODE_NAME" --node-ip="$K8S_NODE_IP" --v=1
  k8s_testbed_spawn kube-proxy "$K8S_BIN/kube-proxy" --config="$d/kube-proxy.yaml" --v=1

  local logs=("$K8S_TESTBED_DIR"/kube-controller-manager.log "$K8S_TESTBED_DIR"/kube-scheduler.log
    "$K8S_TESTBED_DIR"/kubelet.log "$K8S_TESTBED_DIR"/kube-proxy.log)
  _k8sc_wait "$t" "node $K8S_NODE_NAME Ready" _k8sc_node_ready ||
    { _k8sc_tail "${logs[@]}" "$K8S_CLUSTER_DIR/containerd.log"; return 1; }
  _k8sc_wait "$t" "ServiceAccount default/default" k8s_kubectl get serviceaccount default ||
    { _k8sc_tail "${logs[@]}"; return 1; }
  _k8sc_log "cluster ready after $((SECONDS - t0))s: node $K8S_NODE_NAME ($K8S_NODE_IP), workdir $K8S_CLUSTER_DIR"
}

# _k8sc_umount_under DIR: unmounts everything mounted below DIR, deepest first.
_k8sc_umount_under() {
  local m
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# _k8sc_host_cleanup: what the cluster changes outside its workdir, undone (idempotent).
_k8sc_host_cleanup() {
  local - t c spec
  set +e +o pipefail
  for c in iptables ip6tables; do
    command -v "$c" >/dev/null || continue
    while "$c" -w 10 -D FORWARD -i "$K8S_CLUSTER_BRIDGE" -j ACCEPT -m comment --comment lbd-k8s-cluster 2>/dev/null; do :; done
    while "$c" -w 10 -D FORWARD -o "$K8S_CLUSTER_BRIDGE" -j ACCEPT -m comment --comment lbd-k8s-cluster 2>/dev/null; do :; done
    # kube-proxy's and kubelet's chains (no other cluster runs: the lock). iptables-restore
    # parses the saved rules' quoting; one transaction per table.
    for t in filter nat mangle; do
      local chains
      chains=$("$c-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p')
      [ -n "$chains" ] || continue
      {
        echo "*$t"
        "$c-save" -t "$t" | grep -- '-j KUBE-' | grep -v '^-A KUBE-' | sed 's/^-A /-D /'
        for spec in $chains; do echo "-F $spec"; done
        for spec in $chains; do echo "-X $spec"; done
        echo COMMIT
      } | "$c-restore" -w 10 --noflush || _k8sc_log "could not remove the KUBE-* chains of $c -t $t"
    done
  done
  ip link del "$K8S_CLUSTER_BRIDGE" 2>/dev/null || true
  # Pods' cgroups (cgroupfs driver, root "/"): deepest first; a cgroup with tasks stays.
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# k8s_cluster_stop: pods, kubelet, control plane, containerd and its shims, mounts, the workdir and
# the host state above. Safe to call twice and from a trap.
k8s_cluster_stop() {
  [ "$_K8SC_STARTED" = 1 ] || return 0
  local - d=${K8S_CLUSTER_DIR:-} deadline ns netns=() pid id
  set +e
  if [ -n "${K8S_APISERVER_PID:-}" ] && kill -0 "$K8S_APISERVER_PID" 2>/dev/null && [ -n "$d" ]; then
    # Controllers first (no new pods), then every pod: kubelet stops their sandboxes (CNI DEL).
    for ns in $(k8s_kubectl get ns -o name 2>/dev/null | cut -d/ -f2); do
      k8s_kubectl -n "$ns" delete deployments,daemonsets,replicasets,statefulsets,jobs --all \
        --wait=false >/dev/null 2>&1
      k8s_kubectl -n "$ns" delete pods --all --grace-period=1 --wait=false >/dev/null 2>&1
    done
    deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
      [ -z "$(k8s_kubectl get pods -A -o name 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  # The sandboxes' network namespaces, in case kubelet did not get to stop them all.
  if [ -n "$d" ] && [ -S "$d/containerd/containerd.sock" ]; then
    for id in $(k8s_ctr containers ls -q 2>/dev/null); do
      ns=$(k8s_ctr containers info "$id" 2>/dev/null |
        python3 -c 'import json,sys
for n in json.load(sys.stdin).get("Spec",{}).get("linux",{}).get("namespaces",[]):
    if n.get("type")=="network" and n.get("path","").startswith("/var/run/netns/"): print(n["path"])' 2>/dev/null)
      [ -n "$ns" ] && netns+=("$ns")
    done
  fi
  k8s_testbed_stop   # kube-proxy, kubelet, scheduler, controller-manager, API server, etcd
  if [ -n "$d" ] && [ -S "$d/containerd/containerd.sock" ]; then
    for id in $(k8s_ctr tasks ls -q 2>/dev/null); do
      k8s_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    deadline=$((SECONDS + 20))
    for id in $(k8s_ctr tasks ls -q 2>/dev/null); do
      while ((SECONDS < deadline)) && ! k8s_ctr tasks delete "$id" >/dev/null 2>&1; do sleep 0.5; done
    done
  fi
  if [ -n "$_K8SC_CONTAINERD_PID" ]; then
    _k8s_kill "$_K8SC_CONTAINERD_PID"
    _K8SC_CONTAINERD_PID=
  fi
  if [ -n "$d" ]; then
    # The runc shims this containerd started: matched by its socket path, killed by pid.
    for pid in $(grep -lsF -- "$d/containerd/containerd.sock" /proc/[0-9]*/cmdline | cut -d/ -f3); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd-shim ] && kill -9 "$pid" 2>/dev/null
    done
  fi
  for ns in "${netns[@]}"; do
    [ -e "$ns" ] && { umount "$ns" 2>/dev/null; rm -f "$ns"; }
  done
  if [ -n "$d" ] && [ -f "$d/.k8s-cluster" ]; then
    _k8sc_umount_under "$d"
    rm -rf --one-file-system "$d"
  fi
  _k8sc_host_cleanup
  local kv
  for kv in "${_K8SC_SAVED_SYSCTLS[@]}"; do echo "${kv#*=}" >"/proc/sys/${kv%%=*}" 2>/dev/null; done
  _K8SC_SAVED_SYSCTLS=()
  _K8SC_STARTED=0
  [ -n "${_K8SC_LOCK_FD:-}" ] && exec {_K8SC_LOCK_FD}>&-
  _K8SC_LOCK_FD=
  return 0
}
