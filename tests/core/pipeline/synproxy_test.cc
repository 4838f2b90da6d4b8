// SPDX-License-Identifier: Apache-2.0
// The SYN proxy (core/pipeline/synproxy*.cc): a SYN answered with a cookie and no conn, the
// client's ACK opening the real server's side, the server's SYN-ACK closing its handshake, and
// sequence numbers translated both ways for the rest of the conn; NAT and full NAT.
#include "core/pipeline/synproxy.h"

#include <cstdint>
#include <string>
#include <vector>

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

// A TCP packet's fields (IPv4 without options, or IPv6 without extension headers).
struct Tcp {
  explicit Tcp(const Bytes& b) : Tcp(b, (b[0] >> 4) == 6 ? size_t{40} : size_t{20}) {}

  Tcp(const Bytes& b, size_t l4)
      : src(l4 == 40 ? IpAddr::fromBytes(Af::kInet6, &b[8]) : IpAddr::fromBytes(Af::kInet, &b[12])),
        dst(l4 == 40 ? IpAddr::fromBytes(Af::kInet6, &b[24])
                     : IpAddr::fromBytes(Af::kInet, &b[16])),
        sport(get16(b, l4)),
        dport(get16(b, l4 + 2)),
        seq(get32(b, l4 + 4)),
        ack(get32(b, l4 + 8)),
        flags(b[l4 + 13]),
        payload(b.size() - l4 - static_cast<size_t>(b[l4 + 12] >> 4) * 4),
        mss(b[l4 + 12] >> 4 == 6 && b[l4 + 20] == 2 ? get16(b, l4 + 22) : 0) {}

  IpAddr src, dst;
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  size_t payload;
  uint16_t mss;
};

class SynproxyTest : public PipelineFixture {
 protected:
  void SetUp() override { useMethod(FwdMethod::kMasq); }

  void useMethod(FwdMethod m) {
    std::vector<IpAddr> laddrs;
    if (m == FwdMethod::kFullNat)
      laddrs.push_back(ip(kLaddr));
    addService(tcpKey(kVip, 80), "rr", kSvcSynproxy, 0, laddrs);
    addDest(tcpKey(kVip, 80), dest(kRs, 8080, m));
  }

  Result fromClient(uint8_t flags, uint32_t seq, uint32_t ack, const std::string& data = "") {
    PacketBuilder b = PacketBuilder::tcp(kClient, 40000, kVip, 80, flags).seq(seq).ack(ack);
    if (!data.empty())
      b.payload(data);
    return send(b.build());
  }

  Result fromServer(const char* to,
                    uint16_t port,
                    uint8_t flags,
                    uint32_t seq,
                    uint32_t ack,
                    const std::string& data = "") {
    PacketBuilder b = PacketBuilder::tcp(kRs, 8080, to, port, flags).seq(seq).ack(ack);
    if (!data.empty())
      b.payload(data);
    return send(b.build());
  }

  // SYN (ISN 1000) -> the cookie of lbd's SYN-ACK.
  uint32_t handshake() {
    Result r = fromClient(kTcpSyn, 1000, 0);
    EXPECT_EQ(r.verdict, Verdict::kForward);
    EXPECT_TRUE(checksumsValid(r.out)) << hexDump(r.out.data(), r.out.size());
    Tcp t(r.out);
    EXPECT_EQ(t.src, ip(kVip));
    EXPECT_EQ(t.dst, ip(kClient));
    EXPECT_EQ(t.sport, 80);
    EXPECT_EQ(t.dport, 40000);
    EXPECT_EQ(t.flags, kTcpSyn | kTcpAck);
    EXPECT_EQ(t.ack, 1001u);
    EXPECT_EQ(t.mss, 1460);
    EXPECT_EQ(t.payload, 0u);
    return t.seq;
  }
};

TEST_F(SynproxyTest, SynIsAnsweredWithACookieAndLeavesNoConn) {
  handshake();
  // The SYN-ACK goes to an address that has proved nothing: no next hop is learned for it.
  EXPECT_FALSE(fromClient(kTcpSyn, 1000, 0).learn_dst);
  EXPECT_TRUE(conns().empty());
  EXPECT_EQ(pipe_->counters().synproxy_syn_answered.value(), 2u);
  // The answer is the same for a retransmitted SYN (stateless).
  uint32_t c1 = Tcp(fromClient(kTcpSyn, 1000, 0).out).seq;
  uint32_t c2 = Tcp(fromClient(kTcpSyn, 1000, 0).out).seq;
  EXPECT_EQ(c1, c2);
  EXPECT_TRUE(conns().empty());
}

TEST_F(SynproxyTest, SpoofedFloodMakesNoConns) {
  for (uint32_t n = 0; n < 1000; ++n) {
    std::string src = "198.19." + std::to_string(n >> 8) + "." + std::to_string(n & 0xff);
    Result r = send(PacketBuilder::tcp(src.c_str(), 1024, kVip, 80, kTcpSyn).seq(n).build());
    ASSERT_EQ(r.verdict, Verdict::kForward);
  }
  EXPECT_TRUE(conns().empty());
  EXPECT_EQ(conns_->stats().entries, 0u);
}

TEST_F(SynproxyTest, BadOrStaleCookieIsDropped) {
  const uint32_t cookie = handshake();
  // Not our ISN + 1 (as in the kernel, 4 of the 2^24 values of the hashed low bits are valid:
  // the cookie's neighbours pass, a guess does not).
  Result r = fromClient(kTcpAck, 1001, cookie + 0x12345);
  EXPECT_EQ(r.reason, DropReason::kSynproxy);
  r = fromClient(kTcpAck, 1002, cookie + 1);  // another client ISN
  EXPECT_EQ(r.reason, DropReason::kSynproxy);
  clock_.advance(seconds(200));  // two 64 s counter steps and more
  r = fromClient(kTcpAck, 1001, cookie + 1);
  EXPECT_EQ(r.reason, DropReason::kSynproxy);
  EXPECT_TRUE(conns().empty());
  // Data or a FIN without a conn is not a new conn.
  EXPECT_EQ(fromClient(kTcpFin | kTcpAck, 1001, cookie + 1).reason, DropReason::kNotNewConn);
}

TEST_F(SynproxyTest, NatConnectionIsOpenedAndTranslatedBothWays) {
  const uint32_t cookie = handshake();
  clock_.advance(seconds(70));  // still valid one counter step later
  // The client's ACK proves its address: the real server gets a SYN with the client's ISN.
  Result r = fromClient(kTcpAck, 1001, cookie + 1);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp syn(r.out);
  EXPECT_EQ(syn.src, ip(kClient));
  EXPECT_EQ(syn.dst, ip(kRs));
  EXPECT_EQ(syn.sport, 40000);
  EXPECT_EQ(syn.dport, 8080);
  EXPECT_EQ(syn.flags, kTcpSyn);
  EXPECT_EQ(syn.seq, 1000u);
  EXPECT_EQ(syn.mss, 536);  // the client's SYN had no MSS option
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(pipe_->counters().synproxy_conns_opened.value(), 1u);
  // The client's first data before the real server answered: the SYN goes again (its SYN or
  // SYN-ACK may have been lost); a later segment is dropped (the client sends the first again).
  r = fromClient(kTcpAck | kTcpPsh, 1001, cookie + 1, "GET /");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp again(r.out);
  EXPECT_EQ(again.flags, kTcpSyn);
  EXPECT_EQ(again.seq, 1000u);
  EXPECT_EQ(again.dst, ip(kRs));
  EXPECT_EQ(again.payload, 0u);
  EXPECT_EQ(pipe_->counters().synproxy_syn_resent.value(), 1u);
  EXPECT_EQ(fromClient(kTcpAck | kTcpPsh, 1006, cookie + 1, "more").reason, DropReason::kSynproxy);

  // The real server's SYN-ACK (ISN 5000) becomes the ACK that completes its handshake.
  r = fromServer(kClient, 40000, kTcpSyn | kTcpAck, 5000, 1001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp ack(r.out);
  EXPECT_EQ(ack.src, ip(kClient));
  EXPECT_EQ(ack.dst, ip(kRs));
  EXPECT_EQ(ack.dport, 8080);
  EXPECT_EQ(ack.flags, kTcpAck);
  EXPECT_EQ(ack.seq, 1001u);
  EXPECT_EQ(ack.ack, 5001u);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");

  // Client -> server: the client acks lbd's numbers; the server sees its own.
  r = fromClient(kTcpAck | kTcpPsh, 1001, cookie + 1, "GET /");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp req(r.out);
  EXPECT_EQ(req.dst, ip(kRs));
  EXPECT_EQ(req.seq, 1001u);
  EXPECT_EQ(req.ack, 5001u);
  EXPECT_EQ(req.payload, 5u);
  // Server -> client: its numbers shifted onto the cookie's.
  r = fromServer(kClient, 40000, kTcpAck | kTcpPsh, 5001, 1006, "HTTP/1.0 200");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp resp(r.out);
  EXPECT_EQ(resp.src, ip(kVip));
  EXPECT_EQ(resp.sport, 80);
  EXPECT_EQ(resp.seq, cookie + 1);
  EXPECT_EQ(resp.ack, 1006u);
  r = fromClient(kTcpAck, 1006, cookie + 13);
  EXPECT_EQ(Tcp(r.out).ack, 5013u);
  // Never offloaded.
  EXPECT_FALSE(offloadEligible(connFrom(kClient, 40000), 1));
}

TEST_F(SynproxyTest, RealServerRefusalReachesTheClientOnItsNumbers) {
  const uint32_t cookie = handshake();
  ASSERT_EQ(fromClient(kTcpAck, 1001, cookie + 1).verdict, Verdict::kForward);
  Result r = fromServer(kClient, 40000, kTcpRst | kTcpAck, 0, 1001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp rst(r.out);
  EXPECT_EQ(rst.src, ip(kVip));
  EXPECT_EQ(rst.dst, ip(kClient));
  EXPECT_EQ(rst.seq, cookie + 1);
  EXPECT_NE(rst.flags & kTcpRst, 0);
  EXPECT_EQ(stateOf(kClient, 40000), "CLOSE");
}

// The tc program (io/bpf) answers SYNs in the kernel: a client reusing its port while lbd's
// conn for the tuple is closed sends a SYN lbd never sees, then the ACK returning the
// program's cookie (the same makeCookie, the same secret). That ACK expires the old conn and
// opens a new one, as the SYN would have (conn_reuse_mode).
TEST_F(SynproxyTest, CookieAckOnAClosedConnsTupleOpensANewConn) {
  const uint32_t cookie = handshake();
  ASSERT_EQ(fromClient(kTcpAck, 1001, cookie + 1).verdict, Verdict::kForward);
  ASSERT_EQ(fromServer(kClient, 40000, kTcpSyn | kTcpAck, 5000, 1001).verdict, Verdict::kForward);
  ASSERT_EQ(fromClient(kTcpRst | kTcpAck, 1001, cookie + 1).verdict, Verdict::kForward);
  ASSERT_EQ(stateOf(kClient, 40000), "CLOSE");
  // An ACK whose cookie is not valid is the old conn's, as before.
  Result r = fromClient(kTcpAck, 7001, cookie + 77);
  EXPECT_NE(Tcp(r.out).flags, kTcpSyn);
  EXPECT_EQ(pipe_->counters().synproxy_conns_opened.value(), 1u);
  // The SYN (ISN 7000, MSS 1460) went to the program; its cookie comes back.
  const uint32_t c2 =
      synproxy::makeCookie(synproxy::secretOf(conns_->seed()), {ip(kClient), ip(kVip), 40000, 80},
                           7000, 1460, clock_.now());
  r = fromClient(kTcpAck, 7001, c2 + 1);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp syn(r.out);
  EXPECT_EQ(syn.dst, ip(kRs));
  EXPECT_EQ(syn.flags, kTcpSyn);
  EXPECT_EQ(syn.seq, 7000u);
  EXPECT_EQ(syn.mss, 1460);
  EXPECT_EQ(stateOf(kClient, 40000), "SYN_RECV");
  EXPECT_EQ(pipe_->counters().synproxy_conns_opened.value(), 2u);
  // Its handshake completes on the new numbers.
  r = fromServer(kClient, 40000, kTcpSyn | kTcpAck, 9000, 7001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_EQ(Tcp(r.out).ack, 9001u);
  EXPECT_EQ(stateOf(kClient, 40000), "ESTABLISHED");
  // The same ACK again on the ESTABLISHED conn is that conn's (never a reuse).
  r = fromClient(kTcpAck, 7001, c2 + 1);
  EXPECT_EQ(Tcp(r.out).flags, kTcpAck);
  EXPECT_EQ(pipe_->counters().synproxy_conns_opened.value(), 2u);
}

class SynproxyFullNatTest : public SynproxyTest {
 protected:
  void SetUp() override { useMethod(FwdMethod::kFullNat); }
};

TEST_F(SynproxyFullNatTest, ConnectionGoesFromTheLocalAddress) {
  const uint32_t cookie = handshake();
  Result r = fromClient(kTcpAck, 1001, cookie + 1);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Tcp syn(r.out);
  EXPECT_EQ(syn.src, ip(kLaddr));
  EXPECT_EQ(syn.dst, ip(kRs));
  EXPECT_EQ(syn.flags, kTcpSyn);
  const uint16_t lport = syn.sport;
  r = fromServer(kLaddr, lport, kTcpSyn | kTcpAck, 7000, 1001);
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp ack(r.out);
  EXPECT_EQ(ack.src, ip(kLaddr));
  EXPECT_EQ(ack.sport, lport);
  EXPECT_EQ(ack.ack, 7001u);
  r = fromServer(kLaddr, lport, kTcpAck | kTcpPsh, 7001, 1001, "hello");
  ASSERT_EQ(r.verdict, Verdict::kForward);
  Tcp resp(r.out);
  EXPECT_EQ(resp.dst, ip(kClient));
  EXPECT_EQ(resp.seq, cookie + 1);
  EXPECT_TRUE(checksumsValid(r.out));
}

TEST(SynproxyCookieTest, CarriesTheMssAndExpiresAfterTwoSteps) {
  synproxy::CookieFlow f{ip(kClient), ip(kVip), 40000, 80};
  const MonoTime t0 = MonoTime::fromSeconds(6400);
  for (uint16_t mss : {0, 536, 1200, 1300, 1439, 1440, 1460, 9000}) {
    const uint32_t c = synproxy::makeCookie(42, f, 77, mss, t0);
    auto got = synproxy::checkCookie(42, f, 77, c, t0 + seconds(100));
    ASSERT_TRUE(got.has_value()) << mss;
    EXPECT_EQ(*got, synproxy::cookieMss(mss == 0 ? 536 : mss)) << mss;
    EXPECT_FALSE(synproxy::checkCookie(42, f, 77, c, t0 + seconds(128)).has_value());
    EXPECT_FALSE(synproxy::checkCookie(43, f, 77, c, t0).has_value());  // another secret
    synproxy::CookieFlow g = f;
    g.sport = 40001;
    EXPECT_FALSE(synproxy::checkCookie(42, g, 77, c, t0).has_value());
  }
}

// The cookie carries the counter's low 8 bits only; the check must hash with the full counter.
// Past 256 steps of 64 s (4.55 h of uptime) every cookie failed before (syn_flood on a machine up
// for 5 h: no request answered through a --synproxy VIP).
TEST(SynproxyCookieTest, ValidAfterTheCountersLowBitsWrap) {
  synproxy::CookieFlow f{ip(kClient), ip(kVip), 40000, 80};
  for (int64_t up : {16'383, 16'384, 18'000, 30 * 86'400, 400 * 86'400}) {
    const MonoTime t0 = MonoTime::fromSeconds(up);
    const uint32_t c = synproxy::makeCookie(42, f, 77, 1460, t0);
    auto got = synproxy::checkCookie(42, f, 77, c, t0 + seconds(10));
    ASSERT_TRUE(got.has_value()) << up;
    EXPECT_EQ(*got, 1460) << up;
    EXPECT_FALSE(synproxy::checkCookie(42, f, 77, c, t0 + seconds(200)).has_value()) << up;
  }
}

// The same handshake and translation over IPv6 (MSS 1440: the MTU less 60 bytes of headers).
class SynproxyV6Test : public PipelineFixture {};

TEST_F(SynproxyV6Test, HandshakeAndTranslation) {
  ServiceKey key = tcpKey("2001:2::100", 80);
  addService(key, "rr", kSvcSynproxy);
  addDest(key, dest("2001:2:1::10", 8080, FwdMethod::kMasq));
  Result r =
      send(PacketBuilder::tcp("2001:2::1", 40000, "2001:2::100", 80, kTcpSyn).seq(1000).build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out)) << hexDump(r.out.data(), r.out.size());
  Tcp synack(r.out);
  EXPECT_EQ(synack.src, ip("2001:2::100"));
  EXPECT_EQ(synack.dst, ip("2001:2::1"));
  EXPECT_EQ(synack.flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(synack.ack, 1001u);
  EXPECT_EQ(synack.mss, 1440);
  const uint32_t cookie = synack.seq;
  EXPECT_TRUE(conns().empty());
  r = send(PacketBuilder::tcp("2001:2::1", 40000, "2001:2::100", 80, kTcpAck)
               .seq(1001)
               .ack(cookie + 1)
               .build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp syn(r.out);
  EXPECT_EQ(syn.dst, ip("2001:2:1::10"));
  EXPECT_EQ(syn.flags, kTcpSyn);
  EXPECT_EQ(syn.seq, 1000u);
  r = send(PacketBuilder::tcp("2001:2:1::10", 8080, "2001:2::1", 40000, kTcpSyn | kTcpAck)
               .seq(9000)
               .ack(1001)
               .build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  EXPECT_EQ(Tcp(r.out).ack, 9001u);
  r = send(PacketBuilder::tcp("2001:2:1::10", 8080, "2001:2::1", 40000, kTcpAck | kTcpPsh)
               .seq(9001)
               .ack(1001)
               .payload("hi")
               .build());
  ASSERT_EQ(r.verdict, Verdict::kForward);
  EXPECT_TRUE(checksumsValid(r.out));
  Tcp resp(r.out);
  EXPECT_EQ(resp.src, ip("2001:2::100"));
  EXPECT_EQ(resp.seq, cookie + 1);
}

}  // namespace
}  // namespace lb::testing
