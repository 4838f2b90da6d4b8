// SPDX-License-Identifier: Apache-2.0
// Names in listings without -n (ipvsadm.c addrport_to_anyname), through an injected resolver:
// which lookups are made, what prints where a name is missing, the bound on a resolver that
// never answers, and one lookup per address and port per run.
#include "cmd/lbctl/names.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/str_format.h"

#include "cmd/lbctl/format.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

// Answers from tables; addresses in `hang` block until release() (a resolver that does not
// answer). Counts every call.
class FakeResolver : public NameResolver {
 public:
  std::optional<std::string> hostName(const std::string& ipv4) const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++host_calls_[ipv4];
    if (hang.count(ipv4) != 0)
      cv_.wait(lock, [&] { return released_; });
    auto it = hosts.find(ipv4);
    return it == hosts.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

  std::optional<std::string> serviceName(uint16_t port, const std::string& proto) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ++port_calls_[key(port, proto)];
    auto it = services.find(key(port, proto));
    return it == services.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  int hostCalls(const std::string& a) const {
    std::lock_guard<std::mutex> lock(mu_);
    return host_calls_[a];
  }

  int portCalls(uint16_t port, const std::string& proto) const {
    std::lock_guard<std::mutex> lock(mu_);
    return port_calls_[key(port, proto)];
  }

  static std::string key(uint16_t port, const std::string& proto) {
    return std::to_string(port) + "/" + proto;
  }

  std::map<std::string, std::string> hosts;
  std::map<std::string, std::string> services;  // "80/tcp" -> "http"
  std::set<std::string> hang;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::map<std::string, int> host_calls_, port_calls_;
  bool released_ = false;
};

std::shared_ptr<FakeResolver> fake() {
  auto r = std::make_shared<FakeResolver>();
  r->hosts = {{"198.18.0.1", "www.lb.test"},
              {"198.18.1.1", "rs1.lb.test"},
              {"198.18.1.3", "a-real-server-with-a-rather-long-name.lb.test"}};
  r->services = {{"80/tcp", "http"}, {"53/udp", "domain"}, {"443/tcp", "https"}};
  return r;
}

pb::ServiceStatus* addService(pb::ListServicesResponse& r,
                              pb::Protocol proto,
                              const std::string& addr,
                              uint32_t port) {
  pb::ServiceStatus* s = r.add_services();
  pb::VirtualAddress* va = s->mutable_service()->mutable_key()->mutable_address();
  va->set_protocol(proto);
  va->set_address(addr);
  va->set_port(port);
  s->mutable_service()->set_scheduler("rr");
  return s;
}

void addDest(pb::ServiceStatus* s, const std::string& addr, uint32_t port) {
  pb::Dest* d = s->add_dests()->mutable_dest();
  d->set_address(addr);
  d->set_port(port);
  d->set_forward_method(pb::FORWARD_METHOD_MASQ);
  d->set_weight(1);
}

pb::ListServicesResponse services() {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* web = addService(r, pb::PROTOCOL_TCP, "198.18.0.1", 80);
  addDest(web, "198.18.1.1", 80);
  addDest(web, "198.18.1.2", 8080);
  addDest(web, "198.18.1.3", 443);
  pb::ServiceStatus* dns = addService(r, pb::PROTOCOL_UDP, "198.18.0.2", 53);
  addDest(dns, "198.18.1.1", 53);
  pb::ServiceStatus* v6 = addService(r, pb::PROTOCOL_TCP, "2001:2::1", 443);
  addDest(v6, "2001:2::10", 80);
  pb::ServiceStatus* fwm = r.add_services();
  fwm->mutable_service()->mutable_key()->mutable_fwmark()->set_mark(3);
  fwm->mutable_service()->mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
  fwm->mutable_service()->set_scheduler("wlc");
  addDest(fwm, "198.18.1.1", 80);
  return r;
}

TEST(NamesTest, ListingPrintsNamesWhereTheyResolveAndNumbersElsewhere) {
  auto res = fake();
  pb::ListServicesResponse r = services();
  const Names names = Names::lookup(nameRequestOf(r), res, absl::Seconds(30));
  ListOptions o;
  // Truncation: IPv4 dest names to 28 characters, service columns to 33 (ipvsadm's dname[28],
  // svc_name[33]); IPv6 hosts stay numeric, their ports are named; fwmark dests use tcp names.
  EXPECT_EQ(formatServiceList(r, o, true, names),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  www.lb.test:http rr\n"
            "  -> rs1.lb.test:http             Masq    1      0          0         \n"
            "  -> 198.18.1.2:8080              Masq    1      0          0         \n"
            "  -> a-real-server-with-a-rather- Masq    1      0          0         \n"
            "UDP  198.18.0.2:domain rr\n"
            "  -> rs1.lb.test:domain           Masq    1      0          0         \n"
            "TCP  [2001:2::1]:https rr\n"
            "  -> [2001:2::10]:http            Masq    1      0          0         \n"
            "FWM  3 wlc\n"
            "  -> rs1.lb.test:http             Masq    1      0          0         \n");
  o.stats = true;
  const std::string stats = formatServiceList(r, o, false, names);
  EXPECT_NE(stats.find(absl::StrFormat("\n%-33s%9u", "TCP  www.lb.test:http", 0)),
            std::string::npos)
      << stats;
  EXPECT_NE(stats.find(absl::StrFormat("\n  -> %-28s%9u", "rs1.lb.test:http", 0)),
            std::string::npos)
      << stats;
  // -S without -n: the names, untruncated, in rules -R reads back (host and service names).
  ListOptions save;
  EXPECT_EQ(
      formatSave(r, save, names),
      "-A -t www.lb.test:http -s rr\n"
      "-a -t www.lb.test:http -r rs1.lb.test:http -m -w 1\n"
      "-a -t www.lb.test:http -r 198.18.1.2:8080 -m -w 1\n"
      "-a -t www.lb.test:http -r a-real-server-with-a-rather-long-name.lb.test:https -m -w 1\n"
      "-A -u 198.18.0.2:domain -s rr\n"
      "-a -u 198.18.0.2:domain -r rs1.lb.test:domain -m -w 1\n"
      "-A -t [2001:2::1]:https -s rr\n"
      "-a -t [2001:2::1]:https -r [2001:2::10]:http -m -w 1\n"
      "-A -f 3 -s wlc\n"
      "-a -f 3 -r rs1.lb.test:http -m -w 1\n");
  // Numeric (-n): the default Names.
  EXPECT_EQ(formatSave(r, save), formatSave(r, save, Names()));
  EXPECT_NE(formatSave(r, save).find("-A -t 198.18.0.1:80 -s rr\n"), std::string::npos);
}

TEST(NamesTest, EachAddressAndPortIsLookedUpOncePerRun) {
  auto res = fake();
  pb::ListServicesResponse r = services();
  NameRequest req = nameRequestOf(r);
  EXPECT_EQ(req.hosts.size(), 5u);  // 198.18.0.1, .0.2, .1.1, .1.2, .1.3; no IPv6
  (void)Names::lookup(req, res, absl::Seconds(30));
  EXPECT_EQ(res->hostCalls("198.18.1.1"), 1);  // a dest of three services
  EXPECT_EQ(res->hostCalls("2001:2::1"), 0);
  EXPECT_EQ(res->portCalls(80, "tcp"), 1);
  EXPECT_EQ(res->portCalls(80, "udp"), 0);
  EXPECT_EQ(res->portCalls(53, "udp"), 1);
}

// A resolver that never answers for some addresses: the lookup returns once the bound has
// passed (the test would hang otherwise), those addresses print numerically and the others
// keep their names.
TEST(NamesTest, AResolverThatNeverAnswersCostsOnlyTheBound) {
  auto res = fake();
  res->hang = {"198.18.0.1", "198.18.1.2"};
  pb::ListServicesResponse r = services();
  const Names names = Names::lookup(nameRequestOf(r), res, absl::Milliseconds(300));
  EXPECT_EQ(names.addrPort("198.18.0.1", 80, pb::PROTOCOL_TCP), "198.18.0.1:http");
  EXPECT_EQ(names.addrPort("198.18.1.1", 80, pb::PROTOCOL_TCP), "rs1.lb.test:http");
  EXPECT_EQ(names.addrPort("198.18.1.2", 8080, pb::PROTOCOL_TCP), "198.18.1.2:8080");
  res->release();  // the stuck lookups finish on their own threads; their answers are unused
  EXPECT_EQ(names.addrPort("198.18.0.1", 80, pb::PROTOCOL_TCP), "198.18.0.1:http");
}

TEST(NamesTest, ConnectionListingNamesEveryColumn) {
  auto res = fake();
  pb::ListConnectionsResponse r;
  pb::Connection* c = r.add_connections();
  c->set_protocol(pb::PROTOCOL_TCP);
  c->set_client_address("198.18.5.5");
  c->set_client_port(40000);
  c->set_virtual_address("198.18.0.1");
  c->set_virtual_port(80);
  c->set_dest_address("198.18.1.1");
  c->set_dest_port(80);
  c->set_state("ESTABLISHED");
  c->mutable_expires()->set_seconds(899);
  pb::Connection* t = r.add_connections();  // a fwmark template: no protocol, ports numeric
  t->set_protocol(pb::PROTOCOL_ANY);
  t->set_client_address("198.18.5.5");
  t->set_virtual_address("198.18.0.1");
  t->set_virtual_port(80);
  t->set_dest_address("198.18.1.1");
  t->set_dest_port(80);
  t->set_state("NONE");
  t->mutable_expires()->set_seconds(60);
  const Names names = Names::lookup(nameRequestOf(r), res, absl::Seconds(30));
  EXPECT_EQ(formatConnections(r, ListOptions(), names),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n"
            "TCP 14:59  ESTABLISHED 198.18.5.5:40000   www.lb.test:http   rs1.lb.test:http\n"
            "IP  01:00  NONE        198.18.5.5:0       www.lb.test:80     rs1.lb.test:80\n");
}

TEST(NamesTest, NamesAreCutAt59CharactersAsIpvsadmsBuffer) {
  auto res = std::make_shared<FakeResolver>();
  const std::string longname(70, 'x');
  res->hosts = {{"198.18.0.1", longname}};
  NameRequest req;
  req.add("198.18.0.1", 80, pb::PROTOCOL_TCP);
  const Names names = Names::lookup(req, res, absl::Seconds(30));
  EXPECT_EQ(names.addrPort("198.18.0.1", 80, pb::PROTOCOL_TCP), std::string(59, 'x'));
}

TEST(SaveSettingsTest, OnlyWhatDiffersFromTheKernelsDefaults) {
  pb::Config cfg;
  cfg.mutable_timeouts()->mutable_tcp()->set_seconds(900);
  cfg.mutable_timeouts()->mutable_tcp_fin()->set_seconds(120);
  cfg.mutable_timeouts()->mutable_udp()->set_seconds(300);
  cfg.mutable_sysctls()->set_conn_reuse_mode(1);
  cfg.mutable_sysctls()->set_pmtu_disc(true);
  cfg.mutable_sysctls()->set_am_droprate(10);
  EXPECT_EQ(formatSaveSettings(cfg), "");
  EXPECT_EQ(formatSaveFwmarkRules(cfg), "");
  cfg.mutable_timeouts()->mutable_udp()->set_seconds(60);
  cfg.mutable_sysctls()->set_pmtu_disc(false);
  cfg.mutable_sysctls()->set_expire_nodest_conn(true);
  cfg.mutable_sysctls()->mutable_lblc_expiration()->set_seconds(60);
  EXPECT_EQ(formatSaveSettings(cfg),
            "--set 900 120 60\n"
            "--sysctl expire_nodest_conn=1 lblc_expiration=60 pmtu_disc=0\n");
  pb::FwmarkRule* rule = cfg.add_fwmark_rules();
  rule->set_destination("198.18.0.0/24");
  rule->set_protocol(pb::PROTOCOL_TCP);
  rule->set_port_min(80);
  rule->set_port_max(90);
  rule->set_mark(5);
  EXPECT_EQ(formatSaveFwmarkRules(cfg),
            "--clear-fwmark-rules\n"
            "--add-fwmark-rule --mark 5 --dest 198.18.0.0/24 --proto tcp --dport 80:90\n");
}

}  // namespace
}  // namespace lb::lbctl
