// SPDX-License-Identifier: Apache-2.0
// The FTP helper in the pipeline (core/pipeline/ftp_pipeline.cc): a control conn through a NAT
// and a full-NAT service on port 21, PASV/EPSV replies rewritten to the VIP with the NO_CPORT
// data conn made ahead and taken by the client's data SYN, PORT/EPRT making the active data
// conn that the real server's SYN from port 20 leaves through NATed to VIP:20, and the sequence
// numbers of the control conn adjusted after a rewrite changed a payload's length.
#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/ftp.h"
#include "core/pipeline/pipeline.h"
#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

constexpr const char* kVip = "198.18.100.1";
constexpr const char* kRs = "198.18.1.10";
constexpr const char* kLaddr = "198.18.1.1";
constexpr const char* kClient = "198.18.0.1";

uint32_t get32(const Bytes& b, size_t off) {
  return (uint32_t{b[off]} << 24) | (uint32_t{b[off + 1]} << 16) | (uint32_t{b[off + 2]} << 8) |
         b[off + 3];
}

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

// An IPv4 TCP packet's fields.
struct Seg {
  explicit Seg(const Bytes& b)
      : src(IpAddr::fromBytes(Af::kInet, &b[12])),
        dst(IpAddr::fromBytes(Af::kInet, &b[16])),
        sport(get16(b, 20)),
        dport(get16(b, 22)),
        seq(get32(b, 24)),
        ack(get32(b, 28)),
        flags(b[33]),
        payload(b.begin() + 20 + (b[32] >> 4) * 4, b.end()) {}

  IpAddr src, dst;
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  std::string payload;
};

class FtpPipelineTest : public PipelineFixture {
 protected:
  void SetUp() override {
    const uint16_t ports[] = {21};
    pipe_->setFtp(&ftp_, ports);
  }

  void useMethod(FwdMethod m) {
    std::vector<IpAddr> laddrs;
    if (m == FwdMethod::kFullNat)
      laddrs.push_back(ip(kLaddr));
    addService(tcpKey(kVip, 21), "rr", 0, 0, laddrs);
    addDest(tcpKey(kVip, 21), dest(kRs, 21, m));
  }

  Result fromClient(uint16_t sport,
                    uint16_t dport,
                    uint8_t flags,
                    uint32_t seq,
                    uint32_t ack,
                    const std::string& data = "") {
    PacketBuilder b = PacketBuilder::tcp(kClient, sport, kVip, dport, flags).seq(seq).ack(ack);
    if (!data.empty())
      b.payload(data);
    return send(b.build());
  }

  Result fromServer(uint16_t sport,
                    const char* to,
                    uint16_t dport,
                    uint8_t flags,
                    uint32_t seq,
                    uint32_t ack,
                    const std::string& data = "") {
    PacketBuilder b = PacketBuilder::tcp(kRs, sport, to, dport, flags).seq(seq).ack(ack);
    if (!data.empty())
      b.payload(data);
    return send(b.build());
  }

  // The control conn's handshake (client ISN 1000, server ISN 5000); returns the address the
  // real server sees the client at (the client, or the local address in full NAT) and port.
  std::pair<const char*, uint16_t> handshake(bool full_nat) {
    Result r = fromClient(40000, 21, kTcpSyn, 1000, 0);
    EXPECT_EQ(r.verdict, Verdict::kForward);
    Seg s(r.out);
    EXPECT_EQ(s.dst, ip(kRs));
    const char* seen = full_nat ? kLaddr : kClient;
    EXPECT_EQ(s.src, ip(seen));
    const uint16_t port = s.sport;
    r = fromServer(21, seen, port, kTcpSyn | kTcpAck, 5000, 1001);
    EXPECT_EQ(r.verdict, Verdict::kForward);
    r = fromClient(40000, 21, kTcpAck, 1001, 5001);
    EXPECT_EQ(r.verdict, Verdict::kForward);
    EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
    return {seen, port};
  }

  ftp::StateTable ftp_{256};
};

TEST_F(FtpPipelineTest, NatPassive227RewrittenDataConnMadeAheadSeqAdjusted) {
  useMethod(FwdMethod::kMasq);
  auto [seen, port] = handshake(false);
  // PASV passes unchanged.
  Result r = fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, "PASV\r\n");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).payload, "PASV\r\n");
  EXPECT_EQ(Seg(r.out).seq, 1001u);
  // The 227 reply names the VIP; one byte longer ("198,18,100,1" vs "198,18,1,10").
  const std::string reply = "227 Entering Passive Mode (198,18,1,10,195,80).\r\n";
  r = fromServer(21, seen, port, kTcpAck | kTcpPsh, 5001, 1007, reply);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out)) << hexDump(r.out.data(), r.out.size());
  Seg s(r.out);
  EXPECT_EQ(s.src, ip(kVip));
  EXPECT_EQ(s.sport, 21);
  EXPECT_EQ(s.dst, ip(kClient));
  EXPECT_EQ(s.seq, 5001u);
  EXPECT_EQ(s.payload, "227 Entering Passive Mode (198,18,100,1,195,80).\r\n");
  EXPECT_EQ(pipe_->counters().ftp_passive.value(), 1u);
  // The NO_CPORT data conn <client:0 -> VIP:50000 -> RS:50000>, LISTEN.
  bool found = false;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFNoCport) != 0) {
      found = true;
      EXPECT_EQ(c.cport, 0);
      EXPECT_EQ(c.vport, 50000);
      EXPECT_EQ(c.dport, 50000);
      EXPECT_EQ(c.daddr, ip(kRs));
      EXPECT_EQ(c.state, kTcpListen);
      EXPECT_NE(c.control, kNoConn);
    }
  }
  EXPECT_TRUE(found);
  // The server's next segment: 1 byte later in the client's view.
  const uint32_t next = 5001 + static_cast<uint32_t>(reply.size());
  r = fromServer(21, seen, port, kTcpAck | kTcpPsh, next, 1007, "150 ok\r\n");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).seq, next + 1);
  EXPECT_TRUE(checksumsValid(r.out));
  // A retransmission of the 227 keeps its number and gets the same rewrite.
  r = fromServer(21, seen, port, kTcpAck | kTcpPsh, 5001, 1007, reply);
  EXPECT_EQ(Seg(r.out).seq, 5001u);
  EXPECT_EQ(Seg(r.out).payload, "227 Entering Passive Mode (198,18,100,1,195,80).\r\n");
  // The client's ack of everything (in its view) reaches the server in the server's numbers.
  r = fromClient(40000, 21, kTcpAck, 1007, next + 1 + 8);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).ack, next + 8);
  EXPECT_TRUE(checksumsValid(r.out));
  // Acks up to the rewritten segment are not moved.
  r = fromClient(40000, 21, kTcpAck, 1007, 5001);
  EXPECT_EQ(Seg(r.out).ack, 5001u);

  // The client's data SYN to VIP:50000 takes the data conn and reaches the real server.
  r = fromClient(40001, 50000, kTcpSyn, 9000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward) << static_cast<int>(r.reason);
  s = Seg(r.out);
  EXPECT_EQ(s.dst, ip(kRs));
  EXPECT_EQ(s.dport, 50000);
  EXPECT_EQ(s.src, ip(kClient));
  EXPECT_EQ(s.sport, 40001);
  for (const Conn& c : conns())
    EXPECT_EQ(c.flags & kConnFNoCport, 0u);
  Conn data = connFrom(kClient, 40001);
  EXPECT_EQ(data.vport, 50000);
  EXPECT_NE(data.control, kNoConn);
  // Its reply leaves from VIP:50000.
  r = fromServer(50000, kClient, 40001, kTcpSyn | kTcpAck, 7000, 9001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  s = Seg(r.out);
  EXPECT_EQ(s.src, ip(kVip));
  EXPECT_EQ(s.sport, 50000);
  EXPECT_EQ(s.dst, ip(kClient));
  EXPECT_EQ(s.dport, 40001);
  EXPECT_TRUE(checksumsValid(r.out));
}

TEST_F(FtpPipelineTest, NatEpsv229KeepsLengthAndMakesDataConn) {
  useMethod(FwdMethod::kMasq);
  auto [seen, port] = handshake(false);
  fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, "EPSV\r\n");
  const std::string reply = "229 Entering Extended Passive Mode (|||40123|)\r\n";
  Result r = fromServer(21, seen, port, kTcpAck | kTcpPsh, 5001, 1007, reply);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).payload, reply);
  EXPECT_TRUE(checksumsValid(r.out));
  EXPECT_EQ(pipe_->counters().ftp_passive.value(), 1u);
  r = fromServer(21, seen, port, kTcpAck, 5001 + static_cast<uint32_t>(reply.size()), 1007);
  EXPECT_EQ(Seg(r.out).seq, 5001 + reply.size());  // no length change: no adjustment
  r = fromClient(40002, 40123, kTcpSyn, 9000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).dport, 40123);
  EXPECT_EQ(Seg(r.out).dst, ip(kRs));
}

TEST_F(FtpPipelineTest, NatActivePortMakesDataConnFromPort20) {
  useMethod(FwdMethod::kMasq);
  handshake(false);
  const std::string cmd = "PORT 198,18,0,1,156,65\r\n";  // port 40001
  Result r = fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, cmd);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).payload, cmd);  // NAT: the client's own address stays
  EXPECT_EQ(pipe_->counters().ftp_active.value(), 1u);
  Conn data = connFrom(kClient, 40001);
  EXPECT_EQ(data.vport, 20);
  EXPECT_EQ(data.dport, 20);
  EXPECT_EQ(data.state, kTcpListen);
  // The real server's SYN from port 20 leaves NATed to VIP:20.
  r = fromServer(20, kClient, 40001, kTcpSyn, 3000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward) << static_cast<int>(r.reason);
  Seg s(r.out);
  EXPECT_EQ(s.src, ip(kVip));
  EXPECT_EQ(s.sport, 20);
  EXPECT_EQ(s.dst, ip(kClient));
  EXPECT_EQ(s.dport, 40001);
  EXPECT_TRUE(checksumsValid(r.out));
  // The client's SYN-ACK goes back to the real server's port 20.
  r = fromClient(40001, 20, kTcpSyn | kTcpAck, 8000, 3001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).dst, ip(kRs));
  EXPECT_EQ(Seg(r.out).dport, 20);
}

TEST_F(FtpPipelineTest, FullNatActiveRewritesPortToLocalAddress) {
  useMethod(FwdMethod::kFullNat);
  auto [seen, port] = handshake(true);
  const std::string cmd = "PORT 198,18,0,1,156,65\r\n";
  Result r = fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, cmd);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out)) << hexDump(r.out.data(), r.out.size());
  Conn data = connFrom(kClient, 40001);
  ASSERT_NE(data.lport, 0);
  EXPECT_EQ(data.laddr, ip(kLaddr));
  char buf[ftp::kMaxText];
  const std::string want =
      "PORT " + std::string(buf, ftp::formatOld(ip(kLaddr), data.lport, buf)) + "\r\n";
  Seg s(r.out);
  EXPECT_EQ(s.payload, want);
  EXPECT_EQ(s.src, ip(kLaddr));
  // The real server connects to the local address; the client sees VIP:20.
  r = fromServer(20, kLaddr, data.lport, kTcpSyn, 3000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward) << static_cast<int>(r.reason);
  s = Seg(r.out);
  EXPECT_EQ(s.src, ip(kVip));
  EXPECT_EQ(s.sport, 20);
  EXPECT_EQ(s.dst, ip(kClient));
  EXPECT_EQ(s.dport, 40001);
  // The command changed length: the client's later segments and the server's acks move.
  const int32_t diff = static_cast<int32_t>(want.size()) - static_cast<int32_t>(cmd.size());
  const uint32_t next = 1001 + static_cast<uint32_t>(cmd.size());
  r = fromClient(40000, 21, kTcpAck | kTcpPsh, next, 5001, "RETR f\r\n");
  EXPECT_EQ(Seg(r.out).seq, next + static_cast<uint32_t>(diff));
  r = fromServer(21, seen, port, kTcpAck, 5001, next + static_cast<uint32_t>(diff) + 8);
  EXPECT_EQ(Seg(r.out).ack, next + 8);
  EXPECT_TRUE(checksumsValid(r.out));
}

TEST_F(FtpPipelineTest, FullNatPassiveDataConnGetsLocalAddress) {
  useMethod(FwdMethod::kFullNat);
  auto [seen, port] = handshake(true);
  fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, "PASV\r\n");
  Result r = fromServer(21, seen, port, kTcpAck | kTcpPsh, 5001, 1007,
                        "227 Entering Passive Mode (198,18,1,10,195,80).\r\n");
  EXPECT_EQ(Seg(r.out).payload, "227 Entering Passive Mode (198,18,100,1,195,80).\r\n");
  r = fromClient(40001, 50000, kTcpSyn, 9000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward) << static_cast<int>(r.reason);
  Seg s(r.out);
  EXPECT_EQ(s.src, ip(kLaddr));
  EXPECT_EQ(s.dst, ip(kRs));
  EXPECT_EQ(s.dport, 50000);
  r = fromServer(50000, kLaddr, s.sport, kTcpSyn | kTcpAck, 7000, 9001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).src, ip(kVip));
  EXPECT_EQ(Seg(r.out).sport, 50000);
  EXPECT_EQ(Seg(r.out).dst, ip(kClient));
  EXPECT_EQ(Seg(r.out).dport, 40001);
}

TEST_F(FtpPipelineTest, MalformedCommandIsCountedAndPassesUnchanged) {
  useMethod(FwdMethod::kMasq);
  handshake(false);
  const std::string cmd = "PORT 198,18,0,1,156\r\n";
  Result r = fromClient(40000, 21, kTcpAck | kTcpPsh, 1001, 5001, cmd);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Seg(r.out).payload, cmd);
  EXPECT_EQ(pipe_->counters().ftp_malformed.value(), 1u);
  EXPECT_EQ(pipe_->counters().ftp_active.value(), 0u);
  EXPECT_EQ(conns().size(), 1u);
}

TEST_F(FtpPipelineTest, OtherPortsAndDisabledHelperAreUntouched) {
  addService(tcpKey(kVip, 2121), "rr");
  addDest(tcpKey(kVip, 2121), dest(kRs, 21, FwdMethod::kMasq));
  fromClient(40000, 2121, kTcpSyn, 1000, 0);
  fromServer(21, kClient, 40000, kTcpSyn | kTcpAck, 5000, 1001);
  fromClient(40000, 2121, kTcpAck, 1001, 5001);
  fromClient(40000, 2121, kTcpAck | kTcpPsh, 1001, 5001, "PASV\r\n");
  const std::string reply = "227 Entering Passive Mode (198,18,1,10,195,80).\r\n";
  Result r = fromServer(21, kClient, 40000, kTcpAck | kTcpPsh, 5001, 1007, reply);
  EXPECT_EQ(Seg(r.out).payload, reply);
  // Port 2121 made a helper port: rewritten.
  const uint16_t ports[] = {2121};
  pipe_->setFtp(&ftp_, ports);
  fromClient(40000, 2121, kTcpAck | kTcpPsh, 1007, 5001, "PASV\r\n");
  r = fromServer(21, kClient, 40000, kTcpAck | kTcpPsh, 5001 + 51, 1013, reply);
  EXPECT_EQ(Seg(r.out).payload, "227 Entering Passive Mode (198,18,100,1,195,80).\r\n");
}

// Persistent FTP in DR (no helper: the kernel's helper is NAT only): the port-21 service's
// template is <client, 0, VIP, 0> and the passive data conn to a high port of the VIP goes to
// the same real server under it (ip_vs_sched_persist, ip_vs_service_find's FTP fallback).
TEST_F(FtpPipelineTest, PersistentDrUsesPortZeroTemplate) {
  addService(tcpKey(kVip, 21), "rr", kSvcPersistent, 300);
  addDest(tcpKey(kVip, 21), dest(kRs, 21, FwdMethod::kDirectRoute));
  addDest(tcpKey(kVip, 21), dest("198.18.1.11", 21, FwdMethod::kDirectRoute));
  Result r = fromClient(40000, 21, kTcpSyn, 1000, 0);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  const IpAddr first = r.next_hop;
  bool tmpl = false;
  for (const Conn& c : conns()) {
    if ((c.flags & kConnFTemplate) != 0) {
      tmpl = true;
      EXPECT_EQ(c.cport, 0);
      EXPECT_EQ(c.vport, 0);
      EXPECT_EQ(c.dport, 0);
    }
  }
  EXPECT_TRUE(tmpl);
  for (uint16_t cport = 40001; cport < 40005; ++cport) {
    r = fromClient(cport, 50000, kTcpSyn, 9000, 0);
    ASSERT_EQ(r.verdict, Verdict::kForward) << static_cast<int>(r.reason);
    EXPECT_EQ(r.next_hop, first);
    Conn d = connFrom(kClient, cport);
    EXPECT_EQ(d.vport, 50000);
    EXPECT_EQ(d.dport, 50000);
    EXPECT_NE(d.control, kNoConn);
  }
  EXPECT_EQ(pipe_->counters().ftp_passive.value(), 0u);
}

}  // namespace
}  // namespace lb::testing
