// SPDX-License-Identifier: Apache-2.0
// Fuzzes lbd-controller's watch-stream decoder (cmd/lbd-controller/kube/watch_decoder.h). The
// input is a stream; its first 8 bytes choose where it is cut into chunks. Invariants: no crash
// on any bytes (garbage, truncated JSON, deep nesting, bad UTF-8), and feeding the stream in
// chunks decodes exactly what feeding it whole decodes: the same events, the same failure.
#include "cmd/lbd-controller/kube/watch_decoder.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"

namespace {

using lbd::controller::kube::WatchDecoder;
using lbd::controller::kube::WatchEvent;

void fail(const char* what) {
  std::fprintf(stderr, "watch_decoder_fuzz invariant broken: %s\n", what);
  std::abort();
}

struct Outcome {
  std::vector<WatchEvent> events;
  bool feed_failed = false;
  bool finish_failed = false;
};

Outcome decode(absl::string_view stream, const std::vector<size_t>& cuts) {
  WatchDecoder dec;
  Outcome out;
  size_t pos = 0;
  auto drain = [&] {
    WatchEvent ev;
    while (dec.next(&ev)) {
      if (!ev.object.is_object())
        fail("an event's object is not a JSON object");
      out.events.push_back(std::move(ev));
    }
  };
  for (size_t cut : cuts) {
    if (cut <= pos || cut >= stream.size())
      continue;
    if (!dec.feed(stream.substr(pos, cut - pos)).ok())
      out.feed_failed = true;
    drain();
    pos = cut;
  }
  if (!dec.feed(stream.substr(pos)).ok())
    out.feed_failed = true;
  drain();
  out.finish_failed = !dec.finish().ok();
  if (out.feed_failed && !out.finish_failed)
    fail("finish() is OK after a failed feed()");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8)
    return 0;
  absl::string_view stream(reinterpret_cast<const char*>(data) + 8, size - 8);
  // Up to 8 cut points, ascending, from the header bytes; 0 leaves a cut out.
  std::vector<size_t> cuts;
  size_t at = 0;
  for (size_t i = 0; i < 8; ++i) {
    at += data[i];
    if (data[i] != 0)
      cuts.push_back(at);
  }
  Outcome whole = decode(stream, {});
  std::vector<size_t> bytewise;  // the harshest split: one byte at a time (short inputs only)
  if (stream.size() <= 512) {
    for (size_t i = 1; i < stream.size(); ++i)
      bytewise.push_back(i);
  }
  for (const std::vector<size_t>* c : {&cuts, &bytewise}) {
    Outcome split = decode(stream, *c);
    if (split.events.size() != whole.events.size())
      fail("chunking changed the number of events");
    for (size_t i = 0; i < whole.events.size(); ++i) {
      if (split.events[i].type != whole.events[i].type ||
          split.events[i].object != whole.events[i].object)
        fail("chunking changed an event");
    }
    if (split.feed_failed != whole.feed_failed || split.finish_failed != whole.finish_failed)
      fail("chunking changed the outcome");
  }
  return 0;
}
