#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The TypeScript client's suites (clients/js), run by tools/run_tests.sh after
# the release build: unit (reducer vectors, optimistic state, outbox, coalescing),
# integration (a real `vellum serve`), Replicache interop (the unmodified npm
# package in Node and in Chromium), browser (the demo in Debian's Chromium), and
# the browser benchmarks' smoke runs. Ends with "js: N passed, M failed" (tests).
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export VELLUM_BIN="${VELLUM_BIN:-$repo/build/release/src/vellum}"
passed=0
failed=0

log() { printf '\033[1m== %s\033[0m\n' "$*"; }
summary() { echo "js: ${passed} passed, ${failed} failed"; }

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "clients/js needs Node.js >= 20 (found $(node --version 2>&1)); see README.md" >&2
  failed=1
  summary
  exit 1
fi
cd clients/js
log "js: npm ci"
if ! npm ci --no-audit --no-fund --loglevel=error; then
  failed=1
  summary
  exit 1
fi

# run_suite SCRIPT: runs `npm run SCRIPT` and adds node:test's pass/fail counts.
run_suite() {
  local script="$1" output
  output="$(mktemp)"
  log "js: npm run $script"
  npm run --silent "$script" 2>&1 | tee "$output"
  local pass fail
  pass="$(grep -E '^ℹ pass [0-9]+' "$output" | tail -n 1 | awk '{print $3}')"
  fail="$(grep -E '^ℹ fail [0-9]+' "$output" | tail -n 1 | awk '{print $3}')"
  rm -f "$output"
  if [ -z "$pass" ] || [ -z "$fail" ]; then
    echo "js: $script printed no test summary (build or harness failure)" >&2
    failed=$((failed + 1))
    return
  fi
  passed=$((passed + pass))
  failed=$((failed + fail))
}

# run_smoke SCRIPT ARGS...: a benchmark smoke run counts as one test.
run_smoke() {
  local script="$1"
  shift
  log "js: npm run $script -- $*"
  if npm run --silent "$script" -- "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

run_suite test:unit
run_suite test:integration
run_suite test:replicache
run_suite test:browser
run_smoke bench:e2e --smoke
run_smoke bench:coalescing --smoke
summary
[ "$failed" = 0 ]
