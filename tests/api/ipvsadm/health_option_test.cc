// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/health_option.h"

#include <gtest/gtest.h>

#include "api/ipvsadm/parser.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

TEST(HealthOptionTest, ParsesTcpWithTimings) {
  absl::StatusOr<pb::HealthCheck> c =
      parseCheckOption("tcp,delay_loop=2,retry=3,connect_timeout=0.5,connect_port=8080");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->type(), pb::HEALTH_CHECK_TYPE_TCP);
  EXPECT_EQ(c->delay_loop().seconds(), 2);
  EXPECT_TRUE(c->has_retry());
  EXPECT_EQ(c->retry(), 3u);
  EXPECT_EQ(c->connect_timeout().seconds(), 0);
  EXPECT_EQ(c->connect_timeout().nanos(), 500000000);
  EXPECT_EQ(c->connect_port(), 8080u);
  EXPECT_FALSE(c->has_delay_before_retry());
  EXPECT_EQ(formatCheckOption(*c),
            "tcp,delay_loop=2,connect_timeout=0.5,retry=3,connect_port=8080");
}

TEST(HealthOptionTest, RetryZeroIsKeptApartFromUnset) {
  absl::StatusOr<pb::HealthCheck> c = parseCheckOption("tcp,retry=0");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->has_retry());
  EXPECT_EQ(formatCheckOption(*c), "tcp,retry=0");
  EXPECT_FALSE(parseCheckOption("tcp")->has_retry());
}

TEST(HealthOptionTest, HttpUrlsStatusDigestAndSni) {
  absl::StatusOr<pb::HealthCheck> c = parseCheckOption(
      "ssl,path=/healthz,status=200-204:301,digest=9B3A0C85A887A256D6939DA88AABD8CD,path=/"
      "other,sni,sni_name=www.example,vhost=a.example");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->http().urls_size(), 2);
  const pb::HttpUrl& u = c->http().urls(0);
  EXPECT_EQ(u.path(), "/healthz");
  ASSERT_EQ(u.status_codes_size(), 2);
  EXPECT_EQ(u.status_codes(0).min(), 200u);
  EXPECT_EQ(u.status_codes(0).max(), 204u);
  EXPECT_EQ(u.status_codes(1).min(), 301u);
  EXPECT_EQ(u.digest(), "9b3a0c85a887a256d6939da88aabd8cd");
  EXPECT_EQ(c->http().urls(1).path(), "/other");
  EXPECT_TRUE(c->http().enable_sni());
  EXPECT_EQ(c->http().sni_name(), "www.example");
  // Round trip.
  absl::StatusOr<pb::HealthCheck> back = parseCheckOption(formatCheckOption(*c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), c->SerializeAsString());
}

TEST(HealthOptionTest, UdpDnsMiscAndEscapes) {
  absl::StatusOr<pb::HealthCheck> u = parseCheckOption("udp,payload=0a0b,require_reply=0aXb");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->udp().payload(), std::string("\x0a\x0b"));
  EXPECT_TRUE(u->udp().require_reply());
  EXPECT_EQ(u->udp().reply_pattern(), std::string("\x0a\x0b"));
  EXPECT_EQ(u->udp().reply_mask(), std::string("\xff\x0f"));
  EXPECT_EQ(formatCheckOption(*u), "udp,payload=0a0b,require_reply=0aXb");

  absl::StatusOr<pb::HealthCheck> d = parseCheckOption("dns,type=a,name=www.example.");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->dns().type(), "A");
  EXPECT_EQ(d->dns().name(), "www.example.");

  absl::StatusOr<pb::HealthCheck> m =
      parseCheckOption("misc,path=/bin/check%20a%2Cb,timeout=3,dynamic");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->misc().path(), "/bin/check a,b");
  EXPECT_TRUE(m->misc().dynamic());
  const std::string text = formatCheckOption(*m);
  EXPECT_EQ(text.find(' '), std::string::npos) << text;  // one word on an -S line
  EXPECT_EQ(parseCheckOption(text)->SerializeAsString(), m->SerializeAsString());
}

TEST(HealthOptionTest, RefusesWhatItCannotRead) {
  EXPECT_FALSE(parseCheckOption("smtp").ok());
  EXPECT_FALSE(parseCheckOption("tcp,path=/").ok());        // http key on tcp
  EXPECT_FALSE(parseCheckOption("tcp,delay_loop=x").ok());  // not seconds
  EXPECT_FALSE(parseCheckOption("tcp,connect_port=70000").ok());
  EXPECT_FALSE(parseCheckOption("http,status=99").ok());
  EXPECT_FALSE(parseCheckOption("misc").ok());             // path required
  EXPECT_FALSE(parseCheckOption("udp,payload=abc").ok());  // odd hex
  EXPECT_NE(parseCheckOption("tcp,bogus=1").status().message().find("bogus"), std::string::npos);
}

TEST(HealthOptionTest, HealthPolicy) {
  absl::StatusOr<pb::HealthPolicy> p =
      parseHealthOption("quorum=3,hysteresis=1,sorry=198.18.0.9:8080,sorry_fwd=m");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->quorum(), 3u);
  EXPECT_EQ(p->hysteresis(), 1u);
  EXPECT_EQ(p->sorry_server().address(), "198.18.0.9");
  EXPECT_EQ(p->sorry_server().port(), 8080u);
  EXPECT_EQ(p->sorry_server().forward_method(), pb::FORWARD_METHOD_MASQ);
  EXPECT_EQ(formatHealthOption(*p), "quorum=3,hysteresis=1,sorry=198.18.0.9:8080,sorry_fwd=m");
  absl::StatusOr<pb::HealthPolicy> v6 = parseHealthOption("sorry=[2001:2::9]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->sorry_server().address(), "2001:2::9");
  EXPECT_EQ(formatHealthOption(*v6), "sorry=[2001:2::9]:80");
  EXPECT_FALSE(parseHealthOption("quorum=x").ok());
  EXPECT_FALSE(parseHealthOption("sorry=198.18.0.9").ok());
  EXPECT_FALSE(parseHealthOption("sorry_fwd=m").ok());
}

TEST(HealthOptionTest, CommandLineCarriesChecksAndPolicy) {
  ParseResult r = parseIpvsadm("lbctl", {"-a", "-t", "198.18.0.1:80", "-r", "198.18.1.1:80", "-m",
                                         "--check", "tcp,retry=2", "--check", "ping"});
  ASSERT_TRUE(r.ok) << r.error.message;
  ASSERT_EQ(r.command.dest.health_checks_size(), 2);
  EXPECT_EQ(r.command.dest.health_checks(1).type(), pb::HEALTH_CHECK_TYPE_PING);
  ParseResult a =
      parseIpvsadm("lbctl", {"-A", "-t", "198.18.0.1:80", "-s", "rr", "--health", "quorum=2"});
  ASSERT_TRUE(a.ok) << a.error.message;
  EXPECT_EQ(a.command.service.health_policy().quorum(), 2u);
  // --check belongs to real servers, --health to services.
  EXPECT_FALSE(parseIpvsadm("lbctl", {"-A", "-t", "198.18.0.1:80", "--check", "tcp"}).ok);
  EXPECT_FALSE(parseIpvsadm("lbctl", {"-a", "-t", "198.18.0.1:80", "-r", "198.18.1.1", "--health",
                                      "quorum=2"})
                   .ok);
  ParseResult bad = parseIpvsadm(
      "lbctl", {"-a", "-t", "198.18.0.1:80", "-r", "198.18.1.1", "--check", "tcp,retry=x"});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.message.find("retry"), std::string::npos) << bad.error.message;
}

}  // namespace
}  // namespace lb::ipvsadm
