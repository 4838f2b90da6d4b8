#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbctl -L without -n prints host and service names as ipvsadm does (addrport_to_anyname:
# gethostbyaddr, getservbyport; numeric where nothing answers), in every listing mode, and never
# waits on a resolver that does not answer for longer than its bound (cmd/lbctl/names.h).
#
# lbctl runs in its own namespace r, whose /etc/hosts, resolv.conf and nsswitch.conf come from
# /etc/netns/<r>/ (ip netns exec bind-mounts them over /etc). Part 1: a hosts file naming the VIP
# and one real server (the other real server, the client and the IPv6 addresses have no name) and
# a resolver on 127.0.0.1 that refuses at once. Part 2: the only nameserver is a socket that reads
# nothing (no answer, no error) with a 30 s timeout and 3 attempts, and
# the hosts file names nothing: every listing must still come, numeric, long before the
# resolver's first timeout.
#
#   client c (c0 198.18.1.2) -- lbd ns l (l0 198.18.1.1 | l1 198.18.2.1) -- s1 (198.18.2.11)
#   VIP 198.18.1.100 (TCP 80 full NAT, UDP 53, TCP 8080), [2001:2:1::100]:443; LADDR 198.18.2.100.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init lbnames

VIP=198.18.1.100
LADDR=198.18.2.100
RS1=198.18.2.11
RS2=198.18.2.12

dp_ns c
dp_ns l
dp_ns s1
dp_ns r
RNS=$(n r)
ETC="/etc/netns/$RNS"
made_netns_dir=0
[[ -d /etc/netns ]] || made_netns_dir=1
mkdir -p "$ETC"
cleanup_names() {
  local rc=$?
  set +e
  rm -rf "$ETC"
  ((made_netns_dir)) && rmdir /etc/netns 2>/dev/null
  (exit $rc)
  dp_cleanup
}
trap cleanup_names EXIT

dp_link c c0 l l0
ip -n "$(n c)" addr add 198.18.1.2/24 dev c0
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 2001:2:1::1/64 dev l0 nodad
dp_link l l1 s1 s0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip -n "$(n l)" addr add 2001:2:2::1/64 dev l1 nodad
ip -n "$(n s1)" addr add $RS1/24 dev s0
dp_http s1 $RS1 S1 80
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0
dp_lbd l nm --tun=lbd0 --workers=1 --mode=gateway

lbctl nm -A -t $VIP:80 -s rr
lbctl nm -P -t $VIP:80 -z $LADDR
lbctl nm -a -t $VIP:80 -r $RS1:80 --fullnat -w 1
lbctl nm -a -t $VIP:80 -r $RS2:80 --fullnat -w 0
lbctl nm -A -u $VIP:53 -s rr
lbctl nm -a -u $VIP:53 -r $RS1:53 -m
lbctl nm -A -t $VIP:8080 -s wlc -p 300
lbctl nm -a -t $VIP:8080 -r $RS2:8080 -m -w 2
lbctl nm -A -t "[2001:2:1::100]:443" -s rr
lbctl nm -a -t "[2001:2:1::100]:443" -r "[2001:2:2::11]:443" -m
[[ $(dp_get c "http://$VIP/") == S1 ]] || dp_fail "no answer through the full-NAT VIP"

# lbctl in namespace r, seeing r's /etc.
rl() { ip netns exec "$RNS" "$LBCTL_BIN" --server="unix://$DP_TMP/nm.sock" "$@"; }
FAILS=0
check() {  # check NAME GOT WANT
  if [[ "$2" == "$3" ]]; then
    echo "ok   $1"
  else
    echo "FAIL $1"
    diff <(echo "$3") <(echo "$2") | head -n 20
    FAILS=$((FAILS + 1))
  fi
}
has_line() {  # has_line NAME TEXT LINE
  if grep -qxF -- "$3" <<<"$2"; then
    echo "ok   $1"
  else
    echo "FAIL $1: no line '$3' in:"
    echo "$2"
    FAILS=$((FAILS + 1))
  fi
}

# --- Part 1: names from the hosts file; the resolver refuses at once.
printf '127.0.0.1 localhost\n%s vip.lbnames.test\n%s rs1.lbnames.test\n' $VIP $RS1 >"$ETC/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$ETC/resolv.conf"
printf 'hosts: files dns\nservices: files\n' >"$ETC/nsswitch.conf"
ip netns exec "$RNS" getent hosts $VIP | grep -q vip.lbnames.test ||
  dp_fail "ip netns exec did not give lbctl the test's hosts file"

out=$(rl -L)
numeric=$(rl -Ln)
check "-L has as many lines as -Ln" "$(wc -l <<<"$out")" "$(wc -l <<<"$numeric")"
has_line "-L service, host and port named" "$out" "TCP  vip.lbnames.test:http rr"
# (Its conn counts depend on how far the one connection has closed.)
if grep -qE "^  -> rs1\.lbnames\.test:http {8}FullNat 1 {6}[0-9]+ +[0-9]+ +\$" <<<"$out"; then
  echo "ok   -L dest named"
else
  echo "FAIL -L dest named: $out"
  FAILS=$((FAILS + 1))
fi
has_line "-L dest without a host name: numeric host, named port" "$out" \
  "$(printf '  -> %-28s %-7s %-6d %-10u %-10u' $RS2:http FullNat 0 0 0)"
has_line "-L UDP: udp's service name" "$out" "UDP  vip.lbnames.test:domain rr"
has_line "-L TCP 8080" "$out" "TCP  vip.lbnames.test:http-alt wlc persistent 300"
has_line "-L IPv6: numeric host (as ipvsadm), named port" "$out" "TCP  [2001:2:1::100]:https rr"
has_line "-L IPv6 dest" "$out" \
  "$(printf '  -> %-28s %-7s %-6d %-10u %-10u' '[2001:2:2::11]:https' Masq 1 0 0)"

for mode in --stats --rate --exact --thresholds --persistent-conn; do
  opts=("$mode")
  [[ $mode == --exact ]] && opts=(--stats --exact)
  got=$(rl -L "${opts[@]}")
  svc=$(grep -F "TCP  vip.lbnames.test:http " <<<"$got" | head -n 1 || true)
  # --stats/--rate pad the service column to 33; --thresholds/--persistent-conn print the plain
  # service line (ipvsadm's print_service_entry has no case of its own for them).
  want_svc="$(printf '%-33s' 'TCP  vip.lbnames.test:http')"
  [[ $mode == --thresholds || $mode == --persistent-conn ]] && want_svc="TCP  vip.lbnames.test:http rr"
  [[ $svc == "$want_svc"* ]] ||
    { echo "FAIL -L ${opts[*]}: service line '$svc'"; FAILS=$((FAILS + 1)); continue; }
  grep -qF -- "$(printf '  -> %-28s' rs1.lbnames.test:http)" <<<"$got" ||
    { echo "FAIL -L ${opts[*]}: no named dest in: $got"; FAILS=$((FAILS + 1)); continue; }
  check "-L ${opts[*]}: as many lines as -Ln" "$(wc -l <<<"$got")" \
    "$(rl -Ln "${opts[@]}" | wc -l)"
done

conns=$(rl -Lc)
conn=$(grep -F "vip.lbnames.test:http " <<<"$conns" | head -n 1 || true)
# (The client's port may have a name in /etc/services too.)
[[ $conn =~ ^TCP\ .*\ 198\.18\.1\.2:[^\ ]+\ +vip\.lbnames\.test:http\ +rs1\.lbnames\.test:http$ ]] &&
  echo "ok   -Lc: client numeric, VIP and real server named" ||
  { echo "FAIL -Lc: '$conn' in: $conns"; FAILS=$((FAILS + 1)); }
check "-Lc has as many lines as -Lnc" "$(wc -l <<<"$conns")" "$(rl -Lnc | wc -l)"
single=$(rl -L -t $VIP:80)
has_line "-L -t VIP: named" "$single" "TCP  vip.lbnames.test:http rr"

# -S without -n: names in the rules; -R reads them back (the same hosts file resolves them).
saved=$(rl -S)
has_line "-S: service named" "$saved" "-A -t vip.lbnames.test:http -s rr"
has_line "-S: pool" "$saved" "-P -t vip.lbnames.test:http -z $LADDR"
has_line "-S: dest named" "$saved" "-a -t vip.lbnames.test:http -r rs1.lbnames.test:http --fullnat -w 1"
has_line "-S: dest numeric host" "$saved" "-a -t vip.lbnames.test:http -r $RS2:http --fullnat -w 0"
before=$(rl -S -n)
rl -C
rl -R <<<"$saved" || dp_fail "-R of the named -S output failed"
check "-S (names) -> -C -> -R gives back the configuration" "$(rl -S -n)" "$before"

# --- Part 2: the only nameserver never answers (a socket that reads nothing: no reply, no port
# unreachable); the hosts file names nothing.
ip -n "$RNS" addr add 198.18.250.53/32 dev lo
ip netns exec "$RNS" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.250.53", 53))
time.sleep(3600)
' &
DP_PIDS+=($!)
dp_wait 10 listening r udp 53 || dp_fail "the silent nameserver did not start"
printf '127.0.0.1 localhost\n' >"$ETC/hosts"
printf 'nameserver 198.18.250.53\noptions timeout:30 attempts:3\n' >"$ETC/resolv.conf"
for args in "-L" "-L --stats" "-Lc" "-S"; do
  start=$SECONDS
  # shellcheck disable=SC2086
  rc=0
  got=$(timeout 25 ip netns exec "$RNS" "$LBCTL_BIN" --server="unix://$DP_TMP/nm.sock" $args) ||
    rc=$?
  took=$((SECONDS - start))
  echo "     lbctl $args with a silent resolver: exit $rc after ${took} s (bound 2 s)"
  if ((rc != 0)); then
    echo "FAIL lbctl $args with a silent resolver: exit $rc (124 = still waiting after 25 s)"
    FAILS=$((FAILS + 1))
    continue
  fi
  # shellcheck disable=SC2086
  want=$(rl ${args/-L/-Ln} 2>/dev/null)
  [[ $args == -S ]] && want=$(rl -S -n)
  # Hosts numeric; ports still named (/etc/services answers locally).
  grep -qF "vip.lbnames.test" <<<"$got" && { echo "FAIL $args: a stale name"; FAILS=$((FAILS + 1)); }
  if [[ $args == -S ]]; then
    has_line "-S, silent resolver: numeric hosts" "$got" "-A -t $VIP:http -s rr"
  elif [[ $args == -Lc ]]; then
    grep -qF "$VIP:http" <<<"$got" && echo "ok   -Lc, silent resolver: numeric hosts" ||
      { echo "FAIL -Lc, silent resolver: $got"; FAILS=$((FAILS + 1)); }
  else
    grep -qF "TCP  $VIP:http " <<<"$got" && echo "ok   $args, silent resolver: numeric hosts" ||
      { echo "FAIL $args, silent resolver: $got"; FAILS=$((FAILS + 1)); }
  fi
  check "$args, silent resolver: as many lines as with -n" "$(wc -l <<<"$got")" "$(wc -l <<<"$want")"
done

if ((FAILS > 0)); then
  dp_fail "lbctl_names: $FAILS check(s) failed"
fi
echo "lbctl_names: all checks passed"
