#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CI ends with 0 skipped tests (TESTING.md). In C++ tests the only skip is LB_SKIP_UNLESS_CI
# (tests/testlib/skip.h): it skips outside CI and fails under CI=true. So GTEST_SKIP may appear
# only in that header, and no test may be DISABLED_ (gtest counts those apart, ctest never sees
# them). A property that does not apply to a parameter is not instantiated for it instead.
# Prints each violation; exit 1 if any.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
allowed=tests/testlib/skip.h
# scan <dir>...: the offending lines, one per line.
scan() {
  grep -rnE '\bGTEST_SKIP|\bDISABLED_[A-Za-z0-9_]' "$@" --include='*.h' --include='*.cc' \
    --include='*.cpp' 2>/dev/null | grep -v "^$allowed:" | grep -v '^tests/lint/' || true
}
# The check itself must be able to fail: a planted skip and a planted disabled test are found.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'TEST(A, B) {\n  GTEST_SKIP() << "x";\n}\nTEST(A, DISABLED_C) {}\n' >"$tmp/planted_test.cc"
if [ "$(scan "$tmp" | wc -l)" -ne 2 ]; then
  echo "FAIL self-check: the planted GTEST_SKIP / DISABLED_ were not both found"
  exit 1
fi
dirs=()
for d in core io api cmd tests; do
  [ -d "$d" ] && dirs+=("$d")
done
hits=$(scan "${dirs[@]}")
if [ -n "$hits" ]; then
  printf 'FAIL: GTEST_SKIP outside %s (use LB_SKIP_UNLESS_CI, or instantiate a parameterized\n' \
    "$allowed"
  printf 'suite only for the parameters its property applies to) or a DISABLED_ test:\n%s\n' \
    "$hits"
  exit 1
fi
echo "gtest skips: ok (only $allowed skips, and only outside CI)"
