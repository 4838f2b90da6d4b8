// SPDX-License-Identifier: Apache-2.0
// rtnetlink through libmnl: routes, policy-routing rules, proxy ARP/NDP entries, neighbour
// and route lookups, addresses. What `ip route|rule|neigh|addr` do, for lbd's kernel state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "core/base/addr.h"

struct mnl_socket;
struct nlmsghdr;

namespace lb::io {

// Everything lbd installs carries this protocol number (routes: rtm_protocol; rules:
// FRA_PROTOCOL; proxy neighbours: NDA_PROTOCOL), so leftovers of a crashed run are found and
// removed at start. 245 is unassigned in /etc/iproute2/rt_protos.
inline constexpr uint8_t kLbdProto = 245;
// lbd's routing table: "default dev <tun>", looked up by the reply-diversion rules.
inline constexpr uint32_t kLbdTable = 245;
inline constexpr uint32_t kMainTable = 254;

struct RouteSpec {
  IpAddr dst;  // unspecified address with prefix_len 0 = default route (af from `af`)
  Af af = Af::kInet;
  int prefix_len = 32;
  uint32_t table = kMainTable;
  int oif = 0;
  uint8_t protocol = kLbdProto;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

struct RuleSpec {
  Af af = Af::kInet;
  uint32_t pref = 0;
  IpAddr src;  // unspecified = any
  int src_len = 0;
  std::string iif;         // empty = any
  uint8_t ip_proto = 0;    // FRA_IP_PROTO, 0 = any (kernel 4.17)
  uint16_t sport = 0;      // FRA_SPORT_RANGE start = end, 0 = any
  uint32_t table = 0;      // action "lookup table" when goto_pref == 0
  uint32_t goto_pref = 0;  // action "goto goto_pref"
  uint8_t protocol = kLbdProto;
  friend bool operator==(const RuleSpec&, const RuleSpec&) = default;
};

struct AddrInfo {
  int ifindex = 0;
  IpAddr addr;
  int prefix_len = 0;
};

using MacAddr = std::array<uint8_t, 6>;

// One NETLINK_ROUTE socket. Any thread; calls are serialised by an internal mutex. Never on
// the packet path. Errors are Internal/AlreadyExists/NotFound with the kernel's errno text and
// the object, e.g. "add route 198.18.0.1/32 dev 7 table 254: File exists".
class Netlink {
 public:
  static absl::StatusOr<std::unique_ptr<Netlink>> open();
  ~Netlink();

  absl::Status addRoute(const RouteSpec& r);
  absl::Status delRoute(const RouteSpec& r);
  // Routes of `af` in every table with the given protocol.
  absl::StatusOr<std::vector<RouteSpec>> listRoutes(Af af, uint8_t protocol);

  absl::Status addRule(const RuleSpec& r);
  absl::Status delRule(const RuleSpec& r);
  // Every rule of `af`; `protocol` is filled from FRA_PROTOCOL.
  absl::StatusOr<std::vector<RuleSpec>> listRules(Af af);
  // The "lookup local" rule at `pref` (0 in a fresh namespace).
  absl::Status addLocalRule(Af af, uint32_t pref, uint8_t protocol);
  absl::Status delLocalRule(Af af, uint32_t pref);
  // True when a rule at `pref` looks up the local table.
  absl::StatusOr<bool> hasLocalRule(Af af, uint32_t pref);

  // Proxy ARP / proxy NDP entry (`ip neigh add proxy ADDR dev IF`).
  absl::Status addProxyNeigh(const IpAddr& addr, int ifindex);
  absl::Status delProxyNeigh(const IpAddr& addr, int ifindex);
  // Proxy entries with protocol kLbdProto: (addr, ifindex).
  absl::StatusOr<std::vector<std::pair<IpAddr, int>>> listProxyNeighs(Af af);

  // The MAC of a reachable (or stale/delay/probe/permanent) neighbour, nullopt otherwise.
  absl::StatusOr<std::optional<MacAddr>> getNeigh(int ifindex, const IpAddr& addr);
  // Starts ARP/ND resolution for addr (NTF_USE), as a first packet to it would.
  absl::Status resolveNeigh(int ifindex, const IpAddr& addr);
  // Route lookup (`ip route get`): output interface and gateway (unspecified if on-link).
  absl::StatusOr<std::pair<int, IpAddr>> getRoute(const IpAddr& dst);

  absl::StatusOr<std::vector<AddrInfo>> listAddrs(Af af);
  // `ip addr add ADDR/PREFIX dev IFINDEX scope link`.
  absl::Status addLinkScopeAddr(int ifindex, const IpAddr& addr, int prefix_len);
  // Sets one IPv4 per-device setting (IPV4_DEVCONF_* from <linux/ip.h>: forwarding, rp_filter,
  // accept_local, proxy_arp ...) through RTM_SETLINK / IFLA_AF_SPEC / IFLA_INET_CONF. Needs only
  // CAP_NET_ADMIN, so it works where /proc/sys is mounted read-only (Docker containers).
  absl::Status setIpv4DevConf(int ifindex, int conf_id, uint32_t value);

 private:
  Netlink() = default;
  absl::Status request(void* buf, const std::string& what);
  absl::Status dump(void* buf,
                    int (*cb)(const nlmsghdr*, void*),
                    void* data,
                    const std::string& what);
  absl::Status rule(const RuleSpec& r, uint16_t type, uint16_t flags);
  absl::Status route(const RouteSpec& r, uint16_t type, uint16_t flags);
  absl::Status proxyNeigh(const IpAddr& addr, int ifindex, uint16_t type, uint16_t flags);

  std::mutex mu_;
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 1;
};

// Writes `value` to /proc/sys/<path> (dots or slashes). Returns the previous value.
absl::StatusOr<std::string> writeSysctl(const std::string& path, const std::string& value);
absl::StatusOr<std::string> readSysctl(const std::string& path);

// This thread's network namespace as a short id for file names: "c<SO_NETNS_COOKIE>" (Linux
// 5.14; never reused), else "i<inode of /proc/self/ns/net>" (reusable after the namespace is
// gone); "" when neither is readable. Any thread.
std::string netnsId();

}  // namespace lb::io
