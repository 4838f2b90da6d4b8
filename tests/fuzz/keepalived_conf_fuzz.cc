// SPDX-License-Identifier: Apache-2.0
// keepalived.conf parser on arbitrary text. The input is the main file; `include` of any
// pattern finds the same text again under /k/inc.conf, so includes and their depth limit are
// reached. Invariants: no crash, and a refusal always names FILE:LINE (or the unclosed block).
#include "cmd/lbd/health/keepalived_conf.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lb::health::ConfReader r;
  r.read = [&text](const std::string& path) -> absl::StatusOr<std::string> {
    if (path == "/k/k.conf" || path == "/k/inc.conf")
      return text;
    return absl::NotFoundError(path);
  };
  r.glob = [](const std::string& pattern) {
    std::vector<std::string> out;
    if (pattern.find("inc") != std::string::npos)
      out.push_back("/k/inc.conf");
    return out;
  };
  absl::StatusOr<lb::health::KeepalivedConfig> c = lb::health::parseKeepalivedConf("/k/k.conf", r);
  if (!c.ok() && c.status().message().substr(0, 3) != "/k/")
    std::abort();
  if (c.ok()) {
    for (const auto& vs : c->virtual_servers) {
      for (const auto& rs : vs.real_servers) {
        for (const auto& ck : rs.checkers) {
          lb::health::CheckerTiming t = lb::health::resolveTiming(vs, rs, ck);
          if (t.delay_loop <= 0 || t.connect_timeout <= 0)
            std::abort();
        }
      }
    }
  }
  return 0;
}
