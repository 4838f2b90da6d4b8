#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two plumbing rules for the shell tests (tests/integration/*.sh, tests/e2e/**/*.sh), issue 20:
#  1. No silent section skip: a tool check (`command -v`, `type -p`, `which`) may not guard a
#     section (`if command -v X`, `command -v X && ...`, `command -v X || <anything but a skip or a
#     failure>`). A test that needs a tool needs it: `dp_need X` (or `|| skip`/`|| dp_skip`),
#     which skips the whole test visibly and fails under CI=true; scripts/deps.sh installs it.
#  2. No fixed sleep before an assertion: a `sleep` of 1 s or more (or of a variable) outside a
#     loop is flagged; wait for the condition with a bounded poll (dp_poll, dp_poll_eq, dp_wait).
#     A loop's sleep is its poll interval.
# A line may carry `# lint: allow-sleep (why)` or `# lint: allow-tool-check (why)` when the sleep
# or the check is what the test means (let a flood run, fall back to fetching a tool). Lines in
# heredocs and in single quotes (code run elsewhere: python, a container's shell) are not read.
# Prints each violation; exit 1 if any.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2

# Sleeps in files that other open work owns (the syn flood's and the fault tests' helpers), by
# exact line: each is a known, listed instance; a new or changed line is checked.
known=(
  "tests/integration/syn_flood.sh:sleep 1 # the table fills"
  "tests/integration/syn_flood.sh:sleep 3"
  "tests/integration/fault_server_kill.sh:sleep 1  # the transfers are under way (the sink's buffers fill)"
)

# scan FILE...: "file:line: rule: text" for each violation.
scan() {
  awk '
    function strip(l) {
      gsub(/\x27[^\x27]*\x27/, "\x27\x27", l)  # single-quoted strings
      sub(/(^|[[:space:]])#.*$/, "", l)         # comments
      return l
    }
    function report(rule) { printf "%s:%d: %s: %s\n", FILENAME, FNR, rule, raw }
    FNR == 1 { depth = 0; hd = "" }
    {
      raw = $0
      if (hd != "") {
        t = raw
        if (hd_dash) sub(/^\t+/, "", t)
        if (t == hd) hd = ""
        next
      }
      # A heredoc starts after this line (not a <<< here-string).
      if (match(raw, /<<-?[[:space:]]*["\x27]?[A-Za-z_][A-Za-z_0-9]*["\x27]?/) &&
          substr(raw, RSTART + 2, 1) != "<" && (RSTART == 1 || substr(raw, RSTART - 1, 1) != "<")) {
        w = substr(raw, RSTART, RLENGTH)
        hd_dash = (w ~ /^<<-/)
        gsub(/^<<-?[[:space:]]*|["\x27]/, "", w)
        hd_next = w
      } else {
        hd_next = ""
      }
      l = strip(raw)
      allow_sleep = (raw ~ /# lint: allow-sleep/)
      allow_tool = (raw ~ /# lint: allow-tool-check/)

      # Rule 2: sleeps.
      rest = l
      off = 0
      while (match(rest, /sleep[[:space:]]+[^[:space:];)&|}]+/)) {
        before = substr(l, 1, off + RSTART - 1)
        arg = substr(rest, RSTART, RLENGTH)
        sub(/^sleep[[:space:]]+/, "", arg)
        gsub(/"/, "", arg)
        off += RSTART + RLENGTH - 1
        rest = substr(rest, RSTART + RLENGTH)
        b = before
        sub(/[[:space:]]+$/, "", b)
        if (b != "" && b !~ /([;&|({]|(^|[[:space:]])(then|do|else))$/) continue  # not a command
        if (arg == "infinity") continue
        if (arg ~ /^[0-9]*\.?[0-9]+$/ && arg + 0 < 1) continue
        in_loop = depth > 0 || before ~ /(^|[;[:space:]])do([[:space:]]|$)/
        if (!in_loop && !allow_sleep) report("sleep >= 1 s outside a poll loop (use dp_poll)")
      }

      # Rule 1: tool checks guarding a section.
      if (match(l, /(command -v|type -p|which)[[:space:]]/) && !allow_tool) {
        before = substr(l, 1, RSTART - 1)
        after = substr(l, RSTART + RLENGTH)
        bad = 0
        if (before ~ /(^|[;&|({[:space:]])(if|elif|while|until|!)[[:space:]]+$/) bad = 1
        if (after ~ /^[^|&;]*&&/) bad = 1
        if (match(after, /^[^|&;]*\|\|[[:space:]]*/)) {
          f = substr(after, RSTART + RLENGTH)
          if (f ~ /^\{/) {
            if (f !~ /(^|[^A-Za-z_])(dp_skip|skip|dp_fail|fail|exit)([^A-Za-z_]|$)/) bad = 1
          } else if (f !~ /^(dp_skip|skip|dp_fail|fail|exit)([^A-Za-z_]|$)/) {
            bad = 1
          }
        }
        if (bad) report("a tool check guards a section (use dp_need: the test needs the tool)")
      }

      # Loop depth, for the next lines.
      n = split(l, tok, /[[:space:];]+/)
      for (i = 1; i <= n; i++) {
        t = tok[i]
        gsub(/["(){}]/, "", t)  # `done"` closes a loop in a double-quoted shell string
        if (t == "do") depth++
        else if (t == "done" && depth > 0) depth--
      }
      if (hd_next != "") hd = hd_next
    }
  ' "$@"
}

# The check itself must be able to fail: planted violations are found, planted allowed forms are not.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/planted.sh" <<'EOF'
if command -v socat >/dev/null; then echo section; fi
command -v iperf3 >/dev/null && run_iperf
command -v ethtool >/dev/null || true
sleep 2.5
x=1; sleep 1
sleep "$DELAY"
command -v curl >/dev/null || dp_skip "needs curl"
for t in a b; do command -v "$t" >/dev/null || skip "needs $t"; done
command -v nc >/dev/null || { echo "no nc"; exit 1; }
dp_need socat iperf3
sleep 0.2
until ready; do
  sleep 1
done
for i in 1 2; do probe; sleep 1; done
sleep 3  # lint: allow-sleep (let the flood run)
helm=$(command -v helm || fetch_helm)  # lint: allow-tool-check (falls back to fetching it)
docker run img sh -c 'command -v g++ && exit 1; sleep 5'
python3 - <<'PY'
time.sleep(5)
sleep 5
PY
sleep infinity &
sh -c "while true; do
  sleep 0.05; done" &
sleep 2
EOF
got=$(scan "$tmp/planted.sh" | sed 's/^[^:]*:\([0-9]*\):.*/\1/' | paste -sd ' ')
if [ "$got" != "1 2 3 4 5 6 26" ]; then
  echo "FAIL self-check: flagged lines '$got' of the planted file, want '1 2 3 4 5 6 26':"
  scan "$tmp/planted.sh"
  exit 1
fi

mapfile -t files < <(ls tests/integration/*.sh 2>/dev/null; find tests/e2e -name '*.sh' 2>/dev/null)
hits=$(scan "${files[@]}")
fail=0
while IFS= read -r h; do
  [ -n "$h" ] || continue
  file=${h%%:*}
  text=${h#*:*: *: }
  text=$(sed -E 's/^[[:space:]]+//' <<<"$text")
  listed=0
  for k in "${known[@]}"; do
    [ "$k" = "$file:$text" ] && listed=1
  done
  if [ "$listed" = 1 ]; then
    echo "known (owned elsewhere): $h"
  else
    echo "FAIL $h"
    fail=1
  fi
done <<<"$hits"
[ "$fail" -eq 0 ] && echo "integration rules: ok (${#files[@]} scripts: no section dropped by a tool check, no sleep >= 1 s outside a poll loop)"
exit "$fail"
