#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Health checks as keepalived runs them (issue 14): lbd --keepalived-conf with a configuration
# shaped like keepalived's doc/samples (global_defs, a vrrp_instance that is skipped, virtual
# servers on test addresses) and real servers in namespaces:
#   HTTP_GET   python3 http.server   killed: removed; healed: back with its weight
#   TCP_CHECK  python3 http.server   inhibit_on_failure: weight 0 and back; an operator's
#                                    lbctl -e weight is what it comes back with
#   MISC_CHECK a script              exit 1: removed; misc_dynamic exit 7: weight 5
#   SSL_GET    nginx, self-signed    killed: removed; healed: back
#   DNS_CHECK  dnsmasq               killed: removed; healed: back
#   UDP_CHECK  socat (echo)          killed: removed (ICMP unreachable); healed: back
#   PING_CHECK the server's address  removed: removed; back: back
#   quorum 2 with a sorry server: losing one of two real servers brings the sorry server in,
#   healing takes it out again.
# Every removal is awaited for at most delay_loop*retry + connect_timeout plus slack (a bounded
# wait, not a timing assertion), then 20 client requests must all succeed. A SIGHUP after an
# edit keeps an open connection to an unchanged real server flowing; a bad file is refused.
#
#   client c (198.18.1.2) -- lbd ns l (198.18.1.1 | 198.18.2.1) -- br -- s1 s2 s3 (198.18.2.1x)
source "$(dirname "$0")/dataplane_lib.sh"
dp_init health

for t in nginx dnsmasq socat openssl; do
  command -v "$t" >/dev/null || dp_skip "needs $t (scripts/deps.sh test)"
done

VIP=198.18.1.100

dp_gateway_topology 3

# http NS NAME PORT: an HTTP server answering NAME; its pid in HTTP_PID_<NAME>_<PORT>.
http() {
  local dir="$DP_TMP/www-$2-$3"
  mkdir -p "$dir"
  echo "$2" >"$dir/index.html"
  ip netns exec "$(n "$1")" python3 -m http.server "$3" --bind "198.18.2.1${1#s}" \
    --directory "$dir" >/dev/null 2>&1 &
  DP_PIDS+=($!)
  eval "HTTP_PID_$2_$3=$!"
  dp_wait 10 listening "$1" tcp "$3" || dp_fail "HTTP server $2:$3 did not start"
}

stop_pid() {  # stop_pid PID: SIGTERM, reaped within a bounded wait
  kill "$1" 2>/dev/null || true
  dp_wait_pid "$1" 10 || kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

for i in 1 2 3; do
  for p in 80 8080 82; do
    http "s$i" "S$i" "$p"
  done
done
# A TCP echo server on s2:9000 for the connection kept open across a reload.
ip netns exec "$(n s2)" python3 -c '
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.12", 9000))
s.listen(16)
def echo(c):
    while True:
        d = c.recv(4096)
        if not d:
            return
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
' >/dev/null 2>&1 &
DP_PIDS+=($!)
dp_wait 10 listening s2 tcp 9000 || dp_fail "echo server did not start"

# SSL_GET: nginx with a self-signed certificate on s1:443.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rs1.example.test" \
  -keyout "$DP_TMP/key.pem" -out "$DP_TMP/cert.pem" >/dev/null 2>&1
mkdir -p "$DP_TMP/nginx"
chmod 755 "$DP_TMP"  # nginx's workers (www-data) read its root below mktemp's 0700 dir
echo "TLS1" >"$DP_TMP/nginx/index.html"
cat >"$DP_TMP/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $DP_TMP/nginx.pid;
error_log $DP_TMP/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $DP_TMP/nginx;
  proxy_temp_path $DP_TMP/nginx;
  fastcgi_temp_path $DP_TMP/nginx;
  uwsgi_temp_path $DP_TMP/nginx;
  scgi_temp_path $DP_TMP/nginx;
  server {
    listen 198.18.2.11:443 ssl;
    ssl_certificate $DP_TMP/cert.pem;
    ssl_certificate_key $DP_TMP/key.pem;
    root $DP_TMP/nginx;
  }
}
EOF
start_nginx() {
  ip netns exec "$(n s1)" nginx -c "$DP_TMP/nginx.conf" >/dev/null 2>&1 &
  NGINX_PID=$!
  DP_PIDS+=($NGINX_PID)
  dp_wait 10 listening s1 tcp 443 || dp_fail "nginx did not start: $(cat "$DP_TMP/nginx-error.log")"
}
start_nginx

# DNS_CHECK: dnsmasq on s2:53 answering test.example.
start_dnsmasq() {
  ip netns exec "$(n s2)" dnsmasq --keep-in-foreground --no-resolv --no-hosts \
    --listen-address=198.18.2.12 --bind-interfaces --port=53 \
    --address=/test.example/198.18.9.9 --pid-file="$DP_TMP/dnsmasq.pid" \
    --user=root >/dev/null 2>&1 &
  DNSMASQ_PID=$!
  DP_PIDS+=($DNSMASQ_PID)
  dp_wait 10 listening s2 udp 53 || dp_fail "dnsmasq did not start"
}
start_dnsmasq

# UDP_CHECK: socat echoing on s3:5353.
start_socat() {
  ip netns exec "$(n s3)" socat UDP4-RECVFROM:5353,bind=198.18.2.13,reuseaddr,fork PIPE \
    >/dev/null 2>&1 &
  SOCAT_PID=$!
  DP_PIDS+=($SOCAT_PID)
  dp_wait 10 listening s3 udp 5353 || dp_fail "socat did not start"
}
start_socat

# MISC_CHECK: the script's answer is a file's content (exit status).
echo 0 >"$DP_TMP/misc-s1"
echo 0 >"$DP_TMP/misc-s2"
cat >"$DP_TMP/misc.sh" <<'EOF'
#!/bin/sh
exit "$(cat "$1")"
EOF
chmod +x "$DP_TMP/misc.sh"

mkdir -p "$DP_TMP/conf.d"
CONF="$DP_TMP/keepalived.conf"
cat >"$CONF" <<EOF
! Configuration File for keepalived (keepalived's doc/samples/keepalived.conf.sample shape)

global_defs {
   notification_email {
     acassen
   }
   notification_email_from Alexandre.Cassen@firewall.loc
   smtp_server 198.18.200.1
   smtp_connect_timeout 30
   router_id LVS_DEVEL
   lvs_notify_fifo $DP_TMP/notify.fifo
}

vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 50
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.200.11
    }
}

include conf.d/*.conf
EOF
cat >"$DP_TMP/conf.d/http.conf" <<EOF
virtual_server $VIP 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.18.2.11 80 {
        weight 2
        HTTP_GET {
            url {
              path /
              digest $(printf 'S1\n' | md5sum | cut -d' ' -f1)
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.18.2.12 80 {
        weight 3
        HTTP_GET {
            url {
              path /index.html
              status_code 200-299
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
EOF
cat >"$DP_TMP/conf.d/tcp.conf" <<EOF
virtual_server $VIP 8080 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    inhibit_on_failure
    real_server 198.18.2.11 8080 {
        weight 4
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.18.2.12 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server $VIP 9000 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.18.2.12 9000 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server $VIP 7 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.18.2.13 7 {
        PING_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server $VIP 82 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    quorum 2
    sorry_server 198.18.2.13 82
    real_server 198.18.2.11 82 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.18.2.12 82 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
EOF
cat >"$DP_TMP/conf.d/misc.conf" <<EOF
virtual_server $VIP 81 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.18.2.11 80 {
        MISC_CHECK {
            misc_path "$DP_TMP/misc.sh $DP_TMP/misc-s1"
            misc_timeout 2
        }
    }
    real_server 198.18.2.12 80 {
        weight 1
        MISC_CHECK {
            misc_path "$DP_TMP/misc.sh $DP_TMP/misc-s2"
            misc_dynamic
        }
    }
}
virtual_server $VIP 443 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.18.2.11 443 {
        SSL_GET {
            url {
              path /
              digest $(printf 'TLS1\n' | md5sum | cut -d' ' -f1)
            }
            enable_sni
            sni_name rs1.example.test
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server $VIP 53 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server 198.18.2.12 53 {
        DNS_CHECK {
            type A
            name test.example
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server $VIP 5353 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server 198.18.2.13 5353 {
        UDP_CHECK {
            payload 6c6264
            require_reply 6c6264
            connect_timeout 1
            retry 0
        }
    }
}
EOF

dp_lbd l hc --tun=lbd0 --workers=1 --mode=gateway --keepalived-conf="$CONF" \
  --metrics=127.0.0.1:9481

# rs_line SERVICE RS: lbctl -Ln's line of RS under SERVICE ("" when absent).
rs_line() {
  lbctl hc -Ln | awk -v s="$1" -v r="$2" '
    $1 == "TCP" || $1 == "UDP" { cur = $2 }
    $1 == "->" && cur == s && $2 == r { print }'
}
rs_weight() { rs_line "$1" "$2" | awk '{ print $4 }'; }
rs_absent() { [[ -z $(rs_line "$1" "$2") ]]; }
rs_present() { [[ -n $(rs_line "$1" "$2") ]]; }
rs_has_weight() { [[ $(rs_weight "$1" "$2") == "$3" ]]; }

# Bound for a removal: delay_loop*retry + connect_timeout = 1*1 + 1, plus the retry's delay,
# the warmup and a loaded machine's slack.
BOUND=15

all_from() {  # all_from PORT NAME...: 20 requests to VIP:PORT, all succeed, all from NAMES
  local port=$1 i a
  shift
  for i in $(seq 20); do
    a=$(dp_get c "http://$VIP:$port/") || dp_fail "request $i to $VIP:$port failed"
    [[ " $* " == *" $a "* ]] || dp_fail "request $i to $VIP:$port answered '$a', want one of: $*"
  done
}

grep -q "skipped (not LVS).*vrrp_instance VI_1" "$DP_TMP/lbd-hc.log" ||
  dp_fail "the vrrp_instance was not reported as skipped"
lbctl hc -Ln

# Everything starts up (warmup is at most delay_loop).
dp_wait $BOUND rs_has_weight $VIP:80 198.18.2.11:80 2 || dp_fail "HTTP_GET RS1 not in"
dp_wait $BOUND rs_has_weight $VIP:80 198.18.2.12:80 3 || dp_fail "HTTP_GET RS2 not in"
all_from 80 S1 S2

# --- HTTP_GET: kill S1:80; removed, then no request fails. Heal: back with weight 2.
stop_pid "$HTTP_PID_S1_80"
dp_wait $BOUND rs_absent $VIP:80 198.18.2.11:80 || dp_fail "HTTP_GET: dead RS1 not removed"
all_from 80 S2
http s1 S1 80
dp_wait $BOUND rs_has_weight $VIP:80 198.18.2.11:80 2 || dp_fail "HTTP_GET: RS1 not back"
# A wrong digest is a failure too: S1's page changes.
echo "changed" >"$DP_TMP/www-S1-80/index.html"
dp_wait $BOUND rs_absent $VIP:80 198.18.2.11:80 || dp_fail "HTTP_GET: digest mismatch not seen"
echo "S1" >"$DP_TMP/www-S1-80/index.html"
dp_wait $BOUND rs_present $VIP:80 198.18.2.11:80 || dp_fail "HTTP_GET: RS1 not back after digest"
echo "HTTP_GET ok"

# --- TCP_CHECK with inhibit_on_failure: weight 0, then the weight back. The operator's
# lbctl -e weight is what it comes back with.
dp_wait $BOUND rs_has_weight $VIP:8080 198.18.2.11:8080 4 || dp_fail "TCP_CHECK RS1 not in"
lbctl hc -e -t $VIP:8080 -r 198.18.2.11:8080 -m -w 7
stop_pid "$HTTP_PID_S1_8080"
dp_wait $BOUND rs_has_weight $VIP:8080 198.18.2.11:8080 0 || dp_fail "TCP_CHECK: not quiesced"
all_from 8080 S2
http s1 S1 8080
dp_wait $BOUND rs_has_weight $VIP:8080 198.18.2.11:8080 7 ||
  dp_fail "TCP_CHECK: healed RS1 has weight $(rs_weight $VIP:8080 198.18.2.11:8080), want 7"
echo "TCP_CHECK ok"

# --- MISC_CHECK: exit 1 removes; misc_dynamic exit 7 sets weight 5.
dp_wait $BOUND rs_present $VIP:81 198.18.2.11:80 || dp_fail "MISC_CHECK RS1 not in"
echo 1 >"$DP_TMP/misc-s1"
dp_wait $BOUND rs_absent $VIP:81 198.18.2.11:80 || dp_fail "MISC_CHECK: exit 1 not removed"
all_from 81 S2
echo 0 >"$DP_TMP/misc-s1"
dp_wait $BOUND rs_present $VIP:81 198.18.2.11:80 || dp_fail "MISC_CHECK: RS1 not back"
echo 7 >"$DP_TMP/misc-s2"
dp_wait $BOUND rs_has_weight $VIP:81 198.18.2.12:80 5 || dp_fail "misc_dynamic: weight not 5"
echo "MISC_CHECK ok"

# --- SSL_GET against nginx with a self-signed certificate.
dp_wait $BOUND rs_present $VIP:443 198.18.2.11:443 || dp_fail "SSL_GET RS not in: $(grep SSL_GET "$DP_TMP/lbd-hc.log")"
stop_pid "$NGINX_PID"
dp_wait $BOUND rs_absent $VIP:443 198.18.2.11:443 || dp_fail "SSL_GET: dead nginx not removed"
start_nginx
dp_wait $BOUND rs_present $VIP:443 198.18.2.11:443 || dp_fail "SSL_GET: nginx not back"
echo "SSL_GET ok"

# --- DNS_CHECK against dnsmasq.
dp_wait $BOUND rs_present $VIP:53 198.18.2.12:53 || dp_fail "DNS_CHECK RS not in"
stop_pid "$DNSMASQ_PID"
dp_wait $BOUND rs_absent $VIP:53 198.18.2.12:53 || dp_fail "DNS_CHECK: dead dnsmasq not removed"
start_dnsmasq
dp_wait $BOUND rs_present $VIP:53 198.18.2.12:53 || dp_fail "DNS_CHECK: dnsmasq not back"
echo "DNS_CHECK ok"

# --- UDP_CHECK against socat.
dp_wait $BOUND rs_present $VIP:5353 198.18.2.13:5353 || dp_fail "UDP_CHECK RS not in"
stop_pid "$SOCAT_PID"
dp_wait $BOUND rs_absent $VIP:5353 198.18.2.13:5353 || dp_fail "UDP_CHECK: dead socat not removed"
start_socat
dp_wait $BOUND rs_present $VIP:5353 198.18.2.13:5353 || dp_fail "UDP_CHECK: socat not back"
echo "UDP_CHECK ok"

# --- Quorum 2 over two weight-1 servers, sorry server S3.
dp_wait $BOUND rs_present $VIP:82 198.18.2.12:82 || dp_fail "quorum RS2 not in"
rs_absent $VIP:82 198.18.2.13:82 || dp_fail "sorry server in while the quorum holds"
stop_pid "$HTTP_PID_S1_82"
dp_wait $BOUND rs_present $VIP:82 198.18.2.13:82 || dp_fail "quorum lost: no sorry server"
rs_absent $VIP:82 198.18.2.12:82 || dp_fail "quorum lost: RS2 still in beside the sorry server"
all_from 82 S3
http s1 S1 82
dp_wait $BOUND rs_absent $VIP:82 198.18.2.13:82 || dp_fail "quorum back: sorry server still in"
rs_present $VIP:82 198.18.2.11:82 && rs_present $VIP:82 198.18.2.12:82 ||
  dp_fail "quorum back: real servers not both in"
all_from 82 S1 S2
echo "quorum ok"

# --- The notify FIFO carried keepalived's lines.
fifo_lines=$(timeout 2 cat "$DP_TMP/notify.fifo" 2>/dev/null || true)
echo "$fifo_lines" | grep -qx "RS \[198.18.2.11\]:tcp:80 \[$VIP\]:tcp:80 DOWN" ||
  dp_fail "no RS DOWN line in the notify FIFO: $fifo_lines"
echo "$fifo_lines" | grep -qx "VS \[$VIP\]:tcp:82 DOWN" ||
  dp_fail "no VS DOWN line in the notify FIFO: $fifo_lines"

# --- Metrics per checker.
ip netns exec "$(n l)" curl -s --max-time 5 http://127.0.0.1:9481/metrics >"$DP_TMP/metrics"
grep -q 'lb_health_checker_up{service="TCP 198.18.1.100:80",rs="198.18.2.11:80",checker="HTTP_GET"} 1' \
  "$DP_TMP/metrics" || dp_fail "no lb_health_checker_up for HTTP_GET: $(grep lb_health "$DP_TMP/metrics" | head)"
grep -Eq 'lb_health_checker_transitions_total\{service="TCP 198.18.1.100:80",rs="198.18.2.11:80",checker="HTTP_GET"\} [4-9]' \
  "$DP_TMP/metrics" || dp_fail "HTTP_GET transitions not counted"

# --- lbctl --list-checks: lbd's own listing (ipvsadm's stay as they are) and JSON.
checks=$(lbctl hc --list-checks)
echo "$checks" | head -n 4
echo "$checks" | grep -Eq "^TCP +$VIP:80 +198.18.2.11:80 +HTTP_GET +UP +in +2 " ||
  dp_fail "--list-checks: no HTTP_GET UP line for 198.18.2.11:80"
echo "$checks" | grep -E "^TCP +$VIP:8080 +198.18.2.11:8080 +TCP_CHECK +UP +in +7 " |
  grep -q "connect: Connection refused" || dp_fail "--list-checks: TCP_CHECK's last failure missing"
lbctl hc --list-checks -u $VIP:53 --output=json >"$DP_TMP/checks.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
c = d["checks"]
assert len(c) == 1 and c[0]["type"] == "HEALTH_CHECK_TYPE_DNS" and c[0]["up"], c
assert c[0]["config"].endswith("misc.conf:42"), c[0]["config"]
' "$DP_TMP/checks.json" || dp_fail "--list-checks --output=json: $(cat "$DP_TMP/checks.json")"
lbctl hc -Ln | grep -q "Check" && dp_fail "ipvsadm's listing changed"

# --- SIGHUP after an edit: an open connection to an unchanged real server keeps flowing.
mkfifo "$DP_TMP/keep.in"
ip netns exec "$(n c)" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 9000), timeout=10)
def ping(word):
    s.sendall(word + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(4096)
        if not d:
            raise SystemExit("closed")
        buf += d
    assert buf == word + b"\n", buf
ping(b"first")
print("first", flush=True)
sys.stdin.readline()
ping(b"second")
print("second", flush=True)
' $VIP >"$DP_TMP/keep.out" 2>&1 <>"$DP_TMP/keep.in" &
KEEP_PID=$!
DP_PIDS+=($KEEP_PID)
dp_wait 10 grep -q first "$DP_TMP/keep.out" || dp_fail "keep-alive client did not connect: $(cat "$DP_TMP/keep.out")"
before=$(lbctl hc -S -n)
# Edit: a new scheduler on :80 and a new real server on :8080.
sed -i 's/lb_algo rr/lb_algo wrr/' "$DP_TMP/conf.d/http.conf"
cat >>"$DP_TMP/conf.d/tcp.conf" <<EOF
virtual_server $VIP 8081 {
    delay_loop 1
    real_server 198.18.2.13 8080 {
        TCP_CHECK {
        }
    }
}
EOF
kill -HUP "$DP_LBD_PID_hc"
dp_wait $BOUND rs_present $VIP:8081 198.18.2.13:8080 || dp_fail "reload: new virtual server not in"
lbctl hc -Ln | grep -q "^TCP  $VIP:80 wrr" || dp_fail "reload: scheduler not changed"
echo go >"$DP_TMP/keep.in"
dp_wait 10 grep -q second "$DP_TMP/keep.out" ||
  dp_fail "the open connection to the unchanged real server broke on reload: $(cat "$DP_TMP/keep.out")"
echo "reload kept the open connection"
# A bad file is refused whole: nothing changes.
after=$(lbctl hc -S -n)
echo "virtual_server $VIP 8082 {" >"$DP_TMP/conf.d/zz-bad.conf"
echo "    lb_algo nonsense" >>"$DP_TMP/conf.d/zz-bad.conf"
echo "}" >>"$DP_TMP/conf.d/zz-bad.conf"
kill -HUP "$DP_LBD_PID_hc"
dp_wait 10 grep -q "zz-bad.conf:2: lb_algo 'nonsense': unknown scheduler" "$DP_TMP/lbd-hc.log" ||
  dp_fail "bad reload not refused with FILE:LINE"
[[ "$(lbctl hc -S -n)" == "$after" ]] || dp_fail "a refused reload changed the configuration"
[[ "$before" != "$after" ]] || dp_fail "the good reload changed nothing"

# --- PING_CHECK: S3's address gone (no echo reply), then back.
dp_wait $BOUND rs_present $VIP:7 198.18.2.13:7 || dp_fail "PING_CHECK RS not in"
ip -n "$(n s3)" addr del 198.18.2.13/24 dev s0
dp_wait $BOUND rs_absent $VIP:7 198.18.2.13:7 || dp_fail "PING_CHECK: silent RS not removed"
ip -n "$(n s3)" addr add 198.18.2.13/24 dev s0
ip -n "$(n s3)" route add 198.18.1.0/24 via 198.18.2.1
dp_wait $BOUND rs_present $VIP:7 198.18.2.13:7 || dp_fail "PING_CHECK: RS not back"
echo "PING_CHECK ok"

dp_lbd_stop hc
echo "PASS"
