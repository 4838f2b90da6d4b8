// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/dataplane/handover.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lb::lbd {
namespace {

std::string keyText(const ServiceKey& k) {
  return absl::StrCat(static_cast<int>(k.af), "/", static_cast<int>(k.proto), "/",
                      k.vaddr.isUnspecified() ? std::string("-") : k.vaddr.toString(), "/", k.vport,
                      "/", k.fwmark);
}

std::string destText(const ServiceKey& k, const DestConfig& d) {
  return absl::StrCat(keyText(k), " ", d.addr.toString(), " ", d.port);
}

}  // namespace

std::string handoverIds(const ServiceSnapshot& snap) {
  std::string out;
  for (const SnapService& s : snap.services()) {
    absl::StrAppend(&out, "svc ", s.id, " ", keyText(s.config.key), "\n");
    for (DestId id : s.dests) {
      const SnapDest* d = snap.dest(id);
      if (d != nullptr && d->available)
        absl::StrAppend(&out, "dest ", id, " ", destText(s.config.key, d->config), "\n");
    }
  }
  return out;
}

IdMap::IdMap(const std::string& old_ids, const ServiceSnapshot& snap) {
  absl::flat_hash_map<std::string, ServiceId> svc_by_key;
  absl::flat_hash_map<std::string, DestId> dest_by_key;
  for (const SnapService& s : snap.services()) {
    svc_by_key[keyText(s.config.key)] = s.id;
    for (DestId id : s.dests) {
      const SnapDest* d = snap.dest(id);
      if (d != nullptr && d->available)
        dest_by_key[destText(s.config.key, d->config)] = id;
    }
  }
  for (absl::string_view line : absl::StrSplit(old_ids, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    uint32_t old = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[1], &old))
      continue;
    if (f[0] == "svc") {
      auto it = svc_by_key.find(f[2]);
      if (it != svc_by_key.end())
        svcs_[old] = it->second;
    } else if (f[0] == "dest") {
      auto it = dest_by_key.find(f[2]);
      if (it != dest_by_key.end())
        dests_[old] = it->second;
    }
  }
}

bool IdMap::rebind(ConnParams& p) const {
  auto s = svcs_.find(p.svc);
  auto d = dests_.find(p.dest);
  if (s == svcs_.end() || d == dests_.end())
    return false;
  p.svc = s->second;
  p.dest = d->second;
  return true;
}

}  // namespace lb::lbd
