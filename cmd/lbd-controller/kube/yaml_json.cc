// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/yaml_json.h"

#include <yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lbd::controller::kube {
namespace {

constexpr size_t kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(absl::string_view text) {
    ok_ = yaml_parser_initialize(&parser_) != 0;
    if (ok_)
      yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                   text.size());
  }

  ~Parser() {
    if (ok_)
      yaml_parser_delete(&parser_);
  }

  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  absl::StatusOr<nlohmann::json> run();

 private:
  // One open collection: the value being built and, for a mapping, the pending key.
  struct Frame {
    nlohmann::json value;
    std::string key;
    bool have_key = false;
  };

  absl::Status error() const {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig YAML, line ", parser_.problem_mark.line + 1, ": ",
                     parser_.problem != nullptr ? parser_.problem : "parse error"));
  }

  absl::Status add(nlohmann::json v);
  static nlohmann::json scalar(const yaml_event_t& e);

  yaml_parser_t parser_{};
  bool ok_ = false;
  std::vector<Frame> stack_;
  nlohmann::json root_;
  bool have_root_ = false;
};

nlohmann::json Parser::scalar(const yaml_event_t& e) {
  std::string s(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return s;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  if (s.empty() || s == "null" || s == "Null" || s == "NULL" || s == "~")
    return nullptr;
  return s;
}

absl::Status Parser::add(nlohmann::json v) {
  if (stack_.empty()) {
    root_ = std::move(v);
    have_root_ = true;
    return absl::OkStatus();
  }
  Frame& f = stack_.back();
  if (f.value.is_array()) {
    f.value.push_back(std::move(v));
  } else if (!f.have_key) {
    if (!v.is_string())
      return absl::InvalidArgumentError("kubeconfig YAML: a mapping key is not a string");
    f.key = v.get<std::string>();
    f.have_key = true;
  } else {
    f.value[f.key] = std::move(v);
    f.have_key = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> Parser::run() {
  if (!ok_)
    return absl::InternalError("yaml_parser_initialize failed");
  while (!have_root_) {
    yaml_event_t e;
    if (yaml_parser_parse(&parser_, &e) == 0)
      return error();
    absl::Status st;
    bool end = false;
    switch (e.type) {
      case YAML_STREAM_END_EVENT:
        end = true;
        break;
      case YAML_ALIAS_EVENT:
        st = absl::InvalidArgumentError("kubeconfig YAML: aliases are not supported");
        break;
      case YAML_SCALAR_EVENT:
        st = add(scalar(e));
        break;
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT:
        if (stack_.size() >= kMaxDepth) {
          st = absl::InvalidArgumentError("kubeconfig YAML: nested too deeply");
          break;
        }
        stack_.emplace_back();
        stack_.back().value = e.type == YAML_SEQUENCE_START_EVENT ? nlohmann::json::array()
                                                                  : nlohmann::json::object();
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        nlohmann::json v = std::move(stack_.back().value);
        stack_.pop_back();
        st = add(std::move(v));
        break;
      }
      default:
        break;
    }
    yaml_event_delete(&e);
    if (!st.ok())
      return st;
    if (end)
      break;
  }
  if (!have_root_)
    return nlohmann::json::object();  // an empty document
  return std::move(root_);
}

}  // namespace

absl::StatusOr<nlohmann::json> yamlToJson(absl::string_view text) {
  Parser p(text);
  return p.run();
}

}  // namespace lbd::controller::kube
