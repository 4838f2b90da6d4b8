// SPDX-License-Identifier: Apache-2.0
// A reflector's cache: the objects of one resource by "namespace/name", as the API server last
// showed them. client-go's cache.Store, minus indexers. Any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cmd/lbd-controller/kube/watch_decoder.h"

#include <nlohmann/json.hpp>

namespace lbd::controller::kube {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;
using ObjectMap = std::map<std::string, ObjectPtr>;

struct Delta {
  enum class Kind { kAdded, kModified, kDeleted };
  Kind kind = Kind::kAdded;
  std::string key;
  ObjectPtr object;  // the new object; for kDeleted the last state known
};

// "namespace/name" from metadata (name alone for cluster-scoped objects); "" when metadata.name
// is missing.
std::string objectKeyOf(const nlohmann::json& object);
// metadata.resourceVersion, "" when missing.
std::string resourceVersionOf(const nlohmann::json& object);

class ObjectStore {
 public:
  // Replaces the whole content at once (a list). Returns what changed: added, modified (by
  // resourceVersion) and, synthesized, deleted for every key the list no longer has.
  std::vector<Delta> replace(ObjectMap objects);
  // One watch event (ADDED, MODIFIED or DELETED). Returns false for an object without a name.
  bool apply(WatchEventType type, ObjectPtr object, Delta* delta);

  ObjectMap snapshot() const;
  size_t size() const;
  // Bumped by every change; lets a reader skip work when nothing moved.
  uint64_t generation() const;

 private:
  mutable std::mutex mu_;
  ObjectMap objects_;
  uint64_t generation_ = 0;
};

}  // namespace lbd::controller::kube
