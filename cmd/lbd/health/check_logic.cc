// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/check_logic.h"

#include <openssl/evp.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lb::health {
namespace {

// The header block's end ("\r\n\r\n", or a bare "\n\n" from a sloppy server).
size_t headerEnd(absl::string_view raw, size_t* body_start) {
  const size_t crlf = raw.find("\r\n\r\n");
  const size_t lf = raw.find("\n\n");
  if (crlf != absl::string_view::npos && (lf == absl::string_view::npos || crlf < lf)) {
    *body_start = crlf + 4;
    return crlf;
  }
  if (lf != absl::string_view::npos) {
    *body_start = lf + 2;
    return lf;
  }
  return absl::string_view::npos;
}

std::optional<uint64_t> contentLength(absl::string_view headers) {
  for (absl::string_view line : absl::StrSplit(headers, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos)
      continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)),
                                "content-length")) {
      continue;
    }
    uint64_t n = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(colon + 1)), &n))
      return n;
  }
  return std::nullopt;
}

}  // namespace

std::string httpHost(absl::string_view vhost, absl::string_view address, uint16_t port) {
  if (!vhost.empty())
    return std::string(vhost);
  if (address.find(':') != absl::string_view::npos)
    return absl::StrCat("[", address, "]:", port);
  return absl::StrCat(address, ":", port);
}

std::string httpRequest(absl::string_view path,
                        absl::string_view host,
                        absl::string_view protocol) {
  const bool v11 = protocol == "1.1";
  const bool close = v11 || protocol == "1.0C";
  return absl::StrCat("GET ", path, " HTTP/1.", v11 ? "1" : "0",
                      "\r\nUser-Agent: KeepAliveClient\r\n", close ? "Connection: close\r\n" : "",
                      "Host: ", host, "\r\n\r\n");
}

std::optional<HttpResponse> parseHttpResponse(absl::string_view raw) {
  size_t body = 0;
  const size_t end = headerEnd(raw, &body);
  if (end == absl::string_view::npos)
    return std::nullopt;
  // Status line: HTTP/1.x NNN reason (check_http.c extract_status_code reads the 3 digits).
  const size_t eol = raw.find('\n');
  absl::string_view status_line = raw.substr(0, eol);
  if (!absl::StartsWith(status_line, "HTTP/"))
    return std::nullopt;
  const size_t sp = status_line.find(' ');
  if (sp == absl::string_view::npos || sp + 4 > status_line.size())
    return std::nullopt;
  int code = 0;
  if (!absl::SimpleAtoi(status_line.substr(sp + 1, 3), &code) || code < 100 || code > 999)
    return std::nullopt;
  HttpResponse r;
  r.status = code;
  absl::string_view b = raw.substr(body);
  if (std::optional<uint64_t> len = contentLength(raw.substr(0, end)); len && *len < b.size())
    b = b.substr(0, *len);
  r.body = std::string(b);
  return r;
}

bool httpResponseComplete(absl::string_view raw) {
  size_t body = 0;
  const size_t end = headerEnd(raw, &body);
  if (end == absl::string_view::npos)
    return false;
  std::optional<uint64_t> len = contentLength(raw.substr(0, end));
  return len.has_value() && raw.size() - body >= *len;
}

std::string md5Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

Verdict judgeHttp(const UrlSpec& url, absl::string_view raw_response) {
  std::optional<HttpResponse> r = parseHttpResponse(raw_response);
  if (!r.has_value())
    return {false, "no valid HTTP response"};
  bool status_ok = false;
  if (url.statuses.empty()) {
    status_ok = r->status >= 200 && r->status <= 299;
  } else {
    for (const StatusRange& s : url.statuses)
      status_ok = status_ok || (r->status >= s.lo && r->status <= s.hi);
  }
  if (!status_ok)
    return {false, absl::StrCat("HTTP status ", r->status)};
  if (!url.digest.empty()) {
    const std::string got = md5Hex(r->body);
    if (got != url.digest)
      return {false, absl::StrCat("MD5 digest ", got, " (expected ", url.digest, ")")};
  }
  return {true, ""};
}

std::string dnsQuery(uint16_t id, absl::string_view name, absl::string_view type) {
  static const std::pair<const char*, uint16_t> kTypes[] = {
      {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"MX", 15}, {"TXT", 16}, {"AAAA", 28}};
  uint16_t qtype = 6;
  for (const auto& [n, v] : kTypes) {
    if (type == n)
      qtype = v;
  }
  std::string q;
  q += static_cast<char>(id >> 8);
  q += static_cast<char>(id & 0xff);
  q += '\x01';  // RD
  q += '\x00';
  q += std::string("\x00\x01\x00\x00\x00\x00\x00\x00", 8);  // QD=1, AN=NS=AR=0
  for (absl::string_view label : absl::StrSplit(name, '.', absl::SkipEmpty())) {
    if (label.size() > 63)
      label = label.substr(0, 63);
    q += static_cast<char>(label.size());
    q.append(label.data(), label.size());
  }
  q += '\x00';
  q += static_cast<char>(qtype >> 8);
  q += static_cast<char>(qtype & 0xff);
  q += std::string("\x00\x01", 2);  // IN
  return q;
}

std::optional<Verdict> judgeDns(uint16_t id, absl::string_view reply) {
  if (reply.size() < 12)
    return std::nullopt;
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(reply[i]); };
  if ((byte(0) << 8 | byte(1)) != id)
    return std::nullopt;
  if ((byte(2) & 0x80) == 0)  // QR: a query, not an answer
    return std::nullopt;
  const int rcode = byte(3) & 0x0f;
  if (rcode != 0)
    return Verdict{false, absl::StrCat("DNS rcode ", rcode)};
  return Verdict{true, ""};
}

Verdict judgeUdpReply(const CheckerSpec& spec, absl::string_view reply) {
  if (reply.size() < spec.min_reply_length || reply.size() > spec.max_reply_length) {
    return {false, absl::StrCat("reply of ", reply.size(), " bytes (expected ",
                                spec.min_reply_length, "..", spec.max_reply_length, ")")};
  }
  const size_t n = std::min(reply.size(), spec.reply_pattern.size());
  for (size_t i = 0; i < n; ++i) {
    const uint8_t mask =
        i < spec.reply_mask.size() ? static_cast<uint8_t>(spec.reply_mask[i]) : 0xff;
    if (((static_cast<uint8_t>(reply[i]) ^ static_cast<uint8_t>(spec.reply_pattern[i])) & mask) !=
        0) {
      return {false, absl::StrCat("reply data mismatch at byte ", i)};
    }
  }
  return {true, ""};
}

MiscVerdict judgeMisc(int exit_status, bool dynamic) {
  MiscVerdict v;
  if (exit_status == 0) {
    v.up = true;
    return v;
  }
  if (dynamic && exit_status >= 2 && exit_status <= 255) {
    v.up = true;
    v.weight = static_cast<uint32_t>(exit_status - 2);
    return v;
  }
  v.reason =
      exit_status < 0 ? "timed out or killed" : absl::StrCat("exited with status ", exit_status);
  return v;
}

RetryState::Step RetryState::onResult(bool success) {
  Step s;
  if (success || ((up_ || !has_run_) && retry_it_ >= retry_)) {
    retry_it_ = 0;
    if (success && (!up_ || !has_run_)) {
      s.changed = !up_;
      up_ = true;
    } else if (!success && (up_ || !has_run_)) {
      s.changed = up_;
      up_ = false;
    }
  } else if (up_) {
    s.retrying = true;
    ++retry_it_;
  }
  has_run_ = true;
  return s;
}

}  // namespace lb::health
