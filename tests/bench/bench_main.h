// SPDX-License-Identifier: Apache-2.0
// The main of every tests/bench binary: runs the benchmarks and exits nonzero when any run reported
// an error (state.SkipWithError), so a smoke run that errors fails its ctest test. Google Benchmark
// 1.7 prints the error and still exits 0.
#pragma once

namespace lb::bench {

// Parses Google Benchmark's flags plus --lb_bench_forced_error (registers BM_LbBenchForcedError,
// which always errors: the harness's own check), runs the benchmarks the filter selects through
// the default display reporter and returns the exit status: 0 when at least one benchmark ran and
// none errored, 1 otherwise (an unknown flag, no benchmark matched, or a run with an error).
int runBenchmarks(int argc, char** argv);

}  // namespace lb::bench
