// SPDX-License-Identifier: Apache-2.0
// The keepalived.conf parser's internals, shared by its files: the statement tree the lexer
// reads (keepalived_lexer.cc), the argument values (keepalived_values.cc), the checker keyword
// tables (keepalived_checkers.cc); keepalived_conf.cc parses the blocks around them. Not an
// API: use keepalived_conf.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include "cmd/lbd/health/keepalived_conf.h"

namespace lb::health::kconf {

// A statement: a keyword, its arguments, and the block that follows it (if any).
struct Node {
  std::string keyword;
  std::vector<std::string> args;
  std::string file;
  int line = 0;
  bool block = false;
  std::vector<Node> children;

  std::string where() const { return absl::StrCat(file, ":", line); }
};

// InvalidArgument "FILE:LINE: why".
absl::Status errorAt(const std::string& file, int line, absl::string_view why);
absl::Status errorAt(const Node& n, absl::string_view why);

// Reads `path` and its includes into one tree (the root's children are the top-level
// statements); records every file read in out.files.
absl::StatusOr<Node> readTree(const std::string& path,
                              const ConfReader& reader,
                              KeepalivedConfig& out);

// Values (keepalived_values.cc): each refuses a bad value with errorAt(n, ...).
absl::Status wantArgs(const Node& n, size_t min, size_t max);
absl::Status noBlock(const Node& n);
absl::StatusOr<uint32_t> parseUint(const Node& n, const std::string& v, uint64_t lo, uint64_t hi);
absl::StatusOr<uint32_t> uintArg(const Node& n, uint64_t lo, uint64_t hi);
absl::StatusOr<Micros> secondsArg(const Node& n, bool allow_zero);
absl::StatusOr<uint16_t> portArg(const Node& n, const std::string& v);
absl::StatusOr<std::string> stringArg(const Node& n);
absl::StatusOr<std::string> scriptArg(const Node& n);
absl::StatusOr<bool> flagArg(const Node& n);
bool isIpv4(absl::string_view s);
bool isIpv6(absl::string_view s);
absl::StatusOr<std::string> addressArg(const Node& n, const std::string& v);
absl::StatusOr<LvsMethod> methodArg(const Node& n);
absl::Status parseStatusCodes(const Node& n, std::vector<StatusRange>& out);
absl::Status parseHex(const Node& n, bool wildcards, std::string& bytes, std::string* mask);
absl::Status unknown(const Node& n, absl::string_view where);

// Checkers (keepalived_checkers.cc).
std::optional<CheckType> checkerKeyword(absl::string_view k);
absl::StatusOr<CheckerSpec> parseChecker(const Node& n, CheckType type);

// The timing keywords a real server and a virtual server share.
template <typename T>
absl::StatusOr<bool> parseTiming(const Node& c, T& t) {
  const std::string& k = c.keyword;
  if (k == "retry") {
    absl::StatusOr<uint32_t> r = uintArg(c, 0, 0xffffffffu);
    if (!r.ok())
      return r.status();
    t.retry = *r;
    return true;
  }
  if (k == "delay_before_retry" || k == "warmup") {
    absl::StatusOr<Micros> d = secondsArg(c, true);
    if (!d.ok())
      return d.status();
    (k == "warmup" ? t.warmup : t.delay_before_retry) = *d;
    return true;
  }
  if (k == "connect_timeout" || k == "delay_loop") {
    absl::StatusOr<Micros> d = secondsArg(c, false);
    if (!d.ok())
      return d.status();
    (k == "delay_loop" ? t.delay_loop : t.connect_timeout) = *d;
    return true;
  }
  return false;
}

}  // namespace lb::health::kconf
