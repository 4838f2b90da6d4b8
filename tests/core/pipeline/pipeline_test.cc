// SPDX-License-Identifier: Apache-2.0
// Whole flows through Pipeline::process: every packet that comes out is compared byte for byte
// with an independently built expected packet, and conn states, dest counters and stats are
// checked after each step.
#include "core/pipeline/pipeline.h"

#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";

class PipelineTest : public PipelineFixture {};

Bytes syn(const char* src, uint16_t sport, const char* dst = kVip, uint16_t dport = 80) {
  return PacketBuilder::tcp(src, sport, dst, dport, kTcpSyn).build();
}

TEST_F(PipelineTest, NatTcpWholeFlow) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 8080);
  ServiceId s = svcId(key);
  StatsValues want_stats;
  auto in = [&](uint8_t flags, const std::string& payload) {
    Bytes pkt = PacketBuilder::tcp(kClient, 40000, kVip, 80, flags).payload(payload).build();
    Result r = send(pkt);
    EXPECT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    Bytes want =
        PacketBuilder::tcp(kClient, 40000, kRs1, 8080, flags).ttl(63).payload(payload).build();
    EXPECT_BYTES(r.out, want);
    EXPECT_TRUE(checksumsValid(r.out));
    EXPECT_EQ(r.tx, TxPath::kTun);
    want_stats.inpkts++;
    want_stats.inbytes += pkt.size();
  };
  auto out = [&](uint8_t flags, const std::string& payload) {
    Bytes pkt = PacketBuilder::tcp(kRs1, 8080, kClient, 40000, flags).payload(payload).build();
    Result r = send(pkt);
    EXPECT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    Bytes want =
        PacketBuilder::tcp(kVip, 80, kClient, 40000, flags).ttl(63).payload(payload).build();
    EXPECT_BYTES(r.out, want);
    want_stats.outpkts++;
    want_stats.outbytes += pkt.size();
  };

  in(kTcpSyn, "");
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(active(d), 1);  // SYN_RECV counts as active (tcp_state_active_table)
  EXPECT_EQ(inactive(d), 0);
  Conn c = connFrom(kClient, 40000);
  EXPECT_EQ(c.flags & (kConnFNoOutput | kConnFFwdMask | kConnFTemplate), 0u);
  EXPECT_EQ(c.daddr, ip(kRs1));
  EXPECT_EQ(c.dport, 8080);
  EXPECT_EQ(c.expires, clock_.now() + seconds(60));  // SYN_RECV timeout

  out(kTcpSyn | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  in(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(connFrom(kClient, 40000).expires, clock_.now() + seconds(900));
  in(kTcpAck | kTcpPsh, "GET / HTTP/1.0\r\n\r\n");
  out(kTcpAck | kTcpPsh, "HTTP/1.0 200 OK\r\n\r\nhello");
  EXPECT_EQ(active(d), 1);
  in(kTcpFin | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "CLOSE_WAIT");
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(inactive(d), 1);
  out(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "CLOSE_WAIT");
  out(kTcpFin | kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "TIME_WAIT");
  in(kTcpAck, "");
  EXPECT_EQ(stateOf(kClient, 40000), "TIME_WAIT");
  EXPECT_EQ(connFrom(kClient, 40000).expires, clock_.now() + seconds(120));

  want_stats.conns = 1;
  EXPECT_EQ(table_->runtime().serviceStats(s), want_stats);
  EXPECT_EQ(table_->runtime().destStats(d), want_stats);
  EXPECT_EQ(pipe_->counters().conns_created.value(), 1u);
  EXPECT_EQ(pipe_->counters().tx_packets.value(), 9u);

  // TIME_WAIT expires after 120 s: the conn is freed and the dest unbound.
  clock_.advance(seconds(121));
  conns_->expire(clock_.now());
  EXPECT_EQ(conns().size(), 0u);
  EXPECT_EQ(inactive(d), 0);
  EXPECT_EQ(active(d), 0);
}

TEST_F(PipelineTest, FullNatRepliesComeBackViaLocalAddress) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", 0, 0, {ip("198.18.1.1")});
  addDest(key, dest(kRs1, 8080, FwdMethod::kFullNat));
  DestId d = destId(key, kRs1, 8080);
  Result r = send(syn(kClient, 40000));
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  Conn c = connFrom(kClient, 40000);
  EXPECT_EQ(c.laddr, ip("198.18.1.1"));
  EXPECT_GE(c.lport, 1024);
  EXPECT_NE(c.flags & kConnFFullNat, 0u);
  EXPECT_EQ(c.flags & kConnFNoOutput, 0u);
  Bytes want = PacketBuilder::tcp("198.18.1.1", c.lport, kRs1, 8080, kTcpSyn).ttl(63).build();
  EXPECT_BYTES(r.out, want);

  Result back = send(PacketBuilder::tcp(kRs1, 8080, "198.18.1.1", c.lport, kTcpSyn | kTcpAck)
                         .payload("hi")
                         .build());
  ASSERT_EQ(back.verdict, Verdict::kForward) << dropReasonName(back.reason);
  Bytes want_back =
      PacketBuilder::tcp(kVip, 80, kClient, 40000, kTcpSyn | kTcpAck).ttl(63).payload("hi").build();
  EXPECT_BYTES(back.out, want_back);
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).build()).verdict,
            Verdict::kForward);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_EQ(active(d), 1);
  // The local port goes back to the pool when the conn is freed.
  SnapshotPtr snap = table_->snapshot();
  LocalAddrPool* pool = snap->services()[0].laddr_pool;
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->inUse(), 1u);
  conns_->expireIf([](const Conn&) { return true; });
  EXPECT_EQ(pool->inUse(), 0u);
  EXPECT_EQ(active(d), 0);
}

// A full-NAT dest accepted before its service has a local address: new conns drop, counted as
// no_local_addr, until the first address arrives; then the next SYN goes through.
TEST_F(PipelineTest, FullNatWithoutLocalAddressDropsUntilOneExists) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kFullNat));
  Result r = send(syn(kClient, 40000));
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNoLocalAddr);
  EXPECT_EQ(drops(DropReason::kNoLocalAddr), 1u);
  EXPECT_TRUE(conns().empty());
  ASSERT_TRUE(table_->addLocalAddr(key, ip("198.18.1.1")).ok());
  Result ok = send(syn(kClient, 40001));
  ASSERT_EQ(ok.verdict, Verdict::kForward) << dropReasonName(ok.reason);
  EXPECT_EQ(connFrom(kClient, 40001).laddr, ip("198.18.1.1"));
}

TEST_F(PipelineTest, DrUsesInputOnlyTableAndL2) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 80, FwdMethod::kDirectRoute));
  DestId d = destId(key, kRs1, 80);
  Result r = send(syn(kClient, 40000));
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Bytes want = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn).ttl(63).build();
  EXPECT_BYTES(r.out, want);
  EXPECT_EQ(r.tx, TxPath::kL2);
  EXPECT_EQ(r.next_hop, ip(kRs1));
  EXPECT_NE(connFrom(kClient, 40000).flags & kConnFNoOutput, 0u);
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).build());
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  // INPUT-ONLY: a client FIN moves ESTABLISHED to FIN_WAIT (INPUT would give CLOSE_WAIT).
  send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpFin | kTcpAck).build());
  EXPECT_EQ(stateOf(kClient, 40000), "FIN_WAIT");
  EXPECT_EQ(inactive(d), 1);
  // A reply seen by lbd is not IPVS's business (ip_vs_out ignores DR conns).
  Result reply = send(PacketBuilder::tcp(kVip, 80, kClient, 40000, kTcpAck).build());
  EXPECT_EQ(reply.verdict, Verdict::kToHost);
}

TEST_F(PipelineTest, TunnelTypesEncapsulate) {
  struct Case {
    TunType type;
    uint8_t proto;
    size_t encap;
  };

  uint16_t port = 41000;
  for (Case k :
       {Case{TunType::kIpip, 4, 0}, Case{TunType::kGue, 17, 12}, Case{TunType::kGre, 47, 4}}) {
    ServiceKey key = tcpKey(kVip, port);
    addService(key);
    DestConfig dc = dest(kRs1, port, FwdMethod::kTunnel);
    dc.tun_type = k.type;
    if (k.type == TunType::kGue)
      dc.tun_port = 6080;
    addDest(key, dc);
    pipe_->setTunnelSource(ip("198.18.1.1"));
    Bytes in = PacketBuilder::tcp(kClient, 40000, kVip, port, kTcpSyn).ipId(9).build();
    Result r = send(in);
    ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    Bytes inner = PacketBuilder::tcp(kClient, 40000, kVip, port, kTcpSyn).ipId(9).ttl(63).build();
    ASSERT_EQ(r.out.size(), 20 + k.encap + inner.size());
    EXPECT_EQ(r.out[9], k.proto);
    EXPECT_EQ(r.out[8], 63);
    EXPECT_EQ(Bytes(r.out.begin() + 12, r.out.begin() + 16), Bytes({198, 18, 1, 1}));
    EXPECT_EQ(Bytes(r.out.begin() + 16, r.out.begin() + 20), Bytes({198, 18, 1, 10}));
    Bytes got_inner(r.out.begin() + static_cast<long>(20 + k.encap), r.out.end());
    EXPECT_BYTES(got_inner, inner);
    EXPECT_TRUE(checksumsValid(r.out));
    // Tunnel conns see no replies.
    EXPECT_NE(connFrom(kClient, 40000).flags & kConnFNoOutput, 0u);
    conns_->expireIf([](const Conn&) { return true; });
    ++port;
  }
}

TEST_F(PipelineTest, UdpRequestResponse) {
  ServiceKey key = udpKey(kVip, 53);
  addService(key);
  addDest(key, dest(kRs1, 5353, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 5353);
  Result q = send(PacketBuilder::udp(kClient, 7000, kVip, 53).payload("query").build());
  ASSERT_EQ(q.verdict, Verdict::kForward);
  Bytes want_q = PacketBuilder::udp(kClient, 7000, kRs1, 5353).ttl(63).payload("query").build();
  EXPECT_BYTES(q.out, want_q);
  EXPECT_EQ(stateOf(kClient, 7000), "UDP");
  EXPECT_EQ(inactive(d), 1);  // UDP conns are never active
  EXPECT_EQ(active(d), 0);
  EXPECT_EQ(connFrom(kClient, 7000).expires, clock_.now() + seconds(300));
  clock_.advance(seconds(100));
  Result a = send(PacketBuilder::udp(kRs1, 5353, kClient, 7000).payload("answer").build());
  ASSERT_EQ(a.verdict, Verdict::kForward);
  Bytes want_a = PacketBuilder::udp(kVip, 53, kClient, 7000).ttl(63).payload("answer").build();
  EXPECT_BYTES(a.out, want_a);
  EXPECT_EQ(connFrom(kClient, 7000).expires, clock_.now() + seconds(300));  // refreshed
  EXPECT_EQ(inactive(d), 1);
}

TEST_F(PipelineTest, IcmpErrorsRelatedToAConnInBothDirections) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  ASSERT_EQ(send(syn(kClient, 40000)).verdict, Verdict::kForward);

  // A router near the client cannot pass our reply VIP:80 -> client: the error goes to the RS.
  Bytes quoted = PacketBuilder::tcp(kVip, 80, kClient, 40000, kTcpAck).payloadSize(20).build();
  Result r1 = send(PacketBuilder::icmpError("198.18.50.1", kVip, 3, 4, 1400, quoted));
  ASSERT_EQ(r1.verdict, Verdict::kForward) << dropReasonName(r1.reason);
  Bytes inner1 = PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck).payloadSize(20).build();
  Bytes want1 =
      patchV4(PacketBuilder::icmpError("198.18.50.1", kRs1, 3, 4, 1400, inner1), 0, 7, 63);
  EXPECT_BYTES(r1.out, want1);

  // The RS's side reports port unreachable for client -> RS: the client sees it from the VIP.
  Bytes quoted2 = PacketBuilder::tcp(kClient, 40000, kRs1, 8080, kTcpSyn).build();
  Result r2 = send(PacketBuilder::icmpError(kRs1, kClient, 3, 3, 0, quoted2));
  ASSERT_EQ(r2.verdict, Verdict::kForward) << dropReasonName(r2.reason);
  Bytes inner2 = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn).build();
  Bytes want2 = patchV4(PacketBuilder::icmpError(kVip, kClient, 3, 3, 0, inner2), 0, 7, 63);
  EXPECT_BYTES(r2.out, want2);
  EXPECT_TRUE(checksumsValid(r2.out));

  // Unrelated errors go to the host; a corrupted one is dropped.
  Bytes other = PacketBuilder::tcp(kVip, 80, kClient, 40001, kTcpAck).build();
  EXPECT_EQ(send(PacketBuilder::icmpError("198.18.50.1", kVip, 3, 4, 1400, other)).verdict,
            Verdict::kToHost);
  Bytes bad = PacketBuilder::icmpError("198.18.50.1", kVip, 3, 4, 1400, quoted);
  bad[25] ^= 0xff;
  Result r3 = send(bad);
  EXPECT_EQ(r3.reason, DropReason::kBadChecksum);
}

TEST_F(PipelineTest, NoDestAnswersPortUnreachable) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  Bytes in = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn).ipId(5).build();
  Result r = send(in);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kNoDest);
  ASSERT_EQ(r.icmp.size(), 1u);
  Bytes want = patchV4(PacketBuilder::icmpError(kVip, kClient, 3, 3, 0, in), 0xc0, 0, 64);
  EXPECT_BYTES(r.icmp[0], want);
  EXPECT_TRUE(checksumsValid(r.icmp[0]));
  EXPECT_EQ(drops(DropReason::kNoDest), 1u);
  EXPECT_EQ(pipe_->counters().icmp_sent.value(), 1u);
  EXPECT_EQ(conns().size(), 0u);
}

TEST_F(PipelineTest, NoServiceGoesToHostAndMidStreamIsDropped) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  EXPECT_EQ(send(syn(kClient, 40000, kVip, 81)).verdict, Verdict::kToHost);
  EXPECT_EQ(send(syn(kClient, 40000, "198.18.100.2", 80)).verdict, Verdict::kToHost);
  Result r = send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).build());
  EXPECT_EQ(r.reason, DropReason::kNotNewConn);
  Result rst = send(PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn | kTcpRst).build());
  EXPECT_EQ(rst.reason, DropReason::kNotNewConn);
  EXPECT_EQ(pipe_->counters().to_host.value(), 2u);
}

TEST_F(PipelineTest, RoundRobinAlternatesAcrossFlows) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr");
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  // The kernel's list is newest first: rr starts with RS2.
  std::vector<std::string> got;
  for (uint16_t port = 1000; port < 1006; ++port) {
    Result r = send(syn(kClient, port));
    ASSERT_EQ(r.verdict, Verdict::kForward);
    got.push_back(IpAddr::fromBytes(Af::kInet, r.out.data() + 16).toString());
  }
  EXPECT_EQ(got, std::vector<std::string>({kRs2, kRs1, kRs2, kRs1, kRs2, kRs1}));
  // Packets of an existing flow stick to its dest.
  Result again = send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpAck).build());
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, again.out.data() + 16), ip(kRs2));
}

TEST_F(PipelineTest, PersistenceKeepsClientOnDestAndTemplateExpires) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  DestId d2 = destId(key, kRs2, 80);
  for (uint16_t port = 1000; port < 1004; ++port) {
    Result r = send(syn(kClient, port));
    ASSERT_EQ(r.verdict, Verdict::kForward);
    EXPECT_EQ(IpAddr::fromBytes(Af::kInet, r.out.data() + 16), ip(kRs2));
  }
  // Another client is scheduled independently (rr moves on to RS1).
  Result other = send(syn("198.18.0.2", 1000));
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, other.out.data() + 16), ip(kRs1));
  EXPECT_EQ(persistent(d2), 1);
  Conn tmpl;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFTemplate) != 0 && c.caddr == ip(kClient))
      tmpl = c;
  }
  EXPECT_EQ(tmpl.cport, 0);
  EXPECT_EQ(tmpl.vport, 80);
  EXPECT_EQ(tmpl.dport, 80);
  EXPECT_EQ(tmpl.daddr, ip(kRs2));
  EXPECT_EQ(tmpl.n_control.load(), 4);
  EXPECT_EQ(std::string(connStateName(tmpl)), "NONE");
  EXPECT_EQ(tmpl.expires, clock_.now() + seconds(300));

  // The SYN_RECV conns die after 60 s; the template outlives them until its own 300 s.
  clock_.advance(seconds(61));
  conns_->expire(clock_.now());
  EXPECT_EQ(persistent(d2), 1);
  clock_.advance(seconds(240));
  conns_->expire(clock_.now());
  EXPECT_EQ(persistent(d2), 0);
  EXPECT_EQ(conns().size(), 0u);
  EXPECT_EQ(pipe_->counters().templates_created.value(), 2u);
}

TEST_F(PipelineTest, TemplateBecomesAssuredOnEstablished) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  send(syn(kClient, 1000));
  send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpAck).build());
  int assured = 0;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFTemplate) != 0 && std::string(connStateName(c)) == "ASSURED")
      ++assured;
  }
  EXPECT_EQ(assured, 1);
}

TEST_F(PipelineTest, ExpireQuiescentTemplateMovesPersistentClients) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  ASSERT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, 1000)).out.data() + 16), ip(kRs2));
  // Quiesce RS2: without expire_quiescent_template the client stays on it.
  ASSERT_TRUE(table_->editDest(key, dest(kRs2, 80, FwdMethod::kMasq, 0)).ok());
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, 1001)).out.data() + 16), ip(kRs2));
  Sysctls sys;
  sys.expire_quiescent_template = true;
  ASSERT_TRUE(table_->setSysctls(sys).ok());
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, 1002)).out.data() + 16), ip(kRs1));
  // The old template was invalidated in place (ports 65535) and a new one made.
  int invalidated = 0;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFTemplate) != 0 && c.vport == 0xffff && c.dport == 0xffff)
      ++invalidated;
  }
  EXPECT_EQ(invalidated, 1);
}

TEST_F(PipelineTest, WeightZeroQuiescesNewFlowsOnly) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr");
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  ASSERT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, 1000)).out.data() + 16), ip(kRs2));
  ASSERT_TRUE(table_->editDest(key, dest(kRs2, 80, FwdMethod::kMasq, 0)).ok());
  Result old_flow = send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpAck).build());
  ASSERT_EQ(old_flow.verdict, Verdict::kForward);
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, old_flow.out.data() + 16), ip(kRs2));
  for (uint16_t port = 1001; port < 1004; ++port) {
    EXPECT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, port)).out.data() + 16), ip(kRs1));
  }
}

TEST_F(PipelineTest, RemovedDestDropsOrReschedules) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr");
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  ASSERT_EQ(IpAddr::fromBytes(Af::kInet, send(syn(kClient, 1000)).out.data() + 16), ip(kRs2));
  ASSERT_TRUE(table_->deleteDest(key, ip(kRs2), 80).ok());
  // expire_nodest_conn=0: the conn stays, its packets are dropped.
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpAck).build()).reason,
            DropReason::kDestUnavailable);
  // expire_nodest_conn=1: the conn is expired and a SYN is scheduled afresh.
  Sysctls sys;
  sys.expire_nodest_conn = true;
  ASSERT_TRUE(table_->setSysctls(sys).ok());
  Result r = send(syn(kClient, 1000));
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, r.out.data() + 16), ip(kRs1));
  EXPECT_EQ(connFrom(kClient, 1000).daddr, ip(kRs1));
}

TEST_F(PipelineTest, SynOnTimeWaitConnIsRescheduled) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr");
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 80, FwdMethod::kMasq));
  send(syn(kClient, 1000));  // RS2
  send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpAck).build());
  send(PacketBuilder::tcp(kRs2, 80, kClient, 1000, kTcpFin | kTcpAck).build());
  send(PacketBuilder::tcp(kClient, 1000, kVip, 80, kTcpFin | kTcpAck).build());
  ASSERT_EQ(stateOf(kClient, 1000), "TIME_WAIT");
  Result r = send(syn(kClient, 1000));
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(IpAddr::fromBytes(Af::kInet, r.out.data() + 16), ip(kRs1));
  EXPECT_EQ(stateOf(kClient, 1000), "SYN_RECV");
  EXPECT_EQ(pipe_->counters().conns_reused.value(), 1u);
}

TEST_F(PipelineTest, OnePacketUdpLeavesNoConn) {
  ServiceKey key = udpKey(kVip, 53);
  addService(key, "rr", kSvcOnePacket);
  addDest(key, dest(kRs1, 53, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 53);
  for (int i = 0; i < 3; ++i) {
    Result r = send(PacketBuilder::udp(kClient, 7000, kVip, 53).payload("q").build());
    ASSERT_EQ(r.verdict, Verdict::kForward);
    Bytes want = PacketBuilder::udp(kClient, 7000, kRs1, 53).ttl(63).payload("q").build();
    EXPECT_BYTES(r.out, want);
    EXPECT_EQ(conns().size(), 0u);
    EXPECT_EQ(inactive(d), 0);
  }
  EXPECT_EQ(table_->runtime().destStats(d).conns, 3u);
}

TEST_F(PipelineTest, EchoRequestToVipIsAnswered) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  Result r = send(PacketBuilder::icmpEcho(kClient, kVip, 8, 77).payload("ping").build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Bytes want = PacketBuilder::icmpEcho(kVip, kClient, 0, 77).payload("ping").build();
  EXPECT_BYTES(r.out, want);
  EXPECT_EQ(pipe_->counters().icmp_echo_replies.value(), 1u);
  EXPECT_EQ(send(PacketBuilder::icmpEcho(kClient, "198.18.100.9", 8, 77).build()).verdict,
            Verdict::kToHost);
}

TEST_F(PipelineTest, TtlOneIsAnsweredWithTimeExceeded) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  Bytes in = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpSyn).ttl(1).build();
  Result r = send(in);
  EXPECT_EQ(r.reason, DropReason::kTtlExceeded);
  ASSERT_EQ(r.icmp.size(), 1u);
  Bytes want = patchV4(PacketBuilder::icmpError(kVip, kClient, 11, 0, 0, in), 0xc0, 0, 64);
  EXPECT_BYTES(r.icmp[0], want);
}

class SmallTablePipelineTest : public PipelineFixture {
 protected:
  SmallTablePipelineTest() : PipelineFixture(2) {}
};

TEST_F(SmallTablePipelineTest, FullTableDropsNewConns) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 80, FwdMethod::kMasq));
  DestId d = destId(key, kRs1, 80);
  // Two established conns (half-open ones would be early-dropped: early_drop_test.cc).
  for (uint16_t port : {1, 2}) {
    EXPECT_EQ(send(syn(kClient, port)).verdict, Verdict::kForward);
    EXPECT_EQ(send(PacketBuilder::tcp(kClient, port, kVip, 80, kTcpAck).build()).verdict,
              Verdict::kForward);
  }
  Result r = send(syn(kClient, 3));
  EXPECT_EQ(r.reason, DropReason::kConnTableFull);
  EXPECT_EQ(drops(DropReason::kConnTableFull), 1u);
  EXPECT_EQ(active(d), 2);
  // Existing flows still pass.
  EXPECT_EQ(send(PacketBuilder::tcp(kClient, 1, kVip, 80, kTcpAck | kTcpPsh).build()).verdict,
            Verdict::kForward);
}

}  // namespace
}  // namespace lb::testing
