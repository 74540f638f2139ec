#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it (.ci/run -> ./vellum.sh test -> here).
# Stages, each a separate build (2 cores: keep the total well under 30 min):
#   1. release build: every test except `slow` and `fuzz` labels
#   2. asan (AddressSanitizer + UBSan): unit, crash and sim tests
#   3. tsan (ThreadSanitizer): the tests labelled `tsan` (concurrency)
#   4. fuzz (clang + libFuzzer): each target for a bounded time
#   1b. js: the TypeScript client, demo and Replicache interop (tools/run_js_tests.sh)
#   5. benchmarks smoke-run (so they don't rot)
# Ends with one summary line "N passed, M failed".
# Skip stages with VL_SKIP="js asan tsan fuzz bench" for a quick local run.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failed_stages=()
skip=" ${VL_SKIP:-} "
jobs="$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tools/tsan.supp"

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

# Runs ctest for a preset and adds its counts to the totals.
run_ctest() {
  local stage="$1"
  shift
  local output
  output="$(mktemp)"
  ctest "$@" 2>&1 | tee "$output"
  local summary
  summary="$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$output" | tail -n 1)"
  rm -f "$output"
  if [ -z "$summary" ]; then
    failed=$((failed + 1))
    failed_stages+=("$stage(no summary)")
    return
  fi
  local total bad
  total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")"
  bad="$(sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/' <<<"$summary")"
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  if [ "$bad" != 0 ]; then failed_stages+=("$stage"); fi
}

# build_preset PRESET [TARGET...]: configure and build (only TARGETs if given).
build_preset() {
  local preset="$1"
  shift
  local targets=()
  if [ $# -gt 0 ]; then targets=(--target "$@"); fi
  log "configure + build: $preset"
  if ! cmake --preset "$preset" >/dev/null ||
    ! cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"; then
    failed=$((failed + 1))
    failed_stages+=("$preset(build)")
    return 1
  fi
}

stage() { [[ "$skip" != *" $1 "* ]]; }

if build_preset release; then
  log "tests: release"
  run_ctest release --preset release -j "$jobs"
fi

# The TypeScript client, the demo and Replicache interop against the release binary.
if stage js && [ -x build/release/src/vellum ]; then
  log "tests: js (clients/js)"
  js_output="$(mktemp)"
  ./tools/run_js_tests.sh 2>&1 | tee "$js_output"
  js_summary="$(grep -E '^js: [0-9]+ passed, [0-9]+ failed$' "$js_output" | tail -n 1)"
  rm -f "$js_output"
  if [ -z "$js_summary" ]; then
    failed=$((failed + 1))
    failed_stages+=("js(no summary)")
  else
    js_passed="$(sed -E 's/js: ([0-9]+) passed.*/\1/' <<<"$js_summary")"
    js_failed="$(sed -E 's/.*, ([0-9]+) failed/\1/' <<<"$js_summary")"
    passed=$((passed + js_passed))
    failed=$((failed + js_failed))
    if [ "$js_failed" != 0 ]; then failed_stages+=("js"); fi
  fi
fi

if stage asan && build_preset asan; then
  log "tests: asan + ubsan (unit, crash, sim)"
  # Fewer model seeds and kills than the release stage (which runs 8 seeds
  # and the required 50 kills): sanitizers make them 4x slower.
  VL_SEEDS=4 VL_KILLS=20 run_ctest asan --preset asan -j "$jobs"
fi

if stage tsan && build_preset tsan store_test subscription_test vellum projections_test \
    room_service_test orders_example_test; then
  log "tests: tsan"
  run_ctest tsan --preset tsan -j "$jobs"
fi

if stage fuzz && build_preset fuzz; then
  log "fuzz targets (bounded time each)"
  run_ctest fuzz --preset fuzz
fi

if stage bench; then
  log "benchmark smoke run"
  if ./bench/run.sh --smoke; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_stages+=("bench-smoke")
  fi
  log "toolkit benchmarks smoke run"
  aggregate_dir="$(mktemp -d)"
  if ./build/release/bench/vellum-aggregate-bench --dir "$aggregate_dir" --events 500 \
    --loads 5 && ./bench/toolkit/run.sh --smoke; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_stages+=("toolkit-bench-smoke")
  fi
  rm -rf "$aggregate_dir"
  log "rooms benchmarks smoke run"
  if ./bench/rooms/run.sh --smoke && ./bench/rooms/state_bench.sh --smoke; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_stages+=("rooms-bench-smoke")
  fi
  log "server benchmark smoke run"
  if ./bench/server/run.sh --smoke; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_stages+=("server-bench-smoke")
  fi
fi

if [ ${#failed_stages[@]} -gt 0 ]; then
  log "failed stages: ${failed_stages[*]}"
fi
echo "vellum: ${passed} passed, ${failed} failed"
[ "$failed" = 0 ]
