// SPDX-License-Identifier: Apache-2.0
// The kernel state lbd installs around its TUN device and removes again: routes of VIPs,
// full-NAT local addresses and fwmark prefixes into the TUN device, policy rules that divert
// NAT replies (from RIP:rport) into it, proxy ARP/NDP entries, sysctls. Everything carries
// protocol 245 (io::kLbdProto) so a crashed run's leftovers are found and removed at start.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "cmd/lbd/dataplane/dataplane.h"
#include "core/service/config.h"
#include "io/netlink/netlink.h"

namespace lb::lbd {

// Rule preferences lbd owns (100..199):
//   100  iif <tun> goto 150        packets lbd wrote skip the diversion rules
//   110  from RIP ipproto P sport rport lookup 245    (one per NAT dest)
//   150  gateway: lookup main; sidecar: lookup local (moved from pref 0, so that replies to
//        the app's own address are diverted before local delivery)
inline constexpr uint32_t kPrefIifTun = 100;
inline constexpr uint32_t kPrefDivert = 110;
inline constexpr uint32_t kPrefAfter = 150;

// Control thread only.
class KernelState {
 public:
  // `journal`: where the previous value of every sysctl lbd changes is kept while it runs
  // (empty = nowhere), so that the next start puts them back after a crash (kill -9).
  KernelState(io::Netlink& nl, Mode mode, std::string tun, int tun_ifindex, std::string journal);

  // The journal path for this network namespace and TUN name under `run_dir`:
  // RUN_DIR/sysctls-<netns cookie or inode>-<tun>. Namespaces never share a cookie.
  static std::string journalPath(const std::string& run_dir, const std::string& tun);

  // Removes routes, rules and proxy entries with protocol 245, puts a moved local rule back
  // at pref 0 and restores the sysctls a crashed run's journal lists. Errors name the object.
  absl::Status cleanupLeftovers();
  // Sysctls (ip_forward, rp_filter/accept_local on the TUN), table 245's default routes and the
  // base rules of the mode.
  absl::Status installBase();
  // Brings routes, diversion rules, proxy entries and per-family sysctls in line with `cfg`:
  // adds what is missing, removes what is no longer wanted.
  absl::Status reconcile(const FullConfig& cfg);
  // Removes everything installed, in reverse order, and restores every sysctl. Logs failures.
  void removeAll();

  // Hot restart (lbd --takeover): what this object installed and must undo, as text, so that
  // the next lbd adopts it instead of cleaning it up as leftovers and installing it again.
  std::string exportState() const;
  // Adopts what exportState() wrote (in place of cleanupLeftovers + installBase). The journal
  // is rewritten for this process. InvalidArgument naming the line that does not parse.
  absl::Status importState(const std::string& text);

  // True when some dest of `cfg` tunnels (TSO must then be off on the TUN; see dataplane.cc).
  static bool hasTunnelDests(const FullConfig& cfg);

  // A NAT real server's (address, L4 protocol, port): its packets are replies lbd must see. The
  // diversion rules match them (`from RIP ipproto P sport PORT`), and so does the tc fast path.
  struct NatReply {
    IpAddr addr;
    L4Proto proto = L4Proto::kTcp;
    uint16_t port = 0;
  };

  // The addresses of one service that lbd routes into its own device: the VIP (not for a fwmark
  // service) and the full-NAT local addresses.
  static std::vector<IpAddr> ownAddrs(const ServiceWithDests& sd);
  // The NAT replies of one service: its masquerading dests, with the service's protocol (TCP
  // and UDP for a fwmark service). A TCP service on one of `ftp_ports` (the FTP helper's) also
  // has each dest's port - 1 (FTP's active data connections come from port 20 for 21).
  static std::vector<NatReply> natReplies(const ServiceWithDests& sd,
                                          const std::vector<uint16_t>& ftp_ports = {});

  // The FTP helper's control ports, for natReplies in reconcile(). Before the first reconcile.
  void setFtpPorts(std::vector<uint16_t> ports) { ftp_ports_ = std::move(ports); }

 private:
  absl::Status setSysctl(const std::string& path, const std::string& value);
  // Where /proc/sys is read-only (Docker), IPv4 per-device settings go through netlink.
  absl::Status setSysctlViaNetlink(const std::string& path,
                                   const std::string& value,
                                   const absl::Status& why);
  absl::Status setTunConf(const std::string& name, const std::string& value);
  absl::Status addRoute(const io::RouteSpec& r);
  absl::Status addRule(const io::RuleSpec& r, std::vector<io::RuleSpec>& into);
  absl::Status ensureProxies(const std::vector<IpAddr>& wanted);
  // Rewrites the journal from sysctls_ and devconfs_ (atomically); logs failures.
  void saveJournal();
  // Puts back what a previous run's journal lists and removes the journal.
  void restoreJournal();

  io::Netlink& nl_;
  Mode mode_;
  std::string tun_;
  std::vector<uint16_t> ftp_ports_;
  int tun_ifindex_;
  std::string journal_;
  std::vector<std::pair<std::string, std::string>> sysctls_;  // path, previous value

  struct DevConf {
    int ifindex;
    int id;
    uint32_t old;
  };

  std::vector<DevConf> devconfs_;  // set through netlink; restored on removeAll
  std::vector<io::RouteSpec> base_routes_;
  std::vector<io::RuleSpec> base_rules_;
  bool local_moved_[2] = {false, false};  // v4, v6 (sidecar)
  std::vector<io::RouteSpec> routes_;     // per-config routes
  std::vector<io::RuleSpec> rules_;       // diversion rules
  std::vector<std::pair<IpAddr, int>> proxies_;
};

}  // namespace lb::lbd
