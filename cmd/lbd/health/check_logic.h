// SPDX-License-Identifier: Apache-2.0
// What each checker decides from what it received, apart from the I/O (checkers.cc), so the
// decisions are tested on recorded replies: HTTP status and digest (check_http.c, genhash), DNS
// answers (check_dns.c), UDP replies (check_udp.c), MISC_CHECK exit codes (check_misc.c), and
// the retry/delay_loop stepping every checker shares (tcp_epilog and its siblings).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "cmd/lbd/health/keepalived_conf.h"

namespace lb::health {

struct Verdict {
  bool up = false;
  std::string reason;  // why it failed ("HTTP status 503", "digest mismatch", ...)
};

// The GET request keepalived sends (check_http.c request_template). `host` is the
// virtualhost, or the address (IPv6 in brackets) and ":port".
std::string httpRequest(absl::string_view path, absl::string_view host, absl::string_view protocol);

// The Host header value: the first of url/checker/rs/vs virtualhost, else ADDRESS:PORT.
std::string httpHost(absl::string_view vhost, absl::string_view address, uint16_t port);

// A whole HTTP response as read until the server closed (or the headers and Content-Length
// bytes): its status and body. nullopt when the status line or headers are incomplete.
struct HttpResponse {
  int status = 0;
  std::string body;
};

std::optional<HttpResponse> parseHttpResponse(absl::string_view raw);

// Whether `raw` holds a complete response already (headers and Content-Length body), so the
// checker may stop reading before the server closes.
bool httpResponseComplete(absl::string_view raw);

// Lower-case hex MD5 of `data`, as genhash prints it.
std::string md5Hex(absl::string_view data);

// The url's verdict on a response: status in its ranges (200-299 by default), then the
// digest of the body when the url has one.
Verdict judgeHttp(const UrlSpec& url, absl::string_view raw_response);

// A DNS query for (name, type) with id `id`, recursion desired (check_dns.c dns_make_query).
std::string dnsQuery(uint16_t id, absl::string_view name, absl::string_view type);

// keepalived's reading of a datagram: too short, another id or not a response are ignored
// (the checker keeps waiting: nullopt); rcode != 0 is a failure; anything else is up.
std::optional<Verdict> judgeDns(uint16_t id, absl::string_view reply);

// UDP_CHECK: reply length within [min, max] and every pattern bit under its mask equal
// (check_udp.c check_udp_reply; the pattern's shorter of the two lengths is compared).
Verdict judgeUdpReply(const CheckerSpec& spec, absl::string_view reply);

// MISC_CHECK: exit status (or -1 for a timeout/signal) → up/down, and with misc_dynamic a
// new weight (status - 2 for 2..255).
struct MiscVerdict {
  bool up = false;
  std::optional<uint32_t> weight;
  std::string reason;
};

MiscVerdict judgeMisc(int exit_status, bool dynamic);

// The retry stepping of keepalived's checkers (tcp_epilog): what one attempt's result does to
// the checker, and how long until the next attempt.
class RetryState {
 public:
  // alpha: start down. Keepalived starts with retry_it = retry, so the first failure of a
  // checker that never ran counts at once.
  RetryState(uint32_t retry, bool alpha) : retry_(retry), up_(!alpha), retry_it_(retry) {}

  struct Step {
    bool changed = false;   // the checker went up or down with this attempt
    bool retrying = false;  // next attempt after delay_before_retry (else delay_loop)
  };

  Step onResult(bool success);

  bool up() const { return up_; }

  bool hasRun() const { return has_run_; }

 private:
  uint32_t retry_;
  bool up_;
  uint32_t retry_it_;
  bool has_run_ = false;
};

}  // namespace lb::health
