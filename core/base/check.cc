// SPDX-License-Identifier: Apache-2.0
#include "core/base/check.h"

#include <cstdio>
#include <cstdlib>

#include "core/base/log.h"

namespace lb {
namespace {
std::atomic<uint64_t> g_bugs{0};
}  // namespace

void checkFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "FATAL %s:%d check failed: %s\n", file, line, cond);
  std::abort();
}

void bugSeen(const char* file, int line, const char* msg) {
  g_bugs.fetch_add(1, std::memory_order_relaxed);
  LB_LOG_EVERY_N_SEC(kError, 10, "bug at %s:%d: %s", file, line, msg);
}

uint64_t bugsTotal() {
  return g_bugs.load(std::memory_order_relaxed);
}

}  // namespace lb
