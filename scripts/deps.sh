# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/*.sh: installs missing Debian bookworm packages (as root, from Debian's
# archive only). install_deps <group>...  groups: build test demo e2e bench
LB_DEPS_build="cmake g++ make pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libabsl-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
  libnl-route-3-dev libmnl-dev libspdlog-dev nlohmann-json3-dev libbpf-dev clang
  libssl-dev libyaml-dev ccache"
LB_DEPS_test="clang clang-format libclang-rt-14-dev iproute2 socat iperf3 curl python3 nftables procps kmod
  ethtool nginx-light dnsmasq-base openssl iptables python3-grpcio python3-protobuf tshark
  sip-tester vsftpd keepalived"
LB_DEPS_demo="iproute2 curl python3 socat procps libbpf1"
LB_DEPS_e2e="docker.io debootstrap containernetworking-plugins iptables npm unzip"
LB_DEPS_bench="iperf3 wrk nginx-light haproxy nftables linux-perf"

install_deps() {
  local want="" g p missing=()
  for g in "$@"; do
    local var="LB_DEPS_$g"
    want="$want ${!var}"
  done
  for p in $want; do
    # npm also comes with nodejs from other sources (NodeSource's nodejs conflicts with Debian's
    # npm package): any working npm will do.
    [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root to install them)" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
