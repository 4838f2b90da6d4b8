// SPDX-License-Identifier: Apache-2.0
#include <glob.h>

#include <algorithm>
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

#include "cmd/lbd/health/keepalived_parse.h"

namespace lb::health::kconf {
namespace {

constexpr int kMaxIncludeDepth = 8;
constexpr size_t kMaxFiles = 1000;
constexpr int kMaxBlockDepth = 16;

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

}  // namespace

absl::Status errorAt(const std::string& file, int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", why));
}

absl::Status errorAt(const Node& n, absl::string_view why) {
  return errorAt(n.file, n.line, why);
}

absl::StatusOr<Node> readTree(const std::string& path,
                              const ConfReader& reader,
                              KeepalivedConfig& out) {
  TreeBuilder tb(reader, out);
  if (absl::Status s = tb.readFile(path, 0); !s.ok())
    return s;
  return tb.finish(path);
}

}  // namespace lb::health::kconf

namespace lb::health {

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

}  // namespace lb::health
