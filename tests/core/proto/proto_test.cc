// SPDX-License-Identifier: Apache-2.0
// The state machines against the kernel's tables, pasted below as text from
// ip_vs_proto_tcp.c / ip_vs_proto_sctp.c (via shared/reference/ipvs-inventory.md §4.5, §4.6) and
// parsed independently of the implementation's tables.
#include "core/proto/proto.h"

#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace lb {
namespace {

constexpr char kTcpText[] = R"(
/*syn*/ {{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR }},
/*fin*/ {{sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR }},
/*syn*/ {{sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR }},
/*fin*/ {{sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES }},
/*rst*/ {{sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL }},
/*syn*/ {{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR }},
/*fin*/ {{sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL }},
)";

constexpr char kTcpDosText[] = R"(
/*syn*/ {{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA }},
/*fin*/ {{sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA }},
/*ack*/ {{sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL }},
/*syn*/ {{sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA }},
/*fin*/ {{sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES }},
/*rst*/ {{sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL }},
/*syn*/ {{sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA }},
/*fin*/ {{sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL }},
)";

constexpr char kSctpText[] = R"(
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW},
/* i_a */{sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL},
/* s_c */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* err */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
/* d   */{sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
)";

// Parses the rows of a pasted table into state numbers using `names` (column order).
std::vector<std::vector<uint8_t>> parseTable(const char* text,
                                             const std::vector<std::string>& names) {
  std::map<std::string, uint8_t> idx;
  for (size_t i = 0; i < names.size(); ++i)
    idx[names[i]] = static_cast<uint8_t>(i);
  std::vector<std::vector<uint8_t>> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t open = line.find('{');
    if (open == absl::string_view::npos)
      continue;
    std::vector<uint8_t> row;
    for (absl::string_view cell : absl::StrSplit(line.substr(open), ',')) {
      std::string c(cell);
      std::string name;
      for (char ch : c) {
        if (std::isalnum(static_cast<unsigned char>(ch)))
          name += ch;
      }
      if (name.empty())
        continue;
      EXPECT_TRUE(idx.count(name)) << name;
      row.push_back(idx[name]);
    }
    EXPECT_EQ(row.size(), names.size()) << line;
    rows.push_back(row);
  }
  return rows;
}

const std::vector<std::string> kTcpCols = {"sNO", "sES", "sSS", "sSR", "sFW", "sTW",
                                           "sCL", "sCW", "sLA", "sLI", "sSA"};
const std::vector<std::string> kSctpCols = {"sNO", "sI1", "sIN", "sCS", "sCR", "sCW", "sCO",
                                            "sCE", "sES", "sSS", "sSR", "sSA", "sRJ", "sCL"};
// tcp_timeouts / sctp_timeouts in seconds, from the inventory.
const int64_t kTcpTimeoutS[] = {2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120};
const int64_t kSctpTimeoutS[] = {2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61};

Conn tcpConn(uint8_t state) {
  Conn c;
  c.proto = L4Proto::kTcp;
  c.state = state;
  c.dest = 7;
  c.flags = kConnFInactive;
  return c;
}

L3L4 tcpPkt(uint8_t flags) {
  L3L4 p;
  p.proto = L4Proto::kTcp;
  p.tcp_flags = flags;
  return p;
}

const ProtoTimeouts kDefaults = ProtoTimeouts::fromConfig(Timeouts{0, 0, 0});

void checkTcpTable(const char* text, bool secure) {
  auto rows = parseTable(text, kTcpCols);
  ASSERT_EQ(rows.size(), 12u);
  const uint8_t kEventFlags[4] = {kTcpSyn, kTcpFin, kTcpAck, kTcpRst};
  const ConnDir kDirs[3] = {ConnDir::kInput, ConnDir::kOutput, ConnDir::kInputOnly};
  for (int d = 0; d < 3; ++d) {
    for (int ev = 0; ev < 4; ++ev) {
      for (uint8_t s = 0; s < kTcpStateCount; ++s) {
        Conn c = tcpConn(s);
        StateChange sc = updateConnState(c, kDirs[d], tcpPkt(kEventFlags[ev]), kDefaults, secure);
        uint8_t want = rows[static_cast<size_t>(d * 4 + ev)][s];
        EXPECT_EQ(c.state, want) << "dir " << d << " event " << ev << " state " << int{s};
        EXPECT_EQ(sc.changed, want != s);
        EXPECT_EQ(sc.timeout, seconds(kTcpTimeoutS[want]));
        EXPECT_EQ(c.timeout, seconds(kTcpTimeoutS[want]));
      }
    }
  }
}

TEST(TcpStateTest, EveryTransitionMatchesTcpStates) {
  checkTcpTable(kTcpText, false);
}

TEST(TcpStateTest, SecureTcpUsesTcpStatesDos) {
  checkTcpTable(kTcpDosText, true);
}

TEST(TcpStateTest, EventPriorityRstSynFinAck) {
  // From ESTABLISHED on INPUT: rst -> CLOSE, syn -> ESTABLISHED, fin -> CLOSE_WAIT, ack -> ES.
  struct Case {
    uint8_t flags;
    uint8_t want;
  } cases[] = {
      {kTcpRst | kTcpSyn | kTcpFin | kTcpAck, kTcpClose},
      {kTcpSyn | kTcpFin | kTcpAck, kTcpEstablished},
      {kTcpFin | kTcpAck, kTcpCloseWait},
      {kTcpAck | kTcpPsh, kTcpEstablished},
      {kTcpPsh, kTcpClose},  // no SYN/FIN/ACK/RST: CLOSE (inventory §11 gotcha 6)
      {0, kTcpClose},
  };

  for (const Case& k : cases) {
    Conn c = tcpConn(kTcpEstablished);
    updateConnState(c, ConnDir::kInput, tcpPkt(k.flags), kDefaults, false);
    EXPECT_EQ(c.state, k.want) << int{k.flags};
  }
}

TEST(TcpStateTest, NoOutputSelectsInputOnlyAndOutputClearsIt) {
  // fin in ESTABLISHED: INPUT -> CLOSE_WAIT, INPUT-ONLY -> FIN_WAIT.
  Conn c = tcpConn(kTcpEstablished);
  c.flags |= kConnFNoOutput;
  updateConnState(c, ConnDir::kInput, tcpPkt(kTcpFin | kTcpAck), kDefaults, false);
  EXPECT_EQ(c.state, kTcpFinWait);
  EXPECT_NE(c.flags & kConnFNoOutput, 0u);

  Conn d = tcpConn(kTcpEstablished);
  d.flags |= kConnFNoOutput;
  updateConnState(d, ConnDir::kOutput, tcpPkt(kTcpAck), kDefaults, false);
  EXPECT_EQ(d.flags & kConnFNoOutput, 0u);
  updateConnState(d, ConnDir::kInput, tcpPkt(kTcpFin | kTcpAck), kDefaults, false);
  EXPECT_EQ(d.state, kTcpCloseWait);
}

TEST(TcpStateTest, ActiveAccountingAndAssurance) {
  Conn c = tcpConn(kTcpNone);  // new conns start INACTIVE
  StateChange sc = updateConnState(c, ConnDir::kInput, tcpPkt(kTcpSyn), kDefaults, false);
  EXPECT_EQ(c.state, kTcpSynRecv);
  EXPECT_FALSE(sc.was_active);
  EXPECT_TRUE(sc.is_active);
  EXPECT_EQ(c.flags & kConnFInactive, 0u);
  EXPECT_FALSE(sc.assure_control);

  sc = updateConnState(c, ConnDir::kInput, tcpPkt(kTcpAck), kDefaults, false);
  EXPECT_EQ(c.state, kTcpEstablished);
  EXPECT_TRUE(sc.was_active);
  EXPECT_TRUE(sc.is_active);
  EXPECT_TRUE(sc.assure_control);
  EXPECT_EQ(sc.timeout, seconds(900));

  sc = updateConnState(c, ConnDir::kInput, tcpPkt(kTcpAck), kDefaults, false);
  EXPECT_FALSE(sc.changed);
  EXPECT_FALSE(sc.assure_control);  // only on the transition

  sc = updateConnState(c, ConnDir::kInput, tcpPkt(kTcpFin | kTcpAck), kDefaults, false);
  EXPECT_EQ(c.state, kTcpCloseWait);
  EXPECT_TRUE(sc.was_active);
  EXPECT_FALSE(sc.is_active);
  EXPECT_NE(c.flags & kConnFInactive, 0u);
  EXPECT_EQ(sc.timeout, seconds(60));

  // Without a dest the kernel leaves the INACTIVE bit alone.
  Conn nd = tcpConn(kTcpNone);
  nd.dest = kNoDest;
  sc = updateConnState(nd, ConnDir::kInput, tcpPkt(kTcpSyn), kDefaults, false);
  EXPECT_EQ(nd.state, kTcpSynRecv);
  EXPECT_FALSE(sc.is_active);
  EXPECT_NE(nd.flags & kConnFInactive, 0u);
}

TEST(TcpStateTest, ActiveStates) {
  const bool want[kTcpStateCount] = {false, true,  true,  true,  false, false,
                                     false, false, false, false, true};
  for (uint8_t s = 0; s < kTcpStateCount; ++s) {
    EXPECT_EQ(isActiveState(L4Proto::kTcp, s), want[s]) << int{s};
  }
  for (uint8_t s = 0; s < kSctpStateCount; ++s) {
    EXPECT_EQ(isActiveState(L4Proto::kSctp, s), s == kSctpEstablished);
  }
  EXPECT_FALSE(isActiveState(L4Proto::kUdp, kUdpStateNormal));
}

TEST(ProtoTimeoutsTest, KernelDefaultsAndSetOverrides) {
  ProtoTimeouts d = ProtoTimeouts::fromConfig(Timeouts{0, 0, 0});
  for (size_t s = 0; s < kTcpStateCount; ++s)
    EXPECT_EQ(d.tcp[s], seconds(kTcpTimeoutS[s]));
  for (size_t s = 0; s < kSctpStateCount; ++s)
    EXPECT_EQ(d.sctp[s], seconds(kSctpTimeoutS[s]));
  EXPECT_EQ(d.udp, seconds(300));
  EXPECT_EQ(d.icmp, seconds(60));

  ProtoTimeouts o = ProtoTimeouts::fromConfig(Timeouts{3600, 30, 45});
  EXPECT_EQ(o.tcp[kTcpEstablished], seconds(3600));
  EXPECT_EQ(o.tcp[kTcpFinWait], seconds(30));
  EXPECT_EQ(o.udp, seconds(45));
  EXPECT_EQ(o.tcp[kTcpTimeWait], seconds(120));  // not settable
  EXPECT_EQ(o.tcp[kTcpCloseWait], seconds(60));

  ProtoTimeouts k = ProtoTimeouts::fromConfig(Timeouts{0, 77, 0});  // 0 = unchanged
  EXPECT_EQ(k.tcp[kTcpEstablished], seconds(900));
  EXPECT_EQ(k.tcp[kTcpFinWait], seconds(77));
  EXPECT_EQ(k.udp, seconds(300));

  Conn c = tcpConn(kTcpSynRecv);
  updateConnState(c, ConnDir::kInput, tcpPkt(kTcpAck), o, false);
  EXPECT_EQ(c.timeout, seconds(3600));
}

// SCTP chunk type numbers, and which chunk produces each event row (d, i, i_a, c_e, c_a, s,
// s_a, s_c, err, ab).
constexpr uint8_t kEventChunk[10] = {0, 1, 2, 10, 11, 7, 8, 14, 9, 6};

L3L4 sctpPkt(uint8_t first, uint8_t second = 0xff) {
  L3L4 p;
  p.proto = L4Proto::kSctp;
  p.sctp_chunk = first;
  p.sctp_second_chunk = second;
  return p;
}

TEST(SctpStateTest, EveryTransitionMatchesSctpStates) {
  auto rows = parseTable(kSctpText, kSctpCols);
  ASSERT_EQ(rows.size(), 30u);
  const ConnDir kDirs[3] = {ConnDir::kInput, ConnDir::kOutput, ConnDir::kInputOnly};
  for (int d = 0; d < 3; ++d) {
    for (int ev = 0; ev < 10; ++ev) {
      for (uint8_t s = 0; s < kSctpStateCount; ++s) {
        Conn c;
        c.proto = L4Proto::kSctp;
        c.state = s;
        c.dest = 1;
        c.flags = kConnFInactive;
        StateChange sc = updateConnState(c, kDirs[d], sctpPkt(kEventChunk[ev]), kDefaults, false);
        uint8_t want = rows[static_cast<size_t>(d * 10 + ev)][s];
        EXPECT_EQ(c.state, want) << "dir " << d << " event " << ev << " state " << int{s};
        EXPECT_EQ(sc.timeout, seconds(kSctpTimeoutS[want]));
        EXPECT_EQ(sc.assure_control, want != s && want == kSctpEstablished);
        EXPECT_EQ(sc.is_active, want != s && want == kSctpEstablished);
      }
    }
  }
}

TEST(SctpStateTest, AbortAfterCookieCountsAsAbort) {
  // INPUT, state COOKIE_WAIT: COOKIE_ECHO alone stays C-WAIT, COOKIE_ECHO+ABORT -> REJECTED.
  Conn c;
  c.proto = L4Proto::kSctp;
  c.state = kSctpCookieWait;
  updateConnState(c, ConnDir::kInput, sctpPkt(10), kDefaults, false);
  EXPECT_EQ(c.state, kSctpCookieWait);
  updateConnState(c, ConnDir::kInput, sctpPkt(10, 6), kDefaults, false);
  EXPECT_EQ(c.state, kSctpRejected);
  EXPECT_EQ(c.timeout, seconds(4));

  // ESTABLISHED: COOKIE_ACK+ABORT -> CLOSED; DATA followed by ABORT is still DATA.
  Conn e;
  e.proto = L4Proto::kSctp;
  e.state = kSctpEstablished;
  updateConnState(e, ConnDir::kOutput, sctpPkt(0, 6), kDefaults, false);
  EXPECT_EQ(e.state, kSctpEstablished);
  updateConnState(e, ConnDir::kOutput, sctpPkt(11, 6), kDefaults, false);
  EXPECT_EQ(e.state, kSctpClosed);
}

TEST(SctpStateTest, UnlistedChunksAreData) {
  for (uint8_t type : {3, 4, 5, 12, 13, 15, 0x80, 0xc1, 0xff}) {
    Conn c;
    c.proto = L4Proto::kSctp;
    c.state = kSctpNone;
    updateConnState(c, ConnDir::kInput, sctpPkt(type), kDefaults, false);
    EXPECT_EQ(c.state, kSctpEstablished) << int{type};  // d row, sNO -> sES
  }
}

TEST(UdpStateTest, RefreshedByEveryPacketReplyAssures) {
  ProtoTimeouts to = ProtoTimeouts::fromConfig(Timeouts{0, 0, 42});
  Conn c;
  c.proto = L4Proto::kUdp;
  c.dest = 1;
  c.flags = kConnFInactive | kConnFNoOutput;
  StateChange sc = updateConnState(c, ConnDir::kInput, L3L4{}, to, false);
  EXPECT_EQ(c.state, kUdpStateNormal);
  EXPECT_FALSE(sc.changed);
  EXPECT_FALSE(sc.is_active);
  EXPECT_FALSE(sc.assure_control);
  EXPECT_EQ(sc.timeout, seconds(42));
  EXPECT_EQ(c.timeout, seconds(42));
  sc = updateConnState(c, ConnDir::kOutput, L3L4{}, to, false);
  EXPECT_TRUE(sc.assure_control);
  EXPECT_EQ(sc.timeout, seconds(42));
  EXPECT_NE(c.flags & kConnFInactive, 0u);  // UDP never becomes active
}

TEST(IcmpStateTest, NoStateSixtySeconds) {
  Conn c;
  c.proto = L4Proto::kIcmp;
  StateChange sc = updateConnState(c, ConnDir::kInput, L3L4{}, kDefaults, false);
  EXPECT_EQ(sc.timeout, seconds(60));
  EXPECT_EQ(c.state, 0);
  EXPECT_EQ(connStateName(c), "NONE");
}

TEST(StateNameTest, KernelNames) {
  const char* tcp[] = {"NONE",  "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
                       "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "SYNACK"};
  for (uint8_t s = 0; s < kTcpStateCount; ++s)
    EXPECT_EQ(stateName(L4Proto::kTcp, s), tcp[s]);
  EXPECT_EQ(stateName(L4Proto::kTcp, kTcpStateCount), "ERR!");
  const char* sctp[] = {"NONE",       "INIT1",      "INIT",     "C-SENT",      "C-REPLIED",
                        "C-WAIT",     "COOKIE",     "C-ECHOED", "ESTABLISHED", "S-SENT",
                        "S-RECEIVED", "S-ACK-SENT", "REJECTED", "CLOSED"};
  for (uint8_t s = 0; s < kSctpStateCount; ++s)
    EXPECT_EQ(stateName(L4Proto::kSctp, s), sctp[s]);
  EXPECT_EQ(stateName(L4Proto::kUdp, 0), "UDP");

  Conn t;
  t.proto = L4Proto::kTcp;
  t.flags = kConnFTemplate;
  EXPECT_EQ(connStateName(t), "NONE");
  t.state = kTemplateAssured;
  EXPECT_EQ(connStateName(t), "ASSURED");
  Conn u;
  u.proto = L4Proto::kUdp;
  EXPECT_EQ(connStateName(u), "UDP");
  Conn e;
  e.proto = L4Proto::kTcp;
  e.state = kTcpEstablished;
  EXPECT_EQ(connStateName(e), "ESTABLISHED");
}

}  // namespace
}  // namespace lb
