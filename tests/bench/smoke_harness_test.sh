#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bench smoke tests can fail (issue 20): every tests/bench binary exits nonzero when a run
# reports an error (state.SkipWithError), which Google Benchmark 1.7 alone does not do.
#   smoke_harness_test.sh <source dir> <benchmark binary>...
# 1. Every *_benchmark.cc's main goes through lb::bench::runBenchmarks (no BENCHMARK_MAIN, no
#    direct RunSpecifiedBenchmarks): a new benchmark file cannot bypass the error count.
# 2. Each binary run with --lb_bench_forced_error (a benchmark that calls SkipWithError) exits 1
#    and names the errored run; with a filter that matches nothing it exits 1 too.
# 3. The same binary with a filter for one real benchmark and no forced error exits 0 (the rule
#    does not fail everything).
set -u
src=$1
shift
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for f in "$src"/tests/bench/*_benchmark.cc; do
  grep -qE 'BENCHMARK_MAIN|RunSpecifiedBenchmarks' "$f" &&
    bad "$(basename "$f") runs benchmarks itself; its main must return lb::bench::runBenchmarks(argc, argv)"
  grep -q 'lb::bench::runBenchmarks(argc, argv)' "$f" ||
    bad "$(basename "$f") does not call lb::bench::runBenchmarks(argc, argv)"
done

for bin in "$@"; do
  name=$(basename "$bin")
  out=$("$bin" --lb_bench_forced_error --benchmark_filter='^BM_LbBenchForcedError$' \
          --benchmark_min_time=0.01 2>&1)
  rc=$?
  if [ "$rc" -ne 1 ]; then
    bad "$name with a forced error exited $rc, want 1; output:"; echo "$out"
  elif ! grep -q 'BM_LbBenchForcedError: forced by --lb_bench_forced_error' <<<"$out"; then
    bad "$name with a forced error did not name the errored run; output:"; echo "$out"
  fi
  out=$("$bin" --benchmark_filter='^NoSuchBenchmark$' 2>&1)
  rc=$?
  [ "$rc" -eq 1 ] || { bad "$name with a filter matching nothing exited $rc, want 1:"; echo "$out"; }
  first=$("$bin" --benchmark_list_tests | head -1)
  out=$("$bin" --benchmark_filter="^${first}\$" --benchmark_min_time=0.001 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || { bad "$name running only $first exited $rc, want 0:"; echo "$out"; }
done
[ "$fail" -eq 0 ] && echo "bench smoke harness: ok ($# binaries)"
exit "$fail"
