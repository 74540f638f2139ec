# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers shared by the CLI test scripts (sourced, not run): running vellum
# with stdout/stderr/exit code captured, and checking them. JSON is checked
# with python3 (no jq needed). The sourcing script sets VELLUM and WORK.

OUT="$WORK/out"
ERR="$WORK/err"
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL $1" >&2
  echo "  stdout: $(head -c 2000 "$OUT")" >&2
  echo "  stderr: $(head -c 2000 "$ERR")" >&2
}

# vl ARGS...: runs vellum; stdout -> $OUT, stderr -> $ERR, exit code -> $RC.
# Never aborts the script. Stdin is passed through.
vl() {
  RC=0
  "$VELLUM" "$@" >"$OUT" 2>"$ERR" || RC=$?
}

# json_ok PYTHON_EXPR: evaluates the expression with `ev` = the JSON lines of
# $OUT (a list) and `o` = its first element.
json_ok() {
  python3 -c '
import json, sys
ev = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
o = ev[0] if ev else None
sys.exit(0 if eval(sys.argv[2]) else 1)' "$OUT" "$1"
}

# check NAME EXPECTED_RC [PYTHON_EXPR]: the last run's exit code, and
# optionally its output.
check() {
  local name="$1" expected="$2" expr="${3:-}"
  if [[ "$RC" -ne "$expected" ]]; then
    fail "$name (exit $RC, expected $expected)"
  elif [[ -n "$expr" ]] && ! json_ok "$expr"; then
    fail "$name (output check: $expr)"
  else
    pass "$name"
  fi
}

# check_stderr NAME PATTERN: the last run's stderr matches the pattern.
check_stderr() {
  if grep -q -- "$2" "$ERR"; then pass "$1"; else fail "$1 (stderr lacks '$2')"; fi
}

# check_same NAME FILE_A FILE_B: the two files are byte-identical.
check_same() {
  if cmp -s "$2" "$3"; then
    pass "$1"
  else
    fail "$1 ($2 and $3 differ)"
    diff "$2" "$3" | head -n 10 >&2 || true
  fi
}

# same_events NAME FILE_A FILE_B [KEYS_TO_IGNORE...]: the two NDJSON event
# files hold the same events, attribute for attribute, ignoring the keys given.
same_events() {
  local name="$1" a="$2" b="$3"
  shift 3
  if python3 -c '
import json, sys
ignored = set(sys.argv[3:])
def load(path):
    return [{k: v for k, v in json.loads(line).items() if k not in ignored}
            for line in open(path) if line.strip()]
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    print(f"{len(a)} vs {len(b)} events; first difference:", file=sys.stderr)
    for x, y in zip(a, b):
        if x != y:
            print(x, y, sep="\n", file=sys.stderr)
            break
sys.exit(0 if a == b else 1)' "$a" "$b" "$@"; then
    pass "$name"
  else
    fail "$name"
  fi
}

# count_lines FILE: non-empty lines of FILE.
count_lines() { grep -c . "$1" || true; }

# finish NAME: prints the summary; the script's exit code.
finish() {
  echo "$1: $PASSED passed, $FAILED failed"
  [[ "$FAILED" -eq 0 ]]
}
