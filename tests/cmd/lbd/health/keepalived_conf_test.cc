// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/keepalived_conf.h"

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lb::health {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Files in memory; glob understands a trailing "*" only.
class MemFs {
 public:
  void add(const std::string& path, const std::string& text) { files_[path] = text; }

  ConfReader reader() const {
    ConfReader r;
    r.read = [this](const std::string& p) -> absl::StatusOr<std::string> {
      auto it = files_.find(p);
      if (it == files_.end())
        return absl::NotFoundError(p + ": cannot open");
      return it->second;
    };
    r.glob = [this](const std::string& pattern) {
      std::vector<std::string> out;
      const size_t star = pattern.find('*');
      for (const auto& [p, _] : files_) {
        if (star == std::string::npos ? p == pattern
                                      : absl::StartsWith(p, pattern.substr(0, star)) &&
                                            absl::EndsWith(p, pattern.substr(star + 1))) {
          out.push_back(p);
        }
      }
      return out;
    };
    return r;
  }

 private:
  std::map<std::string, std::string> files_;
};

absl::StatusOr<KeepalivedConfig> parse(const std::string& text) {
  MemFs fs;
  fs.add("/etc/k.conf", text);
  return parseKeepalivedConf("/etc/k.conf", fs.reader());
}

std::string errorOf(const std::string& text) {
  absl::StatusOr<KeepalivedConfig> c = parse(text);
  if (c.ok())
    return "OK";
  return std::string(c.status().message());
}

// keepalived's doc/samples/keepalived.conf.sample, on test addresses.
constexpr char kSample[] = R"(! Configuration File for keepalived

global_defs {
   notification_email {
     acassen
   }
   notification_email_from Alexandre.Cassen@firewall.loc
   smtp_server 198.18.200.1
   smtp_connect_timeout 30
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 50
    nopreempt
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.200.11
        198.18.200.12
    }
}

virtual_server 198.18.10.2 1358 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP

    sorry_server 198.18.200.200 1358

    real_server 198.18.200.2 1358 {
        weight 1
        HTTP_GET {
            url {
              path /testurl3/test.jsp
              digest 640205b7b0fc66c1ea91c463fac6334d
            }
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
}
)";

TEST(KeepalivedConfTest, ReadsTheDocumentationSample) {
  absl::StatusOr<KeepalivedConfig> c = parse(kSample);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->virtual_servers.size(), 1u);
  const VirtualServer& vs = c->virtual_servers[0];
  EXPECT_EQ(vs.kind, VirtualServer::Kind::kAddress);
  EXPECT_EQ(vs.address, "198.18.10.2");
  EXPECT_EQ(vs.port, 1358);
  EXPECT_EQ(vs.delay_loop, 6 * kSecond);
  EXPECT_EQ(vs.scheduler, "rr");
  EXPECT_EQ(vs.method, LvsMethod::kNat);
  EXPECT_EQ(vs.persistence_timeout, 50u);
  EXPECT_EQ(vs.protocol, "TCP");
  EXPECT_EQ(vs.sorry_address, "198.18.200.200");
  EXPECT_EQ(vs.sorry_port, 1358);
  ASSERT_EQ(vs.real_servers.size(), 1u);
  const RealServer& rs = vs.real_servers[0];
  EXPECT_EQ(rs.address, "198.18.200.2");
  EXPECT_EQ(rs.port, 1358);
  EXPECT_EQ(rs.weight, 1u);
  ASSERT_EQ(rs.checkers.size(), 1u);
  const CheckerSpec& ck = rs.checkers[0];
  EXPECT_EQ(ck.type, CheckType::kHttp);
  EXPECT_EQ(ck.line, 36);
  ASSERT_EQ(ck.urls.size(), 1u);
  EXPECT_EQ(ck.urls[0].path, "/testurl3/test.jsp");
  EXPECT_EQ(ck.urls[0].digest, "640205b7b0fc66c1ea91c463fac6334d");
  CheckerTiming t = resolveTiming(vs, rs, ck);
  EXPECT_EQ(t.connect_timeout, 3 * kSecond);
  EXPECT_EQ(t.retry, 3u);
  EXPECT_EQ(t.delay_before_retry, 3 * kSecond);
  EXPECT_EQ(t.delay_loop, 6 * kSecond);
  EXPECT_EQ(t.warmup, 6 * kSecond);  // defaults to delay_loop
  EXPECT_THAT(c->skipped, ElementsAre(HasSubstr("global_defs: notification_email"),
                                      "vrrp_instance VI_1 (/etc/k.conf:13)"));
}

TEST(KeepalivedConfTest, DefaultsFollowKeepalived) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server 198.18.0.1 80 {
  real_server 198.18.1.1 8080 {
    TCP_CHECK {
    }
    HTTP_GET {
      url {
        path /
      }
    }
    DNS_CHECK {
    }
    MISC_CHECK {
      misc_path /bin/true
    }
  }
})");
  ASSERT_TRUE(c.ok()) << c.status();
  const VirtualServer& vs = c->virtual_servers[0];
  EXPECT_EQ(vs.scheduler, "wlc");
  EXPECT_EQ(vs.method, LvsMethod::kNat);
  EXPECT_EQ(vs.quorum, 1u);
  EXPECT_EQ(vs.hysteresis, 0u);
  const RealServer& rs = vs.real_servers[0];
  EXPECT_FALSE(rs.weight.has_value());
  CheckerTiming tcp = resolveTiming(vs, rs, rs.checkers[0]);
  EXPECT_EQ(tcp.connect_timeout, 5 * kSecond);
  EXPECT_EQ(tcp.delay_loop, 60 * kSecond);
  EXPECT_EQ(tcp.retry, 1u);
  EXPECT_EQ(tcp.delay_before_retry, 1 * kSecond);
  EXPECT_FALSE(tcp.alpha);
  EXPECT_FALSE(tcp.inhibit_on_failure);
  CheckerTiming http = resolveTiming(vs, rs, rs.checkers[1]);
  EXPECT_EQ(http.delay_before_retry, 3 * kSecond);
  EXPECT_TRUE(rs.checkers[1].urls[0].statuses.empty());  // 200-299
  CheckerTiming dns = resolveTiming(vs, rs, rs.checkers[2]);
  EXPECT_EQ(dns.retry, 3u);
  EXPECT_EQ(dns.delay_before_retry, 60 * kSecond);
  EXPECT_EQ(rs.checkers[2].dns_type, "SOA");
  EXPECT_EQ(rs.checkers[2].dns_name, ".");
  CheckerTiming misc = resolveTiming(vs, rs, rs.checkers[3]);
  EXPECT_EQ(misc.retry, 0u);
  EXPECT_EQ(misc.misc_timeout, 60 * kSecond);
}

TEST(KeepalivedConfTest, InheritanceCheckerThenRealServerThenVirtualServer) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server 198.18.0.1 80 {
  delay_loop 10
  connect_timeout 4
  retry 5
  delay_before_retry 2
  warmup 7
  alpha
  inhibit_on_failure
  weight 3
  real_server 198.18.1.1 80 {
    delay_loop 0.5
    retry 2
    inhibit_on_failure off
    alpha off
    connect_timeout 1.25
    TCP_CHECK {
      retry 9
      warmup 0
    }
  }
  real_server 198.18.1.2 80 {
    TCP_CHECK {
    }
  }
})");
  ASSERT_TRUE(c.ok()) << c.status();
  const VirtualServer& vs = c->virtual_servers[0];
  EXPECT_EQ(vs.default_weight, 3u);
  CheckerTiming a = resolveTiming(vs, vs.real_servers[0], vs.real_servers[0].checkers[0]);
  EXPECT_EQ(a.delay_loop, 500000);
  EXPECT_EQ(a.retry, 9u);
  EXPECT_EQ(a.warmup, 0);
  EXPECT_EQ(a.connect_timeout, 1250000);
  EXPECT_EQ(a.delay_before_retry, 2 * kSecond);
  EXPECT_FALSE(a.alpha);
  EXPECT_FALSE(a.inhibit_on_failure);
  CheckerTiming b = resolveTiming(vs, vs.real_servers[1], vs.real_servers[1].checkers[0]);
  EXPECT_EQ(b.delay_loop, 10 * kSecond);
  EXPECT_EQ(b.retry, 5u);
  EXPECT_EQ(b.warmup, 7 * kSecond);
  EXPECT_EQ(b.connect_timeout, 4 * kSecond);
  EXPECT_TRUE(b.alpha);
  EXPECT_TRUE(b.inhibit_on_failure);
}

TEST(KeepalivedConfTest, EveryVirtualServerKeyword) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server 2001:2::1 443 {
  lvs_sched mh
  mh-port
  mh-fallback
  flag-3
  ops
  lvs_method DR
  persistence_timeout
  persistence_granularity 255.255.255.0
  persistence_engine sip
  protocol udp
  quorum 4
  hysteresis 1
  quorum_up "/bin/echo up"
  quorum_down /bin/echo down now
  sorry_server 2001:2::99 8443
  sorry_server_inhibit
  sorry_server_lvs_method NAT
  omega
  ha_suspend
  virtualhost www.example.test
  smtp_alert
  hashed
}
virtual_server fwmark 7 {
  ip_family inet6
  persistence_timeout 30
}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const VirtualServer& vs = c->virtual_servers[0];
  EXPECT_TRUE(vs.inet6);
  EXPECT_EQ(vs.scheduler, "mh");
  EXPECT_TRUE(vs.flag1);
  EXPECT_TRUE(vs.flag2);
  EXPECT_TRUE(vs.flag3);
  EXPECT_TRUE(vs.ops);
  EXPECT_EQ(vs.method, LvsMethod::kDr);
  EXPECT_EQ(vs.persistence_timeout, 360u);
  EXPECT_EQ(vs.persistence_granularity, "255.255.255.0");
  EXPECT_EQ(vs.persistence_engine, "sip");
  EXPECT_EQ(vs.protocol, "UDP");
  EXPECT_EQ(vs.quorum, 4u);
  EXPECT_EQ(vs.hysteresis, 1u);
  EXPECT_EQ(vs.quorum_up, "/bin/echo up");
  EXPECT_EQ(vs.quorum_down, "/bin/echo down now");
  EXPECT_EQ(vs.sorry_address, "2001:2::99");
  EXPECT_EQ(vs.sorry_port, 8443);
  EXPECT_TRUE(vs.sorry_inhibit);
  EXPECT_EQ(vs.sorry_method, LvsMethod::kNat);
  EXPECT_TRUE(vs.omega);
  EXPECT_TRUE(vs.ha_suspend);
  EXPECT_EQ(vs.virtualhost, "www.example.test");
  const VirtualServer& fw = c->virtual_servers[1];
  EXPECT_EQ(fw.kind, VirtualServer::Kind::kFwmark);
  EXPECT_EQ(fw.fwmark, 7u);
  EXPECT_TRUE(fw.inet6);
}

TEST(KeepalivedConfTest, EveryRealServerKeyword) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server 198.18.0.1 80 {
  real_server 198.18.1.1 8080 {
    weight 7
    lvs_method TUN
    uthreshold 100
    lthreshold 10
    notify_up "/usr/local/bin/up --rs 1"
    notify_down /usr/local/bin/down
    virtualhost rs.example.test
    smtp_alert
    delay_before_retry 4
    warmup 2
  }
  real_server 198.18.1.2 {
    lb_kind TUN type ipip
  }
})");
  ASSERT_TRUE(c.ok()) << c.status();
  const RealServer& rs = c->virtual_servers[0].real_servers[0];
  EXPECT_EQ(rs.weight, 7u);
  EXPECT_EQ(rs.method, LvsMethod::kTun);
  EXPECT_EQ(rs.uthreshold, 100u);
  EXPECT_EQ(rs.lthreshold, 10u);
  EXPECT_EQ(rs.notify_up, "/usr/local/bin/up --rs 1");
  EXPECT_EQ(rs.notify_down, "/usr/local/bin/down");
  EXPECT_EQ(rs.virtualhost, "rs.example.test");
  EXPECT_EQ(rs.delay_before_retry, 4 * kSecond);
  EXPECT_EQ(rs.warmup, 2 * kSecond);
  EXPECT_EQ(rs.line, 3);
  EXPECT_EQ(c->virtual_servers[0].real_servers[1].port, 0);
}

TEST(KeepalivedConfTest, EveryCheckerKeyword) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server 198.18.0.1 443 {
  real_server 198.18.1.1 443 {
    SSL_GET {
      url {
        path /health
        status_code 200 301-302
        virtualhost a.example.test
      }
      url {
        path "/two words"
        digest 9B3A0C85A887A256D6939DA88AABD8CD
      }
      virtualhost b.example.test
      http_protocol 1.1
      enable_sni
      sni_name sni.example.test
      tls_compliant
      fast_recovery
      connect_ip 198.18.9.9
      connect_port 8443
      bindto 198.18.0.5
      bind_port 4000
      bind_if eth0
      fwmark 5
      connect_timeout 2
      retry 4
      delay_before_retry 0.5
      delay_loop 3
      warmup 1
      alpha
      log_all_failures
      nb_get_retry 6
    }
    UDP_CHECK {
      payload 0a0b 0C
      require_reply 0aXx0b
      min_reply_length 3
      max_reply_length 20
    }
    DNS_CHECK {
      type aaaa
      name www.example.test
    }
    PING_CHECK {
      retry 2
    }
    MISC_CHECK {
      misc_path "/usr/bin/check --x 1"
      misc_timeout 4
      misc_dynamic
      user nobody
    }
  }
})");
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<CheckerSpec>& cks = c->virtual_servers[0].real_servers[0].checkers;
  ASSERT_EQ(cks.size(), 5u);
  const CheckerSpec& ssl = cks[0];
  EXPECT_EQ(ssl.type, CheckType::kSsl);
  ASSERT_EQ(ssl.urls.size(), 2u);
  ASSERT_EQ(ssl.urls[0].statuses.size(), 2u);
  EXPECT_EQ(ssl.urls[0].statuses[0].lo, 200);
  EXPECT_EQ(ssl.urls[0].statuses[0].hi, 200);
  EXPECT_EQ(ssl.urls[0].statuses[1].lo, 301);
  EXPECT_EQ(ssl.urls[0].statuses[1].hi, 302);
  EXPECT_EQ(ssl.urls[0].virtualhost, "a.example.test");
  EXPECT_EQ(ssl.urls[1].path, "/two words");
  EXPECT_EQ(ssl.urls[1].digest, "9b3a0c85a887a256d6939da88aabd8cd");
  EXPECT_EQ(ssl.virtualhost, "b.example.test");
  EXPECT_EQ(ssl.http_protocol, "1.1");
  EXPECT_TRUE(ssl.enable_sni);
  EXPECT_EQ(ssl.sni_name, "sni.example.test");
  EXPECT_TRUE(ssl.fast_recovery);
  EXPECT_EQ(ssl.connect_ip, "198.18.9.9");
  EXPECT_EQ(ssl.connect_port, 8443);
  EXPECT_EQ(ssl.bindto, "198.18.0.5");
  EXPECT_EQ(ssl.bind_port, 4000);
  EXPECT_EQ(ssl.bind_if, "eth0");
  EXPECT_EQ(ssl.fwmark, 5u);
  EXPECT_EQ(ssl.connect_timeout, 2 * kSecond);
  EXPECT_EQ(ssl.retry, 6u);  // nb_get_retry, the older spelling, came last
  EXPECT_EQ(ssl.delay_before_retry, 500000);
  EXPECT_EQ(ssl.delay_loop, 3 * kSecond);
  EXPECT_EQ(ssl.warmup, 1 * kSecond);
  EXPECT_EQ(ssl.alpha, true);
  EXPECT_TRUE(ssl.log_all_failures);
  const CheckerSpec& udp = cks[1];
  EXPECT_EQ(udp.payload, std::string("\x0a\x0b\x0c", 3));
  EXPECT_TRUE(udp.require_reply);
  EXPECT_EQ(udp.reply_pattern, std::string("\x0a\x00\x0b", 3));
  EXPECT_EQ(udp.reply_mask, std::string("\xff\x00\xff", 3));
  EXPECT_EQ(udp.min_reply_length, 3u);
  EXPECT_EQ(udp.max_reply_length, 20u);
  EXPECT_EQ(cks[2].dns_type, "AAAA");
  EXPECT_EQ(cks[2].dns_name, "www.example.test");
  EXPECT_EQ(cks[3].type, CheckType::kPing);
  EXPECT_EQ(cks[3].retry, 2u);
  const CheckerSpec& misc = cks[4];
  EXPECT_EQ(misc.misc_path, "/usr/bin/check --x 1");
  EXPECT_EQ(misc.misc_timeout, 4 * kSecond);
  EXPECT_TRUE(misc.misc_dynamic);
  EXPECT_EQ(misc.user, "nobody");
}

TEST(KeepalivedConfTest, VirtualServerGroups) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
virtual_server_group VSG_1 {
	198.18.0.1 8080
	198.18.200.3-10 80
	2001:2::10-1f 443
	fwmark 1
	fwmark 2 inet6
}
virtual_server group VSG_1 {
  lb_algo rr
  real_server 198.18.1.1 80 {
  }
})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->groups.size(), 1u);
  const VirtualServerGroup& g = c->groups[0];
  EXPECT_EQ(g.name, "VSG_1");
  ASSERT_EQ(g.entries.size(), 5u);
  EXPECT_EQ(g.entries[0].address, "198.18.0.1");
  EXPECT_EQ(g.entries[0].port, 8080);
  EXPECT_EQ(g.entries[1].address, "198.18.200.3");
  EXPECT_EQ(g.entries[1].range_end, 10u);
  EXPECT_EQ(g.entries[2].range_end, 0x1fu);
  EXPECT_TRUE(g.entries[2].inet6);
  EXPECT_EQ(g.entries[3].fwmark, 1u);
  EXPECT_TRUE(g.entries[4].inet6);
  EXPECT_EQ(c->virtual_servers[0].kind, VirtualServer::Kind::kGroup);
  EXPECT_EQ(c->virtual_servers[0].group, "VSG_1");
}

TEST(KeepalivedConfTest, GlobalDefsThatApply) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(
global_defs {
  lvs_notify_fifo /run/k.fifo
  lvs_notify_fifo_script /usr/bin/fifo-reader arg
  lvs_timeouts tcp 7200 tcpfin 30 udp 60
  lvs_flush
  checker_log_all_failures
  script_user nobody nogroup
  router_id X
})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->globals.lvs_notify_fifo, "/run/k.fifo");
  EXPECT_EQ(c->globals.lvs_notify_fifo_script, "/usr/bin/fifo-reader arg");
  EXPECT_EQ(c->globals.lvs_timeout_tcp, 7200u);
  EXPECT_EQ(c->globals.lvs_timeout_tcpfin, 30u);
  EXPECT_EQ(c->globals.lvs_timeout_udp, 60u);
  EXPECT_TRUE(c->globals.lvs_flush);
  EXPECT_TRUE(c->globals.checker_log_all_failures);
  EXPECT_EQ(c->globals.script_user, "nobody");
  EXPECT_THAT(c->skipped, ElementsAre("global_defs: router_id"));
}

TEST(KeepalivedConfTest, SyntaxCommentsQuotesAndBraces) {
  absl::StatusOr<KeepalivedConfig> c = parse(R"(# comment
! another comment
virtual_server 198.18.0.1 80 # trailing comment
{
  real_server 198.18.1.1 80 {   ! and here
    MISC_CHECK { misc_path "/bin/sh -c 'exit 0' # not a comment"
    }
  }}
vrrp_script chk { script "/bin/true" }
bfd_instance b1 {
  neighbor_ip 198.18.3.3
}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->virtual_servers[0].real_servers[0].checkers[0].misc_path,
            "/bin/sh -c 'exit 0' # not a comment");
  EXPECT_THAT(c->skipped,
              ElementsAre("vrrp_script chk (/etc/k.conf:9)", "bfd_instance b1 (/etc/k.conf:10)"));
}

TEST(KeepalivedConfTest, IncludeWithGlobsRelativeToTheIncludingFile) {
  MemFs fs;
  fs.add("/etc/keepalived/keepalived.conf", "include conf.d/*.conf\ninclude /etc/other.conf\n");
  fs.add("/etc/keepalived/conf.d/a.conf", "virtual_server 198.18.0.1 80 {\n}\n");
  fs.add("/etc/keepalived/conf.d/b.conf", "virtual_server 198.18.0.2 80 {\n  oops\n}\n");
  fs.add("/etc/other.conf", "virtual_server 198.18.0.3 80 {\n}\n");
  absl::StatusOr<KeepalivedConfig> c =
      parseKeepalivedConf("/etc/keepalived/keepalived.conf", fs.reader());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "/etc/keepalived/conf.d/b.conf:2: unknown keyword 'oops' in virtual_server");
  fs.add("/etc/keepalived/conf.d/b.conf", "virtual_server 198.18.0.2 80 {\n}\n");
  c = parseKeepalivedConf("/etc/keepalived/keepalived.conf", fs.reader());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->virtual_servers.size(), 3u);
  EXPECT_EQ(c->virtual_servers[0].address, "198.18.0.1");
  EXPECT_EQ(c->virtual_servers[1].address, "198.18.0.2");
  EXPECT_EQ(c->virtual_servers[2].address, "198.18.0.3");
  EXPECT_EQ(c->files.size(), 4u);
}

TEST(KeepalivedConfTest, IncludeErrors) {
  MemFs fs;
  fs.add("/k.conf", "\ninclude /missing.conf\n");
  absl::StatusOr<KeepalivedConfig> c = parseKeepalivedConf("/k.conf", fs.reader());
  EXPECT_EQ(c.status().message(), "/k.conf:2: include /missing.conf: no such file");
  fs.add("/k.conf", "include /nothing/*.conf\n");  // an empty glob is fine
  EXPECT_TRUE(parseKeepalivedConf("/k.conf", fs.reader()).ok());
  fs.add("/k.conf", "include /k.conf\n");  // a loop ends at the depth limit
  c = parseKeepalivedConf("/k.conf", fs.reader());
  EXPECT_THAT(c.status().message(), HasSubstr("nested more than 8 deep"));
  EXPECT_TRUE(absl::IsNotFound(parseKeepalivedConf("/none.conf", fs.reader()).status()));
}

TEST(KeepalivedConfTest, ErrorsNameFileAndLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"virtual_server 198.18.0.1 80 {\n  lb_algo xx\n}",
       "/etc/k.conf:2: lb_algo 'xx': unknown scheduler"},
      {"virtual_server 198.18.0.1 {\n}",
       "/etc/k.conf:1: virtual_server: port 0 (or none) needs persistence_timeout"},
      {"virtual_server 198.18.0.300 80 {\n}",
       "/etc/k.conf:1: virtual_server '198.18.0.300': expected an IPv4 or IPv6 address"},
      {"virtual_server 198.18.0.1 80 {\n",
       "/etc/k.conf: the block 'virtual_server' opened at /etc/k.conf:1 is not closed"},
      {"}\n", "/etc/k.conf:1: '}' without an open block"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  weight 70000\n }\n}",
       "/etc/k.conf:3: weight '70000': expected an integer 0..65535"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  TCP_CHECK {\n   "
       "connect_timeout -1\n  }\n }\n}",
       "/etc/k.conf:4: connect_timeout '-1': expected seconds > 0 (up to 4294967)"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  HTTP_GET {\n   "
       "connect_port 80\n  }\n }\n}",
       "/etc/k.conf:3: HTTP_GET: no url"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  HTTP_GET {\n   url {\n    "
       "digest 12\n   }\n  }\n }\n}",
       "/etc/k.conf:5: digest '12': expected 32 hex digits (MD5)"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  HTTP_GET {\n   url {\n    "
       "status_code 299-200\n   }\n  }\n }\n}",
       "/etc/k.conf:5: status_code '299-200': range ends before it starts"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  HTTP_GET {\n   url {\n    "
       "regex ^OK\n   }\n  }\n }\n}",
       "/etc/k.conf:5: regex: regular expressions are not supported"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  UDP_CHECK {\n   payload "
       "abc\n  }\n }\n}",
       "/etc/k.conf:4: payload: expected an even number of hex digits"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  UDP_CHECK {\n   payload "
       "zz\n  }\n }\n}",
       "/etc/k.conf:4: payload: 'z' is not hex"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  DNS_CHECK {\n   type PTR\n "
       " }\n }\n}",
       "/etc/k.conf:4: type 'PTR': expected A, NS, CNAME, SOA, MX, TXT or AAAA"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  MISC_CHECK {\n  }\n }\n}",
       "/etc/k.conf:3: MISC_CHECK: no misc_path"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  MISC_CHECK {\n   misc_path "
       "/bin/true\n   connect_port 1\n  }\n }\n}",
       "/etc/k.conf:5: unknown keyword 'connect_port' in MISC_CHECK"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  SMTP_CHECK {\n  }\n }\n}",
       "/etc/k.conf:3: SMTP_CHECK: not supported by lbd"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  TCP_CHECK {\n   "
       "enable_sni\n  }\n }\n}",
       "/etc/k.conf:4: unknown keyword 'enable_sni' in TCP_CHECK"},
      {"virtual_server 198.18.0.1 80 {\n lb_kind TUN type gue port 6080\n}",
       "/etc/k.conf:2: lb_kind TUN: only IPIP tunnels are read from keepalived.conf (give GUE/GRE "
       "tunnels with lbctl)"},
      {"virtual_server group NOPE {\n}", "/etc/k.conf:1: virtual_server group NOPE: no such group"},
      {"virtual_server_group G {\n 198.18.0.9-3 80\n}",
       "/etc/k.conf:2: virtual_server_group '198.18.0.9-3': bad range"},
      {"virtual_server_group G {\n}\nvirtual_server_group G {\n}",
       "/etc/k.conf:3: virtual_server_group G: defined twice"},
      {"global_defs {\n lvs_sync_daemon eth0 VI_1\n}",
       "/etc/k.conf:2: lvs_sync_daemon: connection sync is not supported by lbd yet"},
      {"global_defs {\n lvs_timeouts tcp\n}",
       "/etc/k.conf:2: lvs_timeouts: expected [tcp S] [tcpfin S] [udp S]"},
      {"virtual_servers 198.18.0.1 80 {\n}",
       "/etc/k.conf:1: unknown keyword 'virtual_servers' in the top level"},
      {"$X=1\n", "/etc/k.conf:1: '$X=1': parameters and conditional lines are not supported"},
      {"virtual_server 198.18.0.1 80 {\n protocol ICMP\n}",
       "/etc/k.conf:2: protocol 'ICMP': expected TCP, UDP or SCTP"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  misc_path \"/x\n }\n}",
       "/etc/k.conf:3: unterminated quoted string"},
      {"virtual_server 198.18.0.1 80 {\n alpha maybe\n}",
       "/etc/k.conf:2: alpha 'maybe': expected on or off"},
      {"virtual_server 198.18.0.1 80 {\n real_server 198.18.1.1 80 {\n  uthreshold 5\n  lthreshold "
       "6\n }\n}",
       "/etc/k.conf:2: real_server: lthreshold above uthreshold"},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(errorOf(text), want) << text;
  }
}

}  // namespace
}  // namespace lb::health
