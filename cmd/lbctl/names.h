// SPDX-License-Identifier: Apache-2.0
// Host and service names in listings without -n (ipvsadm.c addrport_to_anyname: gethostbyaddr
// and getservbyport, numeric where none answers). Unlike ipvsadm, the lookups are bounded:
// they run on up to kMaxLookupThreads threads at once and the listing waits at most a fixed
// time for all of them together (kNameLookupBound); whatever has not answered by then prints
// numerically. Each address and port is looked up once per run.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/time/time.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbctl {

inline constexpr size_t kMaxLookupThreads = 16;
inline constexpr absl::Duration kNameLookupBound = absl::Seconds(2);

// The name service. Implementations must be safe to call from several threads at once and
// may block (a resolver that does not answer); a call may outlive the listing that made it.
class NameResolver {
 public:
  virtual ~NameResolver() = default;
  // The host name of an IPv4 address in dotted form (gethostbyaddr's h_name), or nullopt.
  virtual std::optional<std::string> hostName(const std::string& ipv4) const = 0;
  // The service name of a port for "tcp", "udp" or "sctp" (getservbyport's s_name), or nullopt.
  virtual std::optional<std::string> serviceName(uint16_t port, const std::string& proto) const = 0;
};

// The system's: getnameinfo(NI_NAMEREQD) and getservbyport_r, so /etc/hosts, DNS and
// /etc/services answer as nsswitch.conf says.
std::shared_ptr<const NameResolver> systemResolver();

// What a listing will print: IPv4 addresses and (port, protocol) pairs.
struct NameRequest {
  std::set<std::string> hosts;
  std::set<std::pair<uint16_t, std::string>> ports;
  // Adds one address:port of a listing; IPv6 addresses are never looked up (ipvsadm's
  // gethostbyaddr is called with an IPv4 length, so they always print numerically).
  void add(const std::string& address, uint32_t port, ::lbd::v1::Protocol proto);
};

NameRequest nameRequestOf(const ::lbd::v1::ListServicesResponse& r);
NameRequest nameRequestOf(const ::lbd::v1::ListConnectionsResponse& r);

// The answers of one run. Default-constructed: numeric (-n).
class Names {
 public:
  Names() = default;
  // Looks up every entry of `req` through `resolver`, in parallel, returning after all have
  // answered or after `bound`, whichever is first. Lookups still running are left to finish
  // on their own threads (they hold `resolver`); their answers are not used.
  static Names lookup(const NameRequest& req,
                      std::shared_ptr<const NameResolver> resolver,
                      absl::Duration bound);

  bool numeric() const { return numeric_; }

  // "host:service", "[2001:2::1]:http", or numeric parts where no name came back; at most 59
  // characters (ipvsadm's 60-byte buffer).
  std::string addrPort(const std::string& address, uint32_t port, ::lbd::v1::Protocol proto) const;

 private:
  bool numeric_ = true;
  std::map<std::string, std::string> hosts_;
  std::map<std::pair<uint16_t, std::string>, std::string> ports_;
};

}  // namespace lb::lbctl
