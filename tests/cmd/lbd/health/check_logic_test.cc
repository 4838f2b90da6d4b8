// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/check_logic.h"

#include <string>

#include "gtest/gtest.h"

namespace lb::health {
namespace {

// A reply as python3 -m http.server sends it (HTTP/1.0, closes after the body).
constexpr char kPythonOk[] =
    "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Sun, 06 Dec 2026 07:00:00 "
    "GMT\r\nContent-type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
// nginx's 503 page.
constexpr char kNginx503[] =
    "HTTP/1.1 503 Service Temporarily Unavailable\r\nServer: nginx\r\nContent-Type: text/html\r\n"
    "Content-Length: 8\r\nConnection: close\r\n\r\nsorry...";

TEST(CheckLogicTest, HttpRequestAsKeepalivedSendsIt) {
  EXPECT_EQ(httpRequest("/health", "198.18.1.1:8080", "1.0"),
            "GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.1.1:8080\r\n\r\n");
  EXPECT_EQ(httpRequest("/", "www.example.test", "1.1"),
            "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
            "Host: www.example.test\r\n\r\n");
  EXPECT_EQ(httpHost("", "2001:2::1", 80), "[2001:2::1]:80");
  EXPECT_EQ(httpHost("v.test", "2001:2::1", 80), "v.test");
}

TEST(CheckLogicTest, HttpStatusDefaultRangeIs2xx) {
  UrlSpec url;
  url.path = "/";
  EXPECT_TRUE(judgeHttp(url, kPythonOk).up);
  Verdict v = judgeHttp(url, kNginx503);
  EXPECT_FALSE(v.up);
  EXPECT_EQ(v.reason, "HTTP status 503");
  EXPECT_FALSE(judgeHttp(url, "HTTP/1.0 301 Moved\r\n\r\n").up);
  EXPECT_FALSE(judgeHttp(url, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n").up);  // no header end
  EXPECT_FALSE(judgeHttp(url, "garbage\r\n\r\n").up);
  EXPECT_FALSE(judgeHttp(url, "").up);
}

TEST(CheckLogicTest, HttpStatusCodeRanges) {
  UrlSpec url;
  url.statuses = {{301, 302}, {503, 503}};
  EXPECT_TRUE(judgeHttp(url, kNginx503).up);
  EXPECT_TRUE(judgeHttp(url, "HTTP/1.1 302 Found\r\n\r\n").up);
  EXPECT_FALSE(judgeHttp(url, kPythonOk).up);
}

TEST(CheckLogicTest, DigestIsMd5OfTheBodyAsGenhashComputesIt) {
  EXPECT_EQ(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5Hex("ok\n"), "eff5bc1ef8ec9d03e640fc4370f5eacd");
  UrlSpec url;
  url.digest = md5Hex("ok\n");
  EXPECT_TRUE(judgeHttp(url, kPythonOk).up);
  url.digest = md5Hex("other");
  Verdict v = judgeHttp(url, kPythonOk);
  EXPECT_FALSE(v.up);
  EXPECT_EQ(v.reason.rfind("MD5 digest eff5bc1ef8ec9d03e640fc4370f5eacd", 0), 0u) << v.reason;
  // Without Content-Length the body runs to the end (read until close).
  url.digest = md5Hex("abc\ndef");
  EXPECT_TRUE(judgeHttp(url, "HTTP/1.0 200 OK\n\nabc\ndef").up);
}

TEST(CheckLogicTest, HttpResponseCompleteByContentLength) {
  EXPECT_TRUE(httpResponseComplete(kPythonOk));
  EXPECT_FALSE(httpResponseComplete(std::string(kPythonOk).substr(0, sizeof(kPythonOk) - 3)));
  EXPECT_FALSE(httpResponseComplete("HTTP/1.0 200 OK\r\n\r\nbody"));  // until close
}

TEST(CheckLogicTest, DnsQueryBytes) {
  const std::string q = dnsQuery(0x1234, "www.example.test", "A");
  const std::string want = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                           "\x03www\x07"
                           "example\x04test" +
                           std::string("\x00\x00\x01\x00\x01", 5);
  EXPECT_EQ(q, want);
  EXPECT_EQ(dnsQuery(1, ".", "SOA").substr(12), std::string("\x00\x00\x06\x00\x01", 5));
}

TEST(CheckLogicTest, DnsAnswers) {
  // A recorded dnsmasq answer header: id 0x1234, QR|RD|RA, NOERROR, one answer.
  const std::string ok("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 12);
  ASSERT_TRUE(judgeDns(0x1234, ok).has_value());
  EXPECT_TRUE(judgeDns(0x1234, ok)->up);
  const std::string refused("\x12\x34\x81\x85\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  EXPECT_FALSE(judgeDns(0x1234, refused)->up);
  EXPECT_EQ(judgeDns(0x1234, refused)->reason, "DNS rcode 5");
  const std::string servfail("\x12\x34\x81\x82\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  EXPECT_FALSE(judgeDns(0x1234, servfail)->up);
  EXPECT_FALSE(judgeDns(0x9999, ok).has_value());                // another id: keep waiting
  EXPECT_FALSE(judgeDns(0x1234, ok.substr(0, 11)).has_value());  // too short
  const std::string query("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  EXPECT_FALSE(judgeDns(0x1234, query).has_value());  // not a response
}

TEST(CheckLogicTest, UdpReplies) {
  CheckerSpec spec;
  spec.type = CheckType::kUdp;
  EXPECT_TRUE(judgeUdpReply(spec, "anything").up);
  spec.min_reply_length = 3;
  spec.max_reply_length = 5;
  EXPECT_FALSE(judgeUdpReply(spec, "ab").up);
  EXPECT_FALSE(judgeUdpReply(spec, "abcdef").up);
  spec.reply_pattern = std::string("\x0a\x00\x0b", 3);
  spec.reply_mask = std::string("\xff\x00\xf0", 3);
  EXPECT_TRUE(judgeUdpReply(spec, std::string("\x0a\x77\x0c", 3)).up);
  Verdict v = judgeUdpReply(spec, std::string("\x0a\x77\x1b", 3));
  EXPECT_FALSE(v.up);
  EXPECT_EQ(v.reason, "reply data mismatch at byte 2");
}

TEST(CheckLogicTest, MiscExitCodes) {
  EXPECT_TRUE(judgeMisc(0, false).up);
  EXPECT_FALSE(judgeMisc(0, false).weight.has_value());
  EXPECT_FALSE(judgeMisc(1, false).up);
  EXPECT_FALSE(judgeMisc(1, true).up);
  EXPECT_FALSE(judgeMisc(7, false).up);
  MiscVerdict d = judgeMisc(7, true);
  EXPECT_TRUE(d.up);
  EXPECT_EQ(d.weight, 5u);
  EXPECT_EQ(judgeMisc(2, true).weight, 0u);
  EXPECT_EQ(judgeMisc(255, true).weight, 253u);
  EXPECT_FALSE(judgeMisc(-1, true).up);
  EXPECT_EQ(judgeMisc(-1, true).reason, "timed out or killed");
}

TEST(RetryStateTest, FirstFailureCountsAtOnceThenRetries) {
  RetryState r(2, false);
  RetryState::Step s = r.onResult(false);  // never ran: down at once
  EXPECT_TRUE(s.changed);
  EXPECT_FALSE(r.up());
  s = r.onResult(true);
  EXPECT_TRUE(s.changed);
  EXPECT_TRUE(r.up());
  // Up: two retries spaced by delay_before_retry, the third failure takes it down.
  s = r.onResult(false);
  EXPECT_TRUE(s.retrying);
  EXPECT_TRUE(r.up());
  s = r.onResult(false);
  EXPECT_TRUE(s.retrying);
  s = r.onResult(false);
  EXPECT_FALSE(s.retrying);
  EXPECT_TRUE(s.changed);
  EXPECT_FALSE(r.up());
  // Down: failures keep the delay_loop pace.
  s = r.onResult(false);
  EXPECT_FALSE(s.retrying);
  EXPECT_FALSE(s.changed);
  // A success in the middle of retries resets the count.
  r.onResult(true);
  EXPECT_TRUE(r.onResult(false).retrying);
  EXPECT_FALSE(r.onResult(true).changed);
  EXPECT_TRUE(r.onResult(false).retrying);
}

TEST(RetryStateTest, AlphaStartsDown) {
  RetryState r(1, true);
  EXPECT_FALSE(r.up());
  EXPECT_FALSE(r.onResult(false).changed);
  EXPECT_TRUE(r.onResult(true).changed);
  EXPECT_TRUE(r.up());
}

}  // namespace
}  // namespace lb::health
