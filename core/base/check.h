// SPDX-License-Identifier: Apache-2.0
// Assertions: LB_CHECK (always, fatal), LB_DCHECK (debug only), LB_BUG (debug fatal, release
// counted).
#pragma once

#include <atomic>
#include <cstdint>

namespace lb {

// Aborts after printing file:line and the failed condition. Never returns.
[[noreturn]] void checkFailed(const char* file, int line, const char* cond);
// Counts and rate-limits a bug seen in release builds. Any thread.
void bugSeen(const char* file, int line, const char* msg);
// lb_bugs_total.
uint64_t bugsTotal();

}  // namespace lb

#define LB_CHECK(cond)                              \
  do {                                              \
    if (!(cond)) [[unlikely]] {                     \
      ::lb::checkFailed(__FILE__, __LINE__, #cond); \
    }                                               \
  } while (0)

#ifdef NDEBUG
#define LB_DCHECK(cond) \
  do {                  \
  } while (0)
#define LB_BUG(cond, msg)                     \
  do {                                        \
    if (cond) [[unlikely]] {                  \
      ::lb::bugSeen(__FILE__, __LINE__, msg); \
    }                                         \
  } while (0)
#else
#define LB_DCHECK(cond) LB_CHECK(cond)
#define LB_BUG(cond, msg)                         \
  do {                                            \
    if (cond) [[unlikely]] {                      \
      ::lb::checkFailed(__FILE__, __LINE__, msg); \
    }                                             \
  } while (0)
#endif
