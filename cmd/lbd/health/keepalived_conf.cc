// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/keepalived_conf.h"

#include <glob.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lb::health {
namespace {

constexpr int kMaxIncludeDepth = 8;
constexpr size_t kMaxFiles = 1000;
constexpr int kMaxBlockDepth = 16;

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

absl::Status errorAt(const std::string& file, int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", why));
}

absl::Status errorAt(const Node& n, absl::string_view why) {
  return errorAt(n.file, n.line, why);
}

std::string dirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return "";
  return path.substr(0, slash + 1);
}

// Reads the files into a tree of statements. Lines are split into words; `{` and `}` are
// words of their own even when glued to another ("url{").
class TreeBuilder {
 public:
  explicit TreeBuilder(const ConfReader& reader, KeepalivedConfig& out)
      : reader_(reader), out_(out) {
    stack_.push_back(&root_);
  }

  absl::Status readFile(const std::string& path, int depth) {
    if (out_.files.size() >= kMaxFiles)
      return absl::InvalidArgumentError(absl::StrCat(path, ": more than 1000 files included"));
    absl::StatusOr<std::string> text = reader_.read(path);
    if (!text.ok())
      return text.status();
    out_.files.push_back(path);
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      ++line_no;
      absl::StatusOr<std::vector<std::string>> words = split(line, path, line_no);
      if (!words.ok())
        return words.status();
      if (words->empty())
        continue;
      if ((*words)[0] == "include") {
        if (words->size() != 2)
          return errorAt(path, line_no, "include: expected one file or pattern");
        if (!pending_.keyword.empty() || stack_.size() < 1)
          return errorAt(path, line_no, "include: must be on a line of its own");
        if (depth >= kMaxIncludeDepth)
          return errorAt(path, line_no, "include: nested more than 8 deep");
        std::string pattern = (*words)[1];
        if (!pattern.empty() && pattern[0] != '/')
          pattern = dirOf(path) + pattern;
        const bool wildcard = pattern.find_first_of("*?[{") != std::string::npos;
        std::vector<std::string> files = reader_.glob(pattern);
        if (files.empty() && !wildcard)
          return errorAt(path, line_no, absl::StrCat("include ", (*words)[1], ": no such file"));
        for (const std::string& f : files) {
          if (absl::Status s = readFile(f, depth + 1); !s.ok()) {
            if (absl::IsNotFound(s))
              return errorAt(path, line_no, absl::StrCat("include ", f, ": ", s.message()));
            return s;
          }
        }
        continue;
      }
      if (absl::Status s = addWords(*words, path, line_no); !s.ok())
        return s;
      flushPending();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Node> finish(const std::string& top) {
    flushPending();
    if (stack_.size() > 1) {
      const Node* open = stack_.back();
      return absl::InvalidArgumentError(absl::StrCat(
          top, ": the block '", open->keyword, "' opened at ", open->where(), " is not closed"));
    }
    return std::move(root_);
  }

 private:
  // Splits a line into words: quotes make one word; # or ! at a word's start ends the line.
  static absl::StatusOr<std::vector<std::string>> split(absl::string_view line,
                                                        const std::string& file,
                                                        int line_no) {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++i;
        continue;
      }
      if (c == '#' || c == '!')
        break;
      if (c == '{' || c == '}') {
        words.emplace_back(1, c);
        ++i;
        continue;
      }
      std::string w;
      if (c == '"') {
        ++i;
        bool closed = false;
        while (i < line.size()) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            w += line[i + 1];
            i += 2;
            continue;
          }
          if (line[i] == '"') {
            closed = true;
            ++i;
            break;
          }
          w += line[i++];
        }
        if (!closed)
          return errorAt(file, line_no, "unterminated quoted string");
        words.push_back(std::move(w));
        continue;
      }
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
             line[i] != '{' && line[i] != '}' && line[i] != '"') {
        w += line[i++];
      }
      words.push_back(std::move(w));
    }
    return words;
  }

  absl::Status addWords(const std::vector<std::string>& words,
                        const std::string& file,
                        int line_no) {
    for (const std::string& w : words) {
      if (w == "{") {
        if (pending_.keyword.empty()) {
          // A `{` on the line after its keyword: it opens the last statement's block.
          Node* parent = stack_.back();
          if (parent->children.empty() || parent->children.back().block || !last_was_statement_) {
            return errorAt(file, line_no, "'{' without a keyword");
          }
          Node* n = &parent->children.back();
          n->block = true;
          if (stack_.size() > kMaxBlockDepth)
            return errorAt(file, line_no, "blocks nested too deep");
          stack_.push_back(n);
          last_was_statement_ = false;
          continue;
        }
        pending_.block = true;
        Node* parent = stack_.back();
        parent->children.push_back(std::move(pending_));
        pending_ = Node{};
        if (stack_.size() > kMaxBlockDepth)
          return errorAt(file, line_no, "blocks nested too deep");
        stack_.push_back(&parent->children.back());
        last_was_statement_ = false;
        continue;
      }
      if (w == "}") {
        flushPending();
        if (stack_.size() <= 1)
          return errorAt(file, line_no, "'}' without an open block");
        stack_.pop_back();
        last_was_statement_ = false;
        continue;
      }
      if (pending_.keyword.empty()) {
        pending_.keyword = w;
        pending_.file = file;
        pending_.line = line_no;
      } else {
        pending_.args.push_back(w);
      }
    }
    return absl::OkStatus();
  }

  void flushPending() {
    if (pending_.keyword.empty())
      return;
    stack_.back()->children.push_back(std::move(pending_));
    pending_ = Node{};
    last_was_statement_ = true;
  }

  const ConfReader& reader_;
  KeepalivedConfig& out_;
  Node root_;
  // Pointers into the tree: a parent's children vector only grows at its end while its last
  // child is the open block, so the pointers on the stack stay valid.
  std::vector<Node*> stack_;
  Node pending_;
  bool last_was_statement_ = false;
};

// --- values ----------------------------------------------------------------------------------

absl::Status wantArgs(const Node& n, size_t min, size_t max) {
  if (n.args.size() < min || n.args.size() > max) {
    if (min == max)
      return errorAt(n, absl::StrCat(n.keyword, ": expected ", min, " value", min == 1 ? "" : "s"));
    return errorAt(n, absl::StrCat(n.keyword, ": expected ", min, " to ", max, " values"));
  }
  return absl::OkStatus();
}

absl::Status noBlock(const Node& n) {
  if (n.block)
    return errorAt(n, absl::StrCat(n.keyword, ": takes no block"));
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> parseUint(const Node& n, const std::string& v, uint64_t lo, uint64_t hi) {
  uint64_t x = 0;
  if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
    return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected an integer ", lo, "..", hi));
  }
  return static_cast<uint32_t>(x);
}

absl::StatusOr<uint32_t> uintArg(const Node& n, uint64_t lo, uint64_t hi) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  return parseUint(n, n.args[0], lo, hi);
}

// keepalived's durations: seconds with up to 6 decimals ("1", "0.5").
absl::StatusOr<Micros> secondsArg(const Node& n, bool allow_zero) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  const std::string& v = n.args[0];
  double d = 0;
  const bool digits = !v.empty() && v.find_first_not_of("0123456789.") == std::string::npos;
  if (!digits || !absl::SimpleAtod(v, &d) || !std::isfinite(d) || d < 0 || d > 4294967.0 ||
      (!allow_zero && d == 0)) {
    return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected seconds",
                                   allow_zero ? "" : " > 0", " (up to 4294967)"));
  }
  return static_cast<Micros>(std::llround(d * 1e6));
}

absl::StatusOr<uint16_t> portArg(const Node& n, const std::string& v) {
  absl::StatusOr<uint32_t> p = parseUint(n, v, 0, 65535);
  if (!p.ok())
    return p.status();
  return static_cast<uint16_t>(*p);
}

absl::StatusOr<std::string> stringArg(const Node& n) {
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  return n.args[0];
}

// A program line: keepalived joins the words of an unquoted script back with spaces.
absl::StatusOr<std::string> scriptArg(const Node& n) {
  if (n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": expected a program"));
  return absl::StrJoin(n.args, " ");
}

// Optional boolean keywords: "alpha" alone is on; "alpha off|false|no|0" off.
absl::StatusOr<bool> flagArg(const Node& n) {
  if (n.args.empty())
    return true;
  if (absl::Status s = wantArgs(n, 0, 1); !s.ok())
    return s;
  const std::string v = absl::AsciiStrToLower(n.args[0]);
  if (v == "on" || v == "true" || v == "yes" || v == "1")
    return true;
  if (v == "off" || v == "false" || v == "no" || v == "0")
    return false;
  return errorAt(n, absl::StrCat(n.keyword, " '", n.args[0], "': expected on or off"));
}

bool isIpv4(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 4)
    return false;
  for (absl::string_view p : parts) {
    uint32_t v = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v > 255 ||
        p.find_first_not_of("0123456789") != absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool isIpv6(absl::string_view s) {
  if (s.size() < 2 || s.size() > 45 || s.find(':') == absl::string_view::npos)
    return false;
  if (s.find_first_not_of("0123456789abcdefABCDEF:.") != absl::string_view::npos)
    return false;
  const size_t dbl = s.find("::");
  if (dbl != absl::string_view::npos && s.find("::", dbl + 1) != absl::string_view::npos)
    return false;
  std::vector<absl::string_view> groups = absl::StrSplit(s, ':');
  size_t n = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    absl::string_view g = groups[i];
    if (g.empty())
      continue;
    if (g.find('.') != absl::string_view::npos) {
      if (i + 1 != groups.size() || !isIpv4(g))
        return false;
      n += 2;
      continue;
    }
    if (g.size() > 4)
      return false;
    ++n;
  }
  return dbl == absl::string_view::npos ? n == 8 : n < 8;
}

absl::StatusOr<std::string> addressArg(const Node& n, const std::string& v) {
  if (isIpv4(v) || isIpv6(v))
    return v;
  return errorAt(n, absl::StrCat(n.keyword, " '", v, "': expected an IPv4 or IPv6 address"));
}

absl::StatusOr<LvsMethod> methodArg(const Node& n) {
  if (n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": expected NAT, DR or TUN"));
  const std::string m = absl::AsciiStrToUpper(n.args[0]);
  if (m == "NAT" && n.args.size() == 1)
    return LvsMethod::kNat;
  if (m == "DR" && n.args.size() == 1)
    return LvsMethod::kDr;
  if (m == "TUN") {
    if (n.args.size() == 1 || (n.args.size() == 3 && n.args[1] == "type" && n.args[2] == "ipip"))
      return LvsMethod::kTun;
    return errorAt(n, absl::StrCat(n.keyword,
                                   " TUN: only IPIP tunnels are read from keepalived.conf "
                                   "(give GUE/GRE tunnels with lbctl)"));
  }
  return errorAt(
      n, absl::StrCat(n.keyword, " '", absl::StrJoin(n.args, " "), "': expected NAT, DR or TUN"));
}

// status_code 200 | 200-299 | several of them.
absl::Status parseStatusCodes(const Node& n, std::vector<StatusRange>& out) {
  if (n.args.empty())
    return errorAt(n, "status_code: expected a code or a range");
  for (const std::string& a : n.args) {
    std::vector<std::string> lohi = absl::StrSplit(a, absl::MaxSplits('-', 1));
    StatusRange r;
    absl::StatusOr<uint32_t> lo = parseUint(n, lohi[0], 100, 599);
    if (!lo.ok())
      return lo.status();
    r.lo = r.hi = static_cast<int>(*lo);
    if (lohi.size() == 2) {
      absl::StatusOr<uint32_t> hi = parseUint(n, lohi[1], 100, 599);
      if (!hi.ok())
        return hi.status();
      if (*hi < *lo)
        return errorAt(n, absl::StrCat("status_code '", a, "': range ends before it starts"));
      r.hi = static_cast<int>(*hi);
    }
    out.push_back(r);
  }
  return absl::OkStatus();
}

int hexNibble(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// keepalived's UDP payload and reply pattern: hex digits (an odd count is refused), spaces
// allowed between words; with `wildcards`, X/x is a nibble that matches anything.
absl::Status parseHex(const Node& n, bool wildcards, std::string& bytes, std::string* mask) {
  std::string digits;
  for (const std::string& a : n.args) {
    std::string w = a;
    if (absl::StartsWith(w, "0x") || absl::StartsWith(w, "0X"))
      w = w.substr(2);
    digits += w;
  }
  if (digits.empty() || digits.size() % 2 != 0 || digits.size() > 2 * 65507) {
    return errorAt(n, absl::StrCat(n.keyword, ": expected an even number of hex digits"));
  }
  for (size_t i = 0; i < digits.size(); i += 2) {
    int v = 0, m = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = digits[i + j];
      const int shift = j == 0 ? 4 : 0;
      if (wildcards && (c == 'x' || c == 'X'))
        continue;
      const int h = hexNibble(c);
      if (h < 0)
        return errorAt(n, absl::StrCat(n.keyword, ": '", std::string(1, c), "' is not hex"));
      v |= h << shift;
      m |= 0xf << shift;
    }
    bytes += static_cast<char>(v);
    if (mask != nullptr)
      *mask += static_cast<char>(m);
  }
  return absl::OkStatus();
}

absl::Status unknown(const Node& n, absl::string_view where) {
  return errorAt(n, absl::StrCat("unknown keyword '", n.keyword, "' in ", where));
}

// --- blocks ----------------------------------------------------------------------------------

// Blocks of keepalived that are not LVS: skipped as a whole.
bool isSkippedRoot(absl::string_view k) {
  static const char* const kSkipped[] = {
      "vrrp_instance",   "vrrp_sync_group", "vrrp_script",         "vrrp_track_process",
      "vrrp_track_file", "track_file",      "bfd_instance",        "static_ipaddress",
      "static_routes",   "static_rules",    "linkbeat_interfaces", "garp_group",
      "vrrp_gname",      "track_process",   "vrrp_track_interface"};
  for (const char* s : kSkipped) {
    if (k == s)
      return true;
  }
  return false;
}

absl::Status parseUrl(const Node& n, UrlSpec& url) {
  url.line = n.line;
  for (const Node& c : n.children) {
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    if (c.keyword == "path") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      url.path = *v;
    } else if (c.keyword == "digest") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      std::string d = absl::AsciiStrToLower(*v);
      if (d.size() != 32 || d.find_first_not_of("0123456789abcdef") != std::string::npos)
        return errorAt(c, absl::StrCat("digest '", *v, "': expected 32 hex digits (MD5)"));
      url.digest = d;
    } else if (c.keyword == "status_code") {
      if (absl::Status s = parseStatusCodes(c, url.statuses); !s.ok())
        return s;
    } else if (c.keyword == "virtualhost") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      url.virtualhost = *v;
    } else if (absl::StartsWith(c.keyword, "regex")) {
      return errorAt(c, absl::StrCat(c.keyword, ": regular expressions are not supported"));
    } else {
      return unknown(c, "url");
    }
  }
  if (url.path.empty())
    return errorAt(n, "url: no path");
  return absl::OkStatus();
}

// The keywords every checker takes (check_api.c install_checker_common_keywords).
// Returns true when `c` was one of them.
absl::StatusOr<bool> parseCommon(const Node& c, CheckerSpec& ck, bool connection) {
  const std::string& k = c.keyword;
  if (connection) {
    if (k == "connect_ip") {
      if (absl::Status s = wantArgs(c, 1, 1); !s.ok())
        return s;
      absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
      if (!a.ok())
        return a.status();
      ck.connect_ip = *a;
      return true;
    }
    if (k == "connect_port") {
      absl::StatusOr<uint32_t> p = uintArg(c, 1, 65535);
      if (!p.ok())
        return p.status();
      ck.connect_port = static_cast<uint16_t>(*p);
      return true;
    }
    if (k == "bindto") {
      if (absl::Status s = wantArgs(c, 1, 1); !s.ok())
        return s;
      absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
      if (!a.ok())
        return a.status();
      ck.bindto = *a;
      return true;
    }
    if (k == "bind_port") {
      absl::StatusOr<uint32_t> p = uintArg(c, 1, 65535);
      if (!p.ok())
        return p.status();
      ck.bind_port = static_cast<uint16_t>(*p);
      return true;
    }
    if (k == "bind_if") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      ck.bind_if = *v;
      return true;
    }
    if (k == "connect_timeout") {
      absl::StatusOr<Micros> t = secondsArg(c, false);
      if (!t.ok())
        return t.status();
      ck.connect_timeout = *t;
      return true;
    }
    if (k == "fwmark") {
      absl::StatusOr<uint32_t> m = uintArg(c, 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      ck.fwmark = *m;
      return true;
    }
  }
  if (k == "retry" ||
      (k == "nb_get_retry" && (ck.type == CheckType::kHttp || ck.type == CheckType::kSsl))) {
    absl::StatusOr<uint32_t> r = uintArg(c, 0, 0xffffffffu);
    if (!r.ok())
      return r.status();
    ck.retry = *r;
    return true;
  }
  if (k == "delay_before_retry" || k == "delay_loop" || k == "warmup") {
    absl::StatusOr<Micros> t = secondsArg(c, k != "delay_loop");
    if (!t.ok())
      return t.status();
    (k == "delay_loop" ? ck.delay_loop : k == "warmup" ? ck.warmup : ck.delay_before_retry) = *t;
    return true;
  }
  if (k == "alpha") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.alpha = *b;
    return true;
  }
  if (k == "log_all_failures") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.log_all_failures = *b;
    return true;
  }
  return false;
}

absl::Status parseHttpKeyword(const Node& c, CheckerSpec& ck) {
  const std::string& k = c.keyword;
  if (k == "url") {
    if (!c.block)
      return errorAt(c, "url: expected a block");
    UrlSpec u;
    if (absl::Status s = parseUrl(c, u); !s.ok())
      return s;
    ck.urls.push_back(std::move(u));
    return absl::OkStatus();
  }
  if (absl::Status s = noBlock(c); !s.ok())
    return s;
  if (k == "virtualhost") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    ck.virtualhost = *v;
  } else if (k == "http_protocol") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (*v != "1.0" && *v != "1.0C" && *v != "1.0K" && *v != "1.1")
      return errorAt(c, absl::StrCat("http_protocol '", *v, "': expected 1.0, 1.0C, 1.0K or 1.1"));
    ck.http_protocol = *v;
  } else if (k == "enable_sni" && ck.type == CheckType::kSsl) {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.enable_sni = *b;
  } else if (k == "sni_name" && ck.type == CheckType::kSsl) {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    ck.sni_name = *v;
    ck.enable_sni = true;
  } else if (k == "tls_compliant" && ck.type == CheckType::kSsl) {
    // keepalived waits for the TLS close_notify; lbd always reads to the end. Nothing to do.
  } else if (k == "fast_recovery") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    ck.fast_recovery = *b;
  } else {
    return unknown(c, checkTypeName(ck.type));
  }
  return absl::OkStatus();
}

absl::Status parseTypeKeyword(const Node& c, CheckerSpec& ck) {
  if (ck.type == CheckType::kHttp || ck.type == CheckType::kSsl)
    return parseHttpKeyword(c, ck);
  if (absl::Status s = noBlock(c); !s.ok())
    return s;
  const std::string& k = c.keyword;
  switch (ck.type) {
    case CheckType::kUdp:
      if (k == "payload")
        return parseHex(c, false, ck.payload, nullptr);
      if (k == "require_reply") {
        ck.require_reply = true;
        if (c.args.empty())
          return absl::OkStatus();
        return parseHex(c, true, ck.reply_pattern, &ck.reply_mask);
      }
      if (k == "min_reply_length" || k == "max_reply_length") {
        absl::StatusOr<uint32_t> v = uintArg(c, 0, 65535);
        if (!v.ok())
          return v.status();
        (k == "min_reply_length" ? ck.min_reply_length : ck.max_reply_length) = *v;
        return absl::OkStatus();
      }
      break;
    case CheckType::kDns:
      if (k == "type") {
        absl::StatusOr<std::string> v = stringArg(c);
        if (!v.ok())
          return v.status();
        const std::string t = absl::AsciiStrToUpper(*v);
        static const char* const kTypes[] = {"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"};
        if (std::none_of(std::begin(kTypes), std::end(kTypes),
                         [&](const char* x) { return t == x; })) {
          return errorAt(c, absl::StrCat("type '", *v,
                                         "': expected A, NS, CNAME, SOA, MX, "
                                         "TXT or AAAA"));
        }
        ck.dns_type = t;
        return absl::OkStatus();
      }
      if (k == "name") {
        absl::StatusOr<std::string> v = stringArg(c);
        if (!v.ok())
          return v.status();
        if (v->size() > 253)
          return errorAt(c, "name: longer than 253 characters");
        ck.dns_name = *v;
        return absl::OkStatus();
      }
      break;
    case CheckType::kMisc:
      if (k == "misc_path") {
        absl::StatusOr<std::string> v = scriptArg(c);
        if (!v.ok())
          return v.status();
        ck.misc_path = *v;
        return absl::OkStatus();
      }
      if (k == "misc_timeout") {
        absl::StatusOr<uint32_t> v = uintArg(c, 0, 4294967);
        if (!v.ok())
          return v.status();
        ck.misc_timeout = static_cast<Micros>(*v) * kSecond;
        return absl::OkStatus();
      }
      if (k == "misc_dynamic") {
        absl::StatusOr<bool> b = flagArg(c);
        if (!b.ok())
          return b.status();
        ck.misc_dynamic = *b;
        return absl::OkStatus();
      }
      if (k == "user") {
        if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
          return s;
        ck.user = c.args[0];
        return absl::OkStatus();
      }
      break;
    default:
      break;
  }
  return unknown(c, checkTypeName(ck.type));
}

absl::StatusOr<CheckerSpec> parseChecker(const Node& n, CheckType type) {
  CheckerSpec ck;
  ck.type = type;
  ck.file = n.file;
  ck.line = n.line;
  if (!n.block)
    return errorAt(n, absl::StrCat(n.keyword, ": expected a block"));
  if (!n.args.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": takes no value"));
  const bool connection = type != CheckType::kMisc;
  for (const Node& c : n.children) {
    if (!c.block) {
      absl::StatusOr<bool> common = parseCommon(c, ck, connection);
      if (!common.ok())
        return common.status();
      if (*common)
        continue;
    }
    if (absl::Status s = parseTypeKeyword(c, ck); !s.ok())
      return s;
  }
  if ((type == CheckType::kHttp || type == CheckType::kSsl) && ck.urls.empty())
    return errorAt(n, absl::StrCat(n.keyword, ": no url"));
  if (type == CheckType::kMisc && ck.misc_path.empty())
    return errorAt(n, "MISC_CHECK: no misc_path");
  if (type == CheckType::kUdp && ck.min_reply_length > ck.max_reply_length)
    return errorAt(n, "UDP_CHECK: min_reply_length > max_reply_length");
  return ck;
}

std::optional<CheckType> checkerKeyword(absl::string_view k) {
  if (k == "TCP_CHECK")
    return CheckType::kTcp;
  if (k == "HTTP_GET")
    return CheckType::kHttp;
  if (k == "SSL_GET")
    return CheckType::kSsl;
  if (k == "UDP_CHECK")
    return CheckType::kUdp;
  if (k == "DNS_CHECK")
    return CheckType::kDns;
  if (k == "PING_CHECK" || k == "ICMP_CHECK")
    return CheckType::kPing;
  if (k == "MISC_CHECK")
    return CheckType::kMisc;
  return std::nullopt;
}

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

absl::Status parseRealServer(const Node& n, RealServer& rs) {
  rs.file = n.file;
  rs.line = n.line;
  if (absl::Status s = wantArgs(n, 1, 2); !s.ok())
    return s;
  absl::StatusOr<std::string> a = addressArg(n, n.args[0]);
  if (!a.ok())
    return a.status();
  rs.address = *a;
  if (n.args.size() == 2) {
    absl::StatusOr<uint16_t> p = portArg(n, n.args[1]);
    if (!p.ok())
      return p.status();
    rs.port = *p;
  }
  for (const Node& c : n.children) {
    const std::string& k = c.keyword;
    if (std::optional<CheckType> t = checkerKeyword(k); t.has_value()) {
      absl::StatusOr<CheckerSpec> ck = parseChecker(c, *t);
      if (!ck.ok())
        return ck.status();
      rs.checkers.push_back(std::move(*ck));
      continue;
    }
    if (k == "BFD_CHECK" || k == "SMTP_CHECK" || k == "FILE_CHECK")
      return errorAt(c, absl::StrCat(k, ": not supported by lbd"));
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    absl::StatusOr<bool> timing = parseTiming(c, rs);
    if (!timing.ok())
      return timing.status();
    if (*timing)
      continue;
    if (k == "weight") {
      absl::StatusOr<uint32_t> w = uintArg(c, 0, 65535);
      if (!w.ok())
        return w.status();
      rs.weight = *w;
    } else if (k == "lvs_method" || k == "lb_kind") {
      absl::StatusOr<LvsMethod> m = methodArg(c);
      if (!m.ok())
        return m.status();
      rs.method = *m;
    } else if (k == "uthreshold" || k == "lthreshold") {
      absl::StatusOr<uint32_t> v = uintArg(c, 0, 0xffffffffu);
      if (!v.ok())
        return v.status();
      (k == "uthreshold" ? rs.uthreshold : rs.lthreshold) = *v;
    } else if (k == "inhibit_on_failure" || k == "alpha") {
      absl::StatusOr<bool> b = flagArg(c);
      if (!b.ok())
        return b.status();
      (k == "alpha" ? rs.alpha : rs.inhibit_on_failure) = *b;
    } else if (k == "notify_up" || k == "notify_down") {
      absl::StatusOr<std::string> v = scriptArg(c);
      if (!v.ok())
        return v.status();
      (k == "notify_up" ? rs.notify_up : rs.notify_down) = *v;
    } else if (k == "virtualhost") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      rs.virtualhost = *v;
    } else if (k == "smtp_alert" || k == "snmp_name") {
      // Mail and SNMP alerts: lbd has neither; logged instead.
    } else {
      return unknown(c, "real_server");
    }
  }
  if (rs.lthreshold > 0 && rs.uthreshold > 0 && rs.lthreshold > rs.uthreshold)
    return errorAt(n, "real_server: lthreshold above uthreshold");
  return absl::OkStatus();
}

absl::Status parseSchedFlag(const Node& c, VirtualServer& vs) {
  const std::string& k = c.keyword;
  if (k == "ops") {
    vs.ops = true;
  } else if (k == "flag-1" || k == "sh-fallback" || k == "mh-fallback") {
    vs.flag1 = true;
  } else if (k == "flag-2" || k == "sh-port" || k == "mh-port") {
    vs.flag2 = true;
  } else if (k == "flag-3") {
    vs.flag3 = true;
  }
  return absl::OkStatus();
}

bool isSchedFlag(absl::string_view k) {
  return k == "ops" || k == "flag-1" || k == "flag-2" || k == "flag-3" || k == "sh-port" ||
         k == "sh-fallback" || k == "mh-port" || k == "mh-fallback" || k == "hashed";
}

absl::Status parseVsKeyword(const Node& c, VirtualServer& vs) {
  const std::string& k = c.keyword;
  absl::StatusOr<bool> timing = parseTiming(c, vs);
  if (!timing.ok())
    return timing.status();
  if (*timing) {
    return absl::OkStatus();
  }
  if (isSchedFlag(k))
    return parseSchedFlag(c, vs);
  if (k == "lb_algo" || k == "lvs_sched") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    static const char* const kScheds[] = {"rr", "wrr", "lc",  "wlc",   "lblc", "sh", "mh",
                                          "dh", "fo",  "ovf", "lblcr", "sed",  "nq", "twos"};
    if (std::none_of(std::begin(kScheds), std::end(kScheds),
                     [&](const char* s) { return *v == s; })) {
      return errorAt(c, absl::StrCat(k, " '", *v, "': unknown scheduler"));
    }
    vs.scheduler = *v;
  } else if (k == "lb_kind" || k == "lvs_method") {
    absl::StatusOr<LvsMethod> m = methodArg(c);
    if (!m.ok())
      return m.status();
    vs.method = *m;
  } else if (k == "persistence_timeout") {
    if (c.args.empty()) {
      vs.persistence_timeout = 360;
    } else {
      absl::StatusOr<uint32_t> v = uintArg(c, 1, 2678400);
      if (!v.ok())
        return v.status();
      vs.persistence_timeout = *v;
    }
  } else if (k == "persistence_granularity") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (!isIpv4(*v)) {
      uint32_t len = 0;
      if (!absl::SimpleAtoi(*v, &len) || len < 1 || len > 128)
        return errorAt(c, absl::StrCat("persistence_granularity '", *v, "': expected a netmask"));
    }
    vs.persistence_granularity = *v;
  } else if (k == "persistence_engine") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    vs.persistence_engine = *v;
  } else if (k == "protocol") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    const std::string p = absl::AsciiStrToUpper(*v);
    if (p != "TCP" && p != "UDP" && p != "SCTP")
      return errorAt(c, absl::StrCat("protocol '", *v, "': expected TCP, UDP or SCTP"));
    vs.protocol = p;
  } else if (k == "quorum" || k == "hysteresis" || k == "weight") {
    absl::StatusOr<uint32_t> v = uintArg(c, k == "quorum" ? 1 : 0, 0xffffffffu);
    if (!v.ok())
      return v.status();
    (k == "quorum" ? vs.quorum : k == "hysteresis" ? vs.hysteresis : vs.default_weight) = *v;
    if (k == "weight" && *v > 65535)
      return errorAt(c, "weight: expected 0..65535");
  } else if (k == "quorum_up" || k == "quorum_down") {
    absl::StatusOr<std::string> v = scriptArg(c);
    if (!v.ok())
      return v.status();
    (k == "quorum_up" ? vs.quorum_up : vs.quorum_down) = *v;
  } else if (k == "sorry_server") {
    if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
      return s;
    absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
    if (!a.ok())
      return a.status();
    vs.sorry_address = *a;
    if (c.args.size() == 2) {
      absl::StatusOr<uint16_t> p = portArg(c, c.args[1]);
      if (!p.ok())
        return p.status();
      vs.sorry_port = *p;
    }
  } else if (k == "sorry_server_lvs_method") {
    absl::StatusOr<LvsMethod> m = methodArg(c);
    if (!m.ok())
      return m.status();
    vs.sorry_method = *m;
  } else if (k == "sorry_server_inhibit" || k == "inhibit_on_failure" || k == "alpha" ||
             k == "omega" || k == "ha_suspend") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    if (k == "sorry_server_inhibit")
      vs.sorry_inhibit = *b;
    else if (k == "inhibit_on_failure")
      vs.inhibit_on_failure = *b;
    else if (k == "alpha")
      vs.alpha = *b;
    else if (k == "omega")
      vs.omega = *b;
    else
      vs.ha_suspend = *b;
  } else if (k == "ip_family") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (*v != "inet" && *v != "inet6")
      return errorAt(c, absl::StrCat("ip_family '", *v, "': expected inet or inet6"));
    vs.inet6 = *v == "inet6";
  } else if (k == "virtualhost") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    vs.virtualhost = *v;
  } else if (k == "smtp_alert" || k == "snmp_name" || k == "nat_mask") {
    // Mail and SNMP alerts, and the old nat_mask: nothing for lbd to do.
  } else {
    return unknown(c, "virtual_server");
  }
  return absl::OkStatus();
}

absl::Status parseVirtualServer(const Node& n, VirtualServer& vs) {
  vs.file = n.file;
  vs.line = n.line;
  if (!n.block)
    return errorAt(n, "virtual_server: expected a block");
  if (n.args.empty())
    return errorAt(n, "virtual_server: expected ADDRESS PORT, fwmark MARK or group NAME");
  if (n.args[0] == "fwmark" || n.args[0] == "group") {
    if (absl::Status s = wantArgs(n, 2, 2); !s.ok())
      return s;
    if (n.args[0] == "group") {
      vs.kind = VirtualServer::Kind::kGroup;
      vs.group = n.args[1];
    } else {
      vs.kind = VirtualServer::Kind::kFwmark;
      absl::StatusOr<uint32_t> m = parseUint(n, n.args[1], 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      vs.fwmark = *m;
    }
  } else {
    if (absl::Status s = wantArgs(n, 1, 2); !s.ok())
      return s;
    absl::StatusOr<std::string> a = addressArg(n, n.args[0]);
    if (!a.ok())
      return a.status();
    vs.address = *a;
    vs.inet6 = isIpv6(*a);
    if (n.args.size() == 2) {
      absl::StatusOr<uint16_t> p = portArg(n, n.args[1]);
      if (!p.ok())
        return p.status();
      vs.port = *p;
    }
  }
  for (const Node& c : n.children) {
    if (c.keyword == "real_server") {
      if (!c.block)
        return errorAt(c, "real_server: expected a block");
      RealServer rs;
      if (absl::Status s = parseRealServer(c, rs); !s.ok())
        return s;
      vs.real_servers.push_back(std::move(rs));
      continue;
    }
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    if (absl::Status s = parseVsKeyword(c, vs); !s.ok())
      return s;
  }
  if (vs.kind == VirtualServer::Kind::kAddress && vs.port == 0 && !vs.persistence_timeout)
    return errorAt(n, "virtual_server: port 0 (or none) needs persistence_timeout");
  return absl::OkStatus();
}

absl::Status parseGroup(const Node& n, VirtualServerGroup& g) {
  g.line = n.line;
  if (!n.block)
    return errorAt(n, "virtual_server_group: expected a block");
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  g.name = n.args[0];
  for (const Node& c : n.children) {
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    GroupEntry e;
    if (c.keyword == "fwmark") {
      if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
        return s;
      absl::StatusOr<uint32_t> m = parseUint(c, c.args[0], 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      e.fwmark = *m;
      if (c.args.size() == 2) {
        if (c.args[1] != "inet" && c.args[1] != "inet6")
          return errorAt(c,
                         absl::StrCat("fwmark family '", c.args[1], "': expected inet or inet6"));
        e.inet6 = c.args[1] == "inet6";
      }
      g.entries.push_back(e);
      continue;
    }
    // ADDRESS[-LAST] [PORT]
    std::string addr = c.keyword;
    const size_t dash = addr.rfind('-');
    if (dash != std::string::npos) {
      const std::string last = addr.substr(dash + 1);
      uint32_t v = 0;
      const bool v6 = isIpv6(addr.substr(0, dash));
      if (last.empty() || last.size() > 4 ||
          !(v6 ? absl::SimpleHexAtoi(last, &v) : absl::SimpleAtoi(last, &v)) ||
          v > (v6 ? 0xffffu : 255u)) {
        return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword, "': bad range"));
      }
      e.range_end = v;
      addr = addr.substr(0, dash);
    }
    if (!isIpv4(addr) && !isIpv6(addr)) {
      return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword,
                                     "': expected ADDRESS[-LAST] PORT or fwmark MARK"));
    }
    e.address = addr;
    e.inet6 = isIpv6(addr);
    if (e.range_end != 0) {
      // The range's last value must not be below the address's own last part.
      uint32_t first = 0;
      const size_t sep = addr.find_last_of(e.inet6 ? ':' : '.');
      const std::string tail = addr.substr(sep + 1);
      const bool ok = e.inet6 ? absl::SimpleHexAtoi(tail, &first) : absl::SimpleAtoi(tail, &first);
      if (!ok || e.range_end < first)
        return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword, "': bad range"));
    }
    if (c.args.size() > 1)
      return errorAt(c, "virtual_server_group: expected ADDRESS[-LAST] PORT");
    if (c.args.size() == 1) {
      absl::StatusOr<uint16_t> p = portArg(c, c.args[0]);
      if (!p.ok())
        return p.status();
      e.port = *p;
    }
    g.entries.push_back(e);
  }
  return absl::OkStatus();
}

absl::Status parseGlobalDefs(const Node& n, KeepalivedConfig& cfg) {
  GlobalDefs& g = cfg.globals;
  std::vector<std::string> ignored;
  for (const Node& c : n.children) {
    const std::string& k = c.keyword;
    if (k == "lvs_notify_fifo" || k == "lvs_notify_fifo_script") {
      if (absl::Status s = noBlock(c); !s.ok())
        return s;
      absl::StatusOr<std::string> v = k == "lvs_notify_fifo" ? stringArg(c) : scriptArg(c);
      if (!v.ok())
        return v.status();
      (k == "lvs_notify_fifo" ? g.lvs_notify_fifo : g.lvs_notify_fifo_script) = *v;
    } else if (k == "lvs_timeouts") {
      if (c.args.empty() || c.args.size() % 2 != 0)
        return errorAt(c, "lvs_timeouts: expected [tcp S] [tcpfin S] [udp S]");
      for (size_t i = 0; i < c.args.size(); i += 2) {
        absl::StatusOr<uint32_t> v = parseUint(c, c.args[i + 1], 1, 2678400);
        if (!v.ok())
          return v.status();
        if (c.args[i] == "tcp")
          g.lvs_timeout_tcp = *v;
        else if (c.args[i] == "tcpfin")
          g.lvs_timeout_tcpfin = *v;
        else if (c.args[i] == "udp")
          g.lvs_timeout_udp = *v;
        else
          return errorAt(
              c, absl::StrCat("lvs_timeouts '", c.args[i], "': expected tcp, tcpfin or udp"));
      }
    } else if (k == "lvs_flush") {
      g.lvs_flush = true;
    } else if (k == "checker_log_all_failures") {
      absl::StatusOr<bool> b = flagArg(c);
      if (!b.ok())
        return b.status();
      g.checker_log_all_failures = *b;
    } else if (k == "script_user") {
      if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
        return s;
      g.script_user = c.args[0];
    } else if (k == "lvs_sync_daemon") {
      return errorAt(c, "lvs_sync_daemon: connection sync is not supported by lbd yet");
    } else {
      ignored.push_back(k);
    }
  }
  if (!ignored.empty())
    cfg.skipped.push_back(absl::StrCat("global_defs: ", absl::StrJoin(ignored, " ")));
  return absl::OkStatus();
}

absl::Status parseRoot(const Node& root, KeepalivedConfig& cfg) {
  absl::flat_hash_set<std::string> group_names;
  for (const Node& n : root.children) {
    const std::string& k = n.keyword;
    if (k == "global_defs") {
      if (!n.block)
        return errorAt(n, "global_defs: expected a block");
      if (absl::Status s = parseGlobalDefs(n, cfg); !s.ok())
        return s;
    } else if (k == "virtual_server") {
      VirtualServer vs;
      if (absl::Status s = parseVirtualServer(n, vs); !s.ok())
        return s;
      cfg.virtual_servers.push_back(std::move(vs));
    } else if (k == "virtual_server_group") {
      VirtualServerGroup g;
      if (absl::Status s = parseGroup(n, g); !s.ok())
        return s;
      if (!group_names.insert(g.name).second)
        return errorAt(n, absl::StrCat("virtual_server_group ", g.name, ": defined twice"));
      cfg.groups.push_back(std::move(g));
    } else if (k == "SSL") {
      // The client certificate for SSL_GET: lbd's SSL_GET does not present one.
      cfg.skipped.push_back(absl::StrCat("SSL (", n.where(), ")"));
    } else if (isSkippedRoot(k)) {
      cfg.skipped.push_back(absl::StrCat(k, n.args.empty() ? "" : " ", absl::StrJoin(n.args, " "),
                                         " (", n.where(), ")"));
    } else if (!k.empty() && (k[0] == '$' || k[0] == '@')) {
      return errorAt(n, absl::StrCat("'", k,
                                     "': parameters and conditional lines are not "
                                     "supported"));
    } else {
      return unknown(n, "the top level");
    }
  }
  for (const VirtualServer& vs : cfg.virtual_servers) {
    if (vs.kind == VirtualServer::Kind::kGroup && !group_names.contains(vs.group)) {
      return errorAt(vs.file, vs.line,
                     absl::StrCat("virtual_server group ", vs.group, ": no such group"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* checkTypeName(CheckType t) {
  switch (t) {
    case CheckType::kTcp:
      return "TCP_CHECK";
    case CheckType::kHttp:
      return "HTTP_GET";
    case CheckType::kSsl:
      return "SSL_GET";
    case CheckType::kUdp:
      return "UDP_CHECK";
    case CheckType::kDns:
      return "DNS_CHECK";
    case CheckType::kPing:
      return "PING_CHECK";
    case CheckType::kMisc:
      return "MISC_CHECK";
  }
  return "?";
}

ConfReader fileSystemReader() {
  ConfReader r;
  r.read = [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream f(path, std::ios::binary);
    if (!f)
      return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  r.glob = [](const std::string& pattern) {
    std::vector<std::string> out;
    glob_t g{};
    if (::glob(pattern.c_str(), GLOB_BRACE | GLOB_NOSORT, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i)
        out.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    std::sort(out.begin(), out.end());
    return out;
  };
  return r;
}

absl::StatusOr<KeepalivedConfig> parseKeepalivedConf(const std::string& path,
                                                     const ConfReader& reader) {
  KeepalivedConfig cfg;
  TreeBuilder tb(reader, cfg);
  if (absl::Status s = tb.readFile(path, 0); !s.ok())
    return s;
  absl::StatusOr<Node> root = tb.finish(path);
  if (!root.ok())
    return root.status();
  if (absl::Status s = parseRoot(*root, cfg); !s.ok())
    return s;
  return cfg;
}

CheckerTiming resolveTiming(const VirtualServer& vs, const RealServer& rs, const CheckerSpec& c) {
  CheckerTiming t;
  t.connect_timeout = c.connect_timeout.value_or(rs.connect_timeout.value_or(vs.connect_timeout));
  t.delay_loop = c.delay_loop.value_or(rs.delay_loop.value_or(vs.delay_loop));
  uint32_t def_retry = 1;
  if (c.type == CheckType::kDns)
    def_retry = 3;
  else if (c.type == CheckType::kMisc)
    def_retry = 0;
  t.retry = c.retry.value_or(rs.retry.value_or(vs.retry.value_or(def_retry)));
  t.warmup = c.warmup.value_or(rs.warmup.value_or(vs.warmup.value_or(t.delay_loop)));
  Micros def_dbr = 1 * kSecond;
  if (c.type == CheckType::kHttp || c.type == CheckType::kSsl)
    def_dbr = 3 * kSecond;
  else if (c.type == CheckType::kDns)
    def_dbr = t.delay_loop;
  t.delay_before_retry = c.delay_before_retry.value_or(
      rs.delay_before_retry.value_or(vs.delay_before_retry.value_or(def_dbr)));
  t.alpha = c.alpha.value_or(rs.alpha.value_or(vs.alpha));
  t.misc_timeout = c.misc_timeout.value_or(0) > 0 ? *c.misc_timeout : t.delay_loop;
  t.inhibit_on_failure = rs.inhibit_on_failure.value_or(vs.inhibit_on_failure);
  return t;
}

}  // namespace lb::health
