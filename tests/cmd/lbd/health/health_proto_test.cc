// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_proto.h"

#include <gtest/gtest.h>

namespace lb::health {
namespace {

namespace pb = ::lbd::v1;

TEST(HealthProtoTest, TcpTimingsStayUnsetForKeepalivedsDefaults) {
  pb::HealthCheck p;
  p.set_type(pb::HEALTH_CHECK_TYPE_TCP);
  p.mutable_delay_loop()->set_seconds(2);
  p.set_retry(3);
  CheckerSpec c = checkerFromProto(p);
  EXPECT_EQ(c.type, CheckType::kTcp);
  EXPECT_EQ(c.delay_loop, 2 * kSecond);
  EXPECT_EQ(c.retry, 3u);
  EXPECT_FALSE(c.connect_timeout.has_value());
  EXPECT_FALSE(c.alpha.has_value());
  // Through resolveTiming, as keepalived.conf's checkers: the defaults fill the rest.
  VirtualServer vs;
  RealServer rs;
  CheckerTiming t = resolveTiming(vs, rs, c);
  EXPECT_EQ(t.delay_loop, 2 * kSecond);
  EXPECT_EQ(t.connect_timeout, 5 * kSecond);
  EXPECT_EQ(t.retry, 3u);
  EXPECT_EQ(t.delay_before_retry, 1 * kSecond);
  EXPECT_EQ(t.warmup, 2 * kSecond);
}

TEST(HealthProtoTest, HttpWithoutUrlGetsSlash) {
  pb::HealthCheck p;
  p.set_type(pb::HEALTH_CHECK_TYPE_HTTP);
  CheckerSpec c = checkerFromProto(p);
  ASSERT_EQ(c.urls.size(), 1u);
  EXPECT_EQ(c.urls[0].path, "/");
  EXPECT_TRUE(c.urls[0].statuses.empty());  // 200-299
  // Retry and delay_before_retry defaults of HTTP_GET.
  CheckerTiming t = resolveTiming(VirtualServer{}, RealServer{}, c);
  EXPECT_EQ(t.delay_before_retry, 3 * kSecond);
}

TEST(HealthProtoTest, EveryTypeRoundTrips) {
  CheckerSpec http;
  http.type = CheckType::kSsl;
  http.delay_loop = 1500000;
  http.connect_timeout = 2 * kSecond;
  http.warmup = 0;
  http.delay_before_retry = 0;
  http.retry = 0;
  http.alpha = true;
  http.connect_ip = "198.18.2.1";
  http.connect_port = 8443;
  http.bindto = "198.18.1.1";
  http.urls.push_back(
      UrlSpec{"/h", "9b3a0c85a887a256d6939da88aabd8cd", {{200, 204}, {301, 301}}, "v", 0});
  http.virtualhost = "www.example";
  http.enable_sni = true;
  http.sni_name = "sni.example";
  CheckerSpec udp;
  udp.type = CheckType::kUdp;
  udp.payload = "\x01\x02";
  udp.require_reply = true;
  udp.reply_pattern = "\x0a\x0b";
  udp.reply_mask = "\xff\x0f";
  CheckerSpec dns;
  dns.type = CheckType::kDns;
  dns.dns_type = "A";
  dns.dns_name = "www.example.";
  CheckerSpec misc;
  misc.type = CheckType::kMisc;
  misc.misc_path = "/bin/true";
  misc.misc_timeout = 3 * kSecond;
  misc.misc_dynamic = true;
  CheckerSpec ping;
  ping.type = CheckType::kPing;
  for (const CheckerSpec& c : {http, udp, dns, misc, ping}) {
    const pb::HealthCheck p = checkerToProto(c);
    const CheckerSpec back = checkerFromProto(p);
    EXPECT_EQ(checkerToProto(back).SerializeAsString(), p.SerializeAsString()) << p.DebugString();
    EXPECT_EQ(back.type, c.type);
    EXPECT_EQ(back.delay_loop, c.delay_loop);
    EXPECT_EQ(back.retry, c.retry);
    EXPECT_EQ(back.alpha, c.alpha);
    EXPECT_EQ(back.connect_port, c.connect_port);
    EXPECT_EQ(back.payload, c.payload);
    EXPECT_EQ(back.reply_pattern, c.reply_pattern);
    EXPECT_EQ(back.reply_mask, c.reply_mask);
    EXPECT_EQ(back.dns_type, c.dns_type);
    EXPECT_EQ(back.misc_path, c.misc_path);
    EXPECT_EQ(back.misc_timeout, c.misc_timeout);
    EXPECT_EQ(back.misc_dynamic, c.misc_dynamic);
    EXPECT_EQ(back.sni_name, c.sni_name);
    ASSERT_EQ(back.urls.size(), c.urls.size());
    for (size_t i = 0; i < c.urls.size(); ++i) {
      EXPECT_EQ(back.urls[i].path, c.urls[i].path);
      EXPECT_EQ(back.urls[i].digest, c.urls[i].digest);
      ASSERT_EQ(back.urls[i].statuses.size(), c.urls[i].statuses.size());
      EXPECT_EQ(back.urls[i].statuses[0].hi, c.urls[i].statuses[0].hi);
    }
  }
  // A UDP reply pattern without a mask matches every bit.
  pb::HealthCheck p;
  p.set_type(pb::HEALTH_CHECK_TYPE_UDP);
  p.mutable_udp()->set_reply_pattern("ab");
  EXPECT_EQ(checkerFromProto(p).reply_mask, std::string("\xff\xff"));
}

}  // namespace
}  // namespace lb::health
