// SPDX-License-Identifier: Apache-2.0
// STYLE.md §5's proof: after warm-up, Pipeline::process allocates nothing, whatever the mix:
// new conns and hits, NAT / full NAT / DR / GUE tunnel / one-packet UDP / persistence, replies,
// drops of several reasons, ICMP errors generated into the sink, echo replies, the defences
// (drop_packet, secure_tcp, runDefenseTick's drop_entry) and conns scheduled from ICMP errors;
// and SYN cookies: the answers, the conns a returned cookie opens, their translated segments.
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline/pe_sip.h"
#include "core/pipeline/synproxy.h"
#include "tests/core/pipeline/pipeline_fixture.h"
#include "tests/testlib/alloc_counter.h"

namespace lb::testing {
namespace {

class PipelineNoAllocTest : public PipelineFixture {
 protected:
  PipelineNoAllocTest() : PipelineFixture(1 << 16) {}

  void configure() {
    const char* vip = "198.18.100.1";
    addService(tcpKey(vip, 80));
    addDest(tcpKey(vip, 80), dest("198.18.1.10", 8080, FwdMethod::kMasq));
    addDest(tcpKey(vip, 80), dest("198.18.1.11", 8080, FwdMethod::kMasq));
    addService(tcpKey(vip, 90), "wlc", 0, 0, {ip("198.18.1.1")});
    addDest(tcpKey(vip, 90), dest("198.18.1.10", 9090, FwdMethod::kFullNat));
    addService(tcpKey(vip, 91), "rr");
    DestConfig gue = dest("198.18.1.12", 91, FwdMethod::kTunnel);
    gue.tun_type = TunType::kGue;
    gue.tun_port = 6080;
    gue.tun_csum = TunCsum::kCsum;
    addDest(tcpKey(vip, 91), gue);
    addService(tcpKey(vip, 81), "sh");
    addDest(tcpKey(vip, 81), dest("198.18.1.13", 81, FwdMethod::kDirectRoute));
    addService(udpKey(vip, 53), "rr", kSvcOnePacket);
    addDest(udpKey(vip, 53), dest("198.18.1.10", 53, FwdMethod::kMasq));
    addService(tcpKey(vip, 443), "rr", kSvcPersistent, 60);
    addDest(tcpKey(vip, 443), dest("198.18.1.10", 443, FwdMethod::kMasq));
    addService(tcpKey(vip, 92), "rr");  // no dests: port unreachable
    Sysctls sys;
    sys.drop_packet = 3;
    sys.am_droprate = 50;
    sys.secure_tcp = 3;
    sys.drop_entry = 3;
    sys.schedule_icmp = true;
    setSysctls(sys);
  }

  // Packets for client port `p`, in an order that creates, uses and closes conns.
  void addFlow(std::vector<Bytes>& out, uint16_t p) {
    const char* c = "198.18.0.1";
    const char* vip = "198.18.100.1";
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpSyn).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpAck).payloadSize(100).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 90, kTcpSyn).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 91, kTcpSyn).payloadSize(10).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 81, kTcpSyn).build());
    out.push_back(PacketBuilder::udp(c, p, vip, 53).payload("q").build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 443, kTcpSyn).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 92, kTcpSyn).build());            // no dest
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpAck | kTcpRst).build());  // RST
    out.push_back(PacketBuilder::tcp(c, p, vip, 85, kTcpSyn).build());            // to host
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpSyn).ttl(1).build());     // ttl
    out.push_back(PacketBuilder::icmpEcho(c, vip, 8, p).build());
    out.push_back(Bytes(10, 0x45));                                                 // malformed
    out.push_back(PacketBuilder::tcp("198.18.1.10", 8080, c, p, kTcpAck).build());  // reply
    // An error about a reply to a flow lbd has no conn for: scheduled (schedule_icmp).
    Bytes quoted =
        PacketBuilder::tcp(vip, 80, c, static_cast<uint16_t>(p + 10000), kTcpAck).build();
    out.push_back(PacketBuilder::icmpError("198.18.50.1", vip, 3, 4, 1400, quoted));
  }

  // Runs `pkts` through the pipeline in batches of 32 with preallocated buffers.
  void run(const std::vector<Bytes>& pkts, const SnapshotPtr& snap) {
    // The batch's buffers, made once (before any measurement).
    if (bufs_.empty()) {
      for (int i = 0; i < 32; ++i) {
        bufs_.push_back(std::make_unique<PacketBuffer>());
        ptrs_.push_back(bufs_.back().get());
      }
    }
    for (size_t i = 0; i < pkts.size(); i += 32) {
      size_t n = std::min<size_t>(32, pkts.size() - i);
      for (size_t k = 0; k < n; ++k) {
        ASSERT_TRUE(bufs_[k]->assign(pkts[i + k]));
      }
      sink_.clear();
      pipe_->process(*snap, absl::MakeConstSpan(ptrs_.data(), n), sink_, clock_.now());
      clock_.advance(millis(1));
      conns_->expire(clock_.now());
      // The housekeeping thread's once-a-second drop_entry call, here once a batch.
      dropped_ += runDefenseTick(*conns_, snap->sysctls(), clock_.now(), i).dropped;
    }
  }

  size_t dropped_ = 0;
  std::vector<std::unique_ptr<PacketBuffer>> bufs_;
  std::vector<PacketBuffer*> ptrs_;
};

TEST_F(PipelineNoAllocTest, ProcessDoesNotAllocateAfterWarmUp) {
  configure();
  std::vector<Bytes> warm, measured;
  for (uint16_t p = 1000; p < 1100; ++p)
    addFlow(warm, p);
  for (uint16_t p = 2000; p < 2720; ++p)
    addFlow(measured, p);  // ~10k packets
  for (uint16_t p = 1000; p < 1100; ++p)
    addFlow(measured, p);  // and hits on warm conns
  SnapshotPtr snap = table_->snapshot();
  run(warm, snap);
  uint64_t before = threadAllocations();
  run(measured, snap);
  uint64_t after = threadAllocations();
  EXPECT_EQ(after - before, 0u);
  // The mix really exercised the paths it claims to.
  const PipelineCounters& c = pipe_->counters();
  // 820 flows of 7 new-conn packets, one in 50 dropped, plus one conn each from an ICMP error.
  EXPECT_GT(c.conns_created.value(), 6000u);
  EXPECT_GT(c.templates_created.value(), 0u);
  EXPECT_GT(c.icmp_sent.value(), 1000u);
  EXPECT_GT(c.icmp_echo_replies.value(), 800u);
  EXPECT_GT(c.to_host.value(), 800u);
  EXPECT_GT(drops(DropReason::kNoDest), 800u);
  EXPECT_GT(drops(DropReason::kTtlExceeded), 800u);
  EXPECT_GT(drops(DropReason::kMalformed), 800u);
  EXPECT_GT(c.tx_packets.value(), 5000u);
  EXPECT_GT(drops(DropReason::kDefense), 100u);
  EXPECT_TRUE(pipe_->defense().secure_tcp);
  EXPECT_GT(dropped_, 100u);
}

// SYN cookies (syncookies=2 on a plain NAT service, --synproxy on a full NAT one): answering a
// SYN, opening the conn a returned cookie proves, the real server's handshake and the translated
// data both ways allocate nothing either (the cookies are computed up front, as the client's
// stack would from lbd's SYN-ACKs).
TEST_F(PipelineNoAllocTest, SynCookiesAndTheConnsTheyOpenDoNotAllocate) {
  const char* vip = "198.18.100.1";
  const char* rs = "198.18.1.10";
  const char* c = "198.18.0.1";
  addService(tcpKey(vip, 80));
  addDest(tcpKey(vip, 80), dest(rs, 8080, FwdMethod::kMasq));
  addService(tcpKey(vip, 90), "rr", kSvcSynproxy, 0, {ip("198.18.1.1")});
  addDest(tcpKey(vip, 90), dest(rs, 9090, FwdMethod::kFullNat));
  Sysctls sys;
  sys.syncookies = 2;
  setSysctls(sys);
  const uint64_t secret = synproxy::secretOf(conns_->seed());
  auto flow = [&](std::vector<Bytes>& out, uint16_t p) {
    const uint32_t ck80 = synproxy::makeCookie(secret, synproxy::CookieFlow{ip(c), ip(vip), p, 80},
                                               1000, 0, clock_.now());
    const uint32_t ck90 = synproxy::makeCookie(secret, synproxy::CookieFlow{ip(c), ip(vip), p, 90},
                                               1000, 0, clock_.now());
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpSyn).seq(1000).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpAck).seq(1001).ack(ck80 + 1).build());
    out.push_back(
        PacketBuilder::tcp(rs, 8080, c, p, kTcpSyn | kTcpAck).seq(5000).ack(1001).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 80, kTcpAck | kTcpPsh)
                      .seq(1001)
                      .ack(ck80 + 1)
                      .payload("GET /")
                      .build());
    out.push_back(PacketBuilder::tcp(rs, 8080, c, p, kTcpAck | kTcpPsh)
                      .seq(5001)
                      .ack(1006)
                      .payload("HTTP/1.0 200")
                      .build());
    out.push_back(
        PacketBuilder::tcp(c, p, vip, 80, kTcpAck | kTcpFin).seq(1006).ack(ck80 + 13).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 90, kTcpSyn).seq(1000).build());
    out.push_back(PacketBuilder::tcp(c, p, vip, 90, kTcpAck).seq(1001).ack(ck90 + 1).build());
    // A spoofed ACK returning no cookie.
    out.push_back(PacketBuilder::tcp(c, static_cast<uint16_t>(p + 20000), vip, 80, kTcpAck)
                      .seq(1001)
                      .ack(77)
                      .build());
  };
  std::vector<Bytes> warm, measured;
  for (uint16_t p = 1000; p < 1100; ++p)
    flow(warm, p);
  for (uint16_t p = 2000; p < 2800; ++p)
    flow(measured, p);
  SnapshotPtr snap = table_->snapshot();
  run(warm, snap);
  const PipelineCounters& k = pipe_->counters();
  const uint64_t answered = k.synproxy_syn_answered.value();
  const uint64_t opened = k.synproxy_conns_opened.value();
  const uint64_t before = threadAllocations();
  run(measured, snap);
  const uint64_t after = threadAllocations();
  EXPECT_EQ(after - before, 0u);
  // Every SYN of the measured flows was answered with a cookie and every cookie opened its conn.
  EXPECT_EQ(k.synproxy_syn_answered.value() - answered, 1600u);
  EXPECT_EQ(k.synproxy_conns_opened.value() - opened, 1600u);
  EXPECT_GT(drops(DropReason::kNotNewConn), 800u);
  // The plain NAT conns went through the real server's handshake to the client's FIN (IPVS's
  // input FIN: CLOSE_WAIT); the synproxy ones wait for their real server's SYN-ACK.
  size_t closing = 0, syn_recv = 0;
  for (const Conn& conn : conns()) {
    if (conn.cport >= 2000 && conn.cport < 2800 && (conn.flags & kConnFSynproxy) != 0) {
      closing += conn.vport == 80 && std::string(connStateName(conn)) == "CLOSE_WAIT";
      syn_recv += conn.vport == 90 && std::string(connStateName(conn)) == "SYN_RECV";
    }
  }
  EXPECT_EQ(closing, 800u);
  EXPECT_EQ(syn_recv, 800u);
}

// --pe sip: a worker's first SIP request allocates nothing (nor takes the store registry's
// lock): the pipeline took its table's Call-ID store when it was built. Before that fix the
// first SIP packet of each worker looked the store up in a registry (mutex) and the first of
// the process created it there (allocation), which this test saw.
TEST_F(PipelineNoAllocTest, FirstSipPacketOfEachWorkerDoesNotAllocate) {
  const char* vip = "198.18.100.1";
  addService(tcpKey(vip, 80));
  addDest(tcpKey(vip, 80), dest("198.18.1.10", 8080, FwdMethod::kMasq));
  ServiceConfig sip;
  sip.key = udpKey(vip, 5060);
  sip.scheduler = "rr";
  sip.flags = kSvcPersistent;
  sip.timeout_s = 60;
  sip.pe_name = "sip";
  absl::Status st = table_->addService(sip);
  ASSERT_TRUE(st.ok()) << st;
  addDest(sip.key, dest("198.18.1.10", 5060, FwdMethod::kMasq));
  table_->runtime().setWorkers(2);
  Pipeline second(*conns_, 1, 7);  // another worker of the same table
  const Bytes tcp = PacketBuilder::tcp("198.18.0.1", 1000, vip, 80, kTcpSyn).build();
  const Bytes invite = PacketBuilder::udp("198.18.0.1", 5061, vip, 5060)
                           .payload("INVITE sip:s@198.18.100.1 SIP/2.0\r\nCall-ID: c1@h\r\n\r\n")
                           .build();
  SnapshotPtr snap = table_->snapshot();
  PacketBuffer buf;
  PacketBuffer* b = &buf;
  for (Pipeline* pipe : {pipe_.get(), &second}) {
    // Warm-up without SIP: the worker sees the snapshot's runtime once.
    ASSERT_TRUE(buf.assign(tcp));
    sink_.clear();
    pipe->process(*snap, absl::MakeConstSpan(&b, 1), sink_, clock_.now());
    ASSERT_EQ(buf.verdict, Verdict::kForward);
    ASSERT_TRUE(buf.assign(invite));
    const uint64_t before = threadAllocations();
    pipe->process(*snap, absl::MakeConstSpan(&b, 1), sink_, clock_.now());
    const uint64_t after = threadAllocations();
    EXPECT_EQ(after - before, 0u) << "worker " << (pipe == &second ? 1 : 0);
    EXPECT_EQ(buf.verdict, Verdict::kForward);
  }
  // The first INVITE made the call's template; the second worker found it by its Call-ID.
  EXPECT_EQ(pipe_->counters().templates_created.value(), 1u);
  EXPECT_EQ(second.counters().templates_created.value(), 0u);
  EXPECT_EQ(peTemplatesFor(*conns_).size(), 1u);
}

}  // namespace
}  // namespace lb::testing
