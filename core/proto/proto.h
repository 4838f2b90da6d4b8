// SPDX-License-Identifier: Apache-2.0
// Per-protocol connection state machines and timeouts; the analogue of ip_vs_proto_tcp.c,
// ip_vs_proto_udp.c, ip_vs_proto_sctp.c and ip_vs_proto.c.
#ifndef LBD_CORE_PROTO_PROTO_H_
#define LBD_CORE_PROTO_PROTO_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/packet/parse.h"
#include "core/service/config.h"

namespace lb {

// TCP states (IP_VS_TCP_S_*), in the kernel's order.
enum TcpState : uint8_t {
  kTcpNone = 0, kTcpEstablished, kTcpSynSent, kTcpSynRecv, kTcpFinWait, kTcpTimeWait,
  kTcpClose, kTcpCloseWait, kTcpLastAck, kTcpListen, kTcpSynAck, kTcpStateCount
};
// SCTP states (IP_VS_SCTP_S_*).
enum SctpState : uint8_t {
  kSctpNone = 0, kSctpInit1, kSctpInit, kSctpCookieSent, kSctpCookieReplied, kSctpCookieWait,
  kSctpCookie, kSctpCookieEchoed, kSctpEstablished, kSctpShutdownSent, kSctpShutdownReceived,
  kSctpShutdownAckSent, kSctpRejected, kSctpClosed, kSctpStateCount
};
inline constexpr uint8_t kUdpStateNormal = 0;

// The per-state timeouts of every protocol, with the three `--set` values applied.
struct ProtoTimeouts {
  Duration tcp[kTcpStateCount];
  Duration sctp[kSctpStateCount];
  Duration udp;
  Duration icmp;
  // Kernel defaults (tcp_timeouts[], sctp_timeouts[], udp 300 s) overridden by `t` where
  // non-zero. Control thread.
  static ProtoTimeouts fromConfig(const Timeouts& t);
};

// Result of one state update.
struct StateChange {
  bool changed = false;       // state differs from before
  bool was_active = false;    // counted in activeconns before
  bool is_active = false;     // counted in activeconns now (ip_vs_*_state_transition)
  Duration timeout{};         // the timeout to arm now
};

// Applies one packet to the conn's state (direction per ip_vs_*_state_transition; kInputOnly
// is used by the caller while kConnFNoOutput is set). `secure_tcp` selects tcp_states_dos.
// Hot path. Does not touch counters: the caller moves active/inactive on `StateChange`.
StateChange updateConnState(Conn& conn, ConnDir dir, const L3L4& pkt, const ProtoTimeouts& to,
                            bool secure_tcp) noexcept;

// Whether a state counts as active (tcp_state_active_table, SCTP ESTABLISHED; UDP never).
bool isActiveState(L4Proto proto, uint8_t state) noexcept;
// The name -Lnc prints: "ESTABLISHED", "UDP", "COOKIE_ECHOED", "NONE"/"ASSURED" for templates.
absl::string_view connStateName(const Conn& conn) noexcept;

}  // namespace lb

#endif  // LBD_CORE_PROTO_PROTO_H_
