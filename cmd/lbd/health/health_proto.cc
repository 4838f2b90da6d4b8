// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/health_proto.h"

#include <optional>
#include <string>

namespace lb::health {
namespace {

namespace pb = ::lbd::v1;

std::optional<Micros> micros(bool has, const google::protobuf::Duration& d) {
  if (!has)
    return std::nullopt;
  return d.seconds() * kSecond + d.nanos() / 1000;
}

void setMicros(const std::optional<Micros>& v, google::protobuf::Duration* d) {
  d->set_seconds(*v / kSecond);
  d->set_nanos(static_cast<int32_t>(*v % kSecond * 1000));
}

void httpFromProto(const pb::HttpCheck& h, CheckerSpec& c) {
  for (const pb::HttpUrl& u : h.urls()) {
    UrlSpec s;
    s.path = u.path().empty() ? "/" : u.path();
    s.digest = u.digest();
    s.virtualhost = u.virtualhost();
    for (const pb::StatusCodeRange& r : u.status_codes()) {
      const int lo = static_cast<int>(r.min());
      s.statuses.push_back({lo, r.max() == 0 ? lo : static_cast<int>(r.max())});
    }
    c.urls.push_back(std::move(s));
  }
  c.virtualhost = h.virtualhost();
  c.enable_sni = h.enable_sni();
  c.sni_name = h.sni_name();
}

}  // namespace

CheckerSpec checkerFromProto(const pb::HealthCheck& p) {
  CheckerSpec c;
  c.type = static_cast<CheckType>(static_cast<int>(p.type()) - 1);
  c.file = "api";
  c.delay_loop = micros(p.has_delay_loop(), p.delay_loop());
  c.connect_timeout = micros(p.has_connect_timeout(), p.connect_timeout());
  c.delay_before_retry = micros(p.has_delay_before_retry(), p.delay_before_retry());
  c.warmup = micros(p.has_warmup(), p.warmup());
  if (p.has_retry())
    c.retry = p.retry();
  if (p.alpha())
    c.alpha = true;
  c.connect_ip = p.connect_ip();
  if (p.connect_port() != 0)
    c.connect_port = static_cast<uint16_t>(p.connect_port());
  c.bindto = p.bindto();
  if (p.has_http())
    httpFromProto(p.http(), c);
  if ((c.type == CheckType::kHttp || c.type == CheckType::kSsl) && c.urls.empty())
    c.urls.push_back(UrlSpec{"/", "", {}, "", 0});
  if (p.has_udp()) {
    c.payload = p.udp().payload();
    c.require_reply = p.udp().require_reply();
    c.reply_pattern = p.udp().reply_pattern();
    c.reply_mask = p.udp().reply_mask().empty() ? std::string(c.reply_pattern.size(), '\xff')
                                                : p.udp().reply_mask();
  }
  if (p.has_dns()) {
    if (!p.dns().type().empty())
      c.dns_type = p.dns().type();
    if (!p.dns().name().empty())
      c.dns_name = p.dns().name();
  }
  if (p.has_misc()) {
    c.misc_path = p.misc().path();
    c.misc_timeout = micros(p.misc().has_timeout(), p.misc().timeout());
    c.misc_dynamic = p.misc().dynamic();
  }
  return c;
}

pb::HealthCheck checkerToProto(const CheckerSpec& c) {
  pb::HealthCheck p;
  p.set_type(static_cast<pb::HealthCheckType>(static_cast<int>(c.type) + 1));
  if (c.delay_loop)
    setMicros(c.delay_loop, p.mutable_delay_loop());
  if (c.connect_timeout)
    setMicros(c.connect_timeout, p.mutable_connect_timeout());
  if (c.delay_before_retry)
    setMicros(c.delay_before_retry, p.mutable_delay_before_retry());
  if (c.warmup)
    setMicros(c.warmup, p.mutable_warmup());
  if (c.retry)
    p.set_retry(*c.retry);
  p.set_alpha(c.alpha.value_or(false));
  p.set_connect_ip(c.connect_ip);
  p.set_connect_port(c.connect_port.value_or(0));
  p.set_bindto(c.bindto);
  switch (c.type) {
    case CheckType::kHttp:
    case CheckType::kSsl: {
      pb::HttpCheck* h = p.mutable_http();
      for (const UrlSpec& u : c.urls) {
        pb::HttpUrl* pu = h->add_urls();
        pu->set_path(u.path);
        pu->set_digest(u.digest);
        pu->set_virtualhost(u.virtualhost);
        for (const StatusRange& r : u.statuses) {
          pb::StatusCodeRange* pr = pu->add_status_codes();
          pr->set_min(static_cast<uint32_t>(r.lo));
          pr->set_max(static_cast<uint32_t>(r.hi));
        }
      }
      h->set_virtualhost(c.virtualhost);
      h->set_enable_sni(c.enable_sni);
      h->set_sni_name(c.sni_name);
      break;
    }
    case CheckType::kUdp:
      p.mutable_udp()->set_payload(c.payload);
      p.mutable_udp()->set_require_reply(c.require_reply);
      p.mutable_udp()->set_reply_pattern(c.reply_pattern);
      if (c.reply_mask.find_first_not_of('\xff') != std::string::npos)
        p.mutable_udp()->set_reply_mask(c.reply_mask);
      break;
    case CheckType::kDns:
      p.mutable_dns()->set_type(c.dns_type);
      p.mutable_dns()->set_name(c.dns_name);
      break;
    case CheckType::kMisc:
      p.mutable_misc()->set_path(c.misc_path);
      if (c.misc_timeout)
        setMicros(c.misc_timeout, p.mutable_misc()->mutable_timeout());
      p.mutable_misc()->set_dynamic(c.misc_dynamic);
      break;
    default:
      break;
  }
  return p;
}

}  // namespace lb::health
