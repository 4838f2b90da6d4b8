// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

ParseResult parse(const std::string& line) {
  std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
  return parseIpvsadm("ipvsadm", args);
}

Command ok(const std::string& line) {
  ParseResult r = parse(line);
  EXPECT_TRUE(r.ok) << line << ": " << r.error.message;
  return r.command;
}

// The error ipvsadm prints (and its exit status) for a bad line.
void expectError(const std::string& line, const std::string& message, int exit_code = 2) {
  ParseResult r = parse(line);
  ASSERT_FALSE(r.ok) << line;
  EXPECT_EQ(r.error.message, message) << line;
  EXPECT_EQ(r.error.exit_code, exit_code) << line;
}

// ipvsadm(8), EXAMPLE 1 - Simple Virtual Service.
TEST(IpvsadmParserTest, ManPageExample1SimpleVirtualService) {
  Command a = ok("-A -t 207.175.44.110:80 -s rr");
  EXPECT_EQ(a.kind, CommandKind::kAddService);
  EXPECT_EQ(a.service.key().address().protocol(), pb::PROTOCOL_TCP);
  EXPECT_EQ(a.service.key().address().address(), "207.175.44.110");
  EXPECT_EQ(a.service.key().address().port(), 80u);
  EXPECT_EQ(a.service.scheduler(), "rr");
  EXPECT_FALSE(a.service.has_persistence());
  for (int i = 1; i <= 5; ++i) {
    Command d = ok("-a -t 207.175.44.110:80 -r 192.168.10." + std::to_string(i) + ":80 -m");
    EXPECT_EQ(d.kind, CommandKind::kAddDest);
    EXPECT_EQ(d.service.key().address().address(), "207.175.44.110");
    EXPECT_EQ(d.dest.address(), "192.168.10." + std::to_string(i));
    EXPECT_EQ(d.dest.port(), 80u);
    EXPECT_EQ(d.dest.forward_method(), pb::FORWARD_METHOD_MASQ);
    EXPECT_EQ(d.dest.weight(), 1u);
  }
}

// EXAMPLE 2 - Firewall-Mark Virtual Service.
TEST(IpvsadmParserTest, ManPageExample2FwmarkService) {
  Command a = ok("-A -f 1  -s rr");
  EXPECT_EQ(a.service.key().fwmark().mark(), 1u);
  EXPECT_EQ(a.service.key().fwmark().family(), pb::ADDRESS_FAMILY_INET);
  EXPECT_EQ(a.service.scheduler(), "rr");
  Command d = ok("-a -f 1 -r 192.168.10.1:0 -m");
  EXPECT_EQ(d.service.key().fwmark().mark(), 1u);
  EXPECT_EQ(d.dest.address(), "192.168.10.1");
  EXPECT_EQ(d.dest.port(), 0u);
  EXPECT_EQ(d.dest.forward_method(), pb::FORWARD_METHOD_MASQ);
}

// IPv6 section: addresses in brackets; fwmark IPv6 services need -6 (after -f).
TEST(IpvsadmParserTest, ManPageIpv6) {
  Command a = ok("-A -t [2001:db8::80]:80 -s rr");
  EXPECT_EQ(a.service.key().address().address(), "2001:db8::80");
  EXPECT_EQ(a.service.key().address().port(), 80u);
  Command d = ok("-a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:80 -m");
  EXPECT_EQ(d.dest.address(), "2001:db8::a0a0");
  EXPECT_EQ(d.dest.port(), 80u);
  Command f = ok("-A -f 5 -6 -s wlc");
  EXPECT_EQ(f.service.key().fwmark().family(), pb::ADDRESS_FAMILY_INET6);
  expectError("-A -6 -f 5", "-6 used before -f\n");
}

TEST(IpvsadmParserTest, RestoreLinesSplitLikeConfigStream) {
  EXPECT_EQ(splitRuleLine("ipvsadm -A -t 207.175.44.110:80 -s rr"),
            (std::vector<std::string>{"-A", "-t", "207.175.44.110:80", "-s", "rr"}));
  EXPECT_EQ(splitRuleLine("  -a -t 1.2.3.4:80\t-r 5.6.7.8 -m  # comment"),
            (std::vector<std::string>{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-m"}));
  EXPECT_TRUE(splitRuleLine("# only a comment").empty());
  EXPECT_TRUE(splitRuleLine("   ").empty());
}

TEST(IpvsadmParserTest, CombinedShortOptions) {
  Command ln = ok("-Ln");
  EXPECT_EQ(ln.kind, CommandKind::kList);
  EXPECT_TRUE(ln.list.numeric);
  Command lnc = ok("-Lnc");
  EXPECT_TRUE(lnc.list.numeric);
  EXPECT_TRUE(lnc.list.connection);
  Command at = ok("-At 8.8.8.8:80 -s rr");
  EXPECT_EQ(at.kind, CommandKind::kAddService);
  EXPECT_EQ(at.service.key().address().address(), "8.8.8.8");
  Command a = ok("-at 8.8.8.8:80 -r 192.168.10.2:80 -m");
  EXPECT_EQ(a.kind, CommandKind::kAddDest);
  EXPECT_EQ(a.dest.address(), "192.168.10.2");
  Command l = ok("-l -n --stats --exact");
  EXPECT_TRUE(l.list.stats);
  EXPECT_TRUE(l.list.exact);
}

TEST(IpvsadmParserTest, NoArgumentsListsEverything) {
  ParseResult r = parseIpvsadm("ipvsadm", {});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.command.kind, CommandKind::kList);
  EXPECT_FALSE(r.command.list.numeric);
}

TEST(IpvsadmParserTest, ServiceDefaults) {
  Command a = ok("-A -u 10.0.0.1:53");
  EXPECT_EQ(a.service.scheduler(), "wlc");
  EXPECT_EQ(a.service.key().address().protocol(), pb::PROTOCOL_UDP);
  Command s = ok("-A --sctp-service 10.0.0.1:5000 -s rr");
  EXPECT_EQ(s.service.key().address().protocol(), pb::PROTOCOL_SCTP);
  // -p alone is 360 s; -p takes the next word when it is not an option (popt's optional arg).
  EXPECT_EQ(ok("-A -t 10.0.0.1:80 -p").service.persistence().timeout().seconds(), 360);
  EXPECT_EQ(ok("-A -t 10.0.0.1:80 -p 100 -s rr").service.persistence().timeout().seconds(), 100);
  EXPECT_EQ(ok("-A -t 10.0.0.1:80 -p -s rr").service.persistence().timeout().seconds(), 360);
  EXPECT_EQ(ok("-A -t 10.0.0.1:80 --persistent=77").service.persistence().timeout().seconds(), 77);
  Command m = ok("-A -t 10.0.0.1:80 -p 60 -M 255.255.255.0");
  EXPECT_EQ(m.service.persistence().netmask_prefix(), 24u);
  Command e = ok("-E -t 10.0.0.1:80");  // -E is a full replace: scheduler back to wlc
  EXPECT_EQ(e.kind, CommandKind::kEditService);
  EXPECT_EQ(e.service.scheduler(), "wlc");
  EXPECT_FALSE(e.service.has_persistence());
  // Port 0 is allowed for persistent services only.
  ok("-A -t 10.0.0.1 -p");
  Command o = ok("-A -u 10.0.0.1:53 -o");
  EXPECT_TRUE(o.service.one_packet());
}

TEST(IpvsadmParserTest, DestDefaultsAndPortRules) {
  Command g = ok("-a -t 10.0.0.1:80 -r 10.1.0.1");
  EXPECT_EQ(g.dest.forward_method(), pb::FORWARD_METHOD_DIRECT_ROUTE);
  EXPECT_EQ(g.dest.weight(), 1u);
  EXPECT_EQ(g.dest.port(), 80u);  // copied from the service
  // DR and tunnel force the service port; NAT keeps its own.
  EXPECT_EQ(ok("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -g").dest.port(), 80u);
  EXPECT_EQ(ok("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -i").dest.port(), 80u);
  EXPECT_EQ(ok("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m").dest.port(), 8080u);
  EXPECT_EQ(ok("-a -f 3 -r 10.1.0.1:8080 -g").dest.port(), 8080u);  // not for fwmark
  Command w = ok("-e -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 0 -x 100 -y 10");
  EXPECT_EQ(w.kind, CommandKind::kEditDest);
  EXPECT_EQ(w.dest.weight(), 0u);
  EXPECT_EQ(w.dest.upper_threshold(), 100u);
  EXPECT_EQ(w.dest.lower_threshold(), 10u);
  Command f = ok("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 --fullnat");
  EXPECT_EQ(f.dest.forward_method(), pb::FORWARD_METHOD_FULL_NAT);
  EXPECT_EQ(f.dest.port(), 8080u);
  Command d = ok("-d -t 10.0.0.1:80 -r 10.1.0.1");
  EXPECT_EQ(d.kind, CommandKind::kDeleteDest);
  EXPECT_EQ(d.dest.port(), 80u);
}

TEST(IpvsadmParserTest, TunnelOptions) {
  Command i = ok("-a -t 10.0.0.1:80 -r 10.1.0.1 -i");
  EXPECT_EQ(i.dest.tunnel().type(), pb::TUNNEL_TYPE_IPIP);
  Command gue = ok("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type gue --tun-port 6080 --tun-csum");
  EXPECT_EQ(gue.dest.tunnel().type(), pb::TUNNEL_TYPE_GUE);
  EXPECT_EQ(gue.dest.tunnel().port(), 6080u);
  EXPECT_EQ(gue.dest.tunnel().checksum(), pb::TUNNEL_CHECKSUM_CSUM);
  Command gre = ok("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type gre --tun-nocsum");
  EXPECT_EQ(gre.dest.tunnel().checksum(), pb::TUNNEL_CHECKSUM_NONE);
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -m --tun-type gue",
              "Tunnel options conflict with forward method");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type gue",
              "You need to supply the 'tun-port' option for the 'gue' tunnel type");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-port 5",
              "Illegal 'tun-port' option with the 'ipip' tunnel type");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type gre --tun-remcsum",
              "Illegal 'tun-remcsum' option with the 'gre' tunnel type");
  expectError(
      "-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type gue --tun-port 1 --tun-csum "
      "--tun-nocsum",
      "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel "
      "type");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type vxlan", "illegal tunnel type specified");
}

TEST(IpvsadmParserTest, SchedulerFlags) {
  Command sh = ok("-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port");
  EXPECT_TRUE(sh.service.sh().fallback());
  EXPECT_TRUE(sh.service.sh().port());
  Command mh = ok("-A -t 10.0.0.1:80 -b mh-port -s mh");  // flags are checked after all options
  EXPECT_FALSE(mh.service.mh().fallback());
  EXPECT_TRUE(mh.service.mh().port());
  Command raw = ok("-A -t 10.0.0.1:80 -s rr -b flag-1,flag-3");
  EXPECT_TRUE(raw.service.flags().flag_1());
  EXPECT_FALSE(raw.service.flags().flag_2());
  EXPECT_TRUE(raw.service.flags().flag_3());
  expectError("-A -t 10.0.0.1:80 -b sh-port", "incompatible scheduler flag `sh-port'");
  expectError("-A -t 10.0.0.1:80 -s sh -b sh-bogus", "invalid scheduler flag `sh-bogus'");
}

TEST(IpvsadmParserTest, OptionErrorsAsIpvsadmPrintsThem) {
  expectError("-A -t 10.0.0.1", "Zero port specified for non-persistent service");
  expectError("-A -t 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services");
  expectError("-A -t 10.0.0.1:80 -x 5",
              "Illegal 'u-threshold' option with the 'add-service' command");
  expectError("-a -t 10.0.0.1:80",
              "You need to supply the 'real-server' option for the "
              "'add-server' command");
  expectError("-A -s rr",
              "You need to supply the 'service-address' option for the 'add-service' "
              "command");
  expectError("-L -s rr", "Illegal 'scheduler' option with the 'list' command");
  expectError("-L -c -t 10.0.0.1:80",
              "The option 'service-address' conflicts with the 'connection' option in the 'list' "
              "command");
  expectError("-L --stats --timeout", "options conflicts in the list command");
  expectError("-L --daemon --persistent-conn", "options conflicts in the list command");
  expectError("-A -t 10.0.0.1:80 -s rr -s wrr", "multiple 'scheduler' options specified");
  expectError("-A -t 10.0.0.1:80 -A", "invalid option `-A'");
  expectError("-A -t 300.1.1.1:80", "illegal virtual server address[:port] specified");
  expectError("-A -t 10.0.0.1:http0", "illegal virtual server address[:port] specified");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -w 70000", "illegal weight specified");
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -x -1", "illegal u_threshold specified");
  expectError("-A -t 10.0.0.1:80 -p 0", "invalid timeout value `0' specified");
  expectError("-A -t 10.0.0.1:80 -p 2678401", "invalid timeout value `2678401' specified");
  expectError("-A -f 0", "invalid fwmark value `0' specified");
  expectError("-A -t 10.0.0.1:80 -p 60 -M 255.0.255.0",
              "illegal virtual server persistent mask specified");
  expectError("-a -t 10.0.0.1:80 -r [2001:2::1]:80 -m",
              "Different address family is allowed only for tunneling servers");
  expectError("--set 1 2", "--set option requires 3 timeout values");
  expectError("--set 1 2 x", "invalid timeout value `x' specified");
  expectError("-C extra", "unexpected argument extra");
  expectError("--start-daemon primary", "illegal start-daemon parameter specified");
  expectError("-t 10.0.0.1:80 -A", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
              255);
  expectError("-A -t 10.0.0.1:80 -q", "-q: unknown option", 255);
  expectError("-A -t", "-t: missing argument", 255);
  expectError("-S -c", "Illegal 'connection' option with the 'save' command");
}

TEST(IpvsadmParserTest, OtherCommands) {
  Command set = ok("--set 900 120 300");
  EXPECT_EQ(set.kind, CommandKind::kSetTimeout);
  EXPECT_EQ(set.timeouts.tcp().seconds(), 900);
  EXPECT_EQ(set.timeouts.tcp_fin().seconds(), 120);
  EXPECT_EQ(set.timeouts.udp().seconds(), 300);
  EXPECT_EQ(ok("-C").kind, CommandKind::kFlush);
  EXPECT_EQ(ok("-R").kind, CommandKind::kRestore);
  EXPECT_TRUE(ok("-S -n").list.numeric);
  EXPECT_EQ(ok("-Z").kind, CommandKind::kZero);
  EXPECT_TRUE(ok("-Z -t 10.0.0.1:80").has_service);
  EXPECT_EQ(ok("-D -t 10.0.0.1:80").kind, CommandKind::kDeleteService);
  EXPECT_EQ(ok("-h").kind, CommandKind::kHelp);
  EXPECT_EQ(ok("--version").kind, CommandKind::kVersion);
  Command sd = ok("--start-daemon master --mcast-interface eth1 --syncid 3");
  EXPECT_EQ(sd.kind, CommandKind::kStartDaemon);
  EXPECT_EQ(sd.daemon_state, "master");
  EXPECT_TRUE(ok("-L --timeout").list.timeout);
}

// The daemon options are kept in Command::sync_daemon as given, with ipvsadm's "eth0".
TEST(IpvsadmParser, DaemonOptionsStored) {
  Command sd =
      ok("--start-daemon backup --mcast-interface eth1 --syncid 3 --sync-maxlen 1200 "
         "--mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 4");
  EXPECT_EQ(sd.sync_daemon.role(), ::lbd::v1::SYNC_DAEMON_ROLE_BACKUP);
  EXPECT_EQ(sd.sync_daemon.mcast_interface(), "eth1");
  EXPECT_EQ(sd.sync_daemon.syncid(), 3u);
  EXPECT_EQ(sd.sync_daemon.sync_maxlen(), 1200u);
  EXPECT_EQ(sd.sync_daemon.mcast_group(), "239.1.2.3");
  EXPECT_EQ(sd.sync_daemon.mcast_port(), 8849u);
  EXPECT_EQ(sd.sync_daemon.mcast_ttl(), 4u);
  Command d = ok("--start-daemon master");
  EXPECT_EQ(d.sync_daemon.role(), ::lbd::v1::SYNC_DAEMON_ROLE_MASTER);
  EXPECT_EQ(d.sync_daemon.mcast_interface(), "eth0");
  EXPECT_EQ(d.sync_daemon.syncid(), 0u);
  EXPECT_EQ(d.sync_daemon.mcast_group(), "");
  EXPECT_EQ(
      ok("--start-daemon master --mcast-interface abcdefghijklmnopq").sync_daemon.mcast_interface(),
      "abcdefghijklmno");
  EXPECT_EQ(ok("--stop-daemon backup").sync_daemon.role(), ::lbd::v1::SYNC_DAEMON_ROLE_BACKUP);
  EXPECT_EQ(ok("--start-daemon master --mcast-group ff02::1:81").sync_daemon.mcast_group(),
            "ff02::1:81");
}

TEST(IpvsadmParser, ListDaemonOptionKept) {
  EXPECT_TRUE(ok("-L --daemon").list.daemon);
  EXPECT_TRUE(ok("-L --sort -n").list.numeric);
  EXPECT_TRUE(ok("-Ln --nosort").list.nosort);
  EXPECT_TRUE(ok("-Ln --tun-info").list.tun_info);
}

TEST(IpvsadmParserTest, DpvsLocalAddressCommands) {
  Command p = ok("-P -t 10.0.0.1:80 -z 198.18.5.1");
  EXPECT_EQ(p.kind, CommandKind::kAddLaddr);
  EXPECT_EQ(p.laddr, "198.18.5.1");
  EXPECT_EQ(ok("--del-laddr -t 10.0.0.1:80 -z 198.18.5.1").kind, CommandKind::kDelLaddr);
  EXPECT_EQ(ok("-G").kind, CommandKind::kGetLaddr);
  expectError("-P -t 10.0.0.1:80",
              "You need to supply the 'laddr' option for the 'add-laddr' "
              "command");
}

TEST(IpvsadmParserTest, LbctlGlobalOptions) {
  Command c = ok("--server=unix:///tmp/x.sock -Ln --output=json");
  EXPECT_EQ(c.server, "unix:///tmp/x.sock");
  EXPECT_TRUE(c.list.json);
  EXPECT_EQ(ok("-Ln --server tcp://127.0.0.1:5000").server, "tcp://127.0.0.1:5000");
  expectError("-A -t 10.0.0.1:80 --output=json",
              "Illegal 'output' option with the 'add-service' command");
  expectError("-Ln --output=yaml", "illegal output format `yaml' (only json)");
  // -o stays ipvsadm's --ops.
  EXPECT_TRUE(ok("-A -u 10.0.0.1:53 -o").service.one_packet());
}

// DPVS's --synproxy: on -A and -E only.
TEST(IpvsadmParserTest, SynproxyOnServiceCommands) {
  EXPECT_TRUE(ok("-A -t 10.0.0.1:80 -s rr --synproxy").service.synproxy());
  EXPECT_TRUE(ok("-E -t 10.0.0.1:80 --synproxy").service.synproxy());
  EXPECT_FALSE(ok("-A -t 10.0.0.1:80").service.synproxy());
  expectError("-a -t 10.0.0.1:80 -r 10.1.0.1 -m --synproxy",
              "Illegal 'synproxy' option with the 'add-server' command");
  expectError("-A -t 10.0.0.1:80 --synproxy --synproxy", "multiple 'synproxy' options specified");
}

TEST(IpvsadmParserTest, LbctlTlsOptions) {
  Command c =
      ok("-Ln --server tls://lb.example:9000 --tls-ca=/ca.pem --tls-cert /c.pem "
         "--tls-key=/c.key");
  EXPECT_EQ(c.kind, CommandKind::kList);
  EXPECT_EQ(c.server, "tls://lb.example:9000");
  EXPECT_EQ(c.tls_ca, "/ca.pem");
  EXPECT_EQ(c.tls_cert, "/c.pem");
  EXPECT_EQ(c.tls_key, "/c.key");
  expectError("-Ln --tls-key", "--tls-key: missing argument", 255);
}

TEST(IpvsadmParserTest, LbctlSysctlCommand) {
  Command c = ok("--sysctl");
  EXPECT_EQ(c.kind, CommandKind::kSysctl);
  EXPECT_TRUE(c.sysctls.empty());
  c = ok("--sysctl net.ipv4.vs.sloppy_tcp=1 /proc/sys/net/ipv4/vs/am_droprate=7");
  ASSERT_EQ(c.sysctls.size(), 2u);
  EXPECT_EQ(c.sysctls[0].name, "sloppy_tcp");
  EXPECT_TRUE(c.sysctls[0].set);
  EXPECT_EQ(c.sysctls[0].value, 1u);
  EXPECT_EQ(c.sysctls[1].name, "am_droprate");
  EXPECT_EQ(c.sysctls[1].value, 7u);
  c = ok("--sysctl=secure_tcp --server=unix:///x");
  ASSERT_EQ(c.sysctls.size(), 1u);
  EXPECT_FALSE(c.sysctls[0].set);
  EXPECT_EQ(c.server, "unix:///x");
  expectError("--sysctl sloppy_tcp=yes", "illegal value `yes' for sysctl sloppy_tcp (0..1)");
  expectError("-L --sysctl", "--sysctl: unknown option", 255);  // only first on the line
}

TEST(IpvsadmParserTest, LbctlFwmarkRuleCommands) {
  Command c = ok("--add-fwmark-rule --mark 5 --dest 198.18.3.77/28 --proto tcp --dport 443");
  EXPECT_EQ(c.kind, CommandKind::kAddFwmarkRule);
  EXPECT_EQ(c.fwmark_rule.mark(), 5u);
  EXPECT_EQ(c.fwmark_rule.destination(), "198.18.3.64/28");  // masked
  EXPECT_EQ(c.fwmark_rule.protocol(), pb::PROTOCOL_TCP);
  EXPECT_EQ(c.fwmark_rule.port_min(), 443u);
  EXPECT_EQ(c.fwmark_rule.port_max(), 443u);
  c = ok("--del-fwmark-rule --mark 5 --dest 2001:2::1");
  EXPECT_EQ(c.kind, CommandKind::kDelFwmarkRule);
  EXPECT_EQ(c.fwmark_rule.destination(), "2001:2::1/128");
  EXPECT_EQ(c.fwmark_rule.protocol(), pb::PROTOCOL_ANY);
  EXPECT_EQ(c.fwmark_rule.port_min(), 0u);
  EXPECT_EQ(c.fwmark_rule.port_max(), 65535u);
  EXPECT_EQ(ok("--list-fwmark-rules --output=json").kind, CommandKind::kListFwmarkRules);
  EXPECT_EQ(ok("--clear-fwmark-rules").kind, CommandKind::kClearFwmarkRules);
  expectError("--add-fwmark-rule --mark 1 --dest 10.0.0.1 extra", "unexpected argument extra");
  expectError("--add-fwmark-rule --mark 1 --mark 2 --dest 10.0.0.1",
              "invalid fwmark value `2' specified");
  expectError("--add-fwmark-rule --mark 1 --dest", "--dest: missing argument", 255);
  expectError("--clear-fwmark-rules --sysctl", "multiple commands specified");
}

TEST(IpvsadmParserTest, UsageDocumentsLbctlOptionsAndCommands) {
  const std::string u = usageText("lbctl");
  for (const char* word : {"tls://host:port", "--tls-ca=FILE", "--tls-cert=FILE --tls-key=FILE",
                           "--sysctl NAME=VALUE", "expire_quiescent_template", "lblcr_expiration",
                           "--add-fwmark-rule --mark MARK --dest ADDR[/LEN]", "--del-fwmark-rule",
                           "--list-fwmark-rules", "--clear-fwmark-rules"}) {
    EXPECT_NE(u.find(word), std::string::npos) << word;
  }
}

TEST(IpvsadmParserTest, ParsesRepeatedlyWithoutLeakingState) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ok("-A -t 10.0.0.1:80 -s rr").service.scheduler(), "rr");
    expectError("-L -s rr", "Illegal 'scheduler' option with the 'list' command");
  }
}

}  // namespace
}  // namespace lb::ipvsadm
