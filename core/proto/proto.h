// SPDX-License-Identifier: Apache-2.0
// Per-protocol connection state machines and timeouts; the analogue of ip_vs_proto_tcp.c,
// ip_vs_proto_udp.c, ip_vs_proto_sctp.c and ip_vs_proto.c.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/packet/parse.h"
#include "core/service/config.h"

namespace lb {

// TCP states (IP_VS_TCP_S_*), in the kernel's order.
enum TcpState : uint8_t {
  kTcpNone = 0,
  kTcpEstablished,
  kTcpSynSent,
  kTcpSynRecv,
  kTcpFinWait,
  kTcpTimeWait,
  kTcpClose,
  kTcpCloseWait,
  kTcpLastAck,
  kTcpListen,
  kTcpSynAck,
  kTcpStateCount
};

// SCTP states (IP_VS_SCTP_S_*).
enum SctpState : uint8_t {
  kSctpNone = 0,
  kSctpInit1,
  kSctpInit,
  kSctpCookieSent,
  kSctpCookieReplied,
  kSctpCookieWait,
  kSctpCookie,
  kSctpCookieEchoed,
  kSctpEstablished,
  kSctpShutdownSent,
  kSctpShutdownReceived,
  kSctpShutdownAckSent,
  kSctpRejected,
  kSctpClosed,
  kSctpStateCount
};

inline constexpr uint8_t kUdpStateNormal = 0;

// The per-state timeouts of every protocol, with the three `--set` values applied.
struct ProtoTimeouts {
  Duration tcp[kTcpStateCount];
  Duration sctp[kSctpStateCount];
  Duration udp;
  // lbd's: the kernel has no ICMP conns (ip_vs has no ICMP protocol); conns lbd keeps for
  // ICMP (e.g. echo with schedule_icmp) and other protocols live 60 s after their last packet.
  Duration icmp;
  // Kernel defaults (tcp_timeouts[], sctp_timeouts[], udp 300 s) with `--set` values applied:
  // t.tcp -> ESTABLISHED, t.tcp_fin -> FIN_WAIT, t.udp -> UDP; 0 keeps the default (as
  // ip_vs_set_timeout). Any thread.
  static ProtoTimeouts fromConfig(const Timeouts& t);
};

// Result of one state update.
struct StateChange {
  bool changed = false;     // state differs from before
  bool was_active = false;  // counted in activeconns before
  bool is_active = false;   // counted in activeconns now (ip_vs_*_state_transition)
  // The controlling template, if any, becomes ASSURED (ip_vs_control_assure_ct): TCP or SCTP
  // moved to ESTABLISHED, or a UDP reply (OUTPUT) was seen.
  bool assure_control = false;
  Duration timeout{};  // the timeout to arm now (also stored in conn.timeout)
};

// Applies one packet to the conn's state, as ip_vs_proto_{tcp,udp,sctp}.c state_transition:
// - While kConnFNoOutput is set, INPUT is treated as INPUT-ONLY and an OUTPUT packet clears the
//   flag (TCP and SCTP; the caller may also pass kInputOnly itself).
// - TCP: event rst > syn > fin > ack; no such flag => CLOSE. `secure_tcp` selects
//   tcp_states_dos. SCTP: event from the first chunk (COOKIE_ECHO/ACK followed by ABORT counts
//   as ABORT). UDP: single state, timeout refreshed. ICMP and others: no state, icmp timeout.
// - On a change that crosses the active boundary of a conn with a dest, kConnFInactive is
//   flipped; the caller moves the dest's active/inactive counters when was_active != is_active.
// - conn.timeout is set; the caller re-arms the timer (ConnGuard::setTimeout).
// Worker thread, conn's guard held. Hot path.
StateChange updateConnState(
    Conn& conn, ConnDir dir, const L3L4& pkt, const ProtoTimeouts& to, bool secure_tcp) noexcept;

// Whether a state counts as active (tcp_state_active_table, SCTP ESTABLISHED; UDP never).
bool isActiveState(L4Proto proto, uint8_t state) noexcept;
// The name -Lnc prints (ip_vs_proto_*.c *_state_name_table): "ESTABLISHED", "UDP", SCTP's
// "C-ECHOED" etc., "NONE"/"ASSURED" for templates, "NONE" for protocols without states, "ERR!"
// for an out-of-range state. Any thread.
absl::string_view connStateName(const Conn& conn) noexcept;

// The state name of one protocol's state number (no template handling). Any thread.
absl::string_view stateName(L4Proto proto, uint8_t state) noexcept;

}  // namespace lb
