// SPDX-License-Identifier: Apache-2.0
// Every validation error of ServiceTable: its code, a message naming the offending value, and
// that the failed mutation left config() and snapshot() exactly as they were.
#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/service/service_table.h"
#include "tests/core/service/service_test_util.h"

namespace lb {
namespace {

using ::lb::testing::dest;
using ::lb::testing::fwmKey;
using ::lb::testing::ip;
using ::lb::testing::key;
using ::lb::testing::persistentSvc;
using ::lb::testing::svc;
using ::lb::testing::tcpKey;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::function<absl::Status(ServiceTable&)> mutate;
  absl::StatusCode code;
  std::string message;                                 // a substring the message must contain
  std::function<void(ServiceTable&)> setup = nullptr;  // extra state before the mutation
};

const ServiceKey kVip = tcpKey("198.18.0.1", 80);

ServiceConfig withFlags(ServiceConfig c, uint32_t flags, uint32_t timeout_s = 0) {
  c.flags = flags;
  c.timeout_s = timeout_s;
  return c;
}

ServiceConfig withNetmask(ServiceConfig c, uint32_t netmask) {
  c.netmask = netmask;
  return c;
}

DestConfig tun(DestConfig d, TunType type, uint16_t port, TunCsum csum) {
  d.tun_type = type;
  d.tun_port = port;
  d.tun_csum = csum;
  return d;
}

DestConfig thresholds(DestConfig d, uint32_t u, uint32_t l) {
  d.u_threshold = u;
  d.l_threshold = l;
  return d;
}

std::vector<Case> cases() {
  using C = absl::StatusCode;
  auto add = [](ServiceConfig c) { return [c](ServiceTable& t) { return t.addService(c); }; };
  auto addDest = [](DestConfig d) { return [d](ServiceTable& t) { return t.addDest(kVip, d); }; };
  ServiceConfig v6 = svc(tcpKey("2001:2::1", 80));
  ServiceConfig bad_af = svc(tcpKey("198.18.0.2", 80));
  bad_af.key.af = Af::kInet6;
  ServiceConfig unspec_af = svc(tcpKey("198.18.0.2", 80));
  unspec_af.key.af = Af::kUnspec;
  ServiceConfig laddr_v6 = svc(tcpKey("198.18.0.2", 80));
  laddr_v6.local_addrs = {ip("2001:2::9")};
  ServiceConfig laddr_dup = svc(tcpKey("198.18.0.2", 80));
  laddr_dup.local_addrs = {ip("198.18.9.1"), ip("198.18.9.1")};
  ServiceConfig pe = svc(key(L4Proto::kUdp, "198.18.0.2", 5060));
  pe.pe_name = "foo";
  DestConfig bypass = dest("198.18.1.7", 80);
  bypass.fwd = FwdMethod::kBypass;
  FwmarkRule rule;
  rule.dst = ip("198.18.0.0");
  rule.prefix_len = 16;
  rule.mark = 1;
  auto rules = [](FwmarkRule r) { return [r](ServiceTable& t) { return t.setFwmarkRules({r}); }; };
  FwmarkRule r_mark0 = rule, r_prefix = rule, r_ports = rule, r_af = rule;
  r_mark0.mark = 0;
  r_prefix.prefix_len = 33;
  r_ports.port_min = 90;
  r_ports.port_max = 80;
  r_af.af = Af::kInet6;
  Sysctls drop_entry, drop_packet, secure_tcp, reuse;
  drop_entry.drop_entry = 4;
  drop_packet.drop_packet = 4;
  secure_tcp.secure_tcp = 5;
  reuse.conn_reuse_mode = 4;
  auto sysctls = [](Sysctls s) { return [s](ServiceTable& t) { return t.setSysctls(s); }; };
  Timeouts big;
  big.tcp = 0;
  big.tcp_fin = 2678401;
  big.udp = 0;

  return {
      // Services.
      {"Duplicate", add(svc(kVip)), C::kAlreadyExists, "service TCP 198.18.0.1:80 already exists"},
      {"PortZeroNotPersistent", add(svc(tcpKey("198.18.0.2", 0))), C::kInvalidArgument,
       "service TCP 198.18.0.2:0: port zero"},
      {"PersistTimeoutZero", add(withFlags(svc(tcpKey("198.18.0.2", 80)), kSvcPersistent, 0)),
       C::kInvalidArgument, "persistence timeout 0 out of range 1..2678400"},
      {"PersistTimeoutTooBig",
       add(withFlags(svc(tcpKey("198.18.0.2", 80)), kSvcPersistent, 2678401)), C::kInvalidArgument,
       "persistence timeout 2678401"},
      {"NetmaskV4", add(withNetmask(svc(tcpKey("198.18.0.2", 80)), 33)), C::kInvalidArgument,
       "netmask /33 out of range 1..32"},
      {"NetmaskV6", add(withNetmask(v6, 129)), C::kInvalidArgument,
       "netmask /129 out of range 1..128"},
      {"OnePacketTcp", add(withFlags(svc(tcpKey("198.18.0.2", 80)), kSvcOnePacket)),
       C::kInvalidArgument, "TCP 198.18.0.2:80: one-packet scheduling is only for UDP"},
      {"SynproxyUdp", add(withFlags(svc(key(L4Proto::kUdp, "198.18.0.2", 53)), kSvcSynproxy)),
       C::kInvalidArgument, "UDP 198.18.0.2:53: the SYN proxy is only for TCP services"},
      {"UnknownFlag", add(withFlags(svc(tcpKey("198.18.0.2", 80)), 0x2)), C::kInvalidArgument,
       "unknown service flags 0x2"},
      {"UnknownScheduler", add(svc(tcpKey("198.18.0.2", 80), "xyz")), C::kNotFound,
       "scheduler 'xyz' not found"},
      {"EmptyScheduler", add(svc(tcpKey("198.18.0.2", 80), "")), C::kNotFound,
       "scheduler '' not found"},
      {"UnknownPe", add(pe), C::kNotFound, "persistence engine 'foo' not found"},
      {"BadProto", add(svc(key(L4Proto::kIcmp, "198.18.0.2", 80))), C::kInvalidArgument,
       "protocol 1 not supported"},
      {"VaddrFamily", add(bad_af), C::kInvalidArgument, "virtual address is not IPv6"},
      {"UnspecFamily", add(unspec_af), C::kInvalidArgument, "address family 0 not supported"},
      {"LocalAddrFamily", add(laddr_v6), C::kInvalidArgument, "local address 2001:2::9"},
      {"LocalAddrTwice", add(laddr_dup), C::kAlreadyExists,
       "local address 198.18.9.1 already exists in service TCP 198.18.0.2:80"},
      {"EditMissing", [](ServiceTable& t) { return t.editService(svc(tcpKey("198.18.0.9", 80))); },
       C::kNotFound, "service TCP 198.18.0.9:80 not found"},
      {"DeleteMissing", [](ServiceTable& t) { return t.deleteService(tcpKey("198.18.0.9", 80)); },
       C::kNotFound, "service TCP 198.18.0.9:80 not found"},
      {"DeleteMissingFwmark", [](ServiceTable& t) { return t.deleteService(fwmKey(9)); },
       C::kNotFound, "service FWM 9 not found"},
      // Dests.
      {"DestDuplicate", addDest(dest("198.18.1.1", 80)), C::kAlreadyExists,
       "dest 198.18.1.1:80 already exists in service TCP 198.18.0.1:80"},
      {"DestServiceMissing",
       [](ServiceTable& t) { return t.addDest(tcpKey("198.18.0.9", 80), dest("198.18.1.2", 80)); },
       C::kNotFound, "service TCP 198.18.0.9:80 not found"},
      {"DestWeight", addDest(dest("198.18.1.2", 80, FwdMethod::kMasq, 65536)), C::kInvalidArgument,
       "dest 198.18.1.2:80 in service TCP 198.18.0.1:80: weight 65536"},
      {"DestUpperThreshold", addDest(thresholds(dest("198.18.1.2", 80), 2147483648u, 0)),
       C::kInvalidArgument, "upper threshold 2147483648 out of range"},
      {"DestLowerAboveUpper", addDest(thresholds(dest("198.18.1.2", 80), 5, 10)),
       C::kInvalidArgument, "lower threshold 10 above upper threshold 5"},
      {"DestLowerWithoutUpper", addDest(thresholds(dest("198.18.1.2", 80), 0, 3)),
       C::kInvalidArgument, "lower threshold 3 above upper threshold 0"},
      {"DestMixedFamilyNat", addDest(dest("2001:2::7", 80)), C::kInvalidArgument,
       "dest [2001:2::7]:80 in service TCP 198.18.0.1:80: address family differs"},
      {"DestUnspecified", addDest(dest("0.0.0.0", 80)), C::kInvalidArgument,
       "dest 0.0.0.0:80 in service TCP 198.18.0.1:80: address is not unicast"},
      {"DestMulticast", addDest(dest("224.0.0.5", 80)), C::kInvalidArgument, "dest 224.0.0.5:80"},
      {"DestLinkLocalV6",
       [](ServiceTable& t) { return t.addDest(tcpKey("2001:2::1", 80), dest("fe80::1", 80)); },
       C::kInvalidArgument, "dest [fe80::1]:80",
       [](ServiceTable& t) { ASSERT_TRUE(t.addService(svc(tcpKey("2001:2::1", 80))).ok()); }},
      {"DestBypass", addDest(bypass), C::kInvalidArgument, "forwarding method 4 not supported"},
      {"GueWithoutPort",
       addDest(tun(dest("198.18.1.2", 80, FwdMethod::kTunnel), TunType::kGue, 0, TunCsum::kNoCsum)),
       C::kInvalidArgument, "dest 198.18.1.2:80 in service TCP 198.18.0.1:80: GUE tunnel needs"},
      {"TunPortWithIpip",
       addDest(
           tun(dest("198.18.1.2", 80, FwdMethod::kTunnel), TunType::kIpip, 6080, TunCsum::kNoCsum)),
       C::kInvalidArgument, "tunnel port 6080 is only valid for GUE"},
      {"RemCsumWithGre",
       addDest(
           tun(dest("198.18.1.2", 80, FwdMethod::kTunnel), TunType::kGre, 0, TunCsum::kRemCsum)),
       C::kInvalidArgument, "tunnel checksum option 2 not valid for GRE"},
      {"CsumWithIpip",
       addDest(tun(dest("198.18.1.2", 80, FwdMethod::kTunnel), TunType::kIpip, 0, TunCsum::kCsum)),
       C::kInvalidArgument, "tunnel checksum option 1 not valid for IPIP"},
      {"TunOptionsWithNat",
       addDest(tun(dest("198.18.1.2", 80), TunType::kGue, 6080, TunCsum::kNoCsum)),
       C::kInvalidArgument, "dest 198.18.1.2:80 in service TCP 198.18.0.1:80: tunnel options"},
      {"EditDestMissing", [](ServiceTable& t) { return t.editDest(kVip, dest("198.18.1.9", 80)); },
       C::kNotFound, "dest 198.18.1.9:80 not found in service TCP 198.18.0.1:80"},
      {"DeleteDestMissing",
       [](ServiceTable& t) { return t.deleteDest(kVip, ip("198.18.1.1"), 81); }, C::kNotFound,
       "dest 198.18.1.1:81 not found in service TCP 198.18.0.1:80"},
      {"EditDestInvalid",
       [](ServiceTable& t) {
         return t.editDest(kVip, dest("198.18.1.1", 80, FwdMethod::kMasq, 70000));
       },
       C::kInvalidArgument, "weight 70000"},
      // Local addresses.
      {"LocalAddrExists", [](ServiceTable& t) { return t.addLocalAddr(kVip, ip("198.18.9.1")); },
       C::kAlreadyExists, "local address 198.18.9.1 already exists in service TCP 198.18.0.1:80"},
      {"LocalAddrMissing",
       [](ServiceTable& t) { return t.deleteLocalAddr(kVip, ip("198.18.9.7")); }, C::kNotFound,
       "local address 198.18.9.7 not found in service TCP 198.18.0.1:80"},
      {"LocalAddrWrongFamily",
       [](ServiceTable& t) { return t.addLocalAddr(kVip, ip("2001:2::9")); }, C::kInvalidArgument,
       "local address 2001:2::9 is not a unicast IPv4"},
      {"TimeoutTooBig", [big](ServiceTable& t) { return t.setTimeouts(big); }, C::kInvalidArgument,
       "timeout tcpfin 2678401 out of range 0..2678400"},
      {"DropEntry", sysctls(drop_entry), C::kInvalidArgument, "sysctl drop_entry 4"},
      {"DropPacket", sysctls(drop_packet), C::kInvalidArgument, "sysctl drop_packet 4"},
      {"SecureTcp", sysctls(secure_tcp), C::kInvalidArgument, "sysctl secure_tcp 5"},
      {"ConnReuseMode", sysctls(reuse), C::kInvalidArgument, "sysctl conn_reuse_mode 4"},
      {"RuleMarkZero", rules(r_mark0), C::kInvalidArgument, "fwmark rule #0: mark 0"},
      {"RulePrefix", rules(r_prefix), C::kInvalidArgument, "prefix /33 out of range 0..32"},
      {"RulePorts", rules(r_ports), C::kInvalidArgument, "port range 90-80 is empty"},
      {"RuleFamily", rules(r_af), C::kInvalidArgument, "destination 198.18.0.0 is not IPv6"},
      // Whole replacements.
      {"ReplaceDuplicateServices",
       [](ServiceTable& t) {
         FullConfig c;
         c.services.push_back({svc(tcpKey("198.18.0.5", 80)), {}});
         c.services.push_back({svc(tcpKey("198.18.0.5", 80)), {}});
         return t.replace(c);
       },
       C::kAlreadyExists, "service TCP 198.18.0.5:80 already exists"},
      {"ReplaceDuplicateDests",
       [](ServiceTable& t) {
         FullConfig c;
         c.services.push_back(
             {svc(tcpKey("198.18.0.5", 80)), {dest("198.18.1.5", 80), dest("198.18.1.5", 80)}});
         return t.replace(c);
       },
       C::kAlreadyExists, "dest 198.18.1.5:80 already exists in service TCP 198.18.0.5:80"},
      {"ReplaceBadDest",
       [](ServiceTable& t) {
         FullConfig c = t.config();
         c.services[0].dests.push_back(thresholds(dest("198.18.1.6", 80), 1, 2));
         return t.replace(c);
       },
       C::kInvalidArgument, "dest 198.18.1.6:80 in service TCP 198.18.0.1:80: lower threshold 2"},
  };
}

class ServiceValidationTest : public ::testing::TestWithParam<Case> {};

TEST_P(ServiceValidationTest, RejectsAndChangesNothing) {
  ServiceTable t;
  ASSERT_TRUE(t.addService(svc(kVip)).ok());
  ASSERT_TRUE(t.addDest(kVip, dest("198.18.1.1", 80)).ok());
  ASSERT_TRUE(t.addLocalAddr(kVip, ip("198.18.9.1")).ok());
  const Case& c = GetParam();
  if (c.setup)
    c.setup(t);
  const FullConfig before_cfg = t.config();
  const SnapshotPtr before_snap = t.snapshot();
  const uint64_t before_gen = before_snap->generation();

  absl::Status s = c.mutate(t);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  EXPECT_EQ(t.config(), before_cfg);
  EXPECT_EQ(t.snapshot(), before_snap);  // the very same snapshot object
  EXPECT_EQ(t.snapshot()->generation(), before_gen);
  // validate() alone agrees with the mutation for whole configurations.
  EXPECT_TRUE(t.validate(t.config()).ok());
}

INSTANTIATE_TEST_SUITE_P(AllErrors,
                         ServiceValidationTest,
                         ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace lb
