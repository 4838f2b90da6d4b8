// SPDX-License-Identifier: Apache-2.0
// HealthService in-process: real TCP_CHECKs against listeners on 127.0.0.1 (port 0), the
// control plane's commit API faked, so the operations it commits are checked one by one.
// Waits are bounded (a deadline), never timed assertions.
#include "cmd/lbd/health/health_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace lb::health {
namespace {

namespace pb = ::lbd::v1;

// A listening socket on 127.0.0.1 (the kernel completes the handshakes).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 1024), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }

  ~Listener() { close(); }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port nothing listens on (bound, then closed: connects are refused).
uint16_t closedPort() {
  Listener l;
  const uint16_t p = l.port();
  l.close();
  return p;
}

// The fake control plane: records every batch; GetConfig is empty.
class FakeControl {
 public:
  ControlApi api() {
    ControlApi c;
    c.apply_batch = [this](const pb::ApplyBatchRequest& req, pb::ApplyBatchResponse* resp) {
      std::lock_guard<std::mutex> lock(mu_);
      batches_.push_back(req);
      resp->set_applied(static_cast<uint32_t>(req.operations_size()));
      cv_.notify_all();
      return absl::OkStatus();
    };
    c.get_config = [this](pb::GetConfigResponse* resp) {
      std::lock_guard<std::mutex> lock(mu_);
      *resp->mutable_config() = config_;
      return absl::OkStatus();
    };
    return c;
  }

  // What GetConfig answers (empty until set).
  void setConfig(const pb::Config& c) {
    std::lock_guard<std::mutex> lock(mu_);
    config_ = c;
  }

  // Waits (at most 20 s) until some batch has an operation for which `pred` holds.
  template <typename Pred>
  bool waitFor(Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const pb::ApplyBatchRequest& b : batches_) {
        for (const pb::BatchOperation& op : b.operations()) {
          if (pred(op))
            return true;
        }
      }
      return false;
    });
  }

  std::vector<pb::ApplyBatchRequest> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pb::ApplyBatchRequest> batches_;
  pb::Config config_;
};

class MemFiles {
 public:
  void set(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    text_ = text;
  }

  ConfReader reader() {
    ConfReader r;
    r.read = [this](const std::string&) -> absl::StatusOr<std::string> {
      std::lock_guard<std::mutex> lock(mu_);
      return text_;
    };
    r.glob = [](const std::string&) { return std::vector<std::string>{}; };
    return r;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

std::string conf(uint16_t up, uint16_t down, const std::string& extra = "") {
  return absl::StrReplaceAll(
      R"(
virtual_server 198.18.0.1 80 {
  delay_loop 0.2
  lb_algo rr
  real_server 127.0.0.1 UP {
    weight 3
    TCP_CHECK {
      connect_timeout 1
      retry 0
      warmup 0
    }
  }
  real_server 127.0.0.1 DOWN {
    TCP_CHECK {
      connect_timeout 1
      retry 0
      warmup 0
    }
  }
EXTRA}
)",
      {{"UP", absl::StrCat(up)}, {"DOWN", absl::StrCat(down)}, {"EXTRA", extra}});
}

TEST(HealthServiceTest, CommitsThePoolThenRemovesTheDeadServer) {
  Listener up;
  const uint16_t down = closedPort();
  MemFiles files;
  files.set(conf(up.port(), down));
  FakeControl control;
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"/k.conf", files.reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  // The first batch: the service and both real servers (all start up, as keepalived does).
  std::vector<pb::ApplyBatchRequest> b = control.batches();
  ASSERT_GE(b.size(), 1u);  // the checks may have committed already
  ASSERT_EQ(b[0].operations_size(), 3);
  EXPECT_EQ(b[0].operations(0).create_service().service().scheduler(), "rr");
  EXPECT_EQ(b[0].operations(1).create_dest().dest().weight() +
                b[0].operations(2).create_dest().dest().weight(),
            4u);
  // The refused port: its dest is deleted; the listening one stays.
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_delete_dest() && op.delete_dest().port() == down;
  }));
  for (const pb::ApplyBatchRequest& r : control.batches()) {
    for (const pb::BatchOperation& op : r.operations())
      EXPECT_FALSE(op.has_delete_dest() && op.delete_dest().port() == up.port());
  }
  // ListHealthChecks: one up, one down with its reason.
  pb::ListHealthChecksResponse list;
  ASSERT_TRUE((*hs)->list(pb::ListHealthChecksRequest(), &list).ok());
  ASSERT_EQ(list.checks_size(), 2);
  EXPECT_TRUE(list.checks(0).up());
  EXPECT_EQ(list.checks(0).weight(), 3u);
  EXPECT_FALSE(list.checks(1).up());
  EXPECT_NE(list.checks(1).last_failure().find("refused"), std::string::npos)
      << list.checks(1).last_failure();
  EXPECT_EQ(list.checks(1).type(), pb::HEALTH_CHECK_TYPE_TCP);
  (*hs)->stop();
}

TEST(HealthServiceTest, ReloadRefusesABadFileAndCommitsOnlyTheDifference) {
  Listener up, added;
  const uint16_t down = closedPort();
  MemFiles files;
  files.set(conf(up.port(), down));
  FakeControl control;
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"/k.conf", files.reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) { return op.has_delete_dest(); }));
  const size_t before = control.batches().size();

  files.set("virtual_server 198.18.0.1 80 {\n  lb_algo nonsense\n}\n");
  absl::Status bad = (*hs)->reload();
  EXPECT_EQ(bad.message(), "/k.conf:2: lb_algo 'nonsense': unknown scheduler");
  EXPECT_EQ(control.batches().size(), before);

  files.set(
      conf(up.port(), down, absl::StrCat("  real_server 127.0.0.1 ", added.port(), " {\n  }\n")));
  ASSERT_TRUE((*hs)->reload().ok());
  std::vector<pb::ApplyBatchRequest> b = control.batches();
  ASSERT_EQ(b.size(), before + 1);
  // Only the new real server: the unchanged ones and their checkers' state stay.
  ASSERT_EQ(b.back().operations_size(), 1) << b.back().DebugString();
  EXPECT_EQ(b.back().operations(0).create_dest().dest().port(), added.port());
  (*hs)->stop();
}

// A TCP check every 0.2 s (lbctl --check tcp,delay_loop=0.2,retry=0,warmup=0,...).
pb::HealthCheck fastTcpCheck() {
  pb::HealthCheck c;
  c.set_type(pb::HEALTH_CHECK_TYPE_TCP);
  c.mutable_delay_loop()->set_nanos(200000000);
  c.mutable_connect_timeout()->set_seconds(1);
  c.set_retry(0);
  c.mutable_warmup()->set_seconds(0);
  return c;
}

pb::Dest dest(uint16_t port, uint32_t weight, bool checked) {
  pb::Dest d;
  d.set_address("127.0.0.1");
  d.set_port(port);
  d.set_forward_method(pb::FORWARD_METHOD_MASQ);
  d.set_weight(weight);
  if (checked)
    *d.add_health_checks() = fastTcpCheck();
  return d;
}

pb::Config oneService(std::vector<pb::Dest> dests) {
  pb::Config cfg;
  pb::Service* s = cfg.add_services();
  s->mutable_key()->mutable_address()->set_protocol(pb::PROTOCOL_TCP);
  s->mutable_key()->mutable_address()->set_address("198.18.0.1");
  s->mutable_key()->mutable_address()->set_port(80);
  s->set_scheduler("rr");
  for (pb::Dest& d : dests)
    *s->add_dests() = std::move(d);
  return cfg;
}

// Checks set through the API (Dest.health_checks), no keepalived.conf: the dead real server
// is held at weight 0 with its weight kept in health_weight; the live one and an unchecked one
// are left alone.
TEST(HealthServiceTest, ChecksOfTheConfigurationHoldADeadServerAtZero) {
  Listener up;
  const uint16_t down = closedPort();
  FakeControl control;
  control.setConfig(oneService({dest(up.port(), 3, true), dest(down, 2, true), dest(9, 1, false)}));
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"", MemFiles().reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_update_dest() && op.update_dest().dest().port() == down;
  }));
  for (const pb::ApplyBatchRequest& r : control.batches()) {
    for (const pb::BatchOperation& op : r.operations()) {
      ASSERT_TRUE(op.has_update_dest()) << op.DebugString();  // never removed, never created
      const pb::Dest& d = op.update_dest().dest();
      EXPECT_EQ(d.port(), down);
      EXPECT_EQ(d.weight(), 0u);
      EXPECT_EQ(d.health_weight(), 2u);
      EXPECT_EQ(d.health_checks_size(), 1);  // the check stays with it
    }
  }
  pb::ListHealthChecksResponse list;
  ASSERT_TRUE((*hs)->list(pb::ListHealthChecksRequest(), &list).ok());
  ASSERT_EQ(list.checks_size(), 2);
  EXPECT_TRUE(list.checks(0).up());
  EXPECT_FALSE(list.checks(1).up());
  EXPECT_EQ(list.checks(1).weight(), 2u);
  EXPECT_EQ(list.checks(1).config(), "api");
  EXPECT_FALSE(list.checks(1).last_failure().empty());
  (*hs)->stop();
}

// A dest the configuration holds down (weight 0, health_weight 5: a state file) starts failed
// and gets its weight back once its check passes.
TEST(HealthServiceTest, AHeldDownServerThatPassesGetsItsWeightBack) {
  Listener up;
  pb::Dest held = dest(up.port(), 0, true);
  held.set_health_weight(5);
  FakeControl control;
  control.setConfig(oneService({held}));
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"", MemFiles().reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_update_dest() && op.update_dest().dest().weight() == 5 &&
           op.update_dest().dest().health_weight() == 0 &&
           op.update_dest().dest().health_checks_size() == 1;
  }));
  (*hs)->stop();
}

// Service.health_policy through the API: quorum 1 and a sorry server. The only real server dies:
// it is held at weight 0 and the sorry server comes in (as a dest of the service).
TEST(HealthServiceTest, APolicysSorryServerComesInWhenTheQuorumIsLost) {
  const uint16_t down = closedPort();
  pb::Config cfg = oneService({dest(down, 1, true)});
  pb::Dest* sorry = cfg.mutable_services(0)->mutable_health_policy()->mutable_sorry_server();
  sorry->set_address("127.0.0.9");
  sorry->set_port(8080);
  sorry->set_forward_method(pb::FORWARD_METHOD_MASQ);
  FakeControl control;
  control.setConfig(cfg);
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"", MemFiles().reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_create_dest() && op.create_dest().dest().address() == "127.0.0.9" &&
           op.create_dest().dest().port() == 8080 && op.create_dest().dest().weight() == 1;
  }));
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_update_dest() && op.update_dest().dest().port() == down &&
           op.update_dest().dest().weight() == 0 && op.update_dest().dest().health_weight() == 1;
  }));
  (*hs)->stop();
}

// stop() stops every checker on the health thread before that thread's io_context stops: it
// posted the stop and called io.stop() at once, so the posted handler mostly never ran and
// the checkers were left armed.
TEST(HealthServiceTest, StopStopsEveryChecker) {
  Listener up;
  const uint16_t down = closedPort();
  MemFiles files;
  files.set(conf(up.port(), down));
  FakeControl control;
  pb::Config cfg = oneService({dest(up.port(), 3, true)});  // and a check of the configuration
  cfg.mutable_services(0)->mutable_key()->mutable_address()->set_port(81);
  control.setConfig(cfg);
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"/k.conf", files.reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  // The checks run: the refused port's dest is deleted.
  ASSERT_TRUE(control.waitFor([&](const pb::BatchOperation& op) {
    return op.has_delete_dest() && op.delete_dest().port() == down;
  }));
  (*hs)->stop();
  EXPECT_EQ((*hs)->runningCheckersForTest(), 0u);
  EXPECT_EQ((*hs)->status().size(), 3u);  // the file's two checkers and the configuration's
}

// A reload after stop() (a SIGHUP during shutdown) is refused at once: the health thread is
// gone, and before the fix it waited forever for a handler that never ran.
TEST(HealthServiceTest, ReloadAfterStopIsRefusedInsteadOfWaitingForever) {
  Listener up;
  const uint16_t down = closedPort();
  MemFiles files;
  files.set(conf(up.port(), down));
  FakeControl control;
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"/k.conf", files.reader(), control.api()});
  ASSERT_TRUE(hs.ok()) << hs.status();
  ASSERT_TRUE((*hs)->start().ok());
  (*hs)->stop();
  const size_t before = control.batches().size();
  std::future<absl::Status> reload =
      std::async(std::launch::async, [&] { return (*hs)->reload(); });
  ASSERT_EQ(reload.wait_for(std::chrono::seconds(20)), std::future_status::ready)
      << "reload() after stop() did not return";
  absl::Status st = reload.get();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(st.message(), "the health checks are stopped");
  EXPECT_EQ(control.batches().size(), before);
}

// stop() called on the health thread (here from the configuration read a refresh makes there)
// stops the checks without waiting for itself; the next stop() joins the thread.
TEST(HealthServiceTest, StopOnTheHealthThreadDoesNotWaitForItself) {
  Listener up;
  FakeControl control;
  control.setConfig(oneService({dest(up.port(), 3, true)}));
  ControlApi api = control.api();
  HealthService* service = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, stopped_inside = false;
  api.get_config = [&, read = api.get_config](pb::GetConfigResponse* resp) {
    bool stop_here = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      stop_here = armed;
    }
    if (stop_here) {
      service->stop();
      std::lock_guard<std::mutex> lock(mu);
      stopped_inside = true;
      cv.notify_all();
    }
    return read(resp);
  };
  absl::StatusOr<std::unique_ptr<HealthService>> hs =
      HealthService::create({"", MemFiles().reader(), api});
  ASSERT_TRUE(hs.ok()) << hs.status();
  service = hs->get();
  ASSERT_TRUE((*hs)->start().ok());  // reads the configuration here, on this thread
  {
    std::lock_guard<std::mutex> lock(mu);
    armed = true;
  }
  // An operator's commit: the configuration's checks are refreshed on the health thread.
  ServiceTable::Limits limits;
  limits.max_services = 4;
  limits.max_dests = 8;
  ServiceTable table(limits);
  (*hs)->observe(table);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return stopped_inside; }));
  }
  (*hs)->stop();  // joins the health thread
  EXPECT_EQ((*hs)->runningCheckersForTest(), 0u);
  EXPECT_EQ((*hs)->status().size(), 1u);
}

}  // namespace
}  // namespace lb::health
