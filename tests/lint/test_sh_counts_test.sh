#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/test.sh's closing line counts what ran (issue 20): its run_ctest and skip_layer, taken
# from the script itself, run a scratch ctest project with one test of each outcome (passed,
# failed, skipped by exit 77, skipped by GTEST_SKIP's "[  SKIPPED ]", disabled, executable
# missing). Without CI: 1 passed, 2 failed, 3 skipped, each skip named. With CI=true a skip is a
# failure: 1 passed, 5 failed, 0 skipped. A layer that did not run (skip_layer) likewise.
#   test_sh_counts_test.sh <source dir>
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cat >"$tmp/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(counts NONE)
enable_testing()
add_test(NAME t_pass COMMAND sh -c "exit 0")
add_test(NAME t_fail COMMAND sh -c "exit 1")
add_test(NAME t_skip77 COMMAND sh -c "echo SKIP: needs a tool; exit 77")
set_tests_properties(t_skip77 PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME t_gtest_skip COMMAND sh -c "echo '[  SKIPPED ] Suite.Name'")
set_tests_properties(t_gtest_skip PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
add_test(NAME t_disabled COMMAND sh -c "exit 0")
set_tests_properties(t_disabled PROPERTIES DISABLED TRUE)
add_test(NAME t_notrun COMMAND ${CMAKE_CURRENT_BINARY_DIR}/no-such-binary)
set_tests_properties(t_pass t_fail t_skip77 t_gtest_skip t_disabled t_notrun PROPERTIES LABELS unit)
CMAKE
cmake -S "$tmp" -B "$tmp/b" >/dev/null || { echo "FAIL: cmake"; exit 1; }

fns=$(sed -n '/^log() {/p; /^skip_layer() {/,/^}/p; /^run_ctest() {/,/^}/p' "$root/scripts/test.sh")
grep -q '^run_ctest() {' <<<"$fns" && grep -q '^skip_layer() {' <<<"$fns" ||
  { echo "FAIL: scripts/test.sh has no run_ctest/skip_layer to test"; exit 1; }

# counts CI: runs run_ctest and one skip_layer in a subshell; prints "passed failed skipped" and
# the skips and failures it recorded.
counts() {
  (
    CI=$1 JOBS=1
    passed=0 failed=0 skipped=0 failures=() skips=()
    eval "$fns"
    run_ctest "$tmp/b" unit "scratch" >/dev/null 2>&1
    skip_layer "a layer" "a reason" >/dev/null
    echo "$passed $failed $skipped"
    printf 'skip: %s\n' "${skips[@]}"
    printf 'failure: %s\n' "${failures[@]}"
  )
}

out=$(counts "")
echo "without CI: $out"
[[ $(head -1 <<<"$out") == "1 2 4" ]] || bad "without CI: want '1 2 4' (passed failed skipped)"
for t in t_skip77 t_gtest_skip t_disabled; do
  grep -q "^skip: scratch: 3 did not run: .*$t" <<<"$out" || bad "without CI: $t not named as skipped"
done
grep -q "^skip: a layer: a reason" <<<"$out" || bad "without CI: skip_layer not named"
grep -q "^failure: scratch: 2 failed" <<<"$out" || bad "without CI: the failures are not named"

out=$(counts true)
echo "CI=true: $out"
[[ $(head -1 <<<"$out") == "1 6 0" ]] || bad "CI=true: want '1 6 0' (a skip is a failure)"
grep -q "^failure: scratch: 3 did not run (a skip is a failure under CI=true): .*t_skip77" <<<"$out" ||
  bad "CI=true: the skipped tests are not named as failures"
grep -q "^failure: a layer: a reason" <<<"$out" || bad "CI=true: skip_layer is not a failure"

[ "$fail" -eq 0 ] && echo "scripts/test.sh counts: ok"
exit "$fail"
