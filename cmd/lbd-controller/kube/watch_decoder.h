// SPDX-License-Identifier: Apache-2.0
// Watch-stream decoder: the body of a Kubernetes watch response (a stream of JSON documents
// {"type": T, "object": {...}}) in, complete events out. Pure: no I/O, no clock. Chunk
// boundaries may fall anywhere, even inside a UTF-8 sequence or an escape.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::kube {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

// "ADDED" -> kAdded, ...; nullopt-like: returns false for an unknown type.
bool parseWatchEventType(absl::string_view s, WatchEventType* out);
absl::string_view watchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  nlohmann::json object;  // always a JSON object
};

class WatchDecoder {
 public:
  // Limits guard against a hostile or broken server: one document may not exceed max_doc_bytes
  // and may not nest deeper than max_depth.
  static constexpr size_t kDefaultMaxDocBytes = 64u << 20;
  static constexpr int kDefaultMaxDepth = 128;

  explicit WatchDecoder(size_t max_doc_bytes = kDefaultMaxDocBytes,
                        int max_depth = kDefaultMaxDepth)
      : max_doc_bytes_(max_doc_bytes), max_depth_(max_depth) {}

  // Appends bytes and frames every document they complete. Once an error is returned the
  // decoder stays failed (the caller drops the connection); events decoded before the bad
  // document remain available through next().
  absl::Status feed(absl::string_view bytes);
  // End of stream: an error if a document was cut short.
  absl::Status finish();
  // Pops the oldest decoded event; false when none is pending.
  bool next(WatchEvent* out);

  size_t pending() const { return events_.size(); }

  bool failed() const { return !status_.ok(); }

  const absl::Status& status() const { return status_; }

 private:
  absl::Status frame();
  absl::Status emit(absl::string_view doc);

  size_t max_doc_bytes_;
  int max_depth_;
  std::string buf_;   // bytes not yet framed; buf_[0..scan_) already scanned
  size_t scan_ = 0;   // next byte to scan
  size_t start_ = 0;  // first byte of the current document (valid when depth_ > 0)
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  absl::Status status_;
  std::deque<WatchEvent> events_;
};

}  // namespace lbd::controller::kube
