// SPDX-License-Identifier: Apache-2.0
// The HTTP client and the reflector's state machine against a scripted in-process server. The
// same client is proven against a real kube-apiserver in
// tests/integration/controller_kube_client.sh.
#include "cmd/lbd-controller/kube/reflector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd-controller/kube/log.h"
#include "cmd/lbd-controller/kube/url.h"
#include "tests/cmd/lbd-controller/kube/fake_api_server.h"

namespace lbd::controller::kube {
namespace {

using testing::FakeApiServer;
using ::testing::HasSubstr;
using testing::Reply;
using testing::Request;

constexpr auto kWait = std::chrono::seconds(10);

std::unique_ptr<HttpClient> clientFor(const FakeApiServer& s,
                                      std::string token = "t0",
                                      std::string token_file = "") {
  KubeConfig c;
  c.server = *parseServerUrl(s.url());
  c.token = std::move(token);
  c.token_file = std::move(token_file);
  return *HttpClient::create(c, nullptr);
}

std::string obj(const std::string& name, const std::string& rv) {
  return absl::StrCat("{\"metadata\":{\"name\":\"", name,
                      "\",\"namespace\":\"ns\",\"resourceVersion\":\"", rv, "\"}}");
}

std::string list(const std::vector<std::string>& items,
                 const std::string& rv,
                 const std::string& cont = "") {
  std::string s = absl::StrCat("{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"", rv,
                               "\",\"continue\":\"", cont, "\"},\"items\":[");
  for (size_t i = 0; i < items.size(); ++i)
    absl::StrAppend(&s, i ? "," : "", items[i]);
  return s + "]}";
}

std::string event(const std::string& type, const std::string& object) {
  return absl::StrCat("{\"type\":\"", type, "\",\"object\":", object, "}\n");
}

Reply status410() {
  return Reply{
      410,
      {},
      {"{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":\"too old\"}"}};
}

// Records deltas as "ADDED ns/a" lines.
struct Recorder {
  std::mutex mu;
  std::vector<std::string> lines;

  Reflector::Handler handler() {
    return [this](const std::vector<Delta>& ds) {
      std::lock_guard<std::mutex> lock(mu);
      for (const Delta& d : ds) {
        const char* k = d.kind == Delta::Kind::kAdded      ? "ADDED"
                        : d.kind == Delta::Kind::kModified ? "MODIFIED"
                                                           : "DELETED";
        lines.push_back(absl::StrCat(k, " ", d.key));
      }
    };
  }

  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return lines;
  }
};

ReflectorOptions options(int page = 2) {
  ReflectorOptions o;
  o.name = "services";
  o.path = "/api/v1/services";
  o.label_selector = proxyLabelSelector("lbd");
  o.page_size = page;
  o.backoff.initial = std::chrono::milliseconds(10);
  return o;
}

std::set<std::string> keys(const ObjectStore& s) {
  std::set<std::string> k;
  for (const auto& [key, o] : s.snapshot())
    k.insert(key);
  return k;
}

TEST(HttpClientTest, RequestAndStatus) {
  FakeApiServer s([](const Request& r) {
    if (r.method == "POST")
      return Reply{201, {}, {r.body}};
    return Reply{503, {{"Retry-After", "7"}}, {"{}"}};
  });
  auto c = clientFor(s);
  absl::StatusOr<HttpResponse> r = c->request("POST", "/api/v1/namespaces/x/events", "{\"a\":1}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "{\"a\":1}");
  r = c->request("GET", "/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(parseRetryAfter(r->retry_after), std::chrono::seconds(7));
  EXPECT_EQ(s.requests()[0].authorization, "Bearer t0");
}

TEST(HttpClientTest, UnreachableServerIsUnavailable) {
  KubeConfig c;
  c.server = *parseServerUrl("http://127.0.0.1:1");
  auto client = *HttpClient::create(c, nullptr);
  EXPECT_EQ(client->request("GET", "/").status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpClientTest, A401ReReadsTheTokenFileAndRetriesOnce) {
  const std::string f = "/tmp/reflector_test_token." + std::to_string(::getpid());
  std::ofstream(f) << "old";
  FakeApiServer s([](const Request& r) {
    return r.authorization == "Bearer new" ? Reply{200, {}, {"{}"}} : Reply{401, {}, {"{}"}};
  });
  auto c = clientFor(s, "", f);
  ASSERT_EQ(c->request("GET", "/a")->status, 401);  // reads "old", 401, re-reads "old", 401
  std::ofstream(f) << "new";
  EXPECT_EQ(c->request("GET", "/a")->status, 200);  // cached "old": 401, re-read "new": 200
  std::filesystem::remove(f);
  std::vector<Request> rq = s.requests();
  ASSERT_EQ(rq.size(), 4u);
  EXPECT_EQ(rq[2].authorization, "Bearer old");
  EXPECT_EQ(rq[3].authorization, "Bearer new");
}

// Paginated list, watch events split across chunks, a bookmark, an ERROR 410 event -> re-list at
// the last version with NotOlderThan -> 410 -> list of the latest state, with synthesized
// deletions; then an HTTP 410 on the watch -> re-list again.
TEST(ReflectorTest, ListWatchAndRelistOn410) {
  std::vector<Reply> script;
  script.push_back(Reply{200, {}, {list({obj("a", "5"), obj("b", "6")}, "10", "c1")}});
  script.push_back(Reply{200, {}, {list({obj("c", "7")}, "10")}});
  std::string w = event("ADDED", obj("d", "11")) + event("MODIFIED", obj("a", "12")) +
                  event("DELETED", obj("b", "13")) +
                  event("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"20\"}}") +
                  event("ERROR", "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
  script.push_back(Reply{200, {}, {w.substr(0, 17), w.substr(17, 100), w.substr(117)}});
  script.push_back(status410());
  script.push_back(Reply{200, {}, {list({obj("a", "12"), obj("e", "30")}, "30")}});
  script.push_back(status410());
  script.push_back(Reply{200, {}, {list({obj("a", "12"), obj("e", "30")}, "31")}});
  script.push_back(Reply{200, {}, {}, true, true});  // a watch that stays open
  std::mutex mu;
  size_t next = 0;
  FakeApiServer s([&](const Request&) {
    std::lock_guard<std::mutex> lock(mu);
    return next < script.size() ? script[next++] : Reply{200, {}, {}, true, true};
  });
  Recorder rec;
  Reflector r(clientFor(s), options(), rec.handler());
  std::thread t([&] { r.run(); });
  ASSERT_TRUE(s.waitForRequests(8, kWait));
  r.stop();
  t.join();

  std::vector<Request> rq = s.requests();
  const std::string sel =
      "labelSelector=service.kubernetes.io%2Fservice-proxy-name%3Dlbd%2C%21service.kubernetes.io%"
      "2Fheadless";
  EXPECT_EQ(rq[0].target, "/api/v1/services?" + sel + "&limit=2");
  EXPECT_EQ(rq[1].target, "/api/v1/services?" + sel + "&limit=2&continue=c1");
  EXPECT_THAT(rq[2].target,
              HasSubstr("?watch=1&" + sel +
                        "&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds="));
  EXPECT_EQ(rq[3].target, "/api/v1/services?" + sel +
                              "&limit=2&resourceVersion=20&resourceVersionMatch=NotOlderThan");
  EXPECT_EQ(rq[4].target, "/api/v1/services?" + sel + "&limit=2");
  EXPECT_THAT(rq[5].target, HasSubstr("&resourceVersion=30&"));
  EXPECT_EQ(rq[6].target, "/api/v1/services?" + sel +
                              "&limit=2&resourceVersion=30&resourceVersionMatch=NotOlderThan");
  EXPECT_THAT(rq[7].target, HasSubstr("&resourceVersion=31&"));
  int timeout = std::stoi(rq[2].target.substr(rq[2].target.rfind('=') + 1));
  EXPECT_GE(timeout, 300);
  EXPECT_LE(timeout, 600);

  EXPECT_EQ(rec.get(), (std::vector<std::string>{
                           "ADDED ns/a", "ADDED ns/b", "ADDED ns/c",       // first list
                           "ADDED ns/d", "MODIFIED ns/a", "DELETED ns/b",  // watch
                           "DELETED ns/c", "DELETED ns/d", "ADDED ns/e",   // re-list: synthesized
                       }));
  EXPECT_EQ(keys(r.store()), (std::set<std::string>{"ns/a", "ns/e"}));
  EXPECT_EQ(r.resourceVersion(), "31");
  EXPECT_EQ(r.stats().lists.load(), 3u);
  EXPECT_EQ(r.stats().relists.load(), 2u);
  EXPECT_EQ(r.stats().gone.load(), 3u);
  EXPECT_EQ(r.stats().bookmarks.load(), 1u);
  EXPECT_EQ(r.stats().events.load(), 3u);
  EXPECT_TRUE(r.synced());
}

// 429 with Retry-After: 0 is retried at once, although the backoff would wait 10 s.
TEST(ReflectorTest, RetryAfterWinsOverBackoff) {
  std::mutex mu;
  int n = 0;
  FakeApiServer s([&](const Request&) {
    std::lock_guard<std::mutex> lock(mu);
    if (n++ == 0)
      return Reply{429, {{"Retry-After", "0"}}, {"{\"code\":429}"}};
    if (n == 2)
      return Reply{200, {}, {list({obj("a", "1")}, "2")}};
    return Reply{200, {}, {}, true, true};
  });
  ReflectorOptions o = options();
  o.backoff.initial = std::chrono::seconds(10);
  Reflector r(clientFor(s), o, [](const std::vector<Delta>&) {});
  std::thread t([&] { r.run(); });
  EXPECT_TRUE(s.waitForRequests(3, std::chrono::seconds(8)));
  r.stop();
  t.join();
  EXPECT_TRUE(r.synced());
  EXPECT_EQ(r.stats().errors.load(), 1u);
}

std::mutex g_log_mu;
std::vector<std::string> g_log;

void captureLog(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.push_back(line);
}

// 403 is logged at error level, naming RBAC; the store is never emptied by failures.
TEST(ReflectorTest, ForbiddenIsLoudAndFailuresKeepTheCache) {
  setLogSinkForTest(captureLog);
  std::mutex mu;
  int n = 0;
  FakeApiServer s([&](const Request&) {
    std::lock_guard<std::mutex> lock(mu);
    ++n;
    if (n == 1)
      return Reply{200, {}, {list({obj("a", "1")}, "2")}};
    if (n == 2)
      return Reply{200, {}, {event("ADDED", obj("b", "3")), "garbage"}};  // decode error
    if (n == 3)
      return status410();  // watch: re-list
    return Reply{
        403,
        {},
        {"{\"kind\":\"Status\",\"code\":403,\"reason\":\"Forbidden\",\"message\":\"no\"}"}};
  });
  Reflector r(clientFor(s), options(), [](const std::vector<Delta>&) {});
  std::thread t([&] { r.run(); });
  ASSERT_TRUE(s.waitForRequests(6, kWait));
  r.stop();
  t.join();
  setLogSinkForTest(nullptr);
  std::vector<Request> rq = s.requests();
  EXPECT_THAT(rq[2].target,
              HasSubstr("resourceVersion=3&"));  // re-watch, not re-list, after garbage
  EXPECT_EQ(keys(r.store()), (std::set<std::string>{"ns/a", "ns/b"}));
  std::lock_guard<std::mutex> lock(g_log_mu);
  bool loud = false;
  for (const std::string& l : g_log)
    loud |= absl::StrContains(l, " error reflector FORBIDDEN") && absl::StrContains(l, "HTTP 403");
  EXPECT_TRUE(loud);
}

// Events of a watch that stays open are applied as they arrive (not when the stream ends or a
// buffer fills), and stop() ends the open watch.
TEST(ReflectorTest, EventsOfAnOpenWatchArriveAndStopEndsIt) {
  FakeApiServer s([](const Request& r) {
    if (absl::StrContains(r.target, "watch=1"))
      return Reply{200, {}, {event("ADDED", obj("live", "2"))}, true, true, 100};
    return Reply{200, {}, {list({}, "1")}};
  });
  Reflector r(clientFor(s), options(), [](const std::vector<Delta>&) {});
  std::thread t([&] { r.run(); });
  ASSERT_TRUE(s.waitForRequests(2, kWait));
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (r.store().size() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(keys(r.store()), (std::set<std::string>{"ns/live"}));
  r.stop();
  t.join();  // bounded by ctest's timeout if stop() did not work
  EXPECT_TRUE(r.synced());
  EXPECT_EQ(r.stats().watches.load(), 1u);
}

// A watch that the server ends at once without events is not re-opened in a tight loop: the
// failure is counted and the reflector decides to wait out its backoff (10 s here), which it
// logs as retry_ms. That decision is what is checked, not a stretch of silence.
TEST(ReflectorTest, AnEmptyWatchThatEndsAtOnceBacksOff) {
  FakeApiServer s([](const Request& r) {
    if (absl::StrContains(r.target, "watch=1"))
      return Reply{200, {}, {""}, true};
    return Reply{200, {}, {list({}, "1")}};
  });
  ReflectorOptions o = options();
  o.backoff.initial = std::chrono::seconds(10);
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log.clear();
  }
  setLogSinkForTest(captureLog);
  Reflector r(clientFor(s), o, [](const std::vector<Delta>&) {});
  std::thread t([&] { r.run(); });
  ASSERT_TRUE(s.waitForRequests(2, kWait));
  // The failure is handled (counted, then logged with its delay) within kWait.
  int64_t retry_ms = -1;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (retry_ms < 0 && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(g_log_mu);
      for (const std::string& l : g_log) {
        const size_t at = l.find("retry_ms=");
        if (absl::StrContains(l, "list/watch failed") && at != std::string::npos)
          retry_ms = std::atoll(l.c_str() + at + 9);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.stop();
  t.join();
  setLogSinkForTest(nullptr);
  EXPECT_GE(retry_ms, 10000) << "the next watch waits the 10 s backoff";
  EXPECT_EQ(s.requests().size(), 2u);  // the list and one watch
  EXPECT_EQ(r.stats().errors.load(), 1u);
  EXPECT_EQ(r.stats().watches.load(), 1u);
}

TEST(ApiStatusTest, Parse) {
  ApiStatus s = parseApiStatusBody(
      "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Gone\",\"message\":\"m\"}");
  EXPECT_EQ(s.code, 410);
  EXPECT_EQ(s.reason, "Gone");
  EXPECT_EQ(parseApiStatusBody("not json").message, "not json");
}

}  // namespace
}  // namespace lbd::controller::kube
