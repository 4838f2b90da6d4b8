// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/watch_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lbd::controller::kube {

bool parseWatchEventType(absl::string_view s, WatchEventType* out) {
  static constexpr std::pair<absl::string_view, WatchEventType> kTypes[] = {
      {"ADDED", WatchEventType::kAdded},     {"MODIFIED", WatchEventType::kModified},
      {"DELETED", WatchEventType::kDeleted}, {"BOOKMARK", WatchEventType::kBookmark},
      {"ERROR", WatchEventType::kError},
  };
  for (const auto& [name, type] : kTypes) {
    if (s == name) {
      *out = type;
      return true;
    }
  }
  return false;
}

absl::string_view watchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "?";
}

absl::Status WatchDecoder::feed(absl::string_view bytes) {
  if (!status_.ok())
    return status_;
  buf_.append(bytes.data(), bytes.size());
  status_ = frame();
  return status_;
}

absl::Status WatchDecoder::finish() {
  if (!status_.ok())
    return status_;
  if (depth_ > 0) {
    status_ = absl::DataLossError(
        absl::StrCat("watch stream ended inside a document (", buf_.size() - start_, " bytes)"));
  }
  return status_;
}

bool WatchDecoder::next(WatchEvent* out) {
  if (events_.empty())
    return false;
  *out = std::move(events_.front());
  events_.pop_front();
  return true;
}

// A byte-level scan that tracks only strings, escapes and bracket depth: enough to find where a
// document ends. Whether the document is valid JSON is nlohmann's job in emit().
absl::Status WatchDecoder::frame() {
  absl::Status st;
  size_t consumed = 0;  // buf_[0..consumed) is done with (emitted documents, whitespace)
  for (size_t i = scan_; i < buf_.size() && st.ok(); ++i) {
    const char c = buf_[i];
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        consumed = i + 1;
        continue;
      }
      if (c != '{') {
        st = absl::DataLossError(
            absl::StrFormat("watch stream: byte 0x%02x where a JSON object should start",
                            static_cast<unsigned char>(c)));
        break;
      }
      start_ = i;
      depth_ = 1;
      continue;
    }
    if (in_string_) {
      if (escape_)
        escape_ = false;
      else if (c == '\\')
        escape_ = true;
      else if (c == '"')
        in_string_ = false;
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > max_depth_)
        st = absl::DataLossError(absl::StrCat("watch stream: nesting deeper than ", max_depth_));
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        st = emit(absl::string_view(buf_).substr(start_, i + 1 - start_));
        consumed = i + 1;
      }
    }
  }
  if (!st.ok())
    return st;
  if (depth_ > 0)
    consumed = start_;
  buf_.erase(0, consumed);
  start_ = 0;
  scan_ = buf_.size();
  if (depth_ > 0 && buf_.size() > max_doc_bytes_)
    return absl::ResourceExhaustedError(
        absl::StrCat("watch stream: document larger than ", max_doc_bytes_, " bytes"));
  return absl::OkStatus();
}

absl::Status WatchDecoder::emit(absl::string_view doc) {
  nlohmann::json j = nlohmann::json::parse(doc.begin(), doc.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::DataLossError(
        absl::StrCat("watch stream: malformed JSON document (", doc.size(), " bytes)"));
  auto type = j.find("type");
  auto object = j.find("object");
  if (type == j.end() || !type->is_string())
    return absl::DataLossError("watch stream: event without a \"type\" string");
  WatchEvent ev;
  if (!parseWatchEventType(type->get_ref<const std::string&>(), &ev.type))
    return absl::DataLossError(
        absl::StrCat("watch stream: unknown event type ",
                     type->dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)));
  if (object == j.end() || !object->is_object())
    return absl::DataLossError("watch stream: event without an \"object\"");
  ev.object = std::move(*object);
  events_.push_back(std::move(ev));
  return absl::OkStatus();
}

}  // namespace lbd::controller::kube
