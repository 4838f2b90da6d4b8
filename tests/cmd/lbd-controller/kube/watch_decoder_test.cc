// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/watch_decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lbd::controller::kube {
namespace {

const std::string kStream =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\","
    "\"resourceVersion\":\"1\"},\"x\":\"br}ce{ \\\"q\\\" \\\\\"}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"},"
    "\"l\":[[1],{\"k\":[]}],\"u\":\"\\u00e9\xc3\xa9\"}}\r\n"
    "  {\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"3\"}}}"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n";

std::vector<WatchEvent> drain(WatchDecoder& d) {
  std::vector<WatchEvent> out;
  WatchEvent ev;
  while (d.next(&ev))
    out.push_back(ev);
  return out;
}

TEST(WatchDecoder, DecodesAStreamFedWhole) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed(kStream).ok());
  ASSERT_TRUE(d.finish().ok());
  std::vector<WatchEvent> ev = drain(d);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].type, WatchEventType::kAdded);
  EXPECT_EQ(ev[0].object["x"], "br}ce{ \"q\" \\");
  EXPECT_EQ(ev[1].type, WatchEventType::kModified);
  EXPECT_EQ(ev[1].object["u"], "\xc3\xa9\xc3\xa9");
  EXPECT_EQ(ev[2].type, WatchEventType::kBookmark);
  EXPECT_EQ(ev[2].object["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(ev[3].type, WatchEventType::kDeleted);
  EXPECT_EQ(ev[4].type, WatchEventType::kError);
  EXPECT_EQ(ev[4].object["code"], 410);
}

// Every single split point, and every pair of split points, gives the same events.
TEST(WatchDecoder, ChunkBoundariesAnywhere) {
  WatchDecoder whole;
  ASSERT_TRUE(whole.feed(kStream).ok());
  std::vector<WatchEvent> want = drain(whole);
  for (size_t i = 0; i <= kStream.size(); ++i) {
    for (size_t j = i; j <= kStream.size(); j += 7) {
      WatchDecoder d;
      ASSERT_TRUE(d.feed(kStream.substr(0, i)).ok());
      ASSERT_TRUE(d.feed(kStream.substr(i, j - i)).ok());
      ASSERT_TRUE(d.feed(kStream.substr(j)).ok());
      ASSERT_TRUE(d.finish().ok());
      std::vector<WatchEvent> got = drain(d);
      ASSERT_EQ(got.size(), want.size()) << i << " " << j;
      for (size_t k = 0; k < got.size(); ++k) {
        EXPECT_EQ(got[k].type, want[k].type);
        EXPECT_EQ(got[k].object, want[k].object);
      }
    }
  }
}

TEST(WatchDecoder, OneByteAtATime) {
  WatchDecoder d;
  for (char c : kStream)
    ASSERT_TRUE(d.feed(std::string(1, c)).ok());
  EXPECT_EQ(drain(d).size(), 5u);
}

TEST(WatchDecoder, EventsCompleteOnlyWithTheirLastByte) {
  WatchDecoder d;
  const std::string doc = "{\"type\":\"ADDED\",\"object\":{\"a\":1}}";
  ASSERT_TRUE(d.feed(doc.substr(0, doc.size() - 1)).ok());
  EXPECT_EQ(d.pending(), 0u);
  ASSERT_TRUE(d.feed("}").ok());
  EXPECT_EQ(d.pending(), 1u);
}

TEST(WatchDecoder, GarbageBetweenDocumentsFails) {
  WatchDecoder d;
  EXPECT_FALSE(d.feed("{\"type\":\"ADDED\",\"object\":{}}\nHTTP/1.1 500").ok());
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(drain(d).size(), 1u);  // what came before the garbage is kept
  EXPECT_FALSE(d.feed("{\"type\":\"ADDED\",\"object\":{}}").ok());  // stays failed
  EXPECT_FALSE(d.finish().ok());
}

TEST(WatchDecoder, TruncatedDocumentFailsAtFinish) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"").ok());
  EXPECT_EQ(d.finish().code(), absl::StatusCode::kDataLoss);
}

TEST(WatchDecoder, WhitespaceOnlyIsACleanEnd) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed(" \r\n\t\n").ok());
  EXPECT_TRUE(d.finish().ok());
}

TEST(WatchDecoder, MalformedDocumentsFail) {
  for (const char* bad : {
           "{\"type\":\"ADDED\",\"object\":{]}",                // brackets mismatch
           "{\"type\":\"ADDED\",\"object\":{\"a\":tru}}",       // bad literal
           "{\"type\":\"ADDED\",\"object\":[1]}",               // object not an object
           "{\"type\":\"ADDED\"}",                              // no object
           "{\"type\":7,\"object\":{}}",                        // type not a string
           "{\"type\":\"SYNC\",\"object\":{}}",                 // unknown type
           "{\"type\":\"ADDED\",\"object\":{\"n\":\"\xff\"}}",  // bad UTF-8
           "[{\"type\":\"ADDED\",\"object\":{}}]",              // not an object at top level
       }) {
    WatchDecoder d;
    EXPECT_FALSE(d.feed(bad).ok()) << bad;
  }
}

TEST(WatchDecoder, DepthAndSizeLimits) {
  WatchDecoder deep(1 << 20, 8);
  EXPECT_FALSE(deep.feed("{\"type\":\"ADDED\",\"object\":{\"a\":[[[[[[[[[[1]]]]]]]]]]}}").ok());
  WatchDecoder small(64, 128);
  EXPECT_EQ(small.feed("{\"type\":\"ADDED\",\"object\":{\"a\":\"" + std::string(100, 'x')).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(WatchDecoder, TypeNames) {
  WatchEventType t;
  for (const char* n : {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"}) {
    ASSERT_TRUE(parseWatchEventType(n, &t));
    EXPECT_EQ(watchEventTypeName(t), n);
  }
  EXPECT_FALSE(parseWatchEventType("added", &t));
}

}  // namespace
}  // namespace lbd::controller::kube
