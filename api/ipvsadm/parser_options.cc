// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/parser_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

#include "api/ipvsadm/health_option.h"
#include "api/ipvsadm/tables.h"

namespace lb::ipvsadm {

namespace pb = ::lbd::v1;

std::optional<int> syncDaemonOptionBit(int tag) {
  switch (tag) {
    case kTagMcastInterface:
      return kOptMcast;
    case kTagSyncId:
      return kOptSyncId;
    case kTagMcastGroup:
      return kOptMcastGroup;
    case kTagMcastPort:
      return kOptMcastPort;
    case kTagMcastTtl:
      return kOptMcastTtl;
    case kTagSyncMaxlen:
      return kOptSyncMaxlen;
    default:
      return std::nullopt;
  }
}

std::optional<std::string> setSyncDaemonOption(int tag, const char* arg, pb::SyncDaemon* daemon) {
  switch (tag) {
    case kTagMcastInterface:
      // ipvsadm: strncpy(mcast_ifn, optarg, IP_VS_IFNAME_MAXLEN - 1).
      daemon->set_mcast_interface(std::string(arg).substr(0, 15));
      return std::nullopt;
    case kTagSyncId:
      if (stringToNumber(arg, 0, 255) == -1)
        return "illegal syncid specified";
      daemon->set_syncid(static_cast<uint32_t>(stringToNumber(arg, 0, 255)));
      return std::nullopt;
    case kTagMcastGroup:
      if (std::strchr(arg, ':') != nullptr) {
        in6_addr a{};
        if (inet_pton(AF_INET6, arg, &a) <= 0 || !IN6_IS_ADDR_MULTICAST(&a))
          return absl::StrFormat("invalid IPv6 mcast-group `%s'", arg);
      } else {
        in_addr a{};
        if (inet_pton(AF_INET, arg, &a) <= 0 || !IN_MULTICAST(ntohl(a.s_addr)))
          return absl::StrFormat("invalid IPv4 mcast-group `%s'", arg);
      }
      daemon->set_mcast_group(arg);
      return std::nullopt;
    case kTagMcastPort:
      if (stringToNumber(arg, 1, 65535) == -1)
        return "illegal mcast-port specified";
      daemon->set_mcast_port(static_cast<uint32_t>(stringToNumber(arg, 1, 65535)));
      return std::nullopt;
    case kTagMcastTtl:
      if (stringToNumber(arg, 1, 255) == -1)
        return "illegal mcast-ttl specified";
      daemon->set_mcast_ttl(static_cast<uint32_t>(stringToNumber(arg, 1, 255)));
      return std::nullopt;
    case kTagSyncMaxlen:
      if (stringToNumber(arg, 1, 65535 - 20 - 8) == -1)
        return "illegal sync-maxlen specified";
      daemon->set_sync_maxlen(static_cast<uint32_t>(stringToNumber(arg, 1, 65535 - 20 - 8)));
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<std::string> addCheckOption(const char* arg, pb::Dest* dest) {
  absl::StatusOr<pb::HealthCheck> check = parseCheckOption(arg);
  if (!check.ok())
    return std::string(check.status().message());
  *dest->add_health_checks() = std::move(*check);
  return std::nullopt;
}

std::optional<std::string> setHealthOption(const char* arg, pb::Service* service) {
  absl::StatusOr<pb::HealthPolicy> policy = parseHealthOption(arg);
  if (!policy.ok())
    return std::string(policy.status().message());
  *service->mutable_health_policy() = std::move(*policy);
  return std::nullopt;
}

}  // namespace lb::ipvsadm
