#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The FTP helper (ip_vs_ftp; core/pipeline/ftp_pipeline.cc) with Debian's vsftpd as two real
# servers behind a NAT VIP and a full-NAT VIP on port 21, no persistence: curl downloads a file
# in passive (EPSV and PASV/227) and active (EPRT and PORT) mode through each VIP. Each server
# serves different bytes, so the sha256 says which one answered (rr: both, equally). The client
# has an nft firewall that accepts new inbound TCP connections only from the VIPs' port 20, so
# an active transfer works only when the real server's data connection leaves lbd NATed to the
# VIP; its counters prove they did.
#
#   client (c0 198.18.1.2) -- lbd ns (l0 198.18.1.1 | l1 198.18.2.1) -- br0 -- s1 s2
#   NAT VIP 198.18.1.100:21 (-m), full-NAT VIP 198.18.1.101:21 (--fullnat, LADDR 198.18.2.100).
#   s1, s2 (198.18.2.11/.12): the client's /24 routed via lbd (NAT replies), nothing else.
source "$(dirname "$0")/dataplane_lib.sh"
dp_init ftp_helper
dp_need vsftpd nft sha256sum ss

VIP=198.18.1.100
FVIP=198.18.1.101
LADDR=198.18.2.100
CLIENT=198.18.1.2

dp_ns c
dp_ns l
dp_ns sw
dp_link c c0 l l0
ip -n "$(n c)" addr add $CLIENT/24 dev c0
ip -n "$(n l)" addr add 198.18.1.1/24 dev l0
dp_bridge sw br0
dp_link l l1 sw swl
ip -n "$(n sw)" link set swl master br0
ip -n "$(n l)" addr add 198.18.2.1/24 dev l1
ip netns exec "$(n l)" sysctl -qw net.ipv4.conf.all.rp_filter=0

id ftp >/dev/null 2>&1 || dp_skip "needs the ftp user (Debian's vsftpd package makes it)"
for i in 1 2; do
  dp_ns "s$i"
  dp_link "s$i" s0 sw "sws$i"
  ip -n "$(n sw)" link set "sws$i" master br0
  ip -n "$(n "s$i")" addr add "198.18.2.1$i/24" dev s0
  ip -n "$(n "s$i")" route add 198.18.1.0/24 via 198.18.2.1
  root="$DP_TMP/ftp$i"
  mkdir -p "$root" "$DP_TMP/empty$i"
  chmod 755 "$root" "$DP_TMP/empty$i"
  head -c $((300000 + i * 1000)) /dev/urandom >"$root/file.bin"
  chmod 644 "$root/file.bin"
  sha256sum "$root/file.bin" | cut -d' ' -f1 >"$DP_TMP/sha$i"
  cat >"$DP_TMP/vsftpd$i.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=198.18.2.1$i
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$root
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port=5${i}000
pasv_max_port=5${i}099
port_enable=YES
connect_from_port_20=YES
seccomp_sandbox=NO
secure_chroot_dir=$DP_TMP/empty$i
xferlog_enable=YES
xferlog_std_format=YES
xferlog_file=$DP_TMP/xfer$i.log
vsftpd_log_file=$DP_TMP/vsftpd$i.log
EOF
  ip netns exec "$(n "s$i")" vsftpd "$DP_TMP/vsftpd$i.conf" >"$DP_TMP/vsftpd$i.out" 2>&1 &
  DP_PIDS+=($!)
  dp_poll 10 "vsftpd on s$i listening" listening "s$i" tcp 21
done

# The client's firewall: new inbound TCP only from a VIP's port 20 (counted), nothing else.
ip netns exec "$(n c)" nft -f - <<EOF
table inet ftpclient {
  chain in {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    tcp flags & (syn | ack) == syn ip saddr $VIP tcp sport 20 counter name from_vip accept
    tcp flags & (syn | ack) == syn ip saddr $FVIP tcp sport 20 counter name from_fvip accept
    tcp flags & (syn | ack) == syn counter name refused drop
  }
  counter from_vip {}
  counter from_fvip {}
  counter refused {}
}
EOF
nft_count() {  # nft_count NAME: packets of the named counter
  ip netns exec "$(n c)" nft list counter inet ftpclient "$1" | awk '/packets/ {print $2}'
}

# fetch VIP MODE...: downloads file.bin with curl's options for MODE; prints which server's
# bytes arrived (S1 or S2), or fails naming the mode.
fetch() {
  local vip=$1 label=$2
  shift 2
  local out="$DP_TMP/got.bin"
  rm -f "$out"
  ip netns exec "$(n c)" curl -s --max-time 20 --noproxy '*' "$@" -o "$out" "ftp://$vip/file.bin" ||
    dp_fail "$label download through $vip failed (curl $*): $(tail -n 5 "$DP_TMP/lbd-ftp.log")"
  local got
  got=$(sha256sum "$out" | cut -d' ' -f1)
  if [[ $got == "$(cat "$DP_TMP/sha1")" ]]; then
    echo S1
  elif [[ $got == "$(cat "$DP_TMP/sha2")" ]]; then
    echo S2
  else
    dp_fail "$label through $vip: sha256 $got matches neither server's file"
  fi
}

declare -A modes=(
  [epsv]=""
  [pasv]="--disable-epsv"
  [eprt]="-P - --disable-epsv"
  [port]="-P - --disable-eprt --disable-epsv"
)

# run_pass LBD_FLAGS...: lbd with these flags, both VIPs, every mode, the assertions, stop.
run_pass() {
  echo "--- lbd $*"
  base_vip=$(nft_count from_vip)
  base_fvip=$(nft_count from_fvip)
  : >"$DP_TMP/xfer1.log"
  : >"$DP_TMP/xfer2.log"
  dp_lbd l ftp --tun=lbd0 --workers=2 --mode=gateway "$@"
  lbctl ftp -A -t $VIP:21 -s rr
  lbctl ftp -a -t $VIP:21 -r 198.18.2.11:21 -m
  lbctl ftp -a -t $VIP:21 -r 198.18.2.12:21 -m
  lbctl ftp -A -t $FVIP:21 -s rr
  lbctl ftp -P -t $FVIP:21 -z $LADDR
  lbctl ftp -a -t $FVIP:21 -r 198.18.2.11:21 --fullnat
  lbctl ftp -a -t $FVIP:21 -r 198.18.2.12:21 --fullnat
  lbctl ftp -Ln

  for vip in $VIP $FVIP; do
    for mode in epsv pasv eprt port; do
      answers=()
      for k in 1 2 3 4; do
        # shellcheck disable=SC2086
        answers+=("$(fetch $vip "$mode" ${modes[$mode]})")
      done
      echo "$vip $mode: ${answers[*]}"
      [[ $(dp_count S1 "${answers[@]}") -eq 2 && $(dp_count S2 "${answers[@]}") -eq 2 ]] ||
        dp_fail "$vip $mode: rr should give each server two downloads: ${answers[*]}"
    done
  done

  # Active transfers: every data connection reached the client from a VIP's port 20; none was
  # refused by the firewall.
  from_vip=$(($(nft_count from_vip) - base_vip))
  from_fvip=$(($(nft_count from_fvip) - base_fvip))
  refused=$(nft_count refused)
  echo "client firewall: $from_vip SYNs from $VIP:20, $from_fvip from $FVIP:20, $refused refused"
  [[ $from_vip -ge 8 && $from_fvip -ge 8 && $refused -eq 0 ]] ||
    dp_fail "active data connections: want >= 8 from each VIP:20 and none refused"

  # Full NAT: the servers saw the local address as the client for control and data.
  for i in 1 2; do
    grep -q "$LADDR" "$DP_TMP/xfer$i.log" ||
      dp_fail "s$i xferlog names no transfer to $LADDR: $(cat "$DP_TMP/xfer$i.log")"
    grep -q "$CLIENT" "$DP_TMP/xfer$i.log" ||
      dp_fail "s$i xferlog names no transfer to the NAT client $CLIENT: $(cat "$DP_TMP/xfer$i.log")"
  done

  # -Lnc lists the active data conns as the kernel would: the client's port, VIP:20, RS:20.
  conns=$(lbctl ftp -Lnc)
  for vip in $VIP $FVIP; do
    grep -Eq "^TCP .* $CLIENT:[0-9]+ +$vip:20 +198\.18\.2\.1[12]:20\b" <<<"$conns" ||
      dp_fail "-Lnc shows no active data conn through $vip:20: $conns"
  done
  dp_lbd_stop ftp
}

# With the tc program's flow offload (the default) and without it (every packet through lbd).
run_pass
run_pass --flow-offload=false
echo "PASS ftp_helper"
