// SPDX-License-Identifier: Apache-2.0
// SYN cookies for plain NAT and full-NAT TCP services, on by themselves under a SYN flood: the
// kernel's net.ipv4.tcp_syncookies (1: cookies only while a listener's SYN queue overflows,
// tcp_syn_flood_action; 2: always) applied to lbd's conn table, with the SYN proxy's cookies
// (synproxy.h) and its pipeline steps (synproxy_pipeline.cc). The sysctl `syncookies`:
//   0  only --synproxy services answer SYNs with cookies (before lbd 17),
//   1  (default) every eligible service too while the governor below is on,
//   2  every eligible service always.
// "Under a SYN flood" is the conn table's count of embryonic TCP conns (never ASSURED,
// ConnTable::embryonicTcp), the kernel's SYN queue: a flood fills it with half-open conns that
// live their SYN_RECV timeout, real clients leave it within a round trip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/base/time.h"
#include "core/service/config.h"
#include "core/service/snapshot.h"

namespace lb {

// How long after a cookie was last sent an ACK without a conn may still return one (a cookie
// is valid for two 64 s counter steps; the kernel's tcp_synq_no_recent_overflow is the same
// idea), with a margin for lastCookieSent's one-second resolution.
inline constexpr Duration kCookieAckWindow = std::chrono::seconds(130);
// The governor goes off only after this long with neither sign of a flood (hysteresis in time).
inline constexpr Duration kSyncookiesQuietPeriod = std::chrono::seconds(10);
// The governor's rate window.
inline constexpr Duration kSyncookiesRateWindow = std::chrono::seconds(1);

// Whether `svc` may answer SYNs with cookies without --synproxy: a TCP service of its own
// VIP:port (not fwmark, not port zero) whose real servers are all NAT or full NAT, at least one
// of them available (the SYN proxy's translation needs the replies through lbd; DR and tunnel
// replies bypass it; UDP and SCTP have no cookie). Walks the service's dests. Any thread; pure.
bool syncookieEligible(const ServiceSnapshot& snap, const SnapService& svc) noexcept;

// Whether SYNs to eligible services are answered with cookies, for `sys` and the governor's
// published state. Pure.
constexpr bool syncookiesAnswer(const Sysctls& sys, bool active) {
  return sys.syncookies == 2 || (sys.syncookies == 1 && active);
}

// Whether an ACK without a conn to an eligible service is checked for a cookie: while cookies
// are answered, or within kCookieAckWindow of the last one sent (the state may have gone off
// since). Pure.
bool syncookiesAccept(const Sysctls& sys,
                      bool active,
                      std::optional<MonoTime> last_sent,
                      MonoTime now) noexcept;

// The automatic state (syncookies 1). Housekeeping thread: fed a sample of the table and the
// cookie counters every tick, it says when the state changes; the caller publishes it
// (ConnTable::setSyncookiesActive) and updates the tc program's map. Pure, no allocation.
//
// On when the table holds more than syncookies_threshold embryonic TCP conns. While on, no
// spoofed SYN makes a conn, so that count drains within a SYN_RECV timeout even under a steady
// flood; the state therefore stays on while either sign holds:
//   - embryonic conns above threshold / 2, or
//   - cookies nobody returned: (cookies sent - conns opened from cookies) per second over the
//     last kSyncookiesRateWindow, times the SYN_RECV timeout, above threshold / 2: the embryonic
//     conns those SYNs would make if they were scheduled (a real client returns its cookie
//     within a round trip; a spoofed source never does).
// It goes off after kSyncookiesQuietPeriod with neither. With syncookies 0 it is off, with 2 on.
class SyncookieGovernor {
 public:
  struct Sample {
    size_t embryonic = 0;           // ConnTable::embryonicTcp()
    uint64_t cookies_sent = 0;      // SYN-ACKs with a cookie so far (pipelines + tc program)
    uint64_t cookies_returned = 0;  // conns opened from a valid cookie so far
  };
  enum class Change : uint8_t { kNone, kOn, kOff };

  Change update(const Sysctls& sys, const Sample& s, Duration syn_recv, MonoTime now) noexcept;

  bool active() const { return active_; }

  // The last window's unreturned cookies per second (for the transition's log line).
  uint64_t unreturnedRate() const { return unreturned_rate_; }

 private:
  bool active_ = false;
  bool started_ = false;
  MonoTime window_start_{};
  uint64_t sent_at_start_ = 0, returned_at_start_ = 0;
  uint64_t unreturned_rate_ = 0;
  MonoTime last_busy_{};
};

}  // namespace lb
