// SPDX-License-Identifier: Apache-2.0
// Per-protocol state machines: the tables of ip_vs_proto_tcp.c and ip_vs_proto_sctp.c, the
// single UDP state of ip_vs_proto_udp.c, and the timeouts of each.
#include "core/proto/proto.h"

namespace lb {
namespace {

// --- TCP (ip_vs_proto_tcp.c) ---

constexpr uint8_t sNO = kTcpNone, sES = kTcpEstablished, sSS = kTcpSynSent, sSR = kTcpSynRecv,
                  sFW = kTcpFinWait, sTW = kTcpTimeWait, sCL = kTcpClose, sCW = kTcpCloseWait,
                  sLA = kTcpLastAck, sLI = kTcpListen, sSA = kTcpSynAck;

using TcpRow = uint8_t[kTcpStateCount];
// [direction][event syn/fin/ack/rst][state]; direction INPUT, OUTPUT, INPUT-ONLY.
using TcpTable = TcpRow[3][4];

// tcp_states (verbatim).
constexpr TcpTable kTcpStates = {
    {
        // INPUT
        /*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
        /*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
        /*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
        /*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
        /*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
    },
    {
        // OUTPUT
        /*syn*/ {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
        /*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
        /*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
        /*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
    },
    {
        // INPUT-ONLY
        /*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
        /*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
        /*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
        /*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
    },
};

// tcp_states_dos (verbatim), used when secure_tcp is in effect.
constexpr TcpTable kTcpStatesDos = {
    {
        // INPUT
        /*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA},
        /*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA},
        /*ack*/ {sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA},
        /*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
    },
    {
        // OUTPUT
        /*syn*/ {sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA},
        /*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
        /*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
        /*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
    },
    {
        // INPUT-ONLY
        /*syn*/ {sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA},
        /*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
        /*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
        /*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
    },
};

// tcp_timeouts, seconds.
constexpr int64_t kTcpTimeouts[kTcpStateCount] = {2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120};

constexpr absl::string_view kTcpNames[kTcpStateCount] = {
    "NONE",  "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "SYNACK"};

// tcp_state_idx: rst > syn > fin > ack; -1 when none is set.
int tcpEvent(uint8_t flags) {
  if ((flags & kTcpRst) != 0)
    return 3;
  if ((flags & kTcpSyn) != 0)
    return 0;
  if ((flags & kTcpFin) != 0)
    return 1;
  if ((flags & kTcpAck) != 0)
    return 2;
  return -1;
}

// --- SCTP (ip_vs_proto_sctp.c) ---

enum SctpEvent : uint8_t {
  kEvData = 0,
  kEvInit,
  kEvInitAck,
  kEvCookieEcho,
  kEvCookieAck,
  kEvShutdown,
  kEvShutdownAck,
  kEvShutdownComplete,
  kEvError,
  kEvAbort,
  kSctpEventCount
};

// Chunk types (RFC 9260 §3.2).
constexpr uint8_t kChunkInit = 1, kChunkInitAck = 2, kChunkAbort = 6, kChunkShutdown = 7,
                  kChunkShutdownAck = 8, kChunkError = 9, kChunkCookieEcho = 10,
                  kChunkCookieAck = 11, kChunkShutdownComplete = 14;

// sctp_events[]: every unlisted chunk type (DATA, SACK, HEARTBEAT, ECNE, CWR, ...) is DATA.
SctpEvent sctpEvent(uint8_t first, uint8_t second) {
  uint8_t type = first;
  if ((first == kChunkCookieEcho || first == kChunkCookieAck) && second == kChunkAbort) {
    type = kChunkAbort;
  }
  switch (type) {
    case kChunkInit:
      return kEvInit;
    case kChunkInitAck:
      return kEvInitAck;
    case kChunkAbort:
      return kEvAbort;
    case kChunkShutdown:
      return kEvShutdown;
    case kChunkShutdownAck:
      return kEvShutdownAck;
    case kChunkError:
      return kEvError;
    case kChunkCookieEcho:
      return kEvCookieEcho;
    case kChunkCookieAck:
      return kEvCookieAck;
    case kChunkShutdownComplete:
      return kEvShutdownComplete;
    default:
      return kEvData;
  }
}

constexpr uint8_t tNO = kSctpNone, tI1 = kSctpInit1, tIN = kSctpInit, tCS = kSctpCookieSent,
                  tCR = kSctpCookieReplied, tCW = kSctpCookieWait, tCO = kSctpCookie,
                  tCE = kSctpCookieEchoed, tES = kSctpEstablished, tSS = kSctpShutdownSent,
                  tSR = kSctpShutdownReceived, tSA = kSctpShutdownAckSent, tRJ = kSctpRejected,
                  tCL = kSctpClosed;

// sctp_states (verbatim): [direction][event][state].
constexpr uint8_t kSctpStates[3][kSctpEventCount][kSctpStateCount] = {
    {
        // INPUT
        /*        sNO, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL */
        /* d   */ {tES, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* i   */ {tI1, tIN, tIN, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tIN, tIN},
        /* i_a */ {tCW, tCW, tCW, tCS, tCR, tCO, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_e */ {tCR, tIN, tIN, tCR, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_a */ {tES, tI1, tIN, tCS, tCR, tCW, tCO, tES, tES, tSS, tSR, tSA, tRJ, tCL},
        /* s   */ {tSR, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tSR, tSS, tSR, tSA, tRJ, tCL},
        /* s_a */ {tCL, tIN, tIN, tCS, tCR, tCW, tCO, tCE, tES, tCL, tSR, tCL, tRJ, tCL},
        /* s_c */ {tCL, tCL, tCL, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tCL, tRJ, tCL},
        /* err */ {tCL, tI1, tIN, tCS, tCR, tCW, tCO, tCL, tES, tSS, tSR, tSA, tRJ, tCL},
        /* ab  */ {tCL, tCL, tCL, tCL, tCL, tRJ, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL},
    },
    {
        // OUTPUT
        /* d   */ {tES, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* i   */ {tCW, tCW, tCW, tCW, tCW, tCW, tCW, tCW, tES, tCW, tCW, tCW, tCW, tCW},
        /* i_a */ {tCS, tCS, tCS, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_e */ {tCE, tCE, tCE, tCE, tCE, tCE, tCE, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_a */ {tES, tES, tES, tES, tES, tES, tES, tES, tES, tSS, tSR, tSA, tRJ, tCL},
        /* s   */ {tSS, tSS, tSS, tSS, tSS, tSS, tSS, tSS, tSS, tSS, tSR, tSA, tRJ, tCL},
        /* s_a */ {tSA, tSA, tSA, tSA, tSA, tCW, tCO, tCE, tES, tSA, tSA, tSA, tRJ, tCL},
        /* s_c */ {tCL, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* err */ {tCL, tCL, tCL, tCL, tCL, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* ab  */ {tCL, tRJ, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL},
    },
    {
        // INPUT-ONLY
        /* d   */ {tES, tI1, tIN, tCS, tCR, tES, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* i   */ {tI1, tIN, tIN, tIN, tIN, tIN, tCO, tCE, tES, tSS, tSR, tSA, tIN, tIN},
        /* i_a */ {tCE, tCE, tCE, tCE, tCE, tCE, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_e */ {tES, tES, tES, tES, tES, tES, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* c_a */ {tES, tI1, tIN, tES, tES, tCW, tES, tES, tES, tSS, tSR, tSA, tRJ, tCL},
        /* s   */ {tSR, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tSR, tSS, tSR, tSA, tRJ, tCL},
        /* s_a */ {tCL, tIN, tIN, tCS, tCR, tCW, tCO, tCE, tCL, tCL, tSR, tCL, tRJ, tCL},
        /* s_c */ {tCL, tCL, tCL, tCL, tCL, tCW, tCO, tCE, tES, tSS, tCL, tCL, tRJ, tCL},
        /* err */ {tCL, tI1, tIN, tCS, tCR, tCW, tCO, tCE, tES, tSS, tSR, tSA, tRJ, tCL},
        /* ab  */ {tCL, tCL, tCL, tCL, tCL, tRJ, tCL, tCL, tCL, tCL, tCL, tCL, tCL, tCL},
    },
};

// sctp_timeouts, seconds (IP_VS_SCTP_MAX_RTO = 61).
constexpr int64_t kSctpTimeouts[kSctpStateCount] = {2,  4,   61, 61, 61, 61, 61,
                                                    61, 900, 61, 61, 61, 4,  61};

constexpr absl::string_view kSctpNames[kSctpStateCount] = {
    "NONE",     "INIT1",       "INIT",   "C-SENT",     "C-REPLIED",  "C-WAIT",   "COOKIE",
    "C-ECHOED", "ESTABLISHED", "S-SENT", "S-RECEIVED", "S-ACK-SENT", "REJECTED", "CLOSED"};

constexpr int64_t kUdpTimeout = 300;
constexpr int64_t kIcmpTimeout = 60;

// Applies the NOOUTPUT rule of set_tcp_state / set_sctp_state.
ConnDir effectiveDir(Conn& conn, ConnDir dir) {
  if ((conn.flags & kConnFNoOutput) == 0)
    return dir;
  if (dir == ConnDir::kOutput) {
    conn.flags &= ~kConnFNoOutput;
    return dir;
  }
  return ConnDir::kInputOnly;
}

// The common tail of set_tcp_state / set_sctp_state: INACTIVE bookkeeping on a change.
void applyState(Conn& conn, uint8_t next, uint8_t established, StateChange& sc) {
  sc.was_active = (conn.flags & kConnFInactive) == 0;
  sc.is_active = sc.was_active;
  if (next != conn.state) {
    sc.changed = true;
    if (conn.dest != kNoDest) {
      bool active = isActiveState(conn.proto, next);
      if (sc.was_active && !active) {
        conn.flags |= kConnFInactive;
      } else if (!sc.was_active && active) {
        conn.flags &= ~kConnFInactive;
      }
      sc.is_active = active;
    }
    sc.assure_control = next == established;
  }
  conn.state = next;
}

}  // namespace

ProtoTimeouts ProtoTimeouts::fromConfig(const Timeouts& t) {
  ProtoTimeouts to;
  for (size_t i = 0; i < kTcpStateCount; ++i)
    to.tcp[i] = seconds(kTcpTimeouts[i]);
  for (size_t i = 0; i < kSctpStateCount; ++i)
    to.sctp[i] = seconds(kSctpTimeouts[i]);
  to.udp = seconds(kUdpTimeout);
  to.icmp = seconds(kIcmpTimeout);
  if (t.tcp != 0)
    to.tcp[kTcpEstablished] = seconds(t.tcp);
  if (t.tcp_fin != 0)
    to.tcp[kTcpFinWait] = seconds(t.tcp_fin);
  if (t.udp != 0)
    to.udp = seconds(t.udp);
  return to;
}

StateChange updateConnState(
    Conn& conn, ConnDir dir, const L3L4& pkt, const ProtoTimeouts& to, bool secure_tcp) noexcept {
  StateChange sc;
  switch (conn.proto) {
    case L4Proto::kTcp: {
      ConnDir d = effectiveDir(conn, dir);
      int ev = tcpEvent(pkt.tcp_flags);
      uint8_t cur = conn.state < kTcpStateCount ? conn.state : uint8_t{kTcpNone};
      const TcpTable& table = secure_tcp ? kTcpStatesDos : kTcpStates;
      uint8_t next = ev < 0 ? uint8_t{kTcpClose} : table[static_cast<int>(d)][ev][cur];
      applyState(conn, next, kTcpEstablished, sc);
      sc.timeout = to.tcp[next];
      break;
    }
    case L4Proto::kSctp: {
      ConnDir d = effectiveDir(conn, dir);
      SctpEvent ev = sctpEvent(pkt.sctp_chunk, pkt.sctp_second_chunk);
      uint8_t cur = conn.state < kSctpStateCount ? conn.state : uint8_t{kSctpNone};
      uint8_t next = kSctpStates[static_cast<int>(d)][ev][cur];
      applyState(conn, next, kSctpEstablished, sc);
      sc.timeout = to.sctp[next];
      break;
    }
    case L4Proto::kUdp:
      // udp_state_transition: one state, the timeout refreshed by every packet; a reply
      // assures the controlling template. NOOUTPUT is left alone, as in the kernel.
      sc.was_active = sc.is_active = (conn.flags & kConnFInactive) == 0;
      conn.state = kUdpStateNormal;
      sc.assure_control = dir == ConnDir::kOutput;
      sc.timeout = to.udp;
      break;
    default:
      sc.was_active = sc.is_active = (conn.flags & kConnFInactive) == 0;
      sc.timeout = to.icmp;
      break;
  }
  conn.timeout = sc.timeout;
  return sc;
}

bool isActiveState(L4Proto proto, uint8_t state) noexcept {
  switch (proto) {
    case L4Proto::kTcp:
      // tcp_state_active_table (current kernels).
      return state == kTcpEstablished || state == kTcpSynSent || state == kTcpSynRecv ||
             state == kTcpSynAck;
    case L4Proto::kSctp:
      return state == kSctpEstablished;
    default:
      return false;
  }
}

absl::string_view stateName(L4Proto proto, uint8_t state) noexcept {
  switch (proto) {
    case L4Proto::kTcp:
      return state < kTcpStateCount ? kTcpNames[state] : "ERR!";
    case L4Proto::kSctp:
      return state < kSctpStateCount ? kSctpNames[state] : "ERR!";
    case L4Proto::kUdp:
      return state == kUdpStateNormal ? "UDP" : "ERR!";
    default:
      return "NONE";
  }
}

absl::string_view connStateName(const Conn& conn) noexcept {
  if ((conn.flags & kConnFTemplate) != 0) {
    return (conn.state & kTemplateAssured) != 0 ? "ASSURED" : "NONE";
  }
  return stateName(conn.proto, conn.state);
}

}  // namespace lb
