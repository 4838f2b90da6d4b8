// SPDX-License-Identifier: Apache-2.0
// Synced conns and templates at the backup meeting their first packets after a failover: a conn
// created unbound (its real server was not configured when the message came) is bound by its
// first packet (ip_vs_try_bind_dest), or forwarded unbound to the message's real server as
// ip_vs_in does; a synced persistence template sends a persistent client's new conn to the same
// real server.
#include <vector>

#include "core/sync/sync_backup.h"
#include "core/sync/sync_master.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kClient = "198.18.0.1";
constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs1 = "198.18.1.10";
constexpr const char* kRs2 = "198.18.1.11";

class SyncPipelineTest : public PipelineFixture {
 protected:
  // An ESTABLISHED NAT conn kClient:40000 -> kVip:80 -> rs:8080, as a v1 message carries it.
  static SyncConn msg(const char* rs, uint16_t cport = 40000) {
    SyncConn s;
    s.af = Af::kInet;
    s.protocol = 6;
    s.flags = 0;  // MASQ, active
    s.state = kTcpEstablished;
    s.caddr = ip(kClient);
    s.cport = cport;
    s.vaddr = ip(kVip);
    s.vport = 80;
    s.daddr = ip(rs);
    s.dport = 8080;
    s.timeout_s = 900;
    return s;
  }

  SyncApplyResult apply(const SyncConn& s) {
    return applySyncConn(*conns_, *table_->snapshot(), &table_->runtime(), s, sys_, clock_.now(),
                         counters_);
  }

  Result in(uint16_t cport, uint8_t flags, const std::string& payload = "x") {
    return send(PacketBuilder::tcp(kClient, cport, kVip, 80, flags).payload(payload).build());
  }

  static Bytes toRs(const char* rs, uint16_t cport, uint8_t flags, const std::string& payload) {
    return PacketBuilder::tcp(kClient, cport, rs, 8080, flags).ttl(63).payload(payload).build();
  }

  SyncSysctls sys_;
  SyncBackupCounters counters_;
};

// The message came before kRs2 was configured here: the conn is unbound. Once kRs2 exists,
// the client's first packet binds the conn, counts it active on kRs2 and goes to kRs2.
TEST_F(SyncPipelineTest, UnboundConnIsBoundByItsFirstClientPacket) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  ASSERT_EQ(apply(msg(kRs2)), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.unbound, 1u);
  EXPECT_EQ(connFrom(kClient, 40000).dest, kNoDest);

  addDest(key, dest(kRs2, 8080, FwdMethod::kMasq));
  const DestId d2 = destId(key, kRs2, 8080);
  Result r = in(40000, kTcpAck, "data");
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_BYTES(r.out, toRs(kRs2, 40000, kTcpAck, "data"));
  Conn c = connFrom(kClient, 40000);
  EXPECT_EQ(c.dest, d2);
  EXPECT_EQ(c.svc, svcId(key));
  EXPECT_EQ(active(d2), 1);
  EXPECT_EQ(pipe_->counters().sync_bound.value(), 1u);
  EXPECT_EQ(pipe_->counters().sync_unbound.value(), 0u);
  EXPECT_EQ(table_->runtime().destStats(d2).inpkts, 1u);

  // Bound once: the next packet changes nothing in the counts.
  ASSERT_EQ(in(40000, kTcpAck).verdict, Verdict::kForward);
  EXPECT_EQ(active(d2), 1);
  EXPECT_EQ(pipe_->counters().sync_bound.value(), 1u);
}

// The real server's packet may come first (a download): it binds the conn too.
TEST_F(SyncPipelineTest, UnboundConnIsBoundByAReply) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  ASSERT_EQ(apply(msg(kRs2)), SyncApplyResult::kCreated);
  addDest(key, dest(kRs2, 8080, FwdMethod::kMasq));
  const DestId d2 = destId(key, kRs2, 8080);
  Result r = send(PacketBuilder::tcp(kRs2, 8080, kClient, 40000, kTcpAck).payload("reply").build());
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_BYTES(
      r.out,
      PacketBuilder::tcp(kVip, 80, kClient, 40000, kTcpAck).ttl(63).payload("reply").build());
  EXPECT_EQ(connFrom(kClient, 40000).dest, d2);
  EXPECT_EQ(active(d2), 1);
  EXPECT_EQ(pipe_->counters().sync_bound.value(), 1u);
}

// No such real server here at all: ip_vs_in checks only a bound conn's dest, so the conn is
// handled unbound, to the message's real server, and counted in sync_unbound.
TEST_F(SyncPipelineTest, StillUnboundConnIsForwardedToTheSyncedServer) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  ASSERT_EQ(apply(msg(kRs2)), SyncApplyResult::kCreated);
  Result r = in(40000, kTcpAck, "data");
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_BYTES(r.out, toRs(kRs2, 40000, kTcpAck, "data"));
  EXPECT_EQ(connFrom(kClient, 40000).dest, kNoDest);
  EXPECT_EQ(pipe_->counters().sync_unbound.value(), 1u);
  EXPECT_EQ(active(destId(key, kRs1, 8080)), 0);
}

// A conn lbd scheduled itself whose real server was removed is still dropped (unchanged).
TEST_F(SyncPipelineTest, RemovedDestOfAnOwnConnStillDrops) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  ASSERT_EQ(in(40000, kTcpSyn, "").verdict, Verdict::kForward);
  ASSERT_TRUE(table_->deleteDest(key, ip(kRs1), 8080).ok());
  Result r = in(40000, kTcpAck);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kDestUnavailable);
}

// Persistence (-p 300): the master's template for the client's network and a conn under it
// arrive at the backup; after the failover the client's NEW conn (a SYN from another port)
// goes to the template's real server, not to the one rr would pick, and is controlled by it.
TEST_F(SyncPipelineTest, SyncedTemplateKeepsAPersistentClientOnItsServer) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  addDest(key, dest(kRs2, 8080, FwdMethod::kMasq));
  for (int i = 0; i < 2; ++i) {
    // Whichever rr would pick first, the template says kRs2 / then kRs1: both must hold.
    const char* rs = i == 0 ? kRs2 : kRs1;
    const uint16_t old_port = static_cast<uint16_t>(40000 + i * 10);
    const char* client = i == 0 ? kClient : "198.18.0.2";
    SyncConn t;
    t.af = Af::kInet;
    t.protocol = 6;
    t.flags = kConnFTemplate | kConnFInactive;
    t.state = 0;
    t.caddr = ip(client);
    t.cport = 0;
    t.vaddr = ip(kVip);
    t.vport = 80;
    t.daddr = ip(rs);
    t.dport = 8080;
    t.timeout_s = 300;
    ASSERT_EQ(apply(t), SyncApplyResult::kCreated);
    SyncConn c = msg(rs, old_port);
    c.caddr = ip(client);
    ASSERT_EQ(apply(c), SyncApplyResult::kCreated);
    EXPECT_EQ(persistent(destId(key, rs, 8080)), 1);

    Result r = send(
        PacketBuilder::tcp(client, static_cast<uint16_t>(old_port + 1), kVip, 80, kTcpSyn).build());
    ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
    EXPECT_BYTES(r.out,
                 PacketBuilder::tcp(client, static_cast<uint16_t>(old_port + 1), rs, 8080, kTcpSyn)
                     .ttl(63)
                     .build());
    Conn nc = connFrom(client, static_cast<uint16_t>(old_port + 1));
    EXPECT_EQ(nc.daddr, ip(rs));
    EXPECT_NE(nc.control, kNoConn);
  }
  EXPECT_EQ(pipe_->counters().templates_created.value(), 0u);
}

// A template synced before its real server existed here is bound by the client's next SYN.
TEST_F(SyncPipelineTest, UnboundSyncedTemplateIsBoundByANewConn) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcPersistent, 300);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  SyncConn t;
  t.af = Af::kInet;
  t.protocol = 6;
  t.flags = kConnFTemplate | kConnFInactive;
  t.caddr = ip(kClient);
  t.vaddr = ip(kVip);
  t.vport = 80;
  t.daddr = ip(kRs2);
  t.dport = 8080;
  t.timeout_s = 300;
  ASSERT_EQ(apply(t), SyncApplyResult::kCreated);
  EXPECT_EQ(counters_.unbound, 1u);
  addDest(key, dest(kRs2, 8080, FwdMethod::kMasq));
  Result r = in(40001, kTcpSyn, "");
  ASSERT_EQ(r.verdict, Verdict::kForward) << dropReasonName(r.reason);
  EXPECT_BYTES(r.out, toRs(kRs2, 40001, kTcpSyn, ""));
  EXPECT_EQ(persistent(destId(key, kRs2, 8080)), 1);
  EXPECT_EQ(pipe_->counters().templates_created.value(), 0u);
  EXPECT_EQ(pipe_->counters().sync_bound.value(), 1u);
}

// The master's side through a real pipeline: a hook as lbd's (syncConnChain with the conn's
// in_pkts). The conn is sent at its 3rd client packet in ESTABLISHED, not for the next ones,
// and a change into CLOSE_WAIT at once, on the client's FIN (the pipeline's state transition
// leaves old_state to the sync rules, which send a changed state immediately).
class RecordingSyncHook final : public ConnSyncHook {
 public:
  void onClientPacket(ConnTable& table, ConnGuard& cp, MonoTime now) noexcept override {
    const uint32_t pkts = cp->in_pkts;
    syncConnChain(table, cp, pkts, sys, now, [this](const SyncConn& c) { sent.push_back(c); });
  }

  SyncSysctls sys;
  std::vector<SyncConn> sent;
};

TEST_F(SyncPipelineTest, MasterSendsAtThresholdAndStateChangesAtOnce) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  RecordingSyncHook hook;
  pipe_->setSyncHook(&hook);
  ASSERT_EQ(in(40000, kTcpSyn, "").verdict, Verdict::kForward);
  ASSERT_EQ(send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpSyn | kTcpAck).build()).verdict,
            Verdict::kForward);
  ASSERT_EQ(in(40000, kTcpAck, "").verdict, Verdict::kForward);  // ESTABLISHED, in_pkts 2
  EXPECT_TRUE(hook.sent.empty());
  ASSERT_EQ(in(40000, kTcpAck, "GET").verdict, Verdict::kForward);  // in_pkts 3
  ASSERT_EQ(hook.sent.size(), 1u);
  EXPECT_EQ(hook.sent[0].state, kTcpEstablished);
  EXPECT_EQ(hook.sent[0].daddr, ip(kRs1));
  ASSERT_EQ(in(40000, kTcpAck, "more").verdict, Verdict::kForward);  // in_pkts 4: nothing
  EXPECT_EQ(hook.sent.size(), 1u);
  ASSERT_EQ(in(40000, kTcpFin | kTcpAck, "").verdict, Verdict::kForward);  // in_pkts 5
  ASSERT_EQ(hook.sent.size(), 2u);
  EXPECT_EQ(hook.sent[1].state, kTcpCloseWait);  // the client's FIN (ip_vs's input table)
  pipe_->setSyncHook(nullptr);
}

// SYN proxy (item 5): the conn the proxy opened is synced like any other, at its client's 3rd
// packet once the real server's handshake is done, with the sequence delta (lbd's option). A
// backup that applies the message translates the conn's next packets exactly as the master.
uint32_t seqOf(const Bytes& b) {  // IPv4 without options
  return (uint32_t{b[24]} << 24) | (uint32_t{b[25]} << 16) | (uint32_t{b[26]} << 8) | b[27];
}

uint32_t ackOf(const Bytes& b) {
  return (uint32_t{b[28]} << 24) | (uint32_t{b[29]} << 16) | (uint32_t{b[30]} << 8) | b[31];
}

TEST_F(SyncPipelineTest, SynproxyConnIsSyncedWithItsSequenceDelta) {
  ServiceKey key = tcpKey(kVip, 80);
  addService(key, "rr", kSvcSynproxy);
  addDest(key, dest(kRs1, 8080, FwdMethod::kMasq));
  RecordingSyncHook hook;
  pipe_->setSyncHook(&hook);
  auto client = [&](uint8_t flags, uint32_t seq, uint32_t ack, const std::string& data) {
    PacketBuilder b = PacketBuilder::tcp(kClient, 40000, kVip, 80, flags).seq(seq).ack(ack);
    if (!data.empty())
      b.payload(data);
    return send(b.build());
  };
  Result r = client(kTcpSyn, 1000, 0, "");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  const uint32_t cookie = seqOf(r.out);
  ASSERT_EQ(client(kTcpAck, 1001, cookie + 1, "").verdict, Verdict::kForward);  // SYN to kRs1
  r = send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpSyn | kTcpAck)
               .seq(5000)
               .ack(1001)
               .build());
  ASSERT_EQ(r.verdict, Verdict::kForward);  // became the client's ACK to kRs1
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  EXPECT_TRUE(hook.sent.empty());
  ASSERT_EQ(client(kTcpAck, 1001, cookie + 1, "a").verdict, Verdict::kForward);  // in_pkts 2
  EXPECT_TRUE(hook.sent.empty());
  ASSERT_EQ(client(kTcpAck, 1002, cookie + 1, "b").verdict, Verdict::kForward);  // in_pkts 3
  ASSERT_EQ(hook.sent.size(), 1u);
  const SyncConn sc = hook.sent[0];
  EXPECT_EQ(sc.state, kTcpEstablished);
  ASSERT_TRUE(sc.has_lbd);
  EXPECT_NE(sc.lbd.flags & kSyncLbdSynproxy, 0u);
  EXPECT_EQ(sc.lbd.seq_delta, cookie - 5000);
  const Result master = client(kTcpAck, 1003, cookie + 1, "c");
  ASSERT_EQ(master.verdict, Verdict::kForward);
  EXPECT_EQ(ackOf(master.out), 5001u);  // the client's ack on the server's numbers
  pipe_->setSyncHook(nullptr);

  // The backup: a table and pipeline of its own with the same services, the message applied.
  ConnTable::Options opt;
  opt.capacity = 4096;
  opt.shards = 4;
  pipe_.reset();  // before its table
  conns_ = std::make_unique<ConnTable>(opt, Pipeline::connEvents(table_->runtime()));
  pipe_ = std::make_unique<Pipeline>(*conns_, 0, 7);
  ASSERT_EQ(apply(sc), SyncApplyResult::kCreated);
  const Result backup = client(kTcpAck, 1003, cookie + 1, "c");
  ASSERT_EQ(backup.verdict, Verdict::kForward) << dropReasonName(backup.reason);
  EXPECT_BYTES(backup.out, master.out);
  r = send(PacketBuilder::tcp(kRs1, 8080, kClient, 40000, kTcpAck)
               .seq(5001)
               .ack(1004)
               .payload("reply")
               .build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(seqOf(r.out), cookie + 1);  // the server's numbers on the cookie's, as at the master
  EXPECT_TRUE(checksumsValid(r.out));
}

}  // namespace
}  // namespace lb::testing
