#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lbctl speaks ipvsadm: the real lbd (gateway mode, in a namespace this test creates) driven by
# a long script of ipvsadm command lines through lbctl. Every listing is compared byte for byte
# with ipvsadm's format; -S, -C, -R, -S gives the same rules; a restart with the state file
# gives the same rules, sysctls and fwmark rules; bad commands change nothing and print
# ipvsadm's reason; -R goes on after a line lbd refuses and stops at one that does not parse;
# a bad --config line or a corrupt state file stops lbd, naming the file (and
# line); a --config file may hold lbctl's --sysctl and fwmark-rule lines.
# Exit 77 = skipped (not root, no /dev/net/tun), except under CI=true where that is a failure.
set -uo pipefail

skip() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL (CI=true): $*" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root"
[[ -c /dev/net/tun ]] || skip "needs /dev/net/tun"
command -v ip >/dev/null || skip "needs iproute2"
: "${LBD_BIN:?LBD_BIN must point at build/bin/lbd}"
: "${LBCTL_BIN:?LBCTL_BIN must point at build/bin/lbctl}"

NS="lbctl-$$"
TUN="lbc$$"
TMP=$(mktemp -d /tmp/lbctl-it.XXXXXX)
SOCK="$TMP/run/lbd.sock"
LBD_PID=""
FAILS=0

# wait_gone PID SECONDS: bounded wait for a process to exit.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  local rc=$?
  if [[ -n "$LBD_PID" ]]; then
    kill "$LBD_PID" 2>/dev/null
    wait_gone "$LBD_PID" 10 || kill -9 "$LBD_PID" 2>/dev/null
  fi
  ip netns del "$NS" 2>/dev/null
  if ((rc != 0)) && [[ -f "$TMP/lbd.log" ]]; then
    echo "--- lbd.log (tail)"
    tail -n 30 "$TMP/lbd.log"
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT

lbctl() { "$LBCTL_BIN" --server="unix://$SOCK" "$@"; }

start_lbd() {
  ip netns exec "$NS" "$LBD_BIN" --tun="$TUN" --mode=gateway --workers=1 \
    --listen="unix://$SOCK" --state_file="$TMP/state" --conn_capacity=4096 \
    >>"$TMP/lbd.log" 2>&1 &
  LBD_PID=$!
  local i
  for ((i = 0; i < 150; i++)); do
    lbctl -Ln >/dev/null 2>&1 && return 0
    kill -0 "$LBD_PID" 2>/dev/null || die "lbd exited: $(tail -n 5 "$TMP/lbd.log")"
    sleep 0.1
  done
  die "lbd did not answer on $SOCK within 15 s"
}

stop_lbd() {
  kill -TERM "$LBD_PID"
  wait_gone "$LBD_PID" 15 || die "lbd did not stop within 15 s"
  wait "$LBD_PID"
  local rc=$?
  LBD_PID=""
  ((rc == 0)) || die "lbd exited with $rc on SIGTERM"
}

# start_fails NAME WANT ARGS...: lbd started with ARGS must exit non-zero on its own (within
# 20 s) and its log must contain WANT.
start_fails() {
  local name=$1 want=$2 out rc
  shift 2
  out=$(timeout 20 ip netns exec "$NS" "$LBD_BIN" --tun="$TUN" --mode=gateway --workers=1 \
    --listen="unix://$SOCK" --conn_capacity=4096 "$@" 2>&1)
  rc=$?
  if ((rc == 0 || rc == 124)); then
    echo "FAIL: $name: lbd exit status $rc (want a refusal)"
    FAILS=$((FAILS + 1))
  elif [[ "$out" != *"$want"* ]]; then
    echo "FAIL: $name: lbd's log lacks: $want"
    printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
    FAILS=$((FAILS + 1))
  fi
}

check() {  # check NAME GOT WANT
  if [[ "$2" != "$3" ]]; then
    echo "FAIL: $1"
    diff <(printf '%s' "$3") <(printf '%s' "$2") | sed 's/^/    /'
    FAILS=$((FAILS + 1))
  fi
}

# run ARGS...: a command that must succeed and print nothing.
run() {
  local out
  if ! out=$(lbctl "$@" 2>&1); then
    echo "FAIL: lbctl $* -> $out"
    FAILS=$((FAILS + 1))
  elif [[ -n "$out" ]]; then
    echo "FAIL: lbctl $* printed: $out"
    FAILS=$((FAILS + 1))
  fi
}

# expect ARGS... <<EOF: stdout must equal the here-document exactly (padding included).
expect() {
  local want got
  want=$(cat; echo x)
  got=$(lbctl "$@"; echo x)
  check "lbctl $*" "${got%x}" "${want%x}"
}

# refuse RC MESSAGE ARGS...: exits RC, stderr starts with MESSAGE, the rules are unchanged.
refuse() {
  local want_rc=$1 want_msg=$2 before after err rc
  shift 2
  before=$(lbctl -S -n)
  err=$(lbctl "$@" 2>&1 >/dev/null)
  rc=$?
  after=$(lbctl -S -n)
  check "lbctl $* (exit status)" "$rc" "$want_rc"
  check "lbctl $* (message)" "${err%%$'\n'*}" "$want_msg"
  check "lbctl $* (rules unchanged)" "$after" "$before"
}

ip netns add "$NS" || die "ip netns add $NS"
ip -n "$NS" link set lo up
start_lbd

# --- ipvsadm(8) EXAMPLE 1 and 2 and the IPv6 section, on test addresses ---------------------
run -A -t 198.18.0.1:80 -s rr
for i in 1 2 3 4 5; do run -a -t 198.18.0.1:80 -r 198.18.1.$i:80 -m; done
run -A -f 1 -s rr
for i in 1 2; do run -a -f 1 -r 198.18.1.$i:0 -m; done
run -A -t [2001:2::80]:80 -s rr
run -a -t [2001:2::80]:80 -r [2001:2::a0a0]:80 -m
# Combined short options, flags, persistence, one-packet, thresholds, tunnels.
run -Au 198.18.0.2:53 -s sh -b sh-fallback,sh-port -o
run -au 198.18.0.2:53 -r 198.18.1.3:5353 -m -w 2 -x 100 -y 10
run -A -t 198.18.0.3:443 -p 600 -M 255.255.255.0
run -a -t 198.18.0.3:443 -r 198.18.1.4:8443 -i --tun-type gue --tun-port 6080 --tun-csum -w 3
run -A --sctp-service 198.18.0.4:3868 -s wrr -p

expect -Ln <<'EOF'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.1:80 rr
  -> 198.18.1.1:80                Masq    1      0          0         
  -> 198.18.1.2:80                Masq    1      0          0         
  -> 198.18.1.3:80                Masq    1      0          0         
  -> 198.18.1.4:80                Masq    1      0          0         
  -> 198.18.1.5:80                Masq    1      0          0         
TCP  198.18.0.3:443 wlc persistent 600 mask 255.255.255.0
  -> 198.18.1.4:443               Tunnel  3      0          0         
UDP  198.18.0.2:53 sh (sh-fallback,sh-port) ops
  -> 198.18.1.3:5353              Masq    2      0          0         
SCTP 198.18.0.4:3868 wrr persistent 360
TCP  [2001:2::80]:80 rr
  -> [2001:2::a0a0]:80            Masq    1      0          0         
FWM  1 rr
  -> 198.18.1.1:0                 Masq    1      0          0         
  -> 198.18.1.2:0                 Masq    1      0          0         
EOF

expect -L -n --tun-info -t 198.18.0.3:443 <<'EOF'
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  198.18.0.3:443 wlc persistent 600 mask 255.255.255.0
  -> 198.18.1.4:443               Tunnel  gue:6080:+c   3      0          0         
EOF

expect -Ln --thresholds -u 198.18.0.2:53 <<'EOF'
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
UDP  198.18.0.2:53 sh (sh-fallback,sh-port) ops
  -> 198.18.1.3:5353              100        10         0          0         
EOF

expect -Ln --stats --exact -t 198.18.0.3:443 <<'EOF'
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.18.0.3:443                      0        0        0        0        0
  -> 198.18.1.4:443                      0        0        0        0        0
EOF

expect -Ln --rate -t 198.18.0.3:443 <<'EOF'
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.18.0.3:443                      0        0        0        0        0
  -> 198.18.1.4:443                      0        0        0        0        0
EOF

expect -Ln --persistent-conn -t 198.18.0.3:443 <<'EOF'
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.18.0.3:443 wlc persistent 600 mask 255.255.255.0
  -> 198.18.1.4:443               3         0           0          0         
EOF

expect -Lnc <<'EOF'
IPVS connection entries
pro expire state       source             virtual            destination
EOF

# --- edits replace the whole entry; deletes ---------------------------------------------------
run -e -t 198.18.0.1:80 -r 198.18.1.2:80 -m -w 0
run -e -t 198.18.0.1:80 -r 198.18.1.3:80 -g   # omitted -w is 1 again; -g forces the port
run -E -t 198.18.0.1:80 -s wlc -p 60          # omitted -s would be wlc anyway
run -E -t 198.18.0.3:443 -s rr                # persistence cleared: -E replaces it all
run -d -t 198.18.0.1:80 -r 198.18.1.4:80
run -d -t 198.18.0.1:80 -r 198.18.1.5
run -D --sctp-service 198.18.0.4:3868
run -d -f 1 -r 198.18.1.2:0

expect -L -n <<'EOF'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.1:80 wlc persistent 60
  -> 198.18.1.1:80                Masq    1      0          0         
  -> 198.18.1.2:80                Masq    0      0          0         
  -> 198.18.1.3:80                Route   1      0          0         
TCP  198.18.0.3:443 rr
  -> 198.18.1.4:443               Tunnel  3      0          0         
UDP  198.18.0.2:53 sh (sh-fallback,sh-port) ops
  -> 198.18.1.3:5353              Masq    2      0          0         
TCP  [2001:2::80]:80 rr
  -> [2001:2::a0a0]:80            Masq    1      0          0         
FWM  1 rr
  -> 198.18.1.1:0                 Masq    1      0          0         
EOF

# --- timeouts, zero, daemon ----------------------------------------------------------------
expect -L --timeout <<'EOF'
Timeout (tcp tcpfin udp): 900 120 300
EOF
run --set 1000 0 60
expect -L --timeout <<'EOF'
Timeout (tcp tcpfin udp): 1000 120 60
EOF
run -Z
run -Z -t 198.18.0.1:80
expect -L --daemon </dev/null
refuse 255 "No such device" --start-daemon master  # ipvsadm's default interface eth0: none here
refuse 255 "No daemon is running" --stop-daemon master
expect -L --daemon </dev/null
# The sync daemons on the namespace's lo (multicast on): listed as ipvsadm lists them, kept in
# the state file (checked again after the restart below).
ip netns exec "$NS" ip link set lo multicast on || die "ip link set lo multicast on"
run --start-daemon backup --mcast-interface lo --syncid 7
refuse 255 "Daemon has already run" --start-daemon backup --mcast-interface lo
run --start-daemon master --mcast-interface lo --mcast-port 8850 --mcast-ttl 2
DAEMONS='master sync daemon (mcast=lo, syncid=0, maxlen=1472, group=224.0.0.81, port=8850, ttl=2)
backup sync daemon (mcast=lo, syncid=7, maxlen=65507, group=224.0.0.81, port=8848, ttl=1)'
check "-L --daemon" "$(lbctl -L --daemon)" "$DAEMONS"

# --- bad commands change nothing and say why -------------------------------------------------
refuse 255 "Service already exists" -A -t 198.18.0.1:80 -s rr
refuse 255 "Scheduler or persistence engine not found" -A -t 198.18.0.9:80 -s nosuch
refuse 255 "No such service" -E -t 198.18.0.9:80 -s rr
refuse 255 "No such service" -D -t 198.18.0.9:80
refuse 255 "Service not defined" -a -t 198.18.0.9:80 -r 198.18.1.1
refuse 255 "Destination already exists" -a -t 198.18.0.1:80 -r 198.18.1.1:80 -m
refuse 255 "No such destination" -e -t 198.18.0.1:80 -r 198.18.1.9:80 -m
refuse 255 "No such destination" -d -t 198.18.0.1:80 -r 198.18.1.9:80
refuse 255 "Numerical result out of range" -a -t 198.18.0.1:80 -r 198.18.1.8:80 -m -x 5 -y 9
refuse 1 "No such service" -L -t 198.18.0.9:80
refuse 2 "Zero port specified for non-persistent service" -A -t 198.18.0.9
refuse 2 "Illegal 'scheduler' option with the 'list' command" -L -s rr
refuse 2 "You need to supply the 'real-server' option for the 'add-server' command" \
  -a -t 198.18.0.1:80
refuse 2 "Tunnel options conflict with forward method" \
  -a -t 198.18.0.1:80 -r 198.18.1.8 -m --tun-type gre
refuse 2 "options conflicts in the list command" -L --stats --timeout
refuse 255 "Try \`$LBCTL_BIN -h' or '$LBCTL_BIN --help' for more information." \
  -t 198.18.0.1:80 -A
# -R runs its lines in order, as ipvsadm's restore_table(). A line that does not parse
# (fail(2, ...)) ends it with status 2: the lines before it are applied, it and the rest are not.
before=$(lbctl -S -n)
err=$(printf -- '-A -t 198.18.0.7:80\n-a -t 198.18.0.7:80 -r 198.18.1.1 -w x\n-A -t 198.18.0.6:80\n' |
  lbctl -R 2>&1)
check "-R with a bad line (exit status)" "$?" "2"
check "-R with a bad line (message)" "$err" "illegal weight specified"
check "-R with a bad line (line 1 applied)" "$(lbctl -S -n | grep -c -- '-A -t 198.18.0.7:80 ')" "1"
check "-R with a bad line (line 2 not applied)" "$(lbctl -S -n | grep -c -- '-a -t 198.18.0.7:80 ')" "0"
check "-R with a bad line (line 3 not applied)" "$(lbctl -S -n | grep -c 198.18.0.6:80)" "0"
run -D -t 198.18.0.7:80
check "-R with a bad line (nothing else changed)" "$(lbctl -S -n)" "$before"
# A line lbd refuses prints ipvsadm's message and the restore goes on; the exit status is the
# last line's.
err=$(printf -- '-A -t 198.18.0.8:80 -s rr\n# comment\n-A -t 198.18.0.8:80\n-a -t 198.18.0.9:80 -r 198.18.1.1\n-A -t 198.18.0.9:80 -s rr\n' |
  lbctl -R 2>&1)
check "-R with refused lines (exit status)" "$?" "0"
check "-R with refused lines (messages)" "$err" "Service already exists
Service not defined"
check "-R with refused lines (line 1 applied)" "$(lbctl -S -n | grep -c 198.18.0.8:80)" "1"
check "-R with refused lines (line 5 applied)" "$(lbctl -S -n | grep -c 198.18.0.9:80)" "1"
err=$(printf -- '-A -t 198.18.0.10:80 -s rr\n-D -t 198.18.0.11:80\n' | lbctl -R 2>&1)
check "-R with a refused last line (exit status)" "$?" "255"
check "-R with a refused last line (message)" "$err" "No such service"
check "-R with a refused last line (line 1 applied)" "$(lbctl -S -n | grep -c 198.18.0.10:80)" "1"
run -D -t 198.18.0.8:80
run -D -t 198.18.0.9:80
run -D -t 198.18.0.10:80

# --- lbctl's own commands: sysctls and fwmark classification rules ---------------------------
run --sysctl expire_nodest_conn=1 net.ipv4.vs.sloppy_tcp=1 lblc_expiration=3600
expect --sysctl expire_nodest_conn sloppy_tcp lblc_expiration pmtu_disc <<'EOF'
net.ipv4.vs.expire_nodest_conn = 1
net.ipv4.vs.sloppy_tcp = 1
net.ipv4.vs.lblc_expiration = 3600
net.ipv4.vs.pmtu_disc = 1
EOF
refuse 255 "Invalid operation.  Possibly wrong module version, address not unicast, ..." \
  --sysctl drop_entry=4
refuse 2 "unknown sysctl \`nosuch' (lbctl --sysctl lists them)" --sysctl nosuch=1
run --add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 8000:8099
run --add-fwmark-rule --mark 1 --dest 2001:2::/64
expect --list-fwmark-rules <<'EOF'
--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 8000:8099
--add-fwmark-rule --mark 1 --dest 2001:2::/64
EOF
refuse 255 "Fwmark rule already exists" --add-fwmark-rule --mark 1 --dest 2001:2::9/64
sysctls=$(lbctl --sysctl)
rules=$(lbctl --list-fwmark-rules)

# --- -S, -C, -R, -S -----------------------------------------------------------------------
saved=$(lbctl -S -n; echo x)
saved=${saved%x}
# lbd's additions come first (--set, --sysctl: what differs from the defaults) and last (the
# fwmark rules); thresholds are saved (ipvsadm's -S leaves them out).
check "-S -n" "$saved" '--set 1000 120 60
--sysctl expire_nodest_conn=1 lblc_expiration=3600 sloppy_tcp=1
-A -t 198.18.0.1:80 -s wlc -p 60
-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 1
-a -t 198.18.0.1:80 -r 198.18.1.2:80 -m -w 0
-a -t 198.18.0.1:80 -r 198.18.1.3:80 -g -w 1
-A -t 198.18.0.3:443 -s rr
-a -t 198.18.0.3:443 -r 198.18.1.4:443 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum
-A -u 198.18.0.2:53 -s sh -o -b sh-fallback,sh-port
-a -u 198.18.0.2:53 -r 198.18.1.3:5353 -m -w 2 -x 100 -y 10
-A -t [2001:2::80]:80 -s rr
-a -t [2001:2::80]:80 -r [2001:2::a0a0]:80 -m -w 1
-A -f 1 -s rr
-a -f 1 -r 198.18.1.1:0 -m -w 1
--clear-fwmark-rules
--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 8000:8099
--add-fwmark-rule --mark 1 --dest 2001:2::/64
'
run -C
expect -Ln <<'EOF'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
EOF
printf '%s' "$saved" | lbctl -R || { echo "FAIL: -R"; FAILS=$((FAILS + 1)); }
got=$(lbctl -S -n; echo x)
check "-S after -C and -R" "${got%x}" "$saved"

# --- a restart reads the state file back ------------------------------------------------------
stop_lbd
[[ -s "$TMP/state" ]] || die "no state file at $TMP/state"
start_lbd
got=$(lbctl -S -n; echo x)
check "-S after restart" "${got%x}" "$saved"
expect -L --timeout <<'EOF'
Timeout (tcp tcpfin udp): 1000 120 60
EOF
stat -c %a "$SOCK" | grep -qx 600 || { echo "FAIL: socket mode $(stat -c %a "$SOCK")"; FAILS=$((FAILS + 1)); }
check "--sysctl after restart" "$(lbctl --sysctl)" "$sysctls"
check "--list-fwmark-rules after restart" "$(lbctl --list-fwmark-rules)" "$rules"
check "-L --daemon after restart" "$(lbctl -L --daemon)" "$DAEMONS"
run --stop-daemon master
run --stop-daemon backup
expect -L --daemon </dev/null
stop_lbd

# --- start-up refusals: a bad --config line, a corrupt state file ----------------------------
printf -- '# services\n-A -t 198.18.0.1:80 -s rr\n\n-a -t 198.18.0.9:80 -r 198.18.1.1 -m\n' \
  >"$TMP/bad.conf"
start_fails "--config with a bad line" \
  "config $TMP/bad.conf:4: no such service: TCP 198.18.0.9:80" --config="$TMP/bad.conf"
printf -- '-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.2\n' >"$TMP/bad2.conf"
start_fails "--config with an unparsable line" \
  "config $TMP/bad2.conf:2: Zero port specified for non-persistent service" \
  --config="$TMP/bad2.conf"
start_fails "--config that does not exist" "config $TMP/nosuch.conf: No such file or directory" \
  --config="$TMP/nosuch.conf"
cp "$TMP/state" "$TMP/state.good"
printf 'services { key { address { port: 80 } } } garbage\n' >"$TMP/state"
start_fails "corrupt state file" \
  "state file $TMP/state:2:1: Message type \"lbd.v1.Config\" has no field named \"garbage\"." \
  --state_file="$TMP/state"
check "corrupt state file left alone" "$(cat "$TMP/state")" \
  'services { key { address { port: 80 } } } garbage'
: >"$TMP/state"
start_fails "empty state file" "state file $TMP/state: empty" --state_file="$TMP/state"

# --- a good --config with lbctl's own lines -------------------------------------------------
cat >"$TMP/good.conf" <<'EOF'
-A -f 1 -s rr
-a -f 1 -r 198.18.1.1:0 -m
--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80
--sysctl expire_quiescent_template=1
EOF
ip netns exec "$NS" "$LBD_BIN" --tun="$TUN" --mode=gateway --workers=1 \
  --listen="unix://$SOCK" --config="$TMP/good.conf" --conn_capacity=4096 >>"$TMP/lbd.log" 2>&1 &
LBD_PID=$!
for ((i = 0; i < 150; i++)); do
  lbctl -Ln >/dev/null 2>&1 && break
  kill -0 "$LBD_PID" 2>/dev/null || die "lbd exited: $(tail -n 5 "$TMP/lbd.log")"
  sleep 0.1
done
expect -S -n <<'EOF'
--sysctl expire_quiescent_template=1
-A -f 1 -s rr
-a -f 1 -r 198.18.1.1:0 -m -w 1
--clear-fwmark-rules
--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80
EOF
expect --list-fwmark-rules <<'EOF'
--add-fwmark-rule --mark 1 --dest 198.18.0.0/24 --proto tcp --dport 80
EOF
expect --sysctl expire_quiescent_template <<'EOF'
net.ipv4.vs.expire_quiescent_template = 1
EOF
stop_lbd

if ((FAILS > 0)); then
  echo "lbctl_ipvsadm: $FAILS check(s) failed"
  exit 1
fi
echo "lbctl_ipvsadm: all checks passed"
