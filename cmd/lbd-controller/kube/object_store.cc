// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/object_store.h"

#include <utility>

namespace lbd::controller::kube {
namespace {

std::string metaString(const nlohmann::json& object, const char* field) {
  if (!object.is_object())
    return "";
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object())
    return "";
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string objectKeyOf(const nlohmann::json& object) {
  std::string name = metaString(object, "name");
  if (name.empty())
    return "";
  std::string ns = metaString(object, "namespace");
  return ns.empty() ? name : ns + "/" + name;
}

std::string resourceVersionOf(const nlohmann::json& object) {
  return metaString(object, "resourceVersion");
}

std::vector<Delta> ObjectStore::replace(ObjectMap objects) {
  std::vector<Delta> deltas;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, old] : objects_) {
    if (objects.find(key) == objects.end())
      deltas.push_back(Delta{Delta::Kind::kDeleted, key, old});
  }
  for (const auto& [key, obj] : objects) {
    auto it = objects_.find(key);
    if (it == objects_.end())
      deltas.push_back(Delta{Delta::Kind::kAdded, key, obj});
    else if (resourceVersionOf(*it->second) != resourceVersionOf(*obj) || *it->second != *obj)
      deltas.push_back(Delta{Delta::Kind::kModified, key, obj});
  }
  objects_ = std::move(objects);
  ++generation_;
  return deltas;
}

bool ObjectStore::apply(WatchEventType type, ObjectPtr object, Delta* delta) {
  std::string key = objectKeyOf(*object);
  if (key.empty())
    return false;
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  if (type == WatchEventType::kDeleted) {
    objects_.erase(key);
    *delta = Delta{Delta::Kind::kDeleted, std::move(key), std::move(object)};
    return true;
  }
  auto [it, inserted] = objects_.insert_or_assign(key, object);
  (void)it;
  *delta = Delta{inserted ? Delta::Kind::kAdded : Delta::Kind::kModified, std::move(key),
                 std::move(object)};
  return true;
}

ObjectMap ObjectStore::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_;
}

size_t ObjectStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_.size();
}

uint64_t ObjectStore::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

}  // namespace lbd::controller::kube
