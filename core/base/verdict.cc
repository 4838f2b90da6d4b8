// SPDX-License-Identifier: Apache-2.0
#include "core/base/verdict.h"

namespace lb {

absl::string_view dropReasonName(DropReason r) {
  switch (r) {
#define LB_DROP_CASE(name, str) \
  case DropReason::name:        \
    return str;
    LB_DROP_REASONS(LB_DROP_CASE)
#undef LB_DROP_CASE
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

}  // namespace lb
