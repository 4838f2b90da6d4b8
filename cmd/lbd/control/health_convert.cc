// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/health_convert.h"

#include <arpa/inet.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

absl::Status invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool isAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

absl::Status checkDuration(bool has,
                           const google::protobuf::Duration& d,
                           absl::string_view field,
                           bool positive) {
  if (!has)
    return absl::OkStatus();
  if (d.seconds() < 0 || d.nanos() < 0 || d.seconds() > 86400 * 31 ||
      (positive && d.seconds() == 0 && d.nanos() < 1000)) {
    return invalid(field, absl::StrCat(d.seconds(), "s ", d.nanos(), "ns out of range (",
                                       positive ? "1us" : "0", "..31 days)"));
  }
  return absl::OkStatus();
}

absl::Status checkHttp(const pb::HttpCheck& h, const std::string& f) {
  for (const pb::HttpUrl& u : h.urls()) {
    for (const pb::StatusCodeRange& r : u.status_codes()) {
      const uint32_t hi = r.max() == 0 ? r.min() : r.max();
      if (r.min() < 100 || r.min() > 999 || hi < r.min() || hi > 999) {
        return invalid(absl::StrCat(f, ".http.urls.status_codes"),
                       absl::StrCat(r.min(), "-", r.max(), " not within 100..999"));
      }
    }
    if (u.digest().find_first_not_of("0123456789abcdef") != std::string::npos ||
        (!u.digest().empty() && u.digest().size() != 32)) {
      return invalid(absl::StrCat(f, ".http.urls.digest"),
                     absl::StrCat("'", u.digest(), "' is not 32 lower-case hex digits"));
    }
  }
  return absl::OkStatus();
}

absl::Status checkCheck(const pb::HealthCheck& c, const std::string& f) {
  if (c.type() == pb::HEALTH_CHECK_TYPE_UNSPECIFIED || !pb::HealthCheckType_IsValid(c.type()))
    return invalid(absl::StrCat(f, ".type"), "unspecified");
  if (absl::Status s =
          checkDuration(c.has_delay_loop(), c.delay_loop(), absl::StrCat(f, ".delay_loop"), true);
      !s.ok())
    return s;
  if (absl::Status s = checkDuration(c.has_connect_timeout(), c.connect_timeout(),
                                     absl::StrCat(f, ".connect_timeout"), true);
      !s.ok())
    return s;
  if (absl::Status s = checkDuration(c.has_delay_before_retry(), c.delay_before_retry(),
                                     absl::StrCat(f, ".delay_before_retry"), false);
      !s.ok())
    return s;
  if (absl::Status s = checkDuration(c.has_warmup(), c.warmup(), absl::StrCat(f, ".warmup"), false);
      !s.ok())
    return s;
  if (c.connect_port() > 65535)
    return invalid(absl::StrCat(f, ".connect_port"), absl::StrCat(c.connect_port(), " > 65535"));
  if (!c.connect_ip().empty() && !isAddress(c.connect_ip()))
    return invalid(absl::StrCat(f, ".connect_ip"), absl::StrCat("'", c.connect_ip(), "'"));
  if (!c.bindto().empty() && !isAddress(c.bindto()))
    return invalid(absl::StrCat(f, ".bindto"), absl::StrCat("'", c.bindto(), "'"));
  const bool http = c.type() == pb::HEALTH_CHECK_TYPE_HTTP || c.type() == pb::HEALTH_CHECK_TYPE_SSL;
  if ((c.has_http() && !http) || (c.has_udp() && c.type() != pb::HEALTH_CHECK_TYPE_UDP) ||
      (c.has_dns() && c.type() != pb::HEALTH_CHECK_TYPE_DNS) ||
      (c.has_misc() && c.type() != pb::HEALTH_CHECK_TYPE_MISC)) {
    return invalid(f, "parameters of another check type");
  }
  if (c.has_http())
    return checkHttp(c.http(), f);
  if (c.has_udp() && !c.udp().reply_mask().empty() &&
      c.udp().reply_mask().size() != c.udp().reply_pattern().size()) {
    return invalid(absl::StrCat(f, ".udp.reply_mask"), "not as long as reply_pattern");
  }
  if (c.type() == pb::HEALTH_CHECK_TYPE_MISC) {
    if (c.misc().path().empty())
      return invalid(absl::StrCat(f, ".misc.path"), "required");
    return checkDuration(c.misc().has_timeout(), c.misc().timeout(),
                         absl::StrCat(f, ".misc.timeout"), true);
  }
  return absl::OkStatus();
}

template <typename M>
std::string deterministicBytes(const M& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> destHealthFromProto(const pb::Dest& p) {
  if (p.health_checks_size() == 0 && p.health_weight() == 0)
    return std::string();
  for (int i = 0; i < p.health_checks_size(); ++i) {
    if (absl::Status s =
            checkCheck(p.health_checks(i), absl::StrCat("dest.health_checks[", i, "]"));
        !s.ok())
      return s;
  }
  if (p.health_weight() > 65535)
    return invalid("dest.health_weight", absl::StrCat(p.health_weight(), " > 65535"));
  pb::Dest h;
  *h.mutable_health_checks() = p.health_checks();
  // Held down only at weight 0 with checks to bring it back.
  if (p.weight() == 0 && p.health_checks_size() > 0)
    h.set_health_weight(p.health_weight());
  return deterministicBytes(h);
}

absl::StatusOr<std::string> serviceHealthFromProto(const pb::Service& p) {
  if (!p.has_health_policy())
    return std::string();
  const pb::HealthPolicy& hp = p.health_policy();
  if (hp.has_sorry_server()) {
    const pb::Dest& d = hp.sorry_server();
    if (!isAddress(d.address()))
      return invalid("service.health_policy.sorry_server.address",
                     absl::StrCat("'", d.address(), "'"));
    if (d.port() > 65535)
      return invalid("service.health_policy.sorry_server.port", absl::StrCat(d.port(), " > 65535"));
  }
  pb::Service s;
  *s.mutable_health_policy() = hp;
  return deterministicBytes(s);
}

void destHealthToProto(const std::string& bytes, pb::Dest* p) {
  if (bytes.empty())
    return;
  pb::Dest h;
  if (h.ParseFromString(bytes)) {
    *p->mutable_health_checks() = h.health_checks();
    p->set_health_weight(h.health_weight());
  }
}

void serviceHealthToProto(const std::string& bytes, pb::Service* p) {
  if (bytes.empty())
    return;
  pb::Service h;
  if (h.ParseFromString(bytes) && h.has_health_policy())
    *p->mutable_health_policy() = h.health_policy();
}

}  // namespace lb::lbd
