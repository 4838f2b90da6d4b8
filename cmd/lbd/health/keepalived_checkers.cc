// SPDX-License-Identifier: Apache-2.0
// keepalived.conf's checker blocks (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK,
// PING_CHECK, MISC_CHECK): their keyword tables, as keepalived's check_*.c install them.
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "cmd/lbd/health/keepalived_parse.h"

namespace lb::health::kconf {
namespace {

absl::Status parseUrl(const Node& n, UrlSpec& url) {
  url.line = n.line;
  for (const Node& c : n.children) {
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    if (c.keyword == "path") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      url.path = *v;
    } else if (c.keyword == "digest") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      std::string d = absl::AsciiStrToLower(*v);
      if (d.size() != 32 || d.find_first_not_of("0123456789abcdef") != std::string::npos)
        return errorAt(c, absl::StrCat("digest '", *v, "': expected 32 hex digits (MD5)"));
      url.digest = d;
    } else if (c.keyword == "status_code") {
      if (absl::Status s = parseStatusCodes(c, url.statuses); !s.ok())
        return s;
    } else if (c.keyword == "virtualhost") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      url.virtualhost = *v;
    } else if (absl::StartsWith(c.keyword, "regex")) {
      return errorAt(c, absl::StrCat(c.keyword, ": regular expressions are not supported"));
    } else {
      return unknown(c, "url");
    }
  }
  if (url.path.empty())
    return errorAt(n, "url: no path");
  return absl::OkStatus();
}

// The keywords every checker takes (check_api.c install_checker_common_keywords).
// Returns true when `c` was one of them.
absl::StatusOr<bool> parseCommon(const Node& c, CheckerSpec& ck, bool connection) {
  const std::string& k = c.keyword;
  if (connection) {
    if (k == "connect_ip") {
      if (absl::Status s = wantArgs(c, 1, 1); !s.ok())
        return s;
      absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
      if (!a.ok())
        return a.status();
      ck.connect_ip = *a;
      return true;
    }
    if (k == "connect_port") {
      absl::StatusOr<uint32_t> p = uintArg(c, 1, 65535);
      if (!p.ok())
        return p.status();
      ck.connect_port = static_cast<uint16_t>(*p);
      return true;
    }
    if (k == "bindto") {
      if (absl::Status s = wantArgs(c, 1, 1); !s.ok())
        return s;
      absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
      if (!a.ok())
        return a.status();
      ck.bindto = *a;
      return true;
    }
    if (k == "bind_port") {
      absl::StatusOr<uint32_t> p = uintArg(c, 1, 65535);
      if (!p.ok())
        return p.status();
      ck.bind_port = static_cast<uint16_t>(*p);
      return true;
    }
    if (k == "bind_if") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      ck.bind_if = *v;
      return true;
    }
    if (k == "connect_timeout") {
      absl::StatusOr<Micros> t = secondsArg(c, false);
      if (!t.ok())
        return t.status();
      ck.connect_timeout = *t;
      return true;
    }
    if (k == "fwmark") {
      absl::StatusOr<uint32_t> m = uintArg(c, 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      ck.fwmark = *m;
      return true;
    }
  }
  if (k == "retry" ||
      (k == "nb_get_retry" && (ck.type == CheckType::kHttp || ck.type == CheckType::kSsl))) {
    absl::StatusOr<uint32_t> r = uintArg(c, 0, 0xffffffffu);
    if (!r.ok())
      return r.status();
    ck.retry = *r;
    return true;
  }
  if (k == "delay_before_retry" || k == "delay_loop" || k == "warmup") {
    absl::StatusOr<Micros> t = secondsArg(c, k != "delay_loop");
    if (!t.ok())
      return t.status();
    (k == "delay_loop" ? ck.delay_loop : k == "warmup" ? ck.warmup : ck.delay_before_retry) = *t;
    return true;
  }
  if (k == "alpha") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.alpha = *b;
    return true;
  }
  if (k == "log_all_failures") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.log_all_failures = *b;
    return true;
  }
  return false;
}

absl::Status parseHttpKeyword(const Node& c, CheckerSpec& ck) {
  const std::string& k = c.keyword;
  if (k == "url") {
    if (!c.block)
      return errorAt(c, "url: expected a block");
    UrlSpec u;
    if (absl::Status s = parseUrl(c, u); !s.ok())
      return s;
    ck.urls.push_back(std::move(u));
    return absl::OkStatus();
  }
  if (absl::Status s = noBlock(c); !s.ok())
    return s;
  if (k == "virtualhost") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    ck.virtualhost = *v;
  } else if (k == "http_protocol") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (*v != "1.0" && *v != "1.0C" && *v != "1.0K" && *v != "1.1")
      return errorAt(c, absl::StrCat("http_protocol '", *v, "': expected 1.0, 1.0C, 1.0K or 1.1"));
    ck.http_protocol = *v;
  } else if (k == "enable_sni" && ck.type == CheckType::kSsl) {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.enable_sni = *b;
  } else if (k == "sni_name" && ck.type == CheckType::kSsl) {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    ck.sni_name = *v;
    ck.enable_sni = true;
  } else if (k == "tls_compliant" && ck.type == CheckType::kSsl) {
    // keepalived waits for the TLS close_notify; lbd always reads to the end. Nothing to do.
  } else if (k == "fast_recovery") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.fast_recovery = *b;
  } else {
    return unknown(c, checkTypeName(ck.type));
  }
  return absl::OkStatus();
}

absl::Status parseTypeKeyword(const Node& c, CheckerSpec& ck) {
  if (ck.type == CheckType::kHttp || ck.type == CheckType::kSsl)
    return parseHttpKeyword(c, ck);
  if (absl::Status s = noBlock(c); !s.ok())
    return s;
  const std::string& k = c.keyword;
  switch (ck.type) {
    case CheckType::kUdp:
      if (k == "payload")
        return parseHex(c, false, ck.payload, nullptr);
      if (k == "require_reply") {
        ck.require_reply = true;
        if (c.args.empty())
          return absl::OkStatus();
        return parseHex(c, true, ck.reply_pattern, &ck.reply_mask);
      }
      if (k == "min_reply_length" || k == "max_reply_length") {
        absl::StatusOr<uint32_t> v = uintArg(c, 0, 65535);
        if (!v.ok())
          return v.status();
        (k == "min_reply_length" ? ck.min_reply_length : ck.max_reply_length) = *v;
        return absl::OkStatus();
      }
      break;
    case CheckType::kDns:
      if (k == "type") {
        absl::StatusOr<std::string> v = stringArg(c);
        if (!v.ok())
          return v.status();
        const std::string t = absl::AsciiStrToUpper(*v);
        static const char* const kTypes[] = {"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"};
        if (std::none_of(std::begin(kTypes), std::end(kTypes),
                         [&](const char* x) { return t == x; })) {
          return errorAt(c, absl::StrCat("type '", *v,
                                         "': expected A, NS, CNAME, SOA, MX, "
                                         "TXT or AAAA"));
        }
        ck.dns_type = t;
        return absl::OkStatus();
      }
      if (k == "name") {
        absl::StatusOr<std::string> v = stringArg(c);
        if (!v.ok())
          return v.status();
        if (v->size() > 253)
          return errorAt(c, "name: longer than 253 characters");
        ck.dns_name = *v;
        return absl::OkStatus();
      }
      break;
    case CheckType::kMisc:
      if (k == "misc_path") {
        absl::StatusOr<std::string> v = scriptArg(c);
        if (!v.ok())
          return v.status();
        ck.misc_path = *v;
        return absl::OkStatus();
      }
      if (k == "misc_timeout") {
        absl::StatusOr<uint32_t> v = uintArg(c, 0, 4294967);
        if (!v.ok())
          return v.status();
        ck.misc_timeout = static_cast<Micros>(*v) * kSecond;
        return absl::OkStatus();
      }
      if (k == "misc_dynamic") {
        absl::StatusOr<bool> b = flagArg(c);
        if (!b.ok())
          return b.status();
        ck.misc_dynamic = *b;
        return absl::OkStatus();
      }
      if (k == "user") {
        if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
          return s;
        ck.user = c.args[0];
        return absl::OkStatus();
      }
      break;
    default:
      break;
  }
  return unknown(c, checkTypeName(ck.type));
}

}  // namespace

absl::StatusOr<CheckerSpec> parseChecker(const Node& n, CheckType type) {
  CheckerSpec ck;
  ck.type = type;
  ck.file = n.file;
  ck.line = n.line;
  if (!n.block)
    return errorAt(n, absl::StrCat(n.keyword, ": expected a block"));
  if (!n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": takes no value"));
  const bool connection = type != CheckType::kMisc;
  for (const Node& c : n.children) {
    if (!c.block) {
      absl::StatusOr<bool> common = parseCommon(c, ck, connection);
      if (!common.ok())
        return common.status();
      if (*common)
        continue;
    }
    if (absl::Status s = parseTypeKeyword(c, ck); !s.ok())
      return s;
  }
  if ((type == CheckType::kHttp || type == CheckType::kSsl) && ck.urls.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": no url"));
  if (type == CheckType::kMisc && ck.misc_path.empty())
    return errorAt(n, "MISC_CHECK: no misc_path");
  if (type == CheckType::kUdp && ck.min_reply_length > ck.max_reply_length)
    return errorAt(n, "UDP_CHECK: min_reply_length > max_reply_length");
  return ck;
}

std::optional<CheckType> checkerKeyword(absl::string_view k) {
  if (k == "TCP_CHECK")
    return CheckType::kTcp;
  if (k == "HTTP_GET")
    return CheckType::kHttp;
  if (k == "SSL_GET")
    return CheckType::kSsl;
  if (k == "UDP_CHECK")
    return CheckType::kUdp;
  if (k == "DNS_CHECK")
    return CheckType::kDns;
  if (k == "PING_CHECK" || k == "ICMP_CHECK")
    return CheckType::kPing;
  if (k == "MISC_CHECK")
    return CheckType::kMisc;
  return std::nullopt;
}

}  // namespace lb::health::kconf

namespace lb::health {

const char* checkTypeName(CheckType t) {
  switch (t) {
    case CheckType::kTcp:
      return "TCP_CHECK";
    case CheckType::kHttp:
      return "HTTP_GET";
    case CheckType::kSsl:
      return "SSL_GET";
    case CheckType::kUdp:
      return "UDP_CHECK";
    case CheckType::kDns:
      return "DNS_CHECK";
    case CheckType::kPing:
      return "PING_CHECK";
    case CheckType::kMisc:
      return "MISC_CHECK";
  }
  return "?";
}

}  // namespace lb::health
