// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/event_recorder.h"

#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "cmd/lbd-controller/kube/log.h"
#include "cmd/lbd-controller/kube/url.h"

namespace lbd::controller::app {
namespace {

constexpr size_t kMaxQueue = 1000;
constexpr size_t kMaxDedupe = 10000;
constexpr size_t kMaxMessage = 1024;  // the API server refuses messages over 1 KiB

std::string rfc3339Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

nlohmann::json makeServiceEvent(const ServiceRef& service,
                                const std::string& reason,
                                const std::string& message,
                                const std::string& now,
                                const std::string& host,
                                uint64_t unique) {
  std::string msg =
      message.size() > kMaxMessage ? message.substr(0, kMaxMessage - 3) + "..." : message;
  nlohmann::json involved = {
      {"apiVersion", "v1"}, {"kind", "Service"}, {"namespace", service.ns}, {"name", service.name}};
  if (!service.uid.empty())
    involved["uid"] = service.uid;
  return {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", absl::StrFormat("%s.%x", service.name, unique)}, {"namespace", service.ns}}},
      {"involvedObject", involved},
      {"reason", reason},
      {"message", msg},
      {"type", "Warning"},
      {"source", {{"component", "lbd-controller"}, {"host", host}}},
      {"reportingComponent", "lbd-controller"},
      {"reportingInstance", host},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1},
  };
}

EventRecorder::EventRecorder(std::unique_ptr<kube::HttpClient> client,
                             std::string host,
                             std::chrono::seconds repeat_after)
    : client_(std::move(client)), host_(std::move(host)), repeat_after_(repeat_after) {
  thread_ = std::thread([this] { run(); });
}

EventRecorder::~EventRecorder() {
  stop();
}

void EventRecorder::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
  }
  cv_.notify_all();
  client_->cancel();
  if (thread_.joinable())
    thread_.join();
}

void EventRecorder::warn(const ServiceRef& service,
                         const std::string& reason,
                         const std::string& message) {
  const std::string key = absl::StrCat(service.ns, "/", service.name, "\n", reason, "\n", message);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_.find(key);
  if ((it != last_.end() && now - it->second < repeat_after_) || queue_.size() >= kMaxQueue) {
    suppressed_.fetch_add(1);
    return;
  }
  if (last_.size() >= kMaxDedupe)
    last_.clear();
  last_[key] = now;
  queue_.push_back(Pending{service, reason, message});
  cv_.notify_one();
}

void EventRecorder::run() {
  for (;;) {
    Pending p;
    uint64_t unique = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_)
        return;
      p = std::move(queue_.front());
      queue_.pop_front();
      unique = (static_cast<uint64_t>(std::time(nullptr)) << 20) + (seq_++ & 0xfffff);
    }
    nlohmann::json ev =
        makeServiceEvent(p.service, p.reason, p.message, rfc3339Now(), host_, unique);
    const std::string path = kube::collectionPath({"", "v1", "events"}, p.service.ns);
    absl::StatusOr<kube::HttpResponse> r = client_->request(
        "POST", path, ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
        std::chrono::seconds(10));
    if (r.ok() && r->status / 100 == 2) {
      posted_.fetch_add(1);
      continue;
    }
    failed_.fetch_add(1);
    kube::logEvent(kube::LogLevel::kWarn, "events", "posting an Event failed",
                   {{"service", absl::StrCat(p.service.ns, "/", p.service.name)},
                    {"reason", p.reason},
                    {"error", r.ok() ? absl::StrCat("HTTP ", r->status, " ", r->body.substr(0, 200))
                                     : std::string(r.status().message())}});
  }
}

}  // namespace lbd::controller::app
