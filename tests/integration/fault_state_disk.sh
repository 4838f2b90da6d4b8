#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults (issue 17): the disk under lbd's --state-file fills up. lbd writes a temporary file,
# fsyncs it and renames it over the state file; when that fails, the change is refused: lbctl
# prints lbd's error (naming the file and "No space left on device") and exits nonzero, the
# state file is byte-for-byte the previous one, no temporary file is left, and lbd runs the
# previous configuration (lbctl -Sn unchanged; a refused new service leaves no route behind).
# Once there is room again the same command succeeds, and a restart (SIGKILL, then the same
# command line) comes back with exactly what was saved.
#
#   lbd ns l (198.18.1.1 | 198.18.2.1); the state directory is a 256 KiB tmpfs.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init fdisk

VIP=198.18.100.1
STATE_DIR="$DP_TMP/state"
STATE="$STATE_DIR/lbd.state"
mkdir -p "$STATE_DIR"
mount -t tmpfs -o size=256k,mode=0700 lbd-fault-state "$STATE_DIR" ||
  dp_skip "cannot mount a tmpfs"
# The mount goes before dp_cleanup removes $DP_TMP (lazily: lbd may still hold its directory).
trap 'rc=$?; umount -l "$STATE_DIR" 2>/dev/null; (exit $rc); dp_cleanup' EXIT

dp_ns l
dp_ns x
dp_link l l0 x x0
dp_link l l1 x x1
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1

dp_lbd l d1 --tun=lbd0 --workers=1 --mode=gateway --state-file="$STATE"
lbctl d1 -A -t $VIP:80 -s rr
lbctl d1 -a -t $VIP:80 -r 198.18.2.11:80 -m
lbctl d1 -a -t $VIP:80 -r 198.18.2.12:80 -m -w 3
[[ -s $STATE ]] || dp_fail "lbd wrote no state file"
sum0=$(sha256sum "$STATE")
cfg0=$(lbctl d1 -Sn)
echo "$cfg0"

# Fill the file system (dd stops at ENOSPC).
dd if=/dev/zero of="$STATE_DIR/fill" bs=4k 2>/dev/null || true
avail=$(df -B1 --output=avail "$STATE_DIR" | tail -n 1 | tr -d ' ')
[[ $avail -eq 0 ]] || dp_fail "the tmpfs is not full ($avail bytes free): the test would prove nothing"

unchanged() {  # unchanged WHAT: the state file, its directory and lbd's configuration
  [[ $(sha256sum "$STATE") == "$sum0" ]] || dp_fail "$1: the state file changed"
  [[ ! -e $STATE.tmp ]] || dp_fail "$1: a temporary file is left: $(ls -l "$STATE_DIR")"
  local now
  now=$(lbctl d1 -Sn)
  if [[ $now != "$cfg0" ]]; then
    diff <(echo "$cfg0") <(echo "$now") || true
    dp_fail "$1: lbd applied the change it could not save"
  fi
}

# refused WHAT CMD...: lbctl fails, printing lbd's error; nothing changes.
refused() {
  local what=$1 rc=0 out
  shift
  out=$("$@" 2>&1) || rc=$?
  echo "$what: exit $rc: $out"
  ((rc != 0)) || dp_fail "$what: lbctl exited 0 on a full disk"
  grep -q "No space left on device" <<<"$out" || dp_fail "$what: the error does not say why: $out"
  grep -q "$STATE" <<<"$out" || dp_fail "$what: the error does not name the state file: $out"
  grep -q "not applied" <<<"$out" || dp_fail "$what: the error does not say the change is refused"
  unchanged "$what"
}

refused "add a real server" lbctl d1 -a -t $VIP:80 -r 198.18.2.13:80 -m
refused "edit a weight" lbctl d1 -e -t $VIP:80 -r 198.18.2.12:80 -m -w 7
refused "delete a real server" lbctl d1 -d -t $VIP:80 -r 198.18.2.11:80
refused "add a service" lbctl d1 -A -t 198.18.100.2:80 -s rr
ip -n "$(n l)" route show table all | grep -q '198\.18\.100\.2' &&
  dp_fail "the refused service left its route behind"
refused "restore (lbctl -R)" lbctl d1 -R <<<"-A -t 198.18.100.3:80 -s wrr
-a -t 198.18.100.3:80 -r 198.18.2.11:80 -m"
refused "clear (lbctl -C)" lbctl d1 -C
# The dataplane still runs the previous configuration.
lbctl d1 -Ln | grep -q "198.18.2.11:80" || dp_fail "the listing lost a real server"

# --- room again: the same change goes through and is saved.
rm -f "$STATE_DIR/fill"
lbctl d1 -a -t $VIP:80 -r 198.18.2.13:80 -m || dp_fail "the change failed with room on the disk"
[[ $(sha256sum "$STATE") != "$sum0" ]] || dp_fail "the state file was not rewritten"
grep -q '198.18.2.13' "$STATE" || dp_fail "the state file lacks the new real server"
cfg1=$(lbctl d1 -Sn)
dp_lbd_kill9 d1
dp_lbd l d2 --tun=lbd0 --workers=1 --mode=gateway --state-file="$STATE"
cfg2=$(lbctl d2 -Sn)
if [[ $cfg1 != "$cfg2" ]]; then
  diff <(echo "$cfg1") <(echo "$cfg2") || true
  dp_fail "the restarted lbd's configuration differs from the saved one"
fi
dp_lbd_stop d2
echo "PASS fault_state_disk"
