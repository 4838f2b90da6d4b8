#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A save that restores everything (issue 16): the real lbd in a namespace, configured the way
# DPVS's tutorials do it (full-NAT real servers added before the service's local address: new
# connections drop, counted as no_local_addr, until -P gives one), plus lbd's additions to
# ipvsadm (sysctls, fwmark rules, timeouts). `lbctl -S` fed to `lbctl -R` after `-C`, and into a
# fresh lbd without a state file, and as a fresh lbd's --config file, gives back the same
# configuration (thresholds included, which ipvsadm's own -S leaves out): -S -n, -G, --sysctl,
# --list-fwmark-rules and --timeout all equal, and full-NAT traffic answered by both real
# servers again. -G lists real per-address connection counts.
#
#   client (c0 198.18.1.2) -- lbd ns (l0 198.18.1.1 | l1 198.18.2.1) -- br0 -- s1 s2
#   VIP 198.18.1.100:80 full NAT, local addresses 198.18.2.100 and .101.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init lbsave
command -v curl >/dev/null || dp_skip "needs curl"

VIP=198.18.1.100
LADDR=198.18.2.100
LADDR2=198.18.2.101
MPORT=9493

dp_gateway_topology -n 2  # full NAT: no route back to the clients
for i in 1 2; do
  dp_http "s$i" "198.18.2.1$i" "S$i" 80
done

start_lbd() {  # start_lbd TAG
  dp_lbd l "$1" --tun=lbd0 --workers=2 --mode=gateway --metrics=127.0.0.1:$MPORT \
    --state_file="$DP_TMP/state"
}
drops_no_laddr() {
  ip netns exec "$(n l)" curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
    awk '/^lb_pipeline_drops_total\{reason="no_local_addr"\}/ {print $2}' || true
}
# ten requests; prints how many S1 and S2 answered ("S1=5 S2=5"); fails on a missing answer.
ten_requests() {
  local s1=0 s2=0 i a
  for i in $(seq 10); do
    a=$(dp_get c "http://$VIP/") || dp_fail "request $i to $VIP got no answer"
    case $a in
      S1) s1=$((s1 + 1)) ;;
      S2) s2=$((s2 + 1)) ;;
      *) dp_fail "request $i: unexpected body '$a'" ;;
    esac
  done
  echo "S1=$s1 S2=$s2"
}
# Everything lbctl can show of the configuration (not the counters).
config_view() {  # config_view TAG
  echo "== -S -n"
  lbctl "$1" -S -n
  echo "== -G (addresses)"
  lbctl "$1" -G | awk 'NR > 1 { if ($0 ~ /^ /) print "  " $1; else print $1, $2 }'
  echo "== --sysctl"
  lbctl "$1" --sysctl
  echo "== --list-fwmark-rules"
  lbctl "$1" --list-fwmark-rules
  echo "== --timeout"
  lbctl "$1" -L --timeout
}

start_lbd a

# --- DPVS's order: full-NAT real servers first, the local address afterwards.
lbctl a -A -t $VIP:80 -s rr
lbctl a -a -t $VIP:80 -r 198.18.2.11:80 --fullnat ||
  dp_fail "a full-NAT real server before the service's first local address was refused"
lbctl a -a -t $VIP:80 -r 198.18.2.12:80 --fullnat
before_drops=$(drops_no_laddr)
if ip netns exec "$(n c)" curl -s --max-time 2 --noproxy '*' "http://$VIP/" >/dev/null; then
  dp_fail "a full-NAT service without a local address answered"
fi
after_drops=$(drops_no_laddr)
echo "no_local_addr drops: ${before_drops:-none} -> ${after_drops:-none}"
[[ -n $after_drops && $after_drops -gt ${before_drops:-0} ]] ||
  dp_fail "the drop without a local address was not counted as no_local_addr"
lbctl a -P -t $VIP:80 -z $LADDR
split=$(ten_requests)
echo "after -P: $split"
[[ $split == "S1=5 S2=5" ]] || dp_fail "rr over the full-NAT real servers: $split"

# -G: CONNS is what the pool holds (every conn of the VIP still in the table holds its pair).
in_table=$(lbctl a -Lnc | grep -c " $VIP:80 " || true)
g_row=$(lbctl a -G | awk -v a=$LADDR '$1 == a {print $2, $3}')
echo "-G $LADDR: conflicts/conns '$g_row', conns in the table: $in_table"
[[ $g_row == "0 $in_table" && $in_table -ge 10 ]] ||
  dp_fail "-G does not count the local address's connections: '$g_row' vs $in_table: $(lbctl a -G)"

# --- lbd's additions and the rest of ipvsadm's language.
lbctl a -P -t $VIP:80 -z $LADDR2
lbctl a -A -u $VIP:53 -s sh -b sh-fallback,sh-port -o
lbctl a -a -u $VIP:53 -r 198.18.2.11:53 -m -w 3 -x 100 -y 10
lbctl a -A -t 198.18.1.101:443 -s wlc -p 600 -M 255.255.255.0
lbctl a -a -t 198.18.1.101:443 -r 198.18.2.12:443 -i --tun-type gue --tun-port 6080 --tun-csum
lbctl a -a -t 198.18.1.101:443 -r 198.18.2.11:443 -g -w 0
lbctl a -A -f 5 -s mh -b mh-port
lbctl a -a -f 5 -r 198.18.2.12:0 -g
lbctl a --add-fwmark-rule --mark 5 --dest 198.18.1.96/30 --proto tcp --dport 8000:8100
lbctl a --add-fwmark-rule --mark 5 --dest 198.18.1.102 --proto udp
lbctl a --sysctl expire_nodest_conn=1 am_droprate=20 sloppy_tcp=1
lbctl a --set 1000 0 60

saved=$(lbctl a -S -n)
echo "--- lbctl -S -n"
echo "$saved"
for want in "--sysctl am_droprate=20 expire_nodest_conn=1 sloppy_tcp=1" "--set 1000 120 60" \
  "-P -t $VIP:80 -z $LADDR" "-P -t $VIP:80 -z $LADDR2" "--clear-fwmark-rules" \
  "-a -u $VIP:53 -r 198.18.2.11:53 -m -w 3 -x 100 -y 10"; do
  grep -qxF -- "$want" <<<"$saved" || dp_fail "-S lacks '$want'"
done
view=$(config_view a)

# --- -C, then -R of the saved lines: the same configuration, and traffic again.
lbctl a -C
[[ -z $(lbctl a -Ln | tail -n +4) ]] || dp_fail "-C left services"
lbctl a -R <<<"$saved" || dp_fail "-R of the saved lines failed"
got=$(config_view a)
[[ $got == "$view" ]] || dp_fail "-S, -C, -R changed the configuration: $(diff <(echo "$view") <(echo "$got"))"
echo "ok   -S -> -C -> -R: the same configuration"
split=$(ten_requests)
echo "after -C/-R: $split"
[[ $split == "S1=5 S2=5" ]] || dp_fail "rr after the restore: $split"

# --- a fresh lbd, no state file: -R of the same lines gives the same configuration.
dp_lbd_stop a
rm -f "$DP_TMP/state"
start_lbd b
[[ -z $(lbctl b -S -n) ]] || dp_fail "the fresh lbd is not empty: $(lbctl b -S -n)"
lbctl b -R <<<"$saved" || dp_fail "-R into a fresh lbd failed"
got=$(config_view b)
[[ $got == "$view" ]] || dp_fail "-R into a fresh lbd differs: $(diff <(echo "$view") <(echo "$got"))"
echo "ok   -R into a fresh lbd: the same configuration"
split=$(ten_requests)
echo "fresh lbd: $split"
[[ $split == "S1=5 S2=5" ]] || dp_fail "rr in the fresh lbd: $split"

# --- the same lines as lbd's --config file, no state file: the same configuration again.
dp_lbd_stop b
rm -f "$DP_TMP/state"
printf '%s\n' "$saved" >"$DP_TMP/saved.conf"
dp_lbd l c --tun=lbd0 --workers=2 --mode=gateway --config="$DP_TMP/saved.conf"
got=$(config_view c)
[[ $got == "$view" ]] || dp_fail "lbd --config of -S differs: $(diff <(echo "$view") <(echo "$got"))"
echo "ok   lbd --config of the -S lines: the same configuration"
split=$(ten_requests)
echo "--config lbd: $split"
[[ $split == "S1=5 S2=5" ]] || dp_fail "rr in the --config lbd: $split"
echo "lbctl_save_restore: all checks passed"
