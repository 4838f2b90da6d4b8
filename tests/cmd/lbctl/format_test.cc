// SPDX-License-Identifier: Apache-2.0
// Expected texts are ipvsadm's format strings rendered by hand (reference/ipvs-inventory §7.5),
// trailing padding spaces included.
#include "cmd/lbctl/format.h"

#include <gtest/gtest.h>

#include <string>

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

pb::ServiceStatus* addService(pb::ListServicesResponse& r,
                              pb::Protocol proto,
                              const std::string& addr,
                              uint32_t port,
                              const std::string& sched) {
  pb::ServiceStatus* s = r.add_services();
  pb::VirtualAddress* va = s->mutable_service()->mutable_key()->mutable_address();
  va->set_protocol(proto);
  va->set_address(addr);
  va->set_port(port);
  s->mutable_service()->set_scheduler(sched);
  return s;
}

pb::DestStatus* addDest(pb::ServiceStatus* s,
                        const std::string& addr,
                        uint32_t port,
                        pb::ForwardMethod fwd,
                        uint32_t weight,
                        uint32_t active,
                        uint32_t inactive) {
  pb::DestStatus* d = s->add_dests();
  d->mutable_dest()->set_address(addr);
  d->mutable_dest()->set_port(port);
  d->mutable_dest()->set_forward_method(fwd);
  d->mutable_dest()->set_weight(weight);
  d->set_active_conns(active);
  d->set_inactive_conns(inactive);
  return d;
}

// The inventory's -Ln example, built in an order that needs sorting.
pb::ListServicesResponse example() {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* fwm = r.add_services();
  fwm->mutable_service()->mutable_key()->mutable_fwmark()->set_mark(1);
  fwm->mutable_service()->mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
  fwm->mutable_service()->set_scheduler("wlc");
  pb::DestStatus* t = addDest(fwm, "10.0.0.6", 0, pb::FORWARD_METHOD_TUNNEL, 2, 1, 0);
  t->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_IPIP);
  pb::ServiceStatus* udp = addService(r, pb::PROTOCOL_UDP, "207.175.44.110", 53, "sh");
  udp->mutable_service()->mutable_sh()->set_fallback(true);
  udp->mutable_service()->mutable_sh()->set_port(true);
  udp->mutable_service()->set_one_packet(true);
  addDest(udp, "10.0.0.5", 53, pb::FORWARD_METHOD_DIRECT_ROUTE, 1, 0, 7);
  pb::ServiceStatus* tcp = addService(r, pb::PROTOCOL_TCP, "207.175.44.110", 80, "rr");
  tcp->mutable_service()->mutable_persistence()->mutable_timeout()->set_seconds(360);
  addDest(tcp, "192.168.10.2", 80, pb::FORWARD_METHOD_MASQ, 0, 3, 20);  // newest first
  addDest(tcp, "192.168.10.1", 80, pb::FORWARD_METHOD_MASQ, 1, 12, 341);
  return r;
}

TEST(FormatTest, ListNumeric) {
  ListOptions o;
  o.numeric = true;
  EXPECT_EQ(formatServiceList(example(), o, true),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  207.175.44.110:80 rr persistent 360\n"
            "  -> 192.168.10.1:80              Masq    1      12         341       \n"
            "  -> 192.168.10.2:80              Masq    0      3          20        \n"
            "UDP  207.175.44.110:53 sh (sh-fallback,sh-port) ops\n"
            "  -> 10.0.0.5:53                  Route   1      0          7         \n"
            "FWM  1 wlc\n"
            "  -> 10.0.0.6:0                   Tunnel  2      1          0         \n");
}

TEST(FormatTest, ListOneServiceHasNoVersionHeader) {
  pb::ListServicesResponse r = example();
  r.mutable_services()->DeleteSubrange(0, 2);
  ListOptions o;
  EXPECT_EQ(formatServiceList(r, o, false),
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  207.175.44.110:80 rr persistent 360\n"
            "  -> 192.168.10.1:80              Masq    1      12         341       \n"
            "  -> 192.168.10.2:80              Masq    0      3          20        \n");
}

TEST(FormatTest, NosortKeepsServerOrder) {
  ListOptions o;
  o.nosort = true;
  const std::string out = formatServiceList(example(), o, true);
  EXPECT_LT(out.find("FWM  1"), out.find("TCP  207"));
  EXPECT_LT(out.find("192.168.10.2"), out.find("192.168.10.1"));
}

TEST(FormatTest, Stats) {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* s = addService(r, pb::PROTOCOL_TCP, "207.175.44.110", 80, "rr");
  pb::Stats* st = s->mutable_stats();
  st->set_conns(1234);
  st->set_in_packets(56789);
  st->set_out_packets(51234);
  st->set_in_bytes(123456789);
  st->set_out_bytes(2345678901);
  pb::DestStatus* d = addDest(s, "192.168.10.1", 80, pb::FORWARD_METHOD_MASQ, 1, 0, 0);
  d->mutable_stats()->set_conns(617);
  d->mutable_stats()->set_in_packets(28394);
  d->mutable_stats()->set_out_packets(25617);
  d->mutable_stats()->set_in_bytes(61728394);
  d->mutable_stats()->set_out_bytes(1172839450);
  ListOptions o;
  o.stats = true;
  EXPECT_EQ(formatServiceList(r, o, true),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  207.175.44.110:80                1234    56789    51234  123456K    2345M\n"
            "  -> 192.168.10.1:80                   617    28394    25617 61728394    1172M\n");
  o.exact = true;
  EXPECT_EQ(formatServiceList(r, o, false),
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  207.175.44.110:80                1234    56789    51234 123456789 2345678901\n"
            "  -> 192.168.10.1:80                   617    28394    25617 61728394 1172839450\n");
}

TEST(FormatTest, LargeNumbers) {
  EXPECT_EQ(formatLargeNum(99999999, false), " 99999999");
  EXPECT_EQ(formatLargeNum(100000000, false), "  100000K");
  EXPECT_EQ(formatLargeNum(99999999999ULL, false), "   99999M");
  EXPECT_EQ(formatLargeNum(100000000000ULL, false), "     100G");
  EXPECT_EQ(formatLargeNum(100000000000000ULL, false), "     100T");
  EXPECT_EQ(formatLargeNum(5, true), "        5");
  EXPECT_EQ(formatLargeNum(1234567890, true), " 1234567890");
}

TEST(FormatTest, Rate) {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* s = addService(r, pb::PROTOCOL_TCP, "207.175.44.110", 80, "rr");
  pb::Rates* x = s->mutable_rates();
  x->set_conns_per_second(12);
  x->set_in_packets_per_second(340);
  x->set_out_packets_per_second(310);
  x->set_in_bytes_per_second(45678);
  x->set_out_bytes_per_second(987654);
  pb::Rates* y = addDest(s, "192.168.10.1", 80, pb::FORWARD_METHOD_MASQ, 1, 0, 0)->mutable_rates();
  y->set_conns_per_second(6);
  y->set_in_packets_per_second(170);
  y->set_out_packets_per_second(155);
  y->set_in_bytes_per_second(22839);
  y->set_out_bytes_per_second(493827);
  ListOptions o;
  o.rate = true;
  EXPECT_EQ(formatServiceList(r, o, true),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
            "  -> RemoteAddress:Port\n"
            "TCP  207.175.44.110:80                  12      340      310    45678   987654\n"
            "  -> 192.168.10.1:80                     6      170      155    22839   493827\n");
}

TEST(FormatTest, ThresholdsPersistentConnTunInfo) {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* s = addService(r, pb::PROTOCOL_TCP, "207.175.44.110", 80, "rr");
  pb::DestStatus* d = addDest(s, "192.168.10.1", 80, pb::FORWARD_METHOD_MASQ, 1, 12, 341);
  d->mutable_dest()->set_upper_threshold(100);
  d->set_persistent_conns(4);
  ListOptions th;
  th.thresholds = true;
  EXPECT_EQ(formatServiceList(r, th, true),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
            "  -> RemoteAddress:Port\n"
            "TCP  207.175.44.110:80 rr\n"
            "  -> 192.168.10.1:80              100        0          12         341       \n");
  s->mutable_service()->mutable_persistence()->mutable_timeout()->set_seconds(360);
  ListOptions pc;
  pc.persistent_conn = true;
  EXPECT_EQ(formatServiceList(r, pc, true),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n"
            "  -> RemoteAddress:Port\n"
            "TCP  207.175.44.110:80 rr persistent 360\n"
            "  -> 192.168.10.1:80              1         4           12         341       \n");

  pb::ListServicesResponse t;
  t.set_conn_table_size(4096);
  pb::ServiceStatus* ts = addService(t, pb::PROTOCOL_TCP, "207.175.44.110", 80, "rr");
  pb::DestStatus* gue = addDest(ts, "192.168.10.1", 80, pb::FORWARD_METHOD_TUNNEL, 1, 0, 0);
  gue->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_GUE);
  gue->mutable_dest()->mutable_tunnel()->set_port(6080);
  gue->mutable_dest()->mutable_tunnel()->set_checksum(pb::TUNNEL_CHECKSUM_NONE);
  pb::DestStatus* gre = addDest(ts, "192.168.10.2", 80, pb::FORWARD_METHOD_TUNNEL, 1, 0, 0);
  gre->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_GRE);
  gre->mutable_dest()->mutable_tunnel()->set_checksum(pb::TUNNEL_CHECKSUM_CSUM);
  pb::DestStatus* ipip = addDest(ts, "192.168.10.3", 80, pb::FORWARD_METHOD_TUNNEL, 1, 0, 0);
  ipip->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_IPIP);
  addDest(ts, "192.168.10.4", 80, pb::FORWARD_METHOD_MASQ, 1, 0, 0);
  ListOptions ti;
  ti.tun_info = true;
  EXPECT_EQ(
      formatServiceList(t, ti, true),
      "IP Virtual Server version 1.2.1 (size=4096)\n"
      "Prot LocalAddress:Port Scheduler Flags\n"
      "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
      "TCP  207.175.44.110:80 rr\n"
      "  -> 192.168.10.1:80              Tunnel  gue:6080:-c   1      0          0         \n"
      "  -> 192.168.10.2:80              Tunnel  gre:+c        1      0          0         \n"
      "  -> 192.168.10.3:80              Tunnel  ipip          1      0          0         \n"
      "  -> 192.168.10.4:80              Masq    n/a           1      0          0         \n");
}

TEST(FormatTest, SaveRules) {
  pb::ListServicesResponse r = example();
  pb::ServiceStatus* gue = addService(r, pb::PROTOCOL_TCP, "10.0.0.1", 80, "rr");
  pb::DestStatus* g = addDest(gue, "192.168.10.1", 80, pb::FORWARD_METHOD_TUNNEL, 1, 0, 0);
  g->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_GUE);
  g->mutable_dest()->mutable_tunnel()->set_port(6080);
  pb::DestStatus* gre = addDest(gue, "192.168.11.1", 80, pb::FORWARD_METHOD_TUNNEL, 1, 0, 0);
  gre->mutable_dest()->mutable_tunnel()->set_type(pb::TUNNEL_TYPE_GRE);
  gre->mutable_dest()->mutable_tunnel()->set_checksum(pb::TUNNEL_CHECKSUM_CSUM);
  ListOptions o;
  o.numeric = true;
  // 207.175.44.110 sorts before 10.0.0.1: libipvs compares addresses by unsigned subtraction
  // read back as int, and these two are more than 2^31 apart (ipvsadm does the same).
  EXPECT_EQ(formatSave(r, o),
            "-A -t 207.175.44.110:80 -s rr -p 360\n"
            "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -w 1\n"
            "-a -t 207.175.44.110:80 -r 192.168.10.2:80 -m -w 0\n"
            "-A -t 10.0.0.1:80 -s rr\n"
            "-a -t 10.0.0.1:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 "
            "--tun-nocsum\n"
            "-a -t 10.0.0.1:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum\n"
            "-A -u 207.175.44.110:53 -s sh -o -b sh-fallback,sh-port\n"
            "-a -u 207.175.44.110:53 -r 10.0.0.5:53 -g -w 1\n"
            "-A -f 1 -s wlc\n"
            "-a -f 1 -r 10.0.0.6:0 -i -w 2 --tun-type ipip\n");
}

TEST(FormatTest, PersistenceMaskAndEngineAndFullNat) {
  pb::ListServicesResponse r;
  r.set_conn_table_size(4096);
  pb::ServiceStatus* s = addService(r, pb::PROTOCOL_TCP, "198.18.0.1", 80, "wlc");
  pb::Persistence* p = s->mutable_service()->mutable_persistence();
  p->mutable_timeout()->set_seconds(600);
  p->set_netmask_prefix(24);
  p->set_engine("sip");
  s->mutable_service()->add_local_addresses("198.18.1.1");
  addDest(s, "198.18.2.1", 8080, pb::FORWARD_METHOD_FULL_NAT, 3, 0, 0);
  pb::ServiceStatus* v6 = addService(r, pb::PROTOCOL_UDP, "2001:2::1", 53, "rr");
  v6->mutable_service()->mutable_persistence()->mutable_timeout()->set_seconds(30);
  v6->mutable_service()->mutable_persistence()->set_netmask_prefix(64);
  addDest(v6, "2001:2::10", 53, pb::FORWARD_METHOD_MASQ, 1, 0, 0);
  ListOptions o;
  EXPECT_EQ(formatSave(r, o),
            "-A -t 198.18.0.1:80 -s wlc -p 600 -M 255.255.255.0 --pe sip\n"
            "-P -t 198.18.0.1:80 -z 198.18.1.1\n"
            "-a -t 198.18.0.1:80 -r 198.18.2.1:8080 --fullnat -w 3\n"
            "-A -u [2001:2::1]:53 -s rr -p 30 -M 64\n"
            "-a -u [2001:2::1]:53 -r [2001:2::10]:53 -m -w 1\n");
  EXPECT_EQ(formatServiceList(r, o, false),
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  198.18.0.1:80 wlc persistent 600 mask 255.255.255.0 pe sip\n"
            "  -> 198.18.2.1:8080              FullNat 3      0          0         \n"
            "UDP  [2001:2::1]:53 rr persistent 30 mask 64\n"
            "  -> [2001:2::10]:53              Masq    1      0          0         \n");
}

TEST(FormatTest, Connections) {
  pb::ListConnectionsResponse r;
  auto add = [&](pb::Protocol proto, int64_t expires, const char* state, const char* c, uint32_t cp,
                 const char* v, uint32_t vp, const char* d, uint32_t dp) {
    pb::Connection* x = r.add_connections();
    x->set_protocol(proto);
    x->mutable_expires()->set_seconds(expires);
    x->set_state(state);
    x->set_client_address(c);
    x->set_client_port(cp);
    x->set_virtual_address(v);
    x->set_virtual_port(vp);
    x->set_dest_address(d);
    x->set_dest_port(dp);
    return x;
  };
  add(pb::PROTOCOL_TCP, 898, "ESTABLISHED", "10.0.0.2", 45678, "207.175.44.110", 80, "192.168.10.1",
      80);
  add(pb::PROTOCOL_TCP, 117, "FIN_WAIT", "10.0.0.2", 45679, "207.175.44.110", 80, "192.168.10.2",
      80);
  add(pb::PROTOCOL_TCP, 359, "NONE", "10.0.0.2", 0, "207.175.44.110", 80, "192.168.10.1", 80);
  add(pb::PROTOCOL_UDP, 299, "UDP", "10.0.0.9", 33000, "207.175.44.110", 53, "10.0.0.5", 53);
  ListOptions o;
  EXPECT_EQ(formatConnections(r, o),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n"
            "TCP 14:58  ESTABLISHED 10.0.0.2:45678     207.175.44.110:80  192.168.10.1:80\n"
            "TCP 01:57  FIN_WAIT    10.0.0.2:45679     207.175.44.110:80  192.168.10.2:80\n"
            "TCP 05:59  NONE        10.0.0.2:0         207.175.44.110:80  192.168.10.1:80\n"
            "UDP 04:59  UDP         10.0.0.9:33000     207.175.44.110:53  10.0.0.5:53\n");

  pb::ListConnectionsResponse t;
  pb::Connection* x = t.add_connections();
  x->set_protocol(pb::PROTOCOL_ANY);
  x->mutable_expires()->set_seconds(359);
  x->set_state("NONE");
  x->set_client_address("10.0.0.2");
  x->set_virtual_address("0.0.0.1");
  x->set_dest_address("192.168.10.1");
  x->set_engine("sip");
  x->set_engine_data("a84b4c76e66710");
  o.persistent_conn = true;
  EXPECT_EQ(formatConnections(t, o),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination        pe "
            "name          pe_data\n"
            "IP  05:59  NONE        10.0.0.2:0         0.0.0.1:0          192.168.10.1:0   sip    "
            "            a84b4c76e66710\n");
}

TEST(FormatTest, TimeoutsAndLocalAddresses) {
  pb::Timeouts t;
  t.mutable_tcp()->set_seconds(900);
  t.mutable_tcp_fin()->set_seconds(120);
  t.mutable_udp()->set_seconds(300);
  EXPECT_EQ(formatTimeouts(t), "Timeout (tcp tcpfin udp): 900 120 300\n");
  pb::ListLocalAddressesResponse r;
  pb::ListLocalAddressesResponse::Entry* e = r.add_services();
  e->mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  e->mutable_key()->mutable_address()->set_address("198.18.0.1");
  e->mutable_key()->mutable_address()->set_port(80);
  e->add_addresses()->set_address("198.18.1.1");
  EXPECT_EQ(formatLocalAddresses(r),
            "VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n"
            "198.18.0.1:80        1        \n"
            "                              198.18.1.1           0          0         \n");
}

}  // namespace
}  // namespace lb::lbctl
