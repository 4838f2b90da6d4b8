// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/api_convert.h"

#include <gtest/gtest.h>

#include "core/sched/scheduler.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

pb::Service tcpService(const std::string& addr, uint32_t port, const std::string& sched) {
  pb::Service s;
  s.mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  s.mutable_key()->mutable_address()->set_address(addr);
  s.mutable_key()->mutable_address()->set_port(port);
  s.set_scheduler(sched);
  return s;
}

TEST(ApiConvertTest, ServiceFromProto) {
  pb::Service p = tcpService("198.18.0.1", 80, "sh");
  p.mutable_sh()->set_port(true);
  p.mutable_persistence()->set_netmask_prefix(24);
  p.add_local_addresses("198.18.9.1");
  absl::StatusOr<ServiceConfig> s = serviceFromProto(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->key.af, Af::kInet);
  EXPECT_EQ(s->key.proto, L4Proto::kTcp);
  EXPECT_EQ(s->key.vaddr, *IpAddr::parse("198.18.0.1"));
  EXPECT_EQ(s->key.vport, 80);
  EXPECT_EQ(s->scheduler, "sh");
  EXPECT_EQ(s->flags, kSvcPersistent | kSchedFlag2);
  EXPECT_EQ(s->timeout_s, 360u);  // unset timeout: ipvsadm's default
  EXPECT_EQ(s->netmask, 24u);
  ASSERT_EQ(s->local_addrs.size(), 1u);
  EXPECT_EQ(s->local_addrs[0], *IpAddr::parse("198.18.9.1"));
}

TEST(ApiConvertTest, ServiceDefaults) {
  absl::StatusOr<ServiceConfig> s = serviceFromProto(tcpService("2001:2::1", 443, ""));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->scheduler, "wlc");
  EXPECT_EQ(s->key.af, Af::kInet6);
  EXPECT_EQ(s->flags, 0u);
  EXPECT_EQ(s->netmask, 128u);
  pb::Service f;
  f.mutable_key()->mutable_fwmark()->set_mark(7);
  f.mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET6);
  f.set_one_packet(true);
  absl::StatusOr<ServiceConfig> fs = serviceFromProto(f);
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_EQ(fs->key.fwmark, 7u);
  EXPECT_EQ(fs->key.af, Af::kInet6);
  EXPECT_EQ(fs->flags, kSvcOnePacket);
}

TEST(ApiConvertTest, SynproxyRoundTrip) {
  pb::Service p = tcpService("198.18.0.1", 80, "rr");
  p.set_synproxy(true);
  absl::StatusOr<ServiceConfig> s = serviceFromProto(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->flags, kSvcSynproxy);
  EXPECT_TRUE(serviceToProto(*s).synproxy());
  EXPECT_FALSE(serviceToProto(ServiceConfig()).synproxy());
}

TEST(ApiConvertTest, ServiceRoundTrip) {
  ServiceConfig s;
  s.key.af = Af::kInet;
  s.key.proto = L4Proto::kUdp;
  s.key.vaddr = *IpAddr::parse("198.18.0.2");
  s.key.vport = 53;
  s.scheduler = "mh";
  s.flags = kSvcPersistent | kSvcOnePacket | kSchedFlag1;
  s.timeout_s = 600;
  s.netmask = 16;
  s.pe_name = "sip";
  s.local_addrs = {*IpAddr::parse("198.18.3.3")};
  pb::Service p = serviceToProto(s);
  EXPECT_TRUE(p.mh().fallback());
  EXPECT_FALSE(p.mh().port());
  EXPECT_EQ(p.persistence().timeout().seconds(), 600);
  absl::StatusOr<ServiceConfig> back = serviceFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->key, s.key);
  EXPECT_EQ(back->scheduler, s.scheduler);
  EXPECT_EQ(back->flags, s.flags);
  EXPECT_EQ(back->timeout_s, s.timeout_s);
  EXPECT_EQ(back->netmask, s.netmask);
  EXPECT_EQ(back->pe_name, s.pe_name);
  EXPECT_EQ(back->local_addrs, s.local_addrs);
  EXPECT_EQ(*back, s);
  // Raw flags for schedulers without typed options.
  s.scheduler = "rr";
  s.flags = kSchedFlag3;  // not persistent: no timeout, engine or custom netmask to carry
  s.timeout_s = 0;
  s.netmask = 32;
  s.pe_name.clear();
  EXPECT_TRUE(serviceToProto(s).flags().flag_3());
  EXPECT_EQ(*serviceFromProto(serviceToProto(s)), s);
}

TEST(ApiConvertTest, DestRoundTrip) {
  DestConfig d;
  d.addr = *IpAddr::parse("198.18.1.10");
  d.port = 8080;
  d.fwd = FwdMethod::kTunnel;
  d.weight = 5;
  d.u_threshold = 100;
  d.l_threshold = 10;
  d.tun_type = TunType::kGue;
  d.tun_port = 6080;
  d.tun_csum = TunCsum::kRemCsum;
  pb::Dest p = destToProto(d);
  EXPECT_EQ(p.forward_method(), pb::FORWARD_METHOD_TUNNEL);
  EXPECT_EQ(p.tunnel().type(), pb::TUNNEL_TYPE_GUE);
  EXPECT_EQ(p.tunnel().checksum(), pb::TUNNEL_CHECKSUM_REMOTE);
  absl::StatusOr<DestConfig> back = destFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
  d.fwd = FwdMethod::kFullNat;
  d.tun_type = TunType::kIpip;
  d.tun_port = 0;
  d.tun_csum = TunCsum::kNoCsum;
  EXPECT_FALSE(destToProto(d).has_tunnel());
  EXPECT_EQ(*destFromProto(destToProto(d)), d);
}

void expectInvalid(const absl::Status& s, const std::string& substr) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(substr), absl::string_view::npos) << s;
}

TEST(ApiConvertTest, RejectsBadInput) {
  pb::Service s = tcpService("198.18.0.1", 80, "rr");
  s.mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_UNSPECIFIED);
  expectInvalid(serviceFromProto(s).status(), "protocol unspecified");
  s = tcpService("198.18.0.1", 80, "rr");
  s.mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_ANY);
  expectInvalid(serviceFromProto(s).status(), "PROTOCOL_ANY");
  expectInvalid(serviceFromProto(tcpService("198.18.0.300", 80, "rr")).status(),
                "invalid address '198.18.0.300'");
  expectInvalid(serviceFromProto(tcpService("198.18.0.1", 70000, "rr")).status(),
                "port 70000 out of range");
  pb::Service nokey;
  expectInvalid(serviceFromProto(nokey).status(), "service key unset");
  pb::Service fw;
  fw.mutable_key()->mutable_fwmark()->set_mark(1);
  expectInvalid(serviceFromProto(fw).status(), "address family unspecified");
  fw.mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
  fw.mutable_key()->mutable_fwmark()->set_mark(0);
  expectInvalid(serviceFromProto(fw).status(), "must be > 0");
  s = tcpService("198.18.0.1", 80, "rr");
  s.mutable_sh()->set_port(true);
  expectInvalid(serviceFromProto(s).status(), "sh options with scheduler rr");
  s = tcpService("198.18.0.1", 80, "rr");
  s.mutable_persistence()->mutable_timeout()->set_seconds(10);
  s.mutable_persistence()->mutable_timeout()->set_nanos(5);
  expectInvalid(serviceFromProto(s).status(), "whole seconds");
  s.mutable_persistence()->mutable_timeout()->set_nanos(0);
  s.mutable_persistence()->mutable_timeout()->set_seconds(2678401);
  expectInvalid(serviceFromProto(s).status(), "2678401s out of range 1..2678400");
  s.mutable_persistence()->mutable_timeout()->set_seconds(60);
  s.mutable_persistence()->set_netmask_prefix(33);
  expectInvalid(serviceFromProto(s).status(), "33 out of range 1..32");

  pb::Dest d;
  d.set_address("198.18.1.1");
  expectInvalid(destFromProto(d).status(), "forward method unspecified");
  d.set_forward_method(pb::FORWARD_METHOD_MASQ);
  d.mutable_tunnel()->set_type(pb::TUNNEL_TYPE_GRE);
  expectInvalid(destFromProto(d).status(), "need forward method TUNNEL");
  d.set_forward_method(pb::FORWARD_METHOD_TUNNEL);
  d.mutable_tunnel()->set_type(pb::TUNNEL_TYPE_UNSPECIFIED);
  expectInvalid(destFromProto(d).status(), "tunnel type unspecified");
  d.clear_tunnel();
  d.set_address("not-an-address");
  expectInvalid(destFromProto(d).status(), "invalid address");
}

TEST(ApiConvertTest, TimeoutsZeroMeansKeep) {
  pb::Timeouts p;
  p.mutable_tcp()->set_seconds(1000);
  absl::StatusOr<Timeouts> t = timeoutsFromProto(p);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->tcp, 1000u);
  EXPECT_EQ(t->tcp_fin, 0u);
  EXPECT_EQ(t->udp, 0u);
  p.mutable_udp()->set_seconds(-1);
  expectInvalid(timeoutsFromProto(p).status(), "timeouts.udp");
  Timeouts def;
  pb::Timeouts out = timeoutsToProto(def);
  EXPECT_EQ(out.tcp().seconds(), 900);
  EXPECT_EQ(out.tcp_fin().seconds(), 120);
  EXPECT_EQ(out.udp().seconds(), 300);
}

TEST(ApiConvertTest, FwmarkRules) {
  pb::FwmarkRule p;
  p.set_destination("198.18.0.0/24");
  p.set_protocol(pb::PROTOCOL_ANY);
  p.set_mark(3);
  absl::StatusOr<FwmarkRule> r = fwmarkRuleFromProto(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prefix_len, 24);
  EXPECT_EQ(r->proto, L4Proto::kNone);
  EXPECT_EQ(r->port_min, 0);
  EXPECT_EQ(r->port_max, 65535);
  EXPECT_EQ(*fwmarkRuleFromProto(fwmarkRuleToProto(*r)), *r);
  p.set_destination("198.18.0.0/40");
  expectInvalid(fwmarkRuleFromProto(p).status(), "bad prefix");
  p.set_destination("198.18.0.0");
  p.set_mark(0);
  expectInvalid(fwmarkRuleFromProto(p).status(), "must be > 0");
  p.set_mark(1);
  p.set_protocol(pb::PROTOCOL_UNSPECIFIED);
  expectInvalid(fwmarkRuleFromProto(p).status(), "protocol unspecified");
}

TEST(ApiConvertTest, FullConfigRoundTrip) {
  FullConfig c;
  ServiceWithDests sd;
  sd.service = *serviceFromProto(tcpService("198.18.0.1", 80, "wrr"));
  DestConfig d1;
  d1.addr = *IpAddr::parse("198.18.1.1");
  d1.port = 80;
  d1.fwd = FwdMethod::kMasq;
  DestConfig d2 = d1;
  d2.addr = *IpAddr::parse("198.18.1.2");
  d2.weight = 0;
  sd.dests = {d2, d1};
  c.services.push_back(sd);
  c.timeouts.tcp = 100;
  c.sysctls.expire_nodest_conn = true;
  c.sysctls.lblc_expiration_s = 60;
  FwmarkRule r;
  r.dst = *IpAddr::parse("198.18.5.0");
  r.prefix_len = 24;
  r.proto = L4Proto::kUdp;
  r.port_min = 10;
  r.port_max = 20;
  r.mark = 9;
  c.fwmark_rules.push_back(r);
  absl::StatusOr<FullConfig> back = configFromProto(configToProto(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
}

TEST(ApiConvertTest, ToGrpcStatusKeepsCodeAndMessage) {
  const absl::StatusCode codes[] = {absl::StatusCode::kOk,
                                    absl::StatusCode::kInvalidArgument,
                                    absl::StatusCode::kNotFound,
                                    absl::StatusCode::kAlreadyExists,
                                    absl::StatusCode::kFailedPrecondition,
                                    absl::StatusCode::kResourceExhausted,
                                    absl::StatusCode::kInternal,
                                    absl::StatusCode::kUnavailable};
  for (absl::StatusCode c : codes) {
    grpc::Status g = toGrpcStatus(absl::Status(c, c == absl::StatusCode::kOk ? "" : "why"));
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(c));
    EXPECT_EQ(g.error_message(), c == absl::StatusCode::kOk ? "" : "why");
  }
  EXPECT_EQ(toGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ApiConvertTest, ConnToProto) {
  Conn c;
  c.proto = L4Proto::kTcp;
  c.caddr = *IpAddr::parse("198.18.7.7");
  c.cport = 40000;
  c.vaddr = *IpAddr::parse("198.18.0.1");
  c.vport = 80;
  c.daddr = *IpAddr::parse("198.18.1.1");
  c.dport = 8080;
  c.flags = static_cast<uint32_t>(FwdMethod::kMasq);
  c.expires = MonoTime::fromSeconds(1000);
  pb::Connection p = connToProto(c, "ESTABLISHED", MonoTime{MonoTime::fromSeconds(100).ns + 1});
  EXPECT_EQ(p.protocol(), pb::PROTOCOL_TCP);
  EXPECT_EQ(p.client_address(), "198.18.7.7");
  EXPECT_EQ(p.client_port(), 40000u);
  EXPECT_EQ(p.dest_port(), 8080u);
  EXPECT_EQ(p.state(), "ESTABLISHED");
  EXPECT_EQ(p.expires().seconds(), 899);  // rounded down, as /proc/net/ip_vs_conn
  EXPECT_FALSE(p.template_());
  EXPECT_EQ(p.forward_method(), pb::FORWARD_METHOD_MASQ);
  c.proto = L4Proto::kNone;
  c.flags = kConnFTemplate;
  c.expires = MonoTime::fromSeconds(5);
  pb::Connection t = connToProto(c, "NONE", MonoTime::fromSeconds(10));
  EXPECT_EQ(t.protocol(), pb::PROTOCOL_ANY);
  EXPECT_TRUE(t.template_());
  EXPECT_EQ(t.expires().seconds(), 0);
}

}  // namespace
}  // namespace lb::lbd
