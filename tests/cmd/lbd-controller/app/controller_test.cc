// SPDX-License-Identifier: Apache-2.0
// The reconcile loop against a fake lbd: nothing before both lists, one batch per burst, refused
// operations and mapping problems become Events, lbd unreachable changes nothing and is retried,
// a restarted lbd (new GetInfo instance id) is reconciled again.
#include "cmd/lbd-controller/app/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lbd::controller::app {
namespace {

using std::chrono::milliseconds;

class FakeLbd : public LbdApi {
 public:
  absl::StatusOr<lbd::v1::GetInfoResponse> getInfo() override {
    std::lock_guard<std::mutex> lock(mu);
    ++infos;
    if (down)
      return absl::UnavailableError("down");
    lbd::v1::GetInfoResponse r;
    r.set_instance_id(instance);
    return r;
  }

  absl::StatusOr<lbd::v1::ListServicesResponse> listServices() override {
    std::lock_guard<std::mutex> lock(mu);
    ++lists;
    if (down)
      return absl::UnavailableError("down");
    return lbd::v1::ListServicesResponse();
  }

  absl::StatusOr<lbd::v1::ApplyBatchResponse> applyBatch(
      const lbd::v1::ApplyBatchRequest& req) override {
    std::lock_guard<std::mutex> lock(mu);
    batches.push_back(req);
    lbd::v1::ApplyBatchResponse r;
    if (refuse_first) {
      lbd::v1::BatchFailure* f = r.add_failures();
      f->set_index(0);
      f->set_code(3);
      f->set_message("scheduler \"zz\" unknown");
    }
    return r;
  }

  size_t batchCount() {
    std::lock_guard<std::mutex> lock(mu);
    return batches.size();
  }

  int infoCount() {
    std::lock_guard<std::mutex> lock(mu);
    return infos;
  }

  std::mutex mu;
  bool down = false;
  bool refuse_first = false;
  std::string instance = "i1";
  int lists = 0;
  int infos = 0;  // GetInfo calls: the loop polls lbd once per turn, before it looks for changes
  std::vector<lbd::v1::ApplyBatchRequest> batches;
};

class FakeEvents : public EventSink {
 public:
  void warn(const ServiceRef& s, const std::string& reason, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(absl::StrCat(s.ns, "/", s.name, " uid=", s.uid, " ", reason, ": ", message));
  }

  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }

  std::mutex mu;
  std::vector<std::string> events;
};

kube::ObjectPtr service(const std::string& name,
                        const std::string& ip,
                        int port,
                        const std::string& protocol = "TCP") {
  return std::make_shared<const nlohmann::json>(
      nlohmann::json{{"metadata",
                      {{"name", name},
                       {"namespace", "default"},
                       {"uid", "uid-" + name},
                       {"resourceVersion", "1"}}},
                     {"spec",
                      {{"type", "ClusterIP"},
                       {"clusterIP", ip},
                       {"clusterIPs", {ip}},
                       {"ipFamilies", {"IPv4"}},
                       {"ports", {{{"name", "http"}, {"port", port}, {"protocol", protocol}}}}}}});
}

kube::ObjectPtr slice(const std::string& service, const std::vector<std::string>& ips) {
  nlohmann::json eps = nlohmann::json::array();
  for (const auto& ip : ips)
    eps.push_back({{"addresses", {ip}}, {"conditions", {{"ready", true}}}});
  return std::make_shared<const nlohmann::json>(
      nlohmann::json{{"metadata",
                      {{"name", service + "-1"},
                       {"namespace", "default"},
                       {"resourceVersion", "1"},
                       {"labels", {{"kubernetes.io/service-name", service}}}}},
                     {"addressType", "IPv4"},
                     {"ports", {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}},
                     {"endpoints", eps}});
}

struct Fixture {
  kube::ObjectStore services, slices;
  std::atomic<bool> synced{false};
  std::atomic<int> synced_calls{0};  // how often the loop asked whether the lists are in
  FakeLbd lbd;
  FakeEvents events;
  ControllerMetrics metrics;
  ControllerOptions options;
  std::unique_ptr<Controller> ctl;
  std::thread loop;

  Fixture() {
    options.debounce = milliseconds(300);
    options.lbd_poll = milliseconds(20);
    options.resync = std::chrono::hours(1);
    options.retry.initial = milliseconds(20);
    (void)services.replace({{"default/web", service("web", "198.18.128.10", 80)}});
    (void)slices.replace({{"default/web-1", slice("web", {"198.18.2.11", "198.18.2.12"})}});
  }

  void start() {
    ControllerSources src;
    src.services = &services;
    src.slices = &slices;
    src.synced = [this] {
      ++synced_calls;
      return synced.load();
    };
    ctl = std::make_unique<Controller>(options, src, lbd, events, metrics);
    loop = std::thread([this] { ctl->run(); });
  }

  ~Fixture() {
    if (ctl)
      ctl->stop();
    if (loop.joinable())
      loop.join();
  }
};

template <typename F>
bool eventually(F f) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

TEST(Controller, NothingBeforeBothListsThenOneFullReconcile) {
  Fixture f;
  f.start();
  // The loop asked three times and was told no: it went round twice without the lists.
  ASSERT_TRUE(eventually([&] { return f.synced_calls.load() >= 3; }));
  {
    std::lock_guard<std::mutex> lock(f.lbd.mu);
    EXPECT_EQ(f.lbd.lists, 0);  // lbd untouched before the initial lists
    EXPECT_TRUE(f.lbd.batches.empty());
  }
  EXPECT_FALSE(f.ctl->ready());
  f.synced = true;
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 1; }));
  EXPECT_TRUE(eventually([&] { return f.ctl->ready(); }));
  std::lock_guard<std::mutex> lock(f.lbd.mu);
  const lbd::v1::ApplyBatchRequest& b = f.lbd.batches[0];
  EXPECT_EQ(b.owner(), "lbd-controller");
  // One virtual service and its two real servers, in one request.
  int services = 0, dests = 0;
  for (const auto& op : b.operations()) {
    services += op.has_create_service();
    dests += op.has_create_dest();
  }
  EXPECT_EQ(services, 1);
  EXPECT_EQ(dests, 2);
}

TEST(Controller, ABurstOfChangesIsOneBatch) {
  Fixture f;
  f.synced = true;
  f.start();
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 1; }));
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> ips;
    for (int j = 0; j <= i % 50; ++j)
      ips.push_back(absl::StrCat("198.18.3.", j + 1));
    (void)f.slices.replace({{"default/web-1", slice("web", ips)}});
    f.ctl->notify();
  }
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 2; }));
  // Every notify() above came before this. Each turn of the loop polls lbd (GetInfo), then
  // takes pending changes (debounce, then a batch): once two more polls happened, a turn
  // started after the burst has looked for changes and had nothing left to send.
  const int polls = f.lbd.infoCount();
  ASSERT_TRUE(eventually([&] { return f.lbd.infoCount() >= polls + 2; }));
  EXPECT_EQ(f.lbd.batchCount(), 2u);  // nothing else is due: resync is 1 h away
}

TEST(Controller, RefusedOperationsAndProblemsBecomeEvents) {
  Fixture f;
  f.lbd.refuse_first = true;
  (void)f.services.replace({{"default/web", service("web", "198.18.128.10", 80)},
                            {"default/odd", service("odd", "198.18.128.11", 80, "ICMP")}});
  f.synced = true;
  f.start();
  ASSERT_TRUE(eventually([&] { return f.events.get().size() >= 2; }));
  std::vector<std::string> ev = f.events.get();
  bool refused = false, problem = false;
  for (const std::string& e : ev) {
    refused |= e.rfind("default/web uid=uid-web LbdRefused: scheduler \"zz\" unknown", 0) == 0;
    problem |= e.rfind("default/odd uid=uid-odd UnsupportedProtocol", 0) == 0;
  }
  EXPECT_TRUE(refused) << ev[0];
  EXPECT_TRUE(problem);
  EXPECT_EQ(f.metrics.refused_operations.load(), 1u);
}

// An object the model cannot read is skipped (once counted, not re-parsed); the rest works.
TEST(Controller, AMalformedObjectHarmsNothingElse) {
  Fixture f;
  auto bad = std::make_shared<const nlohmann::json>(nlohmann::json{
      {"metadata", {{"name", "bad"}, {"namespace", "default"}}}, {"spec", {{"ports", "x"}}}});
  (void)f.services.replace(
      {{"default/web", service("web", "198.18.128.10", 80)}, {"default/bad", bad}});
  f.synced = true;
  f.start();
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 1; }));
  f.ctl->notify();  // another reconcile: the bad object is not parsed (or counted) again
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 2; }));
  EXPECT_EQ(f.metrics.parse_errors.load(), 1u);
  std::lock_guard<std::mutex> lock(f.lbd.mu);
  int services = 0;
  for (const auto& op : f.lbd.batches[1].operations())
    services += op.has_create_service();
  EXPECT_EQ(services, 1);  // web
}

TEST(Controller, LbdDownChangesNothingThenRetriesAndRestartIsReconciled) {
  Fixture f;
  f.lbd.down = true;
  f.synced = true;
  f.start();
  ASSERT_TRUE(eventually([&] { return f.metrics.reconcile_errors.load() >= 2; }));  // retried
  EXPECT_EQ(f.lbd.batchCount(), 0u);
  EXPECT_FALSE(f.ctl->ready());
  {
    std::lock_guard<std::mutex> lock(f.lbd.mu);
    f.lbd.down = false;
  }
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 1; }));
  EXPECT_TRUE(f.ctl->ready());
  {
    std::lock_guard<std::mutex> lock(f.lbd.mu);
    f.lbd.instance = "i2";  // lbd restarted
  }
  ASSERT_TRUE(eventually([&] { return f.lbd.batchCount() == 2; }));
  EXPECT_EQ(f.metrics.lbd_restarts.load(), 1u);
}

}  // namespace
}  // namespace lbd::controller::app
