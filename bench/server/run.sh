#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Server benchmarks, each with its peer measured in the same run:
#   - HTTP appends, 1 and 100 events per request, 64 connections (wrk), against the engine's
#     in-process rate with 64 writer threads (vellum-bench append --writers 64);
#   - HTTP reads of 100-event pages (wrk), against the engine's in-process read_stream;
#   - WebSocket fan-out: 1 writer at 1,000 events/s, 1,000 subscribers (vellum-fanout-bench).
# Writes bench/server/results.jsonl and bench/server/results.md (included in
# docs/benchmarks.md by bench/report.py).
#
#   bench/server/run.sh [--smoke]
set -euo pipefail
cd "$(dirname "$0")/../.."
smoke=false
[ "${1:-}" = --smoke ] && smoke=true

build=build/release
vellum=$build/src/vellum
bench=$build/bench/vellum-bench
fanout=$build/bench/vellum-fanout-bench
for binary in "$vellum" "$bench" "$fanout"; do
  [ -x "$binary" ] || { echo "missing $binary: build the release preset first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing (./vellum.sh bench installs it)" >&2; exit 1; }

dir="$(mktemp -d -p "${VL_BENCH_DIR:-$PWD}" vellum-server-bench.XXXXXX)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

seconds=10; subscribers=1000; rate=1000; fan_seconds=10
if $smoke; then seconds=1; subscribers=20; rate=100; fan_seconds=1; fi
out=bench/server/results.jsonl
$smoke && out="$dir/results.jsonl"
: >"$out"

start_server() {
  rm -rf "$dir/server"
  "$vellum" --data "$dir/server" serve --listen 127.0.0.1:0 --max-subscriptions 100000 \
    >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q '^listening on' "$dir/server.out" 2>/dev/null && break
    sleep 0.1
  done
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$dir/server.out")
  [ -n "$port" ] || { cat "$dir/server.err" >&2; exit 1; }
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=""; }

# wrk's summary -> one JSON line.
wrk_json() {
  local scenario=$1 events=$2 file=$3
  python3 - "$scenario" "$events" "$file" <<'PY'
import json, re, sys
scenario, events, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(label):
    m = re.search(r"\s%s\s+([\d.]+)(us|ms|s)" % re.escape(label), text)
    if not m: return None
    v = float(m.group(1)); return {"us": v / 1e3, "ms": v, "s": v * 1e3}[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(json.dumps({"scenario": scenario, "connections": 64, "requests_per_s": rps,
                  "events_per_s": rps * events, "p50_ms": ms("50%"), "p99_ms": ms("99%"),
                  "non_2xx": int(errors.group(1)) if errors else 0}))
PY
}

for events in 1 100; do
  "$bench" append --dir "$dir/engine" --writers 64 --batch "$events" --seconds "$seconds" \
    | tee -a "$out"
  start_server
  EVENTS=$events wrk -t2 -c64 -d"${seconds}s" --latency -s bench/server/append.lua \
    "http://127.0.0.1:$port" >"$dir/wrk.txt" 2>&1 || true
  wrk_json "http-append" "$events" "$dir/wrk.txt" | tee -a "$out"
  if [ "$events" = 1 ]; then
    # The store now holds ~1000 streams: read 100-event pages of them.
    wrk -t2 -c64 -d"${seconds}s" --latency -s bench/server/read.lua \
      "http://127.0.0.1:$port" >"$dir/wrk.txt" 2>&1 || true
    wrk_json "http-read" 100 "$dir/wrk.txt" | tee -a "$out"
  fi
  stop_server
done
"$bench" read-stream --dir "$dir/engine" --events 100 --seconds "$seconds" | tee -a "$out"

# The goal's configuration first, then smaller ones that show where the ceiling is.
for config in "$subscribers $rate" "$subscribers $((rate / 10))" "$((subscribers / 10)) $rate"; do
  set -- $config
  start_server
  "$fanout" --port "$port" --subscribers "$1" --rate "$2" --seconds "$fan_seconds" \
    | tee -a "$out" || true
  stop_server
done

if $smoke; then
  python3 bench/server/report.py "$out" --check
else
  python3 bench/server/report.py "$out"
fi
