#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The TSan harness can fail: tsan_run.sh around a test whose process races (tsan_racy, started
# in the background and its exit status ignored, as a test treats an lbd it kills) must exit 66
# and print the report; around the same test with a race-free process it must exit 0.
#   tsan_detects_test.sh TSAN_RUN RACY_BIN
set -uo pipefail
run=$1
racy=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/racy_test.sh" <<SCRIPT
"$racy" race >/dev/null 2>&1 &
wait \$! || true
exit 0
SCRIPT
cat >"$tmp/clean_test.sh" <<SCRIPT
"$racy" clean >/dev/null 2>&1 &
wait \$! || exit 1
exit 0
SCRIPT
out=$(bash "$run" "$tmp/racy_test.sh" 2>&1)
rc=$?
if [[ $rc -ne 66 ]]; then
  echo "FAIL: tsan_run.sh exited $rc around a racy process (want 66):"
  echo "$out"
  exit 1
fi
if ! grep -q 'WARNING: ThreadSanitizer: data race' <<<"$out"; then
  echo "FAIL: no data race report in tsan_run.sh's output:"
  echo "$out"
  exit 1
fi
out=$(bash "$run" "$tmp/clean_test.sh" 2>&1)
rc=$?
[[ $rc -eq 0 ]] || { echo "FAIL: tsan_run.sh exited $rc around a clean test: $out"; exit 1; }
echo "ok: a race in a background process fails the test (66), a clean test passes"
