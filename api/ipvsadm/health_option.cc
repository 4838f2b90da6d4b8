// SPDX-License-Identifier: Apache-2.0
#include "api/ipvsadm/health_option.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lb::ipvsadm {
namespace {

namespace pb = ::lbd::v1;

struct TypeName {
  pb::HealthCheckType type;
  const char* name;
};

constexpr TypeName kTypes[] = {
    {pb::HEALTH_CHECK_TYPE_TCP, "tcp"},   {pb::HEALTH_CHECK_TYPE_HTTP, "http"},
    {pb::HEALTH_CHECK_TYPE_SSL, "ssl"},   {pb::HEALTH_CHECK_TYPE_UDP, "udp"},
    {pb::HEALTH_CHECK_TYPE_DNS, "dns"},   {pb::HEALTH_CHECK_TYPE_PING, "ping"},
    {pb::HEALTH_CHECK_TYPE_MISC, "misc"},
};

absl::Status bad(absl::string_view opt, absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(opt, " ", key, ": ", why));
}

int hexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string decode(absl::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size() && hexValue(v[i + 1]) >= 0 && hexValue(v[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(v[i + 1]) * 16 + hexValue(v[i + 2])));
      i += 2;
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

std::string encode(absl::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (absl::ascii_isalnum(c) ||
        absl::string_view("._/:@+-[]*?~!").find(static_cast<char>(c)) != absl::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::string_view("0123456789ABCDEF" + (c >> 4), 1),
                      absl::string_view("0123456789ABCDEF" + (c & 15), 1));
    }
  }
  return out;
}

// Seconds with decimals ("2", "0.5") → Duration.
std::optional<google::protobuf::Duration> seconds(absl::string_view v) {
  double d = 0;
  if (!absl::SimpleAtod(v, &d) || !std::isfinite(d) || d < 0 || d > 86400.0 * 31)
    return std::nullopt;
  google::protobuf::Duration out;
  const auto us = static_cast<int64_t>(std::llround(d * 1e6));
  out.set_seconds(us / 1000000);
  out.set_nanos(static_cast<int32_t>(us % 1000000 * 1000));
  return out;
}

std::string formatSeconds(const google::protobuf::Duration& d) {
  if (d.nanos() == 0)
    return absl::StrCat(d.seconds());
  std::string frac = absl::StrCat(1000000000 + d.nanos()).substr(1);
  while (!frac.empty() && frac.back() == '0')
    frac.pop_back();
  return absl::StrCat(d.seconds(), ".", frac);
}

std::optional<uint32_t> number(absl::string_view v, uint32_t max) {
  uint32_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n > max)
    return std::nullopt;
  return n;
}

// "0a0bXX" → bytes and mask (X = any nibble).
bool hexBytes(absl::string_view v, bool wildcards, std::string* bytes, std::string* mask) {
  if (v.size() % 2 != 0)
    return false;
  for (size_t i = 0; i < v.size(); i += 2) {
    int b = 0, m = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = v[i + static_cast<size_t>(k)];
      const int h = hexValue(c);
      if (h < 0 && !(wildcards && (c == 'X' || c == 'x')))
        return false;
      b = b * 16 + (h < 0 ? 0 : h);
      m = m * 16 + (h < 0 ? 0 : 15);
    }
    bytes->push_back(static_cast<char>(b));
    if (mask != nullptr)
      mask->push_back(static_cast<char>(m));
  }
  return true;
}

std::string toHex(const std::string& bytes, const std::string& mask) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    const int m = i < mask.size() ? static_cast<unsigned char>(mask[i]) : 0xff;
    out.push_back((m & 0xf0) != 0 ? "0123456789abcdef"[b >> 4] : 'X');
    out.push_back((m & 0x0f) != 0 ? "0123456789abcdef"[b & 15] : 'X');
  }
  return out;
}

bool flagValue(absl::string_view v, bool* out) {
  if (v.empty() || v == "1" || v == "yes" || v == "true") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "no" || v == "false") {
    *out = false;
    return true;
  }
  return false;
}

absl::Status commonKey(absl::string_view k, const std::string& v, pb::HealthCheck& c, bool* used);
absl::Status typeKey(absl::string_view k, const std::string& v, pb::HealthCheck& c, bool* used);

}  // namespace

absl::StatusOr<pb::HealthCheck> parseCheckOption(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  pb::HealthCheck c;
  for (const TypeName& t : kTypes) {
    if (parts[0] == t.name)
      c.set_type(t.type);
  }
  if (c.type() == pb::HEALTH_CHECK_TYPE_UNSPECIFIED) {
    return bad("--check", parts[0], "unknown check type (tcp, http, ssl, udp, dns, ping or misc)");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const std::string v = decode(kv.second);
    bool used = false;
    if (absl::Status s = commonKey(kv.first, v, c, &used); !s.ok() || used) {
      if (!s.ok())
        return s;
      continue;
    }
    if (absl::Status s = typeKey(kv.first, v, c, &used); !s.ok())
      return s;
    if (!used)
      return bad("--check", kv.first, absl::StrCat("not a key of ", parts[0], " checks"));
  }
  if (c.type() == pb::HEALTH_CHECK_TYPE_MISC && c.misc().path().empty())
    return bad("--check", "misc", "path=PROGRAM is required");
  return c;
}

namespace {

absl::Status commonKey(absl::string_view k, const std::string& v, pb::HealthCheck& c, bool* used) {
  *used = true;
  google::protobuf::Duration* d = nullptr;
  if (k == "delay_loop")
    d = c.mutable_delay_loop();
  else if (k == "connect_timeout")
    d = c.mutable_connect_timeout();
  else if (k == "delay_before_retry")
    d = c.mutable_delay_before_retry();
  else if (k == "warmup")
    d = c.mutable_warmup();
  if (d != nullptr) {
    std::optional<google::protobuf::Duration> s = seconds(v);
    if (!s)
      return bad("--check", k, absl::StrCat("'", v, "' is not a number of seconds"));
    *d = *s;
    return absl::OkStatus();
  }
  if (k == "retry" || k == "connect_port") {
    std::optional<uint32_t> n = number(v, k == "retry" ? 1000000 : 65535);
    if (!n)
      return bad("--check", k, absl::StrCat("'", v, "' out of range"));
    k == "retry" ? c.set_retry(*n) : c.set_connect_port(*n);
    return absl::OkStatus();
  }
  if (k == "alpha") {
    bool f = false;
    if (!flagValue(v, &f))
      return bad("--check", k, absl::StrCat("'", v, "' is not 0 or 1"));
    c.set_alpha(f);
    return absl::OkStatus();
  }
  if (k == "connect_ip" || k == "bindto") {
    k == "connect_ip" ? c.set_connect_ip(v) : c.set_bindto(v);
    return absl::OkStatus();
  }
  *used = false;
  return absl::OkStatus();
}

absl::Status httpKey(absl::string_view k, const std::string& v, pb::HttpCheck& h, bool* used) {
  *used = true;
  if (k == "path") {
    h.add_urls()->set_path(v);
    return absl::OkStatus();
  }
  if (k == "status" || k == "digest" || k == "url_vhost") {
    pb::HttpUrl* u = h.urls_size() > 0 ? h.mutable_urls(h.urls_size() - 1) : h.add_urls();
    if (k == "digest") {
      u->set_digest(absl::AsciiStrToLower(v));
      return absl::OkStatus();
    }
    if (k == "url_vhost") {
      u->set_virtualhost(v);
      return absl::OkStatus();
    }
    for (absl::string_view r : absl::StrSplit(v, ':')) {
      std::pair<absl::string_view, absl::string_view> lh =
          absl::StrSplit(r, absl::MaxSplits('-', 1));
      std::optional<uint32_t> lo = number(lh.first, 999);
      std::optional<uint32_t> hi = lh.second.empty() ? lo : number(lh.second, 999);
      if (!lo || !hi || *lo < 100 || *hi < *lo)
        return bad("--check", k, absl::StrCat("'", r, "' is not a code or range within 100..999"));
      pb::StatusCodeRange* sr = u->add_status_codes();
      sr->set_min(*lo);
      sr->set_max(*hi);
    }
    return absl::OkStatus();
  }
  if (k == "vhost") {
    h.set_virtualhost(v);
    return absl::OkStatus();
  }
  if (k == "sni") {
    bool f = false;
    if (!flagValue(v, &f))
      return bad("--check", k, absl::StrCat("'", v, "' is not 0 or 1"));
    h.set_enable_sni(f);
    return absl::OkStatus();
  }
  if (k == "sni_name") {
    h.set_sni_name(v);
    return absl::OkStatus();
  }
  *used = false;
  return absl::OkStatus();
}

absl::Status typeKey(absl::string_view k, const std::string& v, pb::HealthCheck& c, bool* used) {
  *used = false;
  switch (c.type()) {
    case pb::HEALTH_CHECK_TYPE_HTTP:
    case pb::HEALTH_CHECK_TYPE_SSL:
      return httpKey(k, v, *c.mutable_http(), used);
    case pb::HEALTH_CHECK_TYPE_UDP:
      if (k == "payload") {
        *used = true;
        std::string b;
        if (!hexBytes(v, false, &b, nullptr))
          return bad("--check", k, absl::StrCat("'", v, "' is not hex bytes"));
        c.mutable_udp()->set_payload(b);
      } else if (k == "require_reply") {
        *used = true;
        std::string b, m;
        if (!hexBytes(v, true, &b, &m))
          return bad("--check", k, absl::StrCat("'", v, "' is not hex bytes (X: any nibble)"));
        c.mutable_udp()->set_require_reply(true);
        c.mutable_udp()->set_reply_pattern(b);
        if (m.find_first_not_of('\xff') != std::string::npos)
          c.mutable_udp()->set_reply_mask(m);
      }
      return absl::OkStatus();
    case pb::HEALTH_CHECK_TYPE_DNS:
      if (k == "type" || k == "name") {
        *used = true;
        k == "type" ? c.mutable_dns()->set_type(absl::AsciiStrToUpper(v))
                    : c.mutable_dns()->set_name(v);
      }
      return absl::OkStatus();
    case pb::HEALTH_CHECK_TYPE_MISC:
      if (k == "path") {
        *used = true;
        c.mutable_misc()->set_path(v);
      } else if (k == "timeout") {
        *used = true;
        std::optional<google::protobuf::Duration> s = seconds(v);
        if (!s)
          return bad("--check", k, absl::StrCat("'", v, "' is not a number of seconds"));
        *c.mutable_misc()->mutable_timeout() = *s;
      } else if (k == "dynamic") {
        *used = true;
        bool f = false;
        if (!flagValue(v, &f))
          return bad("--check", k, absl::StrCat("'", v, "' is not 0 or 1"));
        c.mutable_misc()->set_dynamic(f);
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

void formatType(const pb::HealthCheck& c, std::vector<std::string>& out) {
  if (c.has_http()) {
    const pb::HttpCheck& h = c.http();
    if (!h.virtualhost().empty())
      out.push_back(absl::StrCat("vhost=", encode(h.virtualhost())));
    if (h.enable_sni())
      out.push_back("sni");
    if (!h.sni_name().empty())
      out.push_back(absl::StrCat("sni_name=", encode(h.sni_name())));
    for (const pb::HttpUrl& u : h.urls()) {
      out.push_back(absl::StrCat("path=", encode(u.path())));
      std::vector<std::string> codes;
      for (const pb::StatusCodeRange& r : u.status_codes()) {
        const uint32_t hi = r.max() == 0 ? r.min() : r.max();
        codes.push_back(hi == r.min() ? absl::StrCat(r.min()) : absl::StrCat(r.min(), "-", hi));
      }
      if (!codes.empty())
        out.push_back(absl::StrCat("status=", absl::StrJoin(codes, ":")));
      if (!u.digest().empty())
        out.push_back(absl::StrCat("digest=", u.digest()));
      if (!u.virtualhost().empty())
        out.push_back(absl::StrCat("url_vhost=", encode(u.virtualhost())));
    }
  } else if (c.has_udp()) {
    const pb::UdpCheck& u = c.udp();
    if (!u.payload().empty())
      out.push_back(absl::StrCat("payload=", toHex(u.payload(), "")));
    if (u.require_reply())
      out.push_back(absl::StrCat("require_reply=", toHex(u.reply_pattern(), u.reply_mask())));
  } else if (c.has_dns()) {
    if (!c.dns().type().empty())
      out.push_back(absl::StrCat("type=", encode(c.dns().type())));
    if (!c.dns().name().empty())
      out.push_back(absl::StrCat("name=", encode(c.dns().name())));
  } else if (c.has_misc()) {
    out.push_back(absl::StrCat("path=", encode(c.misc().path())));
    if (c.misc().has_timeout())
      out.push_back(absl::StrCat("timeout=", formatSeconds(c.misc().timeout())));
    if (c.misc().dynamic())
      out.push_back("dynamic");
  }
}

}  // namespace

std::string formatCheckOption(const pb::HealthCheck& c) {
  std::vector<std::string> out;
  for (const TypeName& t : kTypes) {
    if (t.type == c.type())
      out.emplace_back(t.name);
  }
  if (out.empty())
    out.emplace_back("unspecified");
  auto dur = [&](const char* k, bool has, const google::protobuf::Duration& d) {
    if (has)
      out.push_back(absl::StrCat(k, "=", formatSeconds(d)));
  };
  dur("delay_loop", c.has_delay_loop(), c.delay_loop());
  dur("connect_timeout", c.has_connect_timeout(), c.connect_timeout());
  if (c.has_retry())
    out.push_back(absl::StrCat("retry=", c.retry()));
  dur("delay_before_retry", c.has_delay_before_retry(), c.delay_before_retry());
  dur("warmup", c.has_warmup(), c.warmup());
  if (c.alpha())
    out.emplace_back("alpha");
  if (!c.connect_ip().empty())
    out.push_back(absl::StrCat("connect_ip=", encode(c.connect_ip())));
  if (c.connect_port() != 0)
    out.push_back(absl::StrCat("connect_port=", c.connect_port()));
  if (!c.bindto().empty())
    out.push_back(absl::StrCat("bindto=", encode(c.bindto())));
  formatType(c, out);
  return absl::StrJoin(out, ",");
}

absl::StatusOr<pb::HealthPolicy> parseHealthOption(absl::string_view text) {
  pb::HealthPolicy p;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    const std::string v = decode(kv.second);
    if (kv.first == "quorum" || kv.first == "hysteresis") {
      std::optional<uint32_t> n = number(v, 0xffffffffu);
      if (!n)
        return bad("--health", kv.first, absl::StrCat("'", v, "' is not a number"));
      kv.first == "quorum" ? p.set_quorum(*n) : p.set_hysteresis(*n);
    } else if (kv.first == "sorry") {
      // ADDR:PORT or [V6]:PORT.
      const size_t colon = v.rfind(':');
      std::optional<uint32_t> port =
          colon == std::string::npos ? std::nullopt : number(v.substr(colon + 1), 65535);
      std::string addr = colon == std::string::npos ? "" : v.substr(0, colon);
      if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']')
        addr = addr.substr(1, addr.size() - 2);
      if (!port || addr.empty())
        return bad("--health", "sorry", absl::StrCat("'", v, "' is not ADDRESS:PORT"));
      pb::Dest* d = p.mutable_sorry_server();
      d->set_address(addr);
      d->set_port(*port);
      d->set_weight(1);
      if (d->forward_method() == pb::FORWARD_METHOD_UNSPECIFIED)
        d->set_forward_method(pb::FORWARD_METHOD_DIRECT_ROUTE);
    } else if (kv.first == "sorry_fwd") {
      const pb::ForwardMethod m = v == "m"         ? pb::FORWARD_METHOD_MASQ
                                  : v == "g"       ? pb::FORWARD_METHOD_DIRECT_ROUTE
                                  : v == "i"       ? pb::FORWARD_METHOD_TUNNEL
                                  : v == "fullnat" ? pb::FORWARD_METHOD_FULL_NAT
                                                   : pb::FORWARD_METHOD_UNSPECIFIED;
      if (m == pb::FORWARD_METHOD_UNSPECIFIED)
        return bad("--health", "sorry_fwd", absl::StrCat("'", v, "' is not m, g, i or fullnat"));
      p.mutable_sorry_server()->set_forward_method(m);
    } else {
      return bad("--health", kv.first, "unknown key (quorum, hysteresis, sorry, sorry_fwd)");
    }
  }
  if (p.has_sorry_server() && p.sorry_server().address().empty())
    return bad("--health", "sorry_fwd", "without sorry=ADDRESS:PORT");
  return p;
}

std::string formatHealthOption(const pb::HealthPolicy& p) {
  std::vector<std::string> out;
  if (p.quorum() != 0)
    out.push_back(absl::StrCat("quorum=", p.quorum()));
  if (p.hysteresis() != 0)
    out.push_back(absl::StrCat("hysteresis=", p.hysteresis()));
  if (p.has_sorry_server()) {
    const pb::Dest& d = p.sorry_server();
    const bool v6 = d.address().find(':') != std::string::npos;
    out.push_back(absl::StrCat("sorry=", v6 ? "[" : "", d.address(), v6 ? "]" : "", ":", d.port()));
    switch (d.forward_method()) {
      case pb::FORWARD_METHOD_MASQ:
        out.emplace_back("sorry_fwd=m");
        break;
      case pb::FORWARD_METHOD_TUNNEL:
        out.emplace_back("sorry_fwd=i");
        break;
      case pb::FORWARD_METHOD_FULL_NAT:
        out.emplace_back("sorry_fwd=fullnat");
        break;
      default:
        break;
    }
  }
  if (out.empty())
    out.emplace_back("quorum=1");
  return absl::StrJoin(out, ",");
}

std::string healthOptionsHelp() {
  return "Health checks (lbd; keepalived's checkers and keywords, durations in seconds):\n"
         "  --check TYPE[,KEY=VALUE]...         -a/-e: a checker of the real server (repeat for\n"
         "                                      more); -e replaces them. TYPE: tcp http ssl udp\n"
         "                                      dns ping misc. Keys: delay_loop connect_timeout\n"
         "                                      retry delay_before_retry warmup alpha connect_ip\n"
         "                                      connect_port bindto; http/ssl: path "
         "status=200-299:301\n"
         "                                      digest url_vhost vhost sni sni_name; udp: "
         "payload=HEX\n"
         "                                      require_reply=HEX (X: any nibble); dns: type "
         "name;\n"
         "                                      misc: path timeout dynamic. %2C in a value is a "
         "comma.\n"
         "                                      A failing real server is held at weight 0.\n"
         "  --health KEY=VALUE[,...]            -A/-E: quorum hysteresis sorry=ADDR:PORT\n"
         "                                      sorry_fwd=m|g|i|fullnat\n";
}

}  // namespace lb::ipvsadm
