#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Health checks set through lbctl (issue 14 item 4), not keepalived.conf: lbd.v1's
# Dest.health_checks and Service.health_policy reach the same checkers.
#   lbctl -a ... --check tcp,...   a killed real server is held at weight 0, no client request
#                                  fails after that, and it gets its weight back when healed
#   lbctl -a ... --check http,...  the same checker kind keepalived.conf's HTTP_GET runs
#   --list-checks [--output=json]  state and last failure (the JSON read with python3)
#   lbctl -S / -C / -R             the checks survive the round trip, ipvsadm's part of each
#                                  line unchanged
#   the state file                 a restart while a server is held down keeps it down, with
#                                  its weight and its check, until it heals
#   lbd --config                   --check lines of a config file are checks too
#   /metrics                       lb_health_* per checker
#
#   client c (198.18.1.2) -- lbd ns l (198.18.1.1 | 198.18.2.1) -- br -- s1 s2 (198.18.2.1x)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init hapi
dp_need curl python3

VIP=198.18.1.100

dp_gateway_topology 2

# http NS NAME: an HTTP server on 198.18.2.1x:80 answering NAME; its pid in HTTP_PID_<NAME>.
http() {
  local dir="$DP_TMP/www-$2"
  mkdir -p "$dir"
  echo "$2" >"$dir/index.html"
  ip netns exec "$(n "$1")" python3 -m http.server 80 --bind "198.18.2.1${1#s}" \
    --directory "$dir" >/dev/null 2>&1 &
  DP_PIDS+=($!)
  eval "HTTP_PID_$2=$!"
  dp_wait 10 listening "$1" tcp 80 || dp_fail "HTTP server $2 did not start"
}

stop_pid() {  # stop_pid PID: SIGTERM, reaped within a bounded wait
  kill "$1" 2>/dev/null || true
  dp_wait_pid "$1" 10 || kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

http s1 S1
http s2 S2

STATE="$DP_TMP/state"
start_lbd() {
  dp_lbd l api --tun=lbd0 --workers=1 --mode=gateway --state-file="$STATE" \
    --metrics=127.0.0.1:9483
}
start_lbd

# rs_weight RS: RS's weight under VIP:80 in lbctl -Ln ("" when absent).
rs_weight() {
  lbctl api -Ln | awk -v r="$1" '$1 == "->" && $2 == r { print $4 }'
}

# check_state RS: "UP" or "DOWN" in --list-checks.
check_state() {
  lbctl api --list-checks | awk -v r="$1" '$3 == r { print $5 }'
}

# Bound of a removal: delay_loop*retry + delay_before_retry + connect_timeout = 1 + 1 + 1,
# plus the warmup and a loaded machine's slack.
BOUND=15

all_from() {  # all_from NAME...: 20 requests to VIP:80, all succeed, all from NAMES
  local i a
  for i in $(seq 20); do
    a=$(dp_get c "http://$VIP/") || dp_fail "request $i to $VIP failed"
    [[ " $* " == *" $a "* ]] || dp_fail "request $i answered '$a', want one of: $*"
  done
}

TCP_CHECK="tcp,delay_loop=1,connect_timeout=1,retry=1,delay_before_retry=1,warmup=0.2"
HTTP_CHECK="http,delay_loop=1,connect_timeout=1,retry=1,delay_before_retry=1,warmup=0.2,path=/,status=200"
lbctl api -A -t $VIP:80 -s rr --health quorum=1
lbctl api -a -t $VIP:80 -r 198.18.2.11:80 -m -w 2 --check "$TCP_CHECK"
lbctl api -a -t $VIP:80 -r 198.18.2.12:80 -m -w 3 --check "$HTTP_CHECK"
lbctl api -Ln
dp_poll_eq $BOUND "S1's TCP check" UP check_state 198.18.2.11:80
dp_poll_eq $BOUND "S2's HTTP check" UP check_state 198.18.2.12:80
lbctl api --list-checks
all_from S1 S2

# The save lines: ipvsadm's part as ipvsadm prints it, then lbd's own options.
SAVE=$(lbctl api -S -n)
echo "$SAVE"
grep -qx -- "-A -t $VIP:80 -s rr --health quorum=1" <<<"$SAVE" || dp_fail "-A line: $SAVE"
grep -qx -- "-a -t $VIP:80 -r 198.18.2.11:80 -m -w 2 --check $TCP_CHECK" <<<"$SAVE" ||
  dp_fail "-a line of S1 does not carry its check: $SAVE"
grep -qx -- "-a -t $VIP:80 -r 198.18.2.12:80 -m -w 3 --check $HTTP_CHECK" <<<"$SAVE" ||
  dp_fail "-a line of S2 does not carry its check: $SAVE"

# --- Kill S1: held at weight 0, no request fails after that; healed: weight 2 again.
stop_pid "$HTTP_PID_S1"
dp_poll_eq $BOUND "the dead S1's weight" 0 rs_weight 198.18.2.11:80
all_from S2
[[ $(check_state 198.18.2.11:80) == DOWN ]] || dp_fail "--list-checks: S1 not DOWN"
lbctl api --list-checks | awk '$3 == "198.18.2.11:80" { print $6 }' | grep -qx out ||
  dp_fail "--list-checks: S1 not out of the pool: $(lbctl api --list-checks)"
lbctl api --list-checks
# JSON: the same, read by python3.
lbctl api --list-checks --output=json >"$DP_TMP/checks.json"
python3 - "$DP_TMP/checks.json" <<'PY' || dp_fail "--output=json: $(cat "$DP_TMP/checks.json")"
import json, sys
checks = {c["address"]: c for c in json.load(open(sys.argv[1]))["checks"]}
s1, s2 = checks["198.18.2.11"], checks["198.18.2.12"]
assert s1["type"] == "HEALTH_CHECK_TYPE_TCP", s1
assert not s1.get("up", False) and not s1.get("real_server_up", False), s1
assert s1["last_failure"], s1
assert int(s1["failures"]) >= 1 and s1["weight"] == 2, s1
assert s2["type"] == "HEALTH_CHECK_TYPE_HTTP" and s2["up"] and s2["weight"] == 3, s2
assert s1["config"] == "api", s1
PY
# Held down, the save line still has its weight and its check.
grep -qx -- "-a -t $VIP:80 -r 198.18.2.11:80 -m -w 2 --check $TCP_CHECK" <<<"$(lbctl api -S -n)" ||
  dp_fail "a held-down S1 is not saved with its weight: $(lbctl api -S -n)"
# Metrics per checker.
METRICS=$(ip netns exec "$(n l)" curl -s --max-time 5 http://127.0.0.1:9483/metrics)
grep -q 'lb_health_checker_up{service="TCP 198.18.1.100:80",rs="198.18.2.11:80",checker="TCP_CHECK"} 0' \
  <<<"$METRICS" || dp_fail "/metrics: no lb_health_checker_up 0 for S1: $(grep lb_health <<<"$METRICS")"
grep -q 'lb_health_checker_transitions_total{service="TCP 198.18.1.100:80",rs="198.18.2.11:80",checker="TCP_CHECK"} [1-9]' \
  <<<"$METRICS" || dp_fail "/metrics: no transition counted for S1"
grep -q 'lb_health_check_latency_us_bucket{service="TCP 198.18.1.100:80",rs="198.18.2.12:80",checker="HTTP_GET",le="+Inf"} [1-9]' \
  <<<"$METRICS" || dp_fail "/metrics: no latency histogram for S2: $(grep latency <<<"$METRICS")"

# --- A restart while S1 is held down (the state file): it stays down with its weight kept,
# and comes back with weight 2 once healed.
dp_lbd_stop api
grep -q "health_weight: 2" "$STATE" || dp_fail "the state file lost S1's weight: $(cat "$STATE")"
start_lbd
dp_poll_eq $BOUND "S1's check after the restart" DOWN check_state 198.18.2.11:80
[[ $(rs_weight 198.18.2.11:80) == 0 ]] || dp_fail "restarted lbd let the dead S1 in"
dp_poll_eq $BOUND "S2 after the restart" 3 rs_weight 198.18.2.12:80
all_from S2
http s1 S1
dp_poll_eq $BOUND "the healed S1's weight" 2 rs_weight 198.18.2.11:80
all_from S1 S2
echo "lbctl --check: kill, heal, restart ok"

# --- -S / -C / -R: the same lines back, the checks running again.
SAVE=$(lbctl api -S -n)
lbctl api -C
[[ -z $(lbctl api --list-checks | tail -n +2) ]] || dp_fail "-C left checks running"
lbctl api -R <<<"$SAVE"
[[ $(lbctl api -S -n) == "$SAVE" ]] || dp_fail "-S after -R differs: $(lbctl api -S -n)"
dp_poll_eq $BOUND "S1's check after -R" UP check_state 198.18.2.11:80
dp_poll_eq $BOUND "S2's check after -R" UP check_state 198.18.2.12:80
# -e replaces the checks (ipvsadm's -e replaces everything): without --check, none left.
lbctl api -e -t $VIP:80 -r 198.18.2.12:80 -m -w 3
dp_poll_eq $BOUND "S2's checks after -e without --check" "" check_state 198.18.2.12:80
echo "save/restore ok"

# --- lbd --config: --check lines of a config file (a second lbd, in a namespace of its own).
dp_ns l2
printf -- '-A -t 198.18.9.1:80 -s wrr\n-a -t 198.18.9.1:80 -r 198.18.9.11:80 -m -w 4 --check %s\n' \
  "$TCP_CHECK" >"$DP_TMP/lbd.conf"
dp_lbd l2 cf --tun=lbd1 --workers=1 --mode=gateway --config="$DP_TMP/lbd.conf"
lbctl cf --list-checks | grep -q "198.18.9.11:80 .*TCP_CHECK" ||
  dp_fail "--config's check not run: $(lbctl cf --list-checks)"
grep -qx -- "-a -t 198.18.9.1:80 -r 198.18.9.11:80 -m -w 4 --check $TCP_CHECK" <<<"$(lbctl cf -S -n)" ||
  dp_fail "--config's check not saved: $(lbctl cf -S -n)"
dp_lbd_stop cf
# A bad --check in a config file stops lbd naming the line (l2 is free again).
printf -- '-A -t 198.18.9.1:80\n-a -t 198.18.9.1:80 -r 198.18.9.11:80 --check tcp,retry=x\n' \
  >"$DP_TMP/bad.conf"
if ip netns exec "$(n l2)" timeout 20 "$LBD_BIN" --listen="unix://$DP_TMP/bad.sock" --tun=lbd2 \
  --config="$DP_TMP/bad.conf" >"$DP_TMP/bad.log" 2>&1; then
  dp_fail "lbd started with a bad --check"
fi
grep -q "bad.conf:2.*retry" "$DP_TMP/bad.log" || dp_fail "no FILE:LINE for the bad --check: $(cat "$DP_TMP/bad.log")"
echo "config file ok"
dp_lbd_stop api
echo PASS
