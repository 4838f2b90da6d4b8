#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one integration test against a ThreadSanitizer build of lbd and lbctl (registered by
# tests/integration/tsan.cmake when LB_SANITIZE=thread; scripts/test.sh stage 4b) and fails it
# on any ThreadSanitizer report, whether or not the test itself noticed.
#
#   tsan_run.sh SCRIPT
#
# Every TSan-instrumented process the test starts (lbd, the copies hot_restart makes, lbctl)
# writes its reports to $dir/tsan.<pid> (log_path), outside the test's own temporary directory,
# which the test removes on exit. halt_on_error=1:exitcode=66 stops lbd at its first report, so
# the test fails on the spot too (lbd gone, or dp_lbd_stop seeing 66 instead of 0); the scan
# below catches a report in a process whose exit status the test never looks at (an lbd it
# kills, an lbctl whose output it ignores).
# tests/tsan.supp lists races inside libraries that are not TSan-instrumented (Debian's gRPC,
# protobuf, abseil); never lbd's own code.
# LB_TSAN_EXTRA_OPTIONS is appended to TSAN_OPTIONS (a throwaway run proving the detection).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=$1
supp=${LB_TSAN_SUPP:-$here/../tsan.supp}
[[ -f "$supp" ]] || { echo "FAIL: no suppressions file $supp" >&2; exit 1; }
dir=$(mktemp -d /tmp/lbd-tsan.XXXXXX)
trap 'rm -rf "$dir"' EXIT
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$supp:log_path=$dir/tsan${LB_TSAN_EXTRA_OPTIONS:+:$LB_TSAN_EXTRA_OPTIONS}"
bash "$script"
rc=$?
reports=$(grep -l -E 'ThreadSanitizer' "$dir"/tsan.* 2>/dev/null)
if [[ -n "$reports" ]]; then
  for f in $reports; do
    echo "=== ThreadSanitizer report ($f) ==="
    cat "$f"
  done
  echo "FAIL: $(echo "$reports" | wc -l) process(es) reported under ThreadSanitizer" >&2
  [[ $rc -eq 0 || $rc -eq 77 ]] && rc=66
fi
exit $rc
