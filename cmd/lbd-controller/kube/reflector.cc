// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/reflector.h"

#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"

#include "cmd/lbd-controller/kube/log.h"
#include "cmd/lbd-controller/kube/url.h"

namespace lbd::controller::kube {
namespace {

using nlohmann::json;

std::string metaField(const json& obj, const char* field) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object())
    return "";
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

ApiStatus parseApiStatus(const json& object) {
  ApiStatus s;
  if (!object.is_object())
    return s;
  if (auto it = object.find("code"); it != object.end() && it->is_number_integer())
    s.code = it->get<int>();
  if (auto it = object.find("reason"); it != object.end() && it->is_string())
    s.reason = it->get<std::string>();
  if (auto it = object.find("message"); it != object.end() && it->is_string())
    s.message = it->get<std::string>();
  return s;
}

ApiStatus parseApiStatusBody(absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  ApiStatus s = parseApiStatus(j);
  if (s.message.empty())
    s.message = std::string(body.substr(0, 200));
  return s;
}

Reflector::Reflector(std::unique_ptr<HttpClient> client, ReflectorOptions options, Handler handler)
    : client_(std::move(client)),
      options_(std::move(options)),
      handler_(std::move(handler)),
      backoff_(options_.backoff),
      rng_(std::random_device{}()) {}

Reflector::~Reflector() = default;

void Reflector::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  client_->cancel();
}

std::string Reflector::resourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

void Reflector::setResourceVersion(std::string rv) {
  if (rv.empty())
    return;
  std::lock_guard<std::mutex> lock(mu_);
  rv_ = std::move(rv);
}

void Reflector::sleepFor(std::chrono::steady_clock::duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Reflector::run() {
  auto stopping = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  };
  while (!stopping()) {
    if (need_list_) {
      if (std::optional<Failure> f = list()) {
        onFailure(*f);
        continue;
      }
    }
    Failure f;
    switch (watch(&f)) {
      case WatchEnd::kClean:
        break;  // timeoutSeconds ran out: watch again at once from the last version
      case WatchEnd::kRelist:
        need_list_ = true;
        list_from_rv_ = true;
        break;
      case WatchEnd::kFailed:
        onFailure(f);
        break;
    }
  }
}

Reflector::Failure Reflector::failureOf(absl::Status st) {
  Failure f;
  f.status = std::move(st);
  return f;
}

Reflector::Failure Reflector::httpFailure(const char* what, const HttpResponse& r) {
  ApiStatus s = parseApiStatusBody(r.body);
  Failure f;
  f.http_status = r.status;
  f.status = absl::UnavailableError(
      absl::StrCat(what, " ", options_.name, ": HTTP ", r.status, " ", s.reason, ": ", s.message));
  if (r.status == 429 || r.status >= 500)
    f.retry_after = parseRetryAfter(r.retry_after);
  return f;
}

void Reflector::onFailure(const Failure& f) {
  if (client_->cancelled())
    return;
  stats_.errors.fetch_add(1);
  stats_.last_error_unix.store(static_cast<int64_t>(std::time(nullptr)));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto delay = backoff_.next(std::chrono::steady_clock::now(), u(rng_));
  if (f.retry_after)
    delay = *f.retry_after;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(delay).count();
  if (f.http_status == 403) {
    logEvent(LogLevel::kError, "reflector",
             "FORBIDDEN: the service account may not list/watch this resource; grant it the "
             "lbd-controller ClusterRole (list, watch)",
             {{"resource", options_.name},
              {"error", std::string(f.status.message())},
              {"retry_ms", absl::StrCat(ms)}});
  } else {
    logEvent(LogLevel::kWarn, "reflector", "list/watch failed",
             {{"resource", options_.name},
              {"error", std::string(f.status.message())},
              {"retry_ms", absl::StrCat(ms)}});
  }
  sleepFor(delay);
}

std::optional<Reflector::Failure> Reflector::list() {
  ListOptions o;
  o.label_selector = options_.label_selector;
  o.field_selector = options_.field_selector;
  o.limit = options_.page_size;
  const std::string last_rv = resourceVersion();
  if (list_from_rv_ && !last_rv.empty()) {
    o.resource_version = last_rv;
    o.resource_version_match = "NotOlderThan";
  }
  ObjectMap fresh;
  std::string list_rv;
  for (;;) {
    absl::StatusOr<HttpResponse> r =
        client_->request("GET", listTarget(options_.path, o), "", options_.request_timeout);
    if (!r.ok())
      return failureOf(r.status());
    if (r->status == 410) {
      // Our version is compacted away, or a continue token expired: list from scratch, at once,
      // the most recent state (RV unset). A second 410 there backs off.
      stats_.gone.fetch_add(1);
      if (o.resource_version.empty() && o.continue_token.empty())
        return httpFailure("list", *r);
      logEvent(LogLevel::kInfo, "reflector", "list answered 410 Gone; listing the latest state",
               {{"resource", options_.name}, {"resourceVersion", o.resource_version}});
      o.continue_token.clear();
      o.resource_version.clear();
      o.resource_version_match.clear();
      fresh.clear();
      list_from_rv_ = false;
      continue;
    }
    if (r->status != 200)
      return httpFailure("list", *r);
    json page = json::parse(r->body.begin(), r->body.end(), nullptr, false);
    auto items = page.is_object() ? page.find("items") : page.end();
    if (page.is_discarded() || items == page.end() || !(items->is_array() || items->is_null()))
      return failureOf(absl::DataLossError(absl::StrCat(
          "list ", options_.name, ": response is not a list (", r->body.size(), " bytes)")));
    if (items->is_array()) {
      for (json& item : *items) {
        std::string key = objectKeyOf(item);
        if (!key.empty())
          fresh[key] = std::make_shared<const json>(std::move(item));
      }
    }
    list_rv = metaField(page, "resourceVersion");
    std::string cont = metaField(page, "continue");
    if (cont.empty())
      break;
    o.continue_token = std::move(cont);
  }
  std::vector<Delta> deltas = store_.replace(std::move(fresh));
  setResourceVersion(list_rv);
  need_list_ = false;
  list_from_rv_ = false;
  if (stats_.lists.fetch_add(1) > 0)
    stats_.relists.fetch_add(1);
  logEvent(LogLevel::kInfo, "reflector", "listed",
           {{"resource", options_.name},
            {"objects", absl::StrCat(store_.size())},
            {"changes", absl::StrCat(deltas.size())},
            {"resourceVersion", list_rv}});
  synced_.store(true);
  handler_(deltas);
  return std::nullopt;
}

bool Reflector::applyEvents(WatchDecoder& dec,
                            std::vector<Delta>& deltas,
                            bool* gone,
                            Failure* failure) {
  WatchEvent ev;
  while (dec.next(&ev)) {
    if (ev.type == WatchEventType::kError) {
      ApiStatus s = parseApiStatus(ev.object);
      if (s.code == 410) {
        stats_.gone.fetch_add(1);
        *gone = true;
      } else {
        failure->status = absl::UnavailableError(absl::StrCat(
            "watch ", options_.name, ": ERROR event ", s.code, " ", s.reason, ": ", s.message));
        failure->http_status = s.code;
      }
      return false;
    }
    std::string rv = resourceVersionOf(ev.object);
    if (ev.type == WatchEventType::kBookmark) {
      stats_.bookmarks.fetch_add(1);
      setResourceVersion(std::move(rv));
      continue;
    }
    Delta d;
    if (!store_.apply(ev.type, std::make_shared<const json>(std::move(ev.object)), &d)) {
      failure->status = absl::DataLossError(
          absl::StrCat("watch ", options_.name, ": ", watchEventTypeName(ev.type),
                       " event for an object without metadata.name"));
      return false;
    }
    stats_.events.fetch_add(1);
    deltas.push_back(std::move(d));
    setResourceVersion(std::move(rv));
  }
  return true;
}

Reflector::WatchEnd Reflector::watch(Failure* failure) {
  std::uniform_int_distribution<int> timeout_dist(options_.min_watch_timeout_s,
                                                  options_.max_watch_timeout_s);
  WatchOptions o;
  o.label_selector = options_.label_selector;
  o.field_selector = options_.field_selector;
  o.resource_version = resourceVersion();
  o.timeout_seconds = timeout_dist(rng_);
  if (stats_.watches.fetch_add(1) > 0)
    stats_.watch_restarts.fetch_add(1);
  WatchDecoder dec;
  bool gone = false;
  bool event_failed = false;
  absl::Status decode_status;
  const auto started = std::chrono::steady_clock::now();
  bool any_event = false;
  auto on_data = [&](absl::string_view chunk) {
    absl::Status st = dec.feed(chunk);
    any_event |= dec.pending() > 0;
    std::vector<Delta> deltas;
    const bool go_on = applyEvents(dec, deltas, &gone, failure);
    if (!deltas.empty())
      handler_(deltas);
    if (!go_on) {
      event_failed = !gone;
      return false;
    }
    if (!st.ok()) {
      decode_status = st;
      return false;
    }
    return true;
  };
  const auto idle = std::chrono::seconds(o.timeout_seconds + 60);
  absl::StatusOr<HttpResponse> r = client_->stream(watchTarget(options_.path, o), idle, on_data);
  if (!r.ok()) {
    failure->status = r.status();
    return WatchEnd::kFailed;
  }
  if (r->status == 410) {
    stats_.gone.fetch_add(1);
    gone = true;
  } else if (r->status != 200) {
    *failure = httpFailure("watch", *r);
    return WatchEnd::kFailed;
  }
  if (gone) {
    logEvent(LogLevel::kInfo, "reflector", "watch: resourceVersion too old (410); re-listing",
             {{"resource", options_.name}, {"resourceVersion", o.resource_version}});
    return WatchEnd::kRelist;
  }
  if (event_failed)
    return WatchEnd::kFailed;
  if (decode_status.ok())
    decode_status = dec.finish();
  if (!decode_status.ok()) {
    failure->status = decode_status;
    return WatchEnd::kFailed;
  }
  // A watch that ends at once without a single event is a broken server or proxy, not
  // timeoutSeconds running out: back off instead of spinning (client-go's "very short watch").
  if (std::chrono::steady_clock::now() - started < std::chrono::seconds(1) && !any_event) {
    failure->status = absl::UnavailableError(
        absl::StrCat("watch ", options_.name, ": ended after less than a second without events"));
    return WatchEnd::kFailed;
  }
  return WatchEnd::kClean;
}

}  // namespace lbd::controller::kube
