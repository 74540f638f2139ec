#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the engine benchmark matrix and the peers (bench/peers/run.sh: the same
# workloads on PostgreSQL, SQLite, Redis Streams, and fio for the disk) in one
# run on this machine, then writes docs/benchmarks.md (bench/report.py).
#
#   bench/run.sh            full run (~15 min), writes docs/benchmarks.md
#   bench/run.sh --smoke    seconds-long run of every scenario, checks the output
#   bench/run.sh --engine-only   skip the peers
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
engine_only=false
for arg in "$@"; do
  case "$arg" in
    --smoke) mode=smoke ;;
    --engine-only) engine_only=true ;;
    *) echo "usage: bench/run.sh [--smoke] [--engine-only]" >&2; exit 1 ;;
  esac
done

bench=build/release/bench/vellum-bench
if [ ! -x "$bench" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target vellum-bench
fi
dir="$(mktemp -d -p "${VL_BENCH_DIR:-$PWD}" vellum-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
out="${VL_BENCH_OUT:-bench/results.jsonl}"

run() { "$bench" "$@" --dir "$dir/data"; }

if [ "$mode" = smoke ]; then
  out="$dir/smoke.jsonl"
  {
    run append --writers 4 --batch 10 --seconds 0.5 --durability none
    run append --writers 2 --batch 1 --seconds 0.5 --zipf
    run read-stream --events 1000 --seconds 0.3
    run read-all --events 20000
    run recover --events 20000
  } >"$out"
  python3 bench/report.py --check "$out"
  exit 0
fi

: >"$out"
seconds=5
for writers in 1 8 32 256; do
  for batch in 1 100; do
    run append --writers "$writers" --batch "$batch" --seconds "$seconds" | tee -a "$out"
  done
done
run append --writers 32 --batch 1 --seconds "$seconds" --zipf | tee -a "$out"
run append --writers 8 --batch 100 --seconds "$seconds" --zipf | tee -a "$out"
run read-stream --events 1000 --seconds 3 | tee -a "$out"
run read-stream --events 10000 --seconds 3 | tee -a "$out"
run read-all --events 2000000 | tee -a "$out"
run recover --events "${VL_RECOVER_EVENTS:-10000000}" | tee -a "$out"

peers=bench/peers/results.jsonl
if [ "$engine_only" = false ]; then
  bench/peers/run.sh --out "$peers"
fi
python3 bench/report.py --engine "$out" --peers "$peers" --write docs/benchmarks.md
echo "wrote docs/benchmarks.md"
