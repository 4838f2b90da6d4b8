// SPDX-License-Identifier: Apache-2.0
// Counts heap allocations made by this thread (operator new replaced in alloc_counter.cc), for
// the no-allocation tests and the benchmarks' allocs_per_op counter.
#pragma once

#include <cstdint>

namespace lb::testing {

// Allocations made by the calling thread since it started.
uint64_t threadAllocations();

}  // namespace lb::testing
