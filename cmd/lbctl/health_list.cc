// SPDX-License-Identifier: Apache-2.0
// lbctl --list-checks: the health checks lbd runs (ListHealthChecks), in a listing of lbd's
// own (ipvsadm has none; its listings stay as they are) or as JSON with --output=json.
//   lbctl --list-checks [-t|-u SERVICE | -f MARK] [--output=json] [--server=ADDR] [--tls-*]
#include "cmd/lbctl/health_list.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <ostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

const char* typeName(pb::HealthCheckType t) {
  switch (t) {
    case pb::HEALTH_CHECK_TYPE_TCP:
      return "TCP_CHECK";
    case pb::HEALTH_CHECK_TYPE_HTTP:
      return "HTTP_GET";
    case pb::HEALTH_CHECK_TYPE_SSL:
      return "SSL_GET";
    case pb::HEALTH_CHECK_TYPE_UDP:
      return "UDP_CHECK";
    case pb::HEALTH_CHECK_TYPE_DNS:
      return "DNS_CHECK";
    case pb::HEALTH_CHECK_TYPE_PING:
      return "PING_CHECK";
    case pb::HEALTH_CHECK_TYPE_MISC:
      return "MISC_CHECK";
    default:
      return "?";
  }
}

std::string hostPort(const std::string& a, uint32_t port) {
  if (a.find(':') != std::string::npos)
    return absl::StrFormat("[%s]:%d", a, port);
  return absl::StrFormat("%s:%d", a, port);
}

std::string serviceName(const pb::ServiceKey& k) {
  if (k.has_fwmark())
    return absl::StrFormat("FWM  %d", k.fwmark().mark());
  const char* p = k.address().protocol() == pb::PROTOCOL_UDP    ? "UDP"
                  : k.address().protocol() == pb::PROTOCOL_SCTP ? "SCTP"
                                                                : "TCP";
  return absl::StrFormat("%-4s %s", p, hostPort(k.address().address(), k.address().port()));
}

// "198.18.0.1:80", "[2001:2::1]:80" → a key (protocol from -t/-u).
bool parseService(const std::string& text, pb::Protocol proto, pb::ServiceKey* key) {
  std::string addr, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("]:");
    if (close == std::string::npos)
      return false;
    addr = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos)
      return false;
    addr = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(port, &p) || p > 65535)
    return false;
  key->mutable_address()->set_protocol(proto);
  key->mutable_address()->set_address(addr);
  key->mutable_address()->set_port(p);
  return true;
}

}  // namespace

bool isListChecks(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--list-checks")
      return true;
  }
  return false;
}

std::string formatHealthChecks(const pb::ListHealthChecksResponse& resp) {
  std::string out =
      "Prot LocalAddress:Port           RemoteAddress:Port     Check      State RS  Weight   "
      "Checks   Fails Trans Last failure\n";
  // RS: whether the real server is in the pool ("in") or out of it ("out": removed, or held
  // at weight 0) because one of its checkers fails.
  for (const pb::HealthCheckStatus& c : resp.checks()) {
    absl::StrAppendFormat(&out, "%-32s %-22s %-10s %-5s %-3s %6d %8d %7d %5d %s\n",
                          serviceName(c.key()), hostPort(c.address(), c.port()), typeName(c.type()),
                          c.up() ? "UP" : "DOWN", c.real_server_up() ? "in" : "out", c.weight(),
                          c.checks(), c.failures(), c.transitions(), c.last_failure());
  }
  return out;
}

int runListChecks(const std::vector<std::string>& args,
                  std::ostream& out,
                  std::ostream& err,
                  const StubFactory& factory) {
  ClientOptions co;
  bool json = false;
  pb::ListHealthChecksRequest req;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](absl::string_view flag, std::string* v) {
      if (absl::StartsWith(a, absl::StrCat(flag, "="))) {
        *v = a.substr(flag.size() + 1);
        return true;
      }
      if (a == flag && i + 1 < args.size()) {
        *v = args[++i];
        return true;
      }
      return false;
    };
    std::string v;
    if (a == "--list-checks") {
      continue;
    } else if (value("--output", &v)) {
      if (v != "json") {
        err << "--output=" << v << ": only json\n";
        return 2;
      }
      json = true;
    } else if (value("--server", &co.server) || value("--tls-ca", &co.tls_ca) ||
               value("--tls-cert", &co.tls_cert) || value("--tls-key", &co.tls_key)) {
      continue;
    } else if (value("-t", &v) || value("--tcp-service", &v) || value("-u", &v) ||
               value("--udp-service", &v)) {
      const bool udp = a == "-u" || absl::StartsWith(a, "--udp-service");
      if (!parseService(v, udp ? pb::PROTOCOL_UDP : pb::PROTOCOL_TCP, req.mutable_key())) {
        err << "Illegal virtual server address[:port] specified\n";
        return 2;
      }
    } else if (value("-f", &v) || value("--fwmark-service", &v)) {
      uint32_t m = 0;
      if (!absl::SimpleAtoi(v, &m) || m == 0) {
        err << "Illegal fwmark specified\n";
        return 2;
      }
      req.mutable_key()->mutable_fwmark()->set_mark(m);
      req.mutable_key()->mutable_fwmark()->set_family(pb::ADDRESS_FAMILY_INET);
    } else if (a == "-n" || a == "--numeric") {
      continue;  // addresses are always numeric here
    } else {
      err << "--list-checks: unknown option " << a << "\n";
      return 2;
    }
  }
  co.server = resolveServer(co.server);
  absl::StatusOr<std::unique_ptr<Stub>> stub = factory(co);
  if (!stub.ok()) {
    err << stub.status().message() << "\n";
    return 2;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::ListHealthChecksResponse resp;
  grpc::Status s = (*stub)->ListHealthChecks(&ctx, req, &resp);
  if (!s.ok()) {
    err << s.error_message() << "\n";
    return 1;
  }
  if (json) {
    std::string text;
    google::protobuf::util::JsonPrintOptions opts;
    opts.add_whitespace = true;
    opts.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(resp, &text, opts).ok())
      return 1;
    out << text;
    return 0;
  }
  out << formatHealthChecks(resp);
  return 0;
}

}  // namespace lb::lbctl
