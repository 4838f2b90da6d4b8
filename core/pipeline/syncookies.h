// SPDX-License-Identifier: Apache-2.0
// SYN cookies for plain NAT and full-NAT TCP services, on by themselves under a SYN flood: the
// kernel's net.ipv4.tcp_syncookies (1: cookies only while a listener's SYN queue overflows,
// tcp_syn_flood_action; 2: always) applied to lbd's conn table, with the SYN proxy's cookies
// (synproxy.h) and its pipeline steps (synproxy_pipeline.cc). The sysctl `syncookies`:
//   0  only --synproxy services answer SYNs with cookies (before lbd 17),
//   1  (default) every eligible service too while the governor below has it on,
//   2  every eligible service always.
// "Under a SYN flood" is a service's count of embryonic TCP conns in the conn table (never
// ASSURED, ConnTable::embryonicTcp(svc)), the kernel's SYN queue of that listener: a flood fills
// it with half-open conns that live their SYN_RECV timeout, real clients leave it within a
// round trip. Only the flooded service answers with cookies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/base/ids.h"
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

// The automatic state (syncookies 1), per service as the kernel's is per listener
// (tcp_syn_flood_action: only the listener whose SYN queue overflowed sends cookies; a cookie
// conn has no window scaling, SACK or timestamps, so the other services keep their own
// handshakes). Housekeeping thread: once per tick tick() with the cookie counters, then update()
// for each eligible service with its own embryonic TCP conns (ConnTable::embryonicTcp(svc));
// it says when that service's state changes; the caller publishes it
// (ConnTable::setSyncookiesActive(svc, ...)) and updates the tc program's map. sweep() then
// turns off the services that were on but were not updated this tick (removed, or no longer
// eligible). Pure; allocates only in the constructor.
//
// A service goes on when it holds more than syncookies_threshold embryonic TCP conns. While
// on, no spoofed SYN to it makes a conn, so its count drains within a SYN_RECV timeout even
// under a steady flood; it therefore stays on while either sign holds:
//   - its embryonic conns above threshold / 2, or
//   - cookies nobody returned: (cookies sent - conns opened from cookies) per second over the
//     last kSyncookiesRateWindow, times the SYN_RECV timeout, above threshold / 2: the embryonic
//     conns those SYNs would make if they were scheduled.
// The second sign is global: the pipelines' synproxy counters and the tc program's synproxy_cnt
// count all services together (the program has one counter array, not one per map entry, and
// its SYN-ACK path would need a per-service slot to count per service). So unreturned cookies
// only keep a service on that is already on (it can never turn one on: that takes the service's
// own embryonic count), and while several services are on, or a --synproxy service is flooded,
// a service whose own flood stopped may stay on as long as the others' cookies go unreturned.
// Without it a steady flood would take the state off after each SYN_RECV timeout and let
// threshold spoofed conns in again.
// It goes off after kSyncookiesQuietPeriod with neither. With syncookies 0 every service is off,
// with 2 on. kCookieAckWindow (ConnTable::lastCookieSent) stays global: an ACK without a conn
// to any eligible service is checked for a cookie within it, which costs a hash for a stray
// ACK and opens nothing a SYN-ACK of that service did not carry.
class SyncookieGovernor {
 public:
  struct Sample {
    uint64_t cookies_sent = 0;      // SYN-ACKs with a cookie so far (pipelines + tc program)
    uint64_t cookies_returned = 0;  // conns opened from a valid cookie so far
  };
  enum class Change : uint8_t { kNone, kOn, kOff };

  // Service ids below `max_services` are governed (others are never on). May allocate.
  explicit SyncookieGovernor(size_t max_services = 65536);

  // Once per tick, before the update() calls: the rate window.
  void tick(const Sample& s, MonoTime now) noexcept;

  // Service `svc` (eligible, not --synproxy) with `embryonic` TCP conns of its own.
  Change update(const Sysctls& sys,
                ServiceId svc,
                size_t embryonic,
                Duration syn_recv,
                MonoTime now) noexcept;

  // After the update() calls of a tick: `off(svc)` for each service on that had none; they
  // are off afterwards.
  template <typename Fn>
  void sweep(Fn&& off) {
    for (size_t i = 0; i < active_n_;) {
      const ServiceId id = active_ids_[i];
      if (state_[id].seen == tick_) {
        ++i;
        continue;
      }
      state_[id].active = false;
      active_ids_[i] = active_ids_[--active_n_];
      off(id);
    }
  }

  bool active(ServiceId svc) const { return svc < state_.size() && state_[svc].active; }

  // Services on.
  size_t activeCount() const { return active_n_; }

  // The last window's unreturned cookies per second (for the transition's log line).
  uint64_t unreturnedRate() const { return unreturned_rate_; }

 private:
  struct State {
    bool active = false;
    uint64_t seen = 0;  // the tick_ of its last update()
    MonoTime last_busy{};
  };

  std::vector<State> state_;
  std::vector<ServiceId> active_ids_;  // active_n_ of them; sized max_services
  size_t active_n_ = 0;
  uint64_t tick_ = 0;
  bool started_ = false;
  MonoTime window_start_{};
  uint64_t sent_at_start_ = 0, returned_at_start_ = 0;
  uint64_t unreturned_rate_ = 0;
};

}  // namespace lb
