// SPDX-License-Identifier: Apache-2.0
// The tc program's SYN proxy (io/bpf/ingress_redirect.bpf.c spAnswerV4/V6) against core's
// reference (core/pipeline/synproxy.h): for many synthetic SYNs run through the loaded program
// with BPF_PROG_TEST_RUN, the SYN-ACK it sends back must be byte for byte the one the pipeline
// makes with makeCookie and rewriteSegment (cookie, checksums, window, MSS option, TTL), with
// the MAC addresses swapped, and checkCookie must accept its cookie. The program's clock is
// moved (SynproxyConfig::clock_offset_ns) to both sides of a 64 s counter step and past the
// counter's 8 bits. Needs root (loading BPF): label integration, like the other BPF tests.
#include <linux/pkt_cls.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"
#include "core/pipeline/synproxy.h"
#include "io/bpf/ingress_redirect.h"
#include "tests/io/bpf_netns.h"
#include "tests/testlib/packet_builder.h"

namespace lb::io {
namespace {

constexpr int64_t kStepNs = 64'000'000'000;  // the cookie counter's step
constexpr uint64_t kSecret = 0x0123456789abcdefull;
constexpr uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 0x01};
// The synthetic skb runs on the loopback device, whose address is all zeroes: a frame to it
// is PACKET_HOST.
constexpr uint8_t kLoMac[6] = {0, 0, 0, 0, 0, 0};

int64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

uint16_t sum16(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n % 2 != 0)
    sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// A TCP segment with the given flags and options (a multiple of 4 bytes) and `payload`
// bytes, as an IPv4 (without options) or IPv6 packet, checksums right.
struct Syn {
  IpAddr src, dst;
  uint16_t sport = 0, dport = 80;
  uint32_t isn = 0;
  uint8_t flags = kTcpSyn;
  std::vector<uint8_t> opts;
  size_t payload = 0;
  uint16_t frag_off = 0x4000;  // IPv4: DF
  uint8_t ttl = 60;
};

std::vector<uint8_t> ipPacket(const Syn& s) {
  const bool v4 = s.src.isV4();
  const size_t l3 = v4 ? 20 : 40;
  const size_t tcp = 20 + s.opts.size();
  std::vector<uint8_t> p(l3 + tcp + s.payload, 0);
  uint8_t* t = p.data() + l3;
  if (v4) {
    p[0] = 0x45;
    p[1] = 0x10;
    put16(&p[2], static_cast<uint16_t>(p.size()));
    put16(&p[4], 0x1234);
    put16(&p[6], s.frag_off);
    p[8] = s.ttl;
    p[9] = 6;
    std::memcpy(&p[12], s.src.data(), 4);
    std::memcpy(&p[16], s.dst.data(), 4);
    put16(&p[10], static_cast<uint16_t>(~sum16(p.data(), 20, 0)));
  } else {
    p[0] = 0x60;
    p[1] = 0x0a;
    p[2] = 0xbc;
    p[3] = 0xde;
    put16(&p[4], static_cast<uint16_t>(tcp + s.payload));
    p[6] = 6;
    p[7] = s.ttl;
    std::memcpy(&p[8], s.src.data(), 16);
    std::memcpy(&p[24], s.dst.data(), 16);
  }
  put16(t, s.sport);
  put16(t + 2, s.dport);
  put32(t + 4, s.isn);
  t[12] = static_cast<uint8_t>((tcp / 4) << 4);
  t[13] = s.flags;
  put16(t + 14, 64240);
  std::memcpy(t + 20, s.opts.data(), s.opts.size());
  for (size_t i = 0; i < s.payload; ++i)
    t[tcp + i] = static_cast<uint8_t>(i * 7);
  uint32_t pseudo = sum16(s.src.data(), s.src.size(), 0) + sum16(s.dst.data(), s.dst.size(), 0) +
                    6 + static_cast<uint32_t>(tcp + s.payload);
  put16(t + 16, static_cast<uint16_t>(~sum16(t, tcp + s.payload, pseudo)));
  return p;
}

std::vector<uint8_t> frame(const std::vector<uint8_t>& ip, bool v4) {
  std::vector<uint8_t> f(14 + ip.size());
  std::memcpy(f.data(), kLoMac, 6);
  std::memcpy(f.data() + 6, kClientMac, 6);
  put16(f.data() + 12, v4 ? 0x0800 : 0x86dd);
  std::memcpy(f.data() + 14, ip.data(), ip.size());
  return f;
}

// The SYN-ACK lbd's pipeline makes for `ip` at time `now` (synproxyAnswer's Segment).
std::vector<uint8_t> reference(const std::vector<uint8_t>& ip, MonoTime now, uint16_t our_mss) {
  PacketBuffer pkt;
  EXPECT_TRUE(pkt.assign(absl::MakeConstSpan(ip)));
  ParsedPacket pp;
  EXPECT_EQ(parsePacket(pkt.span(), pp), DropReason::kNone);
  const L3L4& o = pp.outer;
  const uint8_t* tcp = pkt.data() + o.l4_off;
  const uint32_t isn = synproxy::tcpSeq(pkt, o);
  const uint16_t mss = synproxy::synMss(tcp, pkt.size() - o.l4_off);
  const uint32_t cookie =
      synproxy::makeCookie(kSecret, {o.src, o.dst, o.sport, o.dport}, isn, mss, now);
  synproxy::Segment s{o.dst,  o.src,   o.dport,           o.sport,
                      cookie, isn + 1, kTcpSyn | kTcpAck, synproxy::kSynAckWindow,
                      our_mss};
  EXPECT_TRUE(synproxy::rewriteSegment(pkt, o, s));
  return std::vector<uint8_t>(pkt.data(), pkt.data() + pkt.size());
}

class BpfSynproxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requireRoot();
    if (IsSkipped() || HasFatalFailure())
      return;
    auto r = IngressRedirect::create(1);  // the program never redirects to it here
    ASSERT_TRUE(r.ok()) << r.status();
    redirect_ = std::move(*r);
    cfg_.secret = kSecret;
    cfg_.mss4 = synproxy::synAckMss(1500, Af::kInet);
    cfg_.mss6 = synproxy::synAckMss(1500, Af::kInet6);
    cfg_.window = synproxy::kSynAckWindow;
    ASSERT_TRUE(redirect_->setSynproxy(cfg_, services_).ok());
  }

  SynproxyCounters counters() {
    auto c = redirect_->synproxyCounters();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : SynproxyCounters{};
  }

  // Runs `s` through the program and checks its SYN-ACK against the reference. The program's
  // time is CLOCK_MONOTONIC + cfg_.clock_offset_ns; when a counter step falls between the two
  // reads around the run, either side's cookie is accepted.
  void expectAnswer(const Syn& s) {
    const bool v4 = s.src.isV4();
    const std::vector<uint8_t> ip = ipPacket(s);
    const std::vector<uint8_t> in = frame(ip, v4);
    std::vector<uint8_t> out;
    const uint64_t before_count = counters().synack;
    const int64_t t0 = monoNs() + cfg_.clock_offset_ns;
    auto ret = redirect_->testRun(in, &out);
    const int64_t t1 = monoNs() + cfg_.clock_offset_ns;
    ASSERT_TRUE(ret.ok()) << ret.status();
    ASSERT_EQ(*ret, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(counters().synack, before_count + 1);
    ASSERT_EQ(out.size(), 14u + (v4 ? 20 : 40) + 24) << testing::hexDump(out.data(), out.size());
    EXPECT_EQ(std::memcmp(&out[0], kClientMac, 6), 0);
    EXPECT_EQ(std::memcmp(&out[6], kLoMac, 6), 0);
    EXPECT_EQ(out[12], v4 ? 0x08 : 0x86);
    const std::vector<uint8_t> got(out.begin() + 14, out.end());
    const uint16_t our_mss = v4 ? cfg_.mss4 : cfg_.mss6;
    std::vector<uint8_t> want = reference(ip, MonoTime{t0}, our_mss);
    if (got != want && t0 / kStepNs != t1 / kStepNs)
      want = reference(ip, MonoTime{t1}, our_mss);
    EXPECT_EQ(got, want) << "program:   " << testing::hexDump(got.data(), got.size())
                         << "\nreference: " << testing::hexDump(want.data(), want.size());
    EXPECT_TRUE(testing::checksumsValid(got));
    // The client's ACK (seq isn + 1, ack cookie + 1) passes the pipeline's check.
    const size_t l4 = v4 ? 20 : 40;
    const uint32_t cookie = (uint32_t{got[l4 + 4]} << 24) | (uint32_t{got[l4 + 5]} << 16) |
                            (uint32_t{got[l4 + 6]} << 8) | got[l4 + 7];
    EXPECT_TRUE(synproxy::checkCookie(kSecret, {s.src, s.dst, s.sport, s.dport}, s.isn, cookie,
                                      MonoTime{t1})
                    .has_value());
  }

  // The program does not answer `s`: the frame unchanged (to the kernel, or to lbd's TUN
  // device for a NAT reply), no SYN-ACK counted.
  void expectLeft(const Syn& s, const char* why) {
    const std::vector<uint8_t> in = frame(ipPacket(s), s.src.isV4());
    std::vector<uint8_t> out;
    const uint64_t before_count = counters().synack;
    auto ret = redirect_->testRun(in, &out);
    ASSERT_TRUE(ret.ok()) << ret.status();
    EXPECT_EQ(out, in) << why;
    EXPECT_EQ(counters().synack, before_count) << why;
  }

  std::vector<SynproxyService> services_ = {
      {testing::ip("198.18.0.10"), 80},
      {testing::ip("2001:2::10"), 80},
      {testing::ip("198.18.0.11"), 443},
  };
  SynproxyConfig cfg_;
  std::unique_ptr<IngressRedirect> redirect_;
};

// The options a SYN may carry: none, MSS values on every side of the table's entries, and the
// usual Linux / Windows / odd layouts around them.
std::vector<std::vector<uint8_t>> optionSets() {
  std::vector<std::vector<uint8_t>> sets = {{}};
  for (uint16_t mss : {0, 1, 535, 536, 537, 1299, 1300, 1301, 1439, 1440, 1441, 1459, 1460, 1461,
                       8960, 65495, 65535}) {
    // Linux: MSS, SACK_PERM, TS, NOP, WS.
    std::vector<uint8_t> o = {2,
                              4,
                              static_cast<uint8_t>(mss >> 8),
                              static_cast<uint8_t>(mss),
                              4,
                              2,
                              8,
                              10,
                              1,
                              2,
                              3,
                              4,
                              0,
                              0,
                              0,
                              0,
                              1,
                              3,
                              3,
                              7};
    sets.push_back(o);
    sets.push_back({2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss)});
    // MSS after NOPs and window scale, EOL-padded.
    sets.push_back(
        {1, 1, 3, 3, 8, 2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss), 0, 0, 0});
  }
  sets.push_back({1, 1, 4, 2});                 // SACK_PERM only: no MSS
  sets.push_back({0, 2, 4, 5, 0xb4, 0, 0, 0});  // MSS after EOL: not read
  sets.push_back({2, 5, 5, 0xb4, 0, 0, 0, 0});  // MSS with length 5: skipped
  sets.push_back({8, 1, 2, 4, 5, 0xb4, 0, 0});  // length 1: stop
  sets.push_back({1, 1, 1, 2, 4, 5});           // MSS cut by the header's end
  sets.push_back(std::vector<uint8_t>(40, 1));  // 40 NOPs
  std::vector<uint8_t> last(40, 1);             // MSS in the last 4 bytes
  last[36] = 2, last[37] = 4, last[38] = 0x05, last[39] = 0x3c;
  sets.push_back(last);
  return sets;
}

TEST_F(BpfSynproxyTest, SynAckEqualsThePipelinesForManyFlows) {
  if (IsSkipped() || HasFatalFailure())
    return;
  std::mt19937 rng(17);
  const auto sets = optionSets();
  int n = 0;
  for (const auto& opts : sets) {
    for (int i = 0; i < 8; ++i) {
      Syn s;
      const bool v4 = i % 2 == 0;
      if (v4) {
        s.src = IpAddr::v4(0xc6120000u | (rng() & 0xffff));  // 198.18.x.y
        s.dst = testing::ip(i % 4 == 0 ? "198.18.0.10" : "198.18.0.11");
        s.dport = i % 4 == 0 ? 80 : 443;
      } else {
        s.src = testing::ip(absl::StrCat("2001:2:1::", absl::Hex(rng() & 0xffff)).c_str());
        s.dst = testing::ip("2001:2::10");
      }
      s.sport = static_cast<uint16_t>(rng());
      s.isn = static_cast<uint32_t>(rng());
      s.opts = opts;
      s.payload = i == 3 ? 10 : 0;  // data on a SYN is dropped, as the pipeline drops it
      SCOPED_TRACE(absl::StrCat("flow ", n, " v4=", v4, " isn=", s.isn));
      expectAnswer(s);
      ++n;
    }
  }
  EXPECT_EQ(counters().synack, static_cast<uint64_t>(n));
}

TEST_F(BpfSynproxyTest, BothSidesOfTheCounterStepAndItsWrap) {
  if (IsSkipped() || HasFatalFailure())
    return;
  // The program's clock 2 ms before and 1 ms after a 64 s step, at several counters (256 and
  // beyond: the cookie carries the counter's low 8 bits only).
  for (int64_t step : {int64_t{1}, int64_t{255}, int64_t{256}, int64_t{1000}, int64_t{70000}}) {
    for (int64_t delta : {int64_t{-2'000'000}, int64_t{1'000'000}}) {
      const int64_t now = monoNs();
      const int64_t target = (now / kStepNs + step) * kStepNs + delta;
      cfg_.clock_offset_ns = target - now;
      ASSERT_TRUE(redirect_->setSynproxy(cfg_, services_).ok());
      for (bool v4 : {true, false}) {
        Syn s;
        s.src = testing::ip(v4 ? "198.18.5.5" : "2001:2:1::5");
        s.dst = testing::ip(v4 ? "198.18.0.10" : "2001:2::10");
        s.sport = 40000;
        s.isn = 0xfffffff0u;  // isn + 1 and the sum wrap
        s.opts = {2, 4, 0x05, 0xb4};
        SCOPED_TRACE(absl::StrCat("step ", step, " delta ", delta, " v4=", v4));
        expectAnswer(s);
      }
    }
  }
}

TEST_F(BpfSynproxyTest, LeavesWhatItIsNotSureOf) {
  if (IsSkipped() || HasFatalFailure())
    return;
  Syn base;
  base.src = testing::ip("198.18.5.5");
  base.dst = testing::ip("198.18.0.10");
  base.sport = 40000;
  base.isn = 1;
  base.opts = {2, 4, 0x05, 0xb4};
  for (uint8_t flags : {uint8_t{kTcpSyn | kTcpAck}, uint8_t{kTcpSyn | kTcpRst},
                        uint8_t{kTcpSyn | kTcpFin}, uint8_t{kTcpAck}, uint8_t{kTcpRst}}) {
    Syn s = base;
    s.flags = flags;
    expectLeft(s, "not a bare SYN");
  }
  Syn other_port = base;
  other_port.dport = 81;
  expectLeft(other_port, "not a synproxy VIP:port");
  Syn other_vip = base;
  other_vip.dst = testing::ip("198.18.0.12");
  expectLeft(other_vip, "not a synproxy VIP");
  Syn frag = base;
  frag.frag_off = 0x2000;  // MF
  expectLeft(frag, "a first fragment");
  Syn ttl1 = base;
  ttl1.ttl = 1;
  expectLeft(ttl1, "TTL 1: the kernel's");
  const uint64_t slow = counters().slow;
  // A NAT real server's port (the replies set; lbd's nat_icmp_send and conn lookup decide).
  ASSERT_TRUE(
      redirect_->setReplies({ReplyKey{testing::ip("198.18.5.5"), L4Proto::kTcp, 40000}}).ok());
  expectLeft(base, "from a NAT real server's port");
  ASSERT_TRUE(redirect_->setReplies({}).ok());
  // A flow entry for the tuple (an offloaded conn lbd must see the SYN of).
  FlowKey k{L4Proto::kTcp, base.src, base.dst, base.sport, base.dport};
  FlowKey rk{L4Proto::kTcp, testing::ip("198.18.2.11"), base.src, 80, base.sport};
  ASSERT_TRUE(redirect_->addFlow(k, FlowRewrite{base.src, rk.saddr, base.sport, 80}, rk).ok());
  expectLeft(base, "a flows entry");
  ASSERT_TRUE(redirect_->removeFlow(k).ok());
  EXPECT_EQ(counters().slow, slow + 2);
  expectAnswer(base);
  // Synproxy turned off on the service: the map follows, the SYN is left.
  ASSERT_TRUE(redirect_->setSynproxy(cfg_, {services_[1]}).ok());
  expectLeft(base, "synproxy off on the service");
  ASSERT_TRUE(redirect_->setSynproxy(cfg_, {}).ok());
  Syn v6 = base;
  v6.src = testing::ip("2001:2:1::5");
  v6.dst = testing::ip("2001:2::10");
  expectLeft(v6, "no synproxy service at all");
  ASSERT_TRUE(redirect_->setSynproxy(cfg_, services_).ok());
  expectAnswer(v6);
  expectAnswer(base);
}

}  // namespace
}  // namespace lb::io
