#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Projections benchmarks (issue #4), each with its peer measured in the same run:
#   - rebuild: a trivial callback projection (counts events) over 1,000,000 events, against a
#     raw Store::visit_all scan of the same events;
#   - lag: 10,000 events/s appended in batches of 100 (durability fsync) for 10 s while a kv
#     projection runs; the peer is a raw live Subscription over the same events.
# Writes bench/toolkit/results.jsonl and bench/toolkit/results.md (included in
# docs/benchmarks.md by bench/report.py).
#
#   bench/toolkit/run.sh [--smoke]
set -euo pipefail
cd "$(dirname "$0")/../.."
smoke=false
[ "${1:-}" = --smoke ] && smoke=true

bench=${VL_BENCH_BUILD:-build/release}/bench/vellum-projection-bench
[ -x "$bench" ] || { echo "missing $bench: build the release preset first" >&2; exit 1; }

dir="$(mktemp -d -p "${VL_BENCH_DIR:-$PWD}" vellum-projection-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT

events=1000000; repeats=3; seconds=10
if $smoke; then events=20000; repeats=1; seconds=1; fi
out=bench/toolkit/results.jsonl
$smoke && out="$dir/results.jsonl"
: >"$out"
"$bench" rebuild --dir "$dir/rebuild" --events "$events" --repeats "$repeats" | tee -a "$out"
"$bench" lag --dir "$dir/lag" --rate 10000 --batch 100 --seconds "$seconds" | tee -a "$out"
if $smoke; then
  python3 bench/toolkit/report.py --check "$out"
else
  python3 bench/toolkit/report.py "$out"
fi
