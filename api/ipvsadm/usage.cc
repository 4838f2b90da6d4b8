// SPDX-License-Identifier: Apache-2.0
// lbctl -h and -v (ipvsadm.c usage_exit / version, with lbctl's additions).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "api/ipvsadm/health_option.h"
#include "api/ipvsadm/parser.h"

namespace lb::ipvsadm {

std::string versionText() {
  return "lbctl v0.1.0 (ipvsadm v1.31 syntax, compiled with getopt_long and IPVS v1.2.1)\n";
}

std::string usageText(const std::string& p) {
  std::string s = versionText();
  absl::StrAppend(
      &s, "Usage:\n",
      absl::StrFormat(
          "  %s -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe "
          "persistence_engine] [-b sched-flags]\n"
          "  %s -D virtual-service\n  %s -C\n  %s -R\n  %s -S [-n]\n"
          "  %s -a|e virtual-service -r server-address [options]\n"
          "  %s -d virtual-service -r server-address\n"
          "  %s -L|l [virtual-service] [options]\n  %s -Z [virtual-service]\n"
          "  %s --set tcp tcpfin udp\n"
          "  %s --start-daemon {master|backup} [daemon-options]\n"
          "  %s --stop-daemon {master|backup}\n"
          "  %s -P|Q virtual-service -z local-address\n  %s -G [virtual-service]\n  %s -h\n\n",
          p, p, p, p, p, p, p, p, p, p, p, p, p, p, p));
  absl::StrAppend(
      &s,
      "Commands:\n"
      "Either long or short options are allowed.\n"
      "  --add-service     -A        add virtual service with options\n"
      "  --edit-service    -E        edit virtual service with options\n"
      "  --delete-service  -D        delete virtual service\n"
      "  --clear           -C        clear the whole table\n"
      "  --restore         -R        restore rules from stdin\n"
      "  --save            -S        save rules to stdout\n"
      "  --add-server      -a        add real server with options\n"
      "  --edit-server     -e        edit real server with options\n"
      "  --delete-server   -d        delete real server\n"
      "  --list            -L|-l     list the table\n"
      "  --zero            -Z        zero counters in a service or all services\n"
      "  --set tcp tcpfin udp        set connection timeout values\n"
      "  --start-daemon              start connection sync daemon (not supported by lbd yet)\n"
      "  --stop-daemon               stop connection sync daemon (not supported by lbd yet)\n"
      "  --add-laddr       -P        add a full-NAT local address (with -z)\n"
      "  --del-laddr       -Q        delete a full-NAT local address (with -z)\n"
      "  --get-laddr       -G        list full-NAT local addresses\n"
      "  --help            -h        display this help message\n\n"
      "virtual-service:\n"
      "  --tcp-service|-t  service-address   service-address is host[:port]\n"
      "  --udp-service|-u  service-address   service-address is host[:port]\n"
      "  --sctp-service    service-address   service-address is host[:port]\n"
      "  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n\n"
      "Options:\n"
      "  --ipv6         -6                   fwmark entry uses IPv6\n"
      "  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|"
      "mh|twos,\n"
      "                                      the default scheduler is wlc.\n"
      "  --pe            engine              alternate persistence engine may be sip,\n"
      "                                      not set by default.\n"
      "  --persistent   -p [timeout]         persistent service\n"
      "  --netmask      -M netmask           persistent granularity mask\n"
      "  --real-server  -r server-address    server-address is host (and port)\n"
      "  --gatewaying   -g                   gatewaying (direct routing) (default)\n"
      "  --ipip         -i                   ipip encapsulation (tunneling)\n"
      "  --masquerading -m                   masquerading (NAT)\n"
      "  --fullnat                           full NAT (source from the local-address pool)\n"
      "  --tun-type      type                one of ipip|gue|gre,\n"
      "                                      the default tunnel type is ipip.\n"
      "  --tun-port      port                tunnel destination port\n"
      "  --tun-nocsum                        tunnel encapsulation without checksum\n"
      "  --tun-csum                          tunnel encapsulation with checksum\n"
      "  --tun-remcsum                       tunnel encapsulation with remote checksum\n"
      "  --weight       -w weight            capacity of real server\n"
      "  --u-threshold  -x uthreshold        upper threshold of connections\n"
      "  --l-threshold  -y lthreshold        lower threshold of connections\n"
      "  --laddr        -z local-address     full-NAT local address (-P, -Q)\n"
      "  --connection   -c                   output of current IPVS connections\n"
      "  --timeout                           output of timeout (tcp tcpfin udp)\n"
      "  --daemon                            output of daemon information\n"
      "  --stats                             output of statistics information\n"
      "  --rate                              output of rate information\n"
      "  --exact                             expand numbers (display exact values)\n"
      "  --thresholds                        output of thresholds information\n"
      "  --persistent-conn                   output of persistent connection info\n"
      "  --tun-info                          output of tunnel information\n"
      "  --nosort                            disable sorting output of service/server entries\n"
      "  --sort                              does nothing, for backwards compatibility\n"
      "  --ops          -o                   one-packet scheduling\n"
      "  --numeric      -n                   numeric output of addresses and ports\n"
      "  --sched-flags  -b flags             scheduler flags (comma-separated)\n"
      "lbctl options:\n"
      "  --server=ADDR                       lbd address: unix:///path (default\n"
      "                                      unix:///run/lbd/lbd.sock, or $LBD_SERVER),\n"
      "                                      tcp://host:port or tls://host:port (TLS)\n"
      "  --tls-ca=FILE                       TLS: trust this CA (PEM) instead of the system's;\n"
      "                                      any --tls-* option makes tcp:// use TLS too\n"
      "  --tls-cert=FILE --tls-key=FILE      TLS client certificate and key (PEM), for an lbd\n"
      "                                      started with --tls-ca (mutual TLS)\n"
      "  --output=json                       listings (-L, -G, --sysctl, --list-fwmark-rules)\n"
      "                                      as JSON (-o is --ops)\n"
      "  --synproxy                          -A/-E: SYN proxy (DPVS): SYNs answered with\n"
      "                                      cookies, TCP services with NAT/full NAT\n\n"
      "lbctl commands (no ipvsadm equivalent):\n"
      "  --sysctl                            list the IPVS sysctls (net.ipv4.vs.NAME = VALUE)\n"
      "  --sysctl NAME...                    show these sysctls\n"
      "  --sysctl NAME=VALUE...              set them (one change; NAME as in\n"
      "                                      /proc/sys/net/ipv4/vs/: am_droprate,\n"
      "                                      conn_reuse_mode, drop_entry, drop_packet,\n"
      "                                      expire_nodest_conn, expire_quiescent_template,\n"
      "                                      lblc_expiration, lblcr_expiration (seconds),\n"
      "                                      nat_icmp_send, pmtu_disc, schedule_icmp,\n"
      "                                      secure_tcp, sloppy_sctp, sloppy_tcp,\n"
      "                                      sync_period, sync_persist_mode, sync_ports,\n"
      "                                      sync_qlen_max, sync_refresh_period (seconds),\n"
      "                                      sync_retries, sync_sock_size, sync_threshold,\n"
      "                                      sync_version)\n"
      "  --add-fwmark-rule --mark MARK --dest ADDR[/LEN] [--proto tcp|udp|sctp|any]\n"
      "                    [--dport PORT[:PORT]]\n"
      "                                      give matching packets firewall mark MARK (what\n"
      "                                      iptables -t mangle -j MARK does for ipvsadm -f);\n"
      "                                      appended, the first matching rule wins\n"
      "  --del-fwmark-rule (same options)    delete that rule\n"
      "  --list-fwmark-rules                 list the rules, in order, as add commands\n"
      "  --clear-fwmark-rules                delete every rule\n"
      "  --list-checks [-t|-u|-f SERVICE]    lbd's health checks: each checker's state and\n"
      "                                      last failure (--output=json too)\n"
      "These lines are also accepted by -R and by lbd's --config file.\n");
  absl::StrAppend(&s, "\n", healthOptionsHelp());
  return s;
}

}  // namespace lb::ipvsadm
