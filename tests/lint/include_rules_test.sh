#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Module boundaries (STYLE.md §1): linkage cannot enforce them because every dependency lives in
# /usr/include, so this greps #includes against the table. Prints each violation; exit 1 if any.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
fail=0
check() {  # check <dir> <regex of forbidden includes> <why>
  local dir=$1 re=$2 why=$3 hits
  [ -d "$dir" ] || return 0
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($re)" "$dir" \
           --include='*.h' --include='*.cc' 2>/dev/null || true)
  if [ -n "$hits" ]; then
    printf 'FAIL %s: %s\n%s\n' "$dir" "$why" "$hits"
    fail=1
  fi
}
sys='sys/socket\.h|sys/ioctl\.h|sys/epoll\.h|sys/mman\.h|unistd\.h|fcntl\.h|netinet/|arpa/inet\.h|linux/|net/if\.h|poll\.h|pthread\.h|thread>|liburing|netlink/|libmnl'
check core "boost/|grpc|grpcpp/|google/protobuf|spdlog|io/|api/|cmd/|$sys" \
  "core/ is pure: abseil and std only, no syscalls (STYLE.md §1)"
check io "api/|cmd/|grpc|grpcpp/|google/protobuf" "io/ may depend on core/ and Linux only"
check api/proto "core/|io/|cmd/|api/ipvsadm/" "api/proto is the generated proto library: nothing of ours"
check api/ipvsadm "core/|io/|cmd/" \
  "api/ipvsadm is the ipvsadm grammar library: api/proto and abseil only (STYLE.md §1)"
check cmd/lbctl "core/|io/|cmd/lbd/" "lbctl speaks only the API (api/proto, api/ipvsadm, abseil)"
check cmd/lbd "cmd/lbctl/" "lbd reads ipvsadm's language through api/ipvsadm, never through the CLI"
check cmd/lbd-controller "core/|io/|cmd/lbd/" \
  "lbd-controller: api/proto, abseil, Beast, JSON, OpenSSL only (STYLE.md §1)"
if [ "$fail" -eq 0 ]; then
  echo "include rules: ok"
fi
exit "$fail"
