// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/tables.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/ascii.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

bool allDigits(const std::string& s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

int serviceToPort(const std::string& name, pb::Protocol proto) {
  const char* p = proto == pb::PROTOCOL_TCP    ? "tcp"
                  : proto == pb::PROTOCOL_UDP  ? "udp"
                  : proto == pb::PROTOCOL_SCTP ? "sctp"
                                               : nullptr;
  if (p == nullptr)
    return -1;
  servent* s = getservbyname(name.c_str(), p);
  return s == nullptr ? -1 : ntohs(static_cast<uint16_t>(s->s_port));
}

}  // namespace

// ipvsadm's string_to_number: the whole string, base 10, within [min, max]; -1 otherwise.
int64_t stringToNumber(const char* s, int64_t min, int64_t max) {
  if (s == nullptr || *s == '\0')
    return -1;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(s, &end, 10);
  if (*end != '\0' || errno == ERANGE || n < min || n > max)
    return -1;
  return n;
}

std::optional<in_addr> hostToAddr(const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0 || res == nullptr)
    return std::nullopt;
  in_addr a = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
  freeaddrinfo(res);
  return a;
}

// ipvsadm's parse_service: host[:port], [v6]:port, bare v6. Returns kSvc* bits.
int parseService(const std::string& text, pb::Protocol proto, ParsedAddr* out) {
  if (text.empty() || allDigits(text))
    return kSvcNone;
  std::string host = text;
  std::optional<std::string> port;
  bool bracketed = false;
  if (host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string::npos || close + 1 >= host.size() || host[close + 1] != ':') {
      return kSvcNone;
    }
    port = host.substr(close + 2);
    host = host.substr(1, close - 1);
    bracketed = true;
  }
  char buf[INET6_ADDRSTRLEN];
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) > 0) {
    out->af = AF_INET6;
    out->address = inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
  } else {
    if (!bracketed) {
      size_t colon = host.rfind(':');
      if (colon != std::string::npos) {
        port = host.substr(colon + 1);
        host.resize(colon);
      }
    }
    in_addr a4{};
    if (inet_aton(host.c_str(), &a4) == 0) {
      std::optional<in_addr> r = hostToAddr(host);
      if (!r)
        return kSvcNone;
      a4 = *r;
    }
    out->af = AF_INET;
    out->address = inet_ntop(AF_INET, &a4, buf, sizeof(buf));
  }
  int result = kSvcAddr;
  if (port) {
    result |= kSvcPort;
    int64_t n = stringToNumber(port->c_str(), 0, 65535);
    if (n == -1)
      n = serviceToPort(*port, proto);
    if (n == -1)
      return kSvcNone;
    out->port = static_cast<uint16_t>(n);
  }
  return result;
}

const CommandInfo* commandInfo(CommandKind k) {
  for (const CommandInfo& c : kCommands) {
    if (c.kind == k)
      return &c;
  }
  return nullptr;
}

std::optional<CommandKind> commandFor(int c) {
  switch (c) {
    case 'A':
      return CommandKind::kAddService;
    case 'E':
      return CommandKind::kEditService;
    case 'D':
      return CommandKind::kDeleteService;
    case 'a':
      return CommandKind::kAddDest;
    case 'e':
      return CommandKind::kEditDest;
    case 'd':
      return CommandKind::kDeleteDest;
    case 'C':
      return CommandKind::kFlush;
    case 'L':
    case 'l':
      return CommandKind::kList;
    case 'Z':
      return CommandKind::kZero;
    case kTagSet:
      return CommandKind::kSetTimeout;
    case 'R':
      return CommandKind::kRestore;
    case 'S':
      return CommandKind::kSave;
    case 'P':
      return CommandKind::kAddLaddr;
    case 'Q':
      return CommandKind::kDelLaddr;
    case 'G':
      return CommandKind::kGetLaddr;
    case kTagStartDaemon:
      return CommandKind::kStartDaemon;
    case kTagStopDaemon:
      return CommandKind::kStopDaemon;
    case 'h':
      return CommandKind::kHelp;
    case 'v':
      return CommandKind::kVersion;
    default:
      return std::nullopt;
  }
}

std::optional<int> maskToPrefix(in_addr mask) {
  uint32_t m = ntohl(mask.s_addr);
  int prefix = 0;
  while (prefix < 32 && (m & (0x80000000u >> prefix)) != 0)
    ++prefix;
  uint32_t expect = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if (m != expect)
    return std::nullopt;
  return prefix;
}

}  // namespace lb::ipvsadm
