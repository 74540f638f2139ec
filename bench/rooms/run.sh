#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rooms benchmarks against `vellum serve` on loopback (issue #5), one fresh server each:
#   (a) 100 rooms x 10 participants x 10 events/s each: p99 <= 25 ms end to end, including
#       the durable append (fsync);
#   (b) one room, 50 participants, 1,000 events/s in total into the room: p99 <= 50 ms;
#   (c) 10,000 idle connections over 100 rooms, held; server memory per idle room and
#       per idle connection (VmRSS).
# Each scenario also checks completeness: every participant received every committed event
# of its room exactly once, in seq order. Writes bench/rooms/results.jsonl and
# bench/rooms/results.md (included in docs/benchmarks.md by bench/report.py).
#
#   bench/rooms/run.sh [--smoke]
set -euo pipefail
cd "$(dirname "$0")/../.."
smoke=false
[ "${1:-}" = --smoke ] && smoke=true

build=build/release
vellum=$build/src/vellum
bench=$build/bench/vellum-rooms-bench
for binary in "$vellum" "$bench"; do
  [ -x "$binary" ] || { echo "missing $binary: build the release preset first" >&2; exit 1; }
done

# Every connection is a file descriptor on both sides: the server inherits this limit.
ulimit -n "$(ulimit -Hn)"
fds=$(ulimit -n)

dir="$(mktemp -d -p "${VL_BENCH_DIR:-$PWD}" vellum-rooms-bench.XXXXXX)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

seconds=10; idle=10000; idle_rooms=100; empty_rooms=100; hold=10
if $smoke; then seconds=2; idle=200; idle_rooms=10; empty_rooms=10; hold=1; fi
out=bench/rooms/results.jsonl
$smoke && out="$dir/results.jsonl"
: >"$out"

start_server() {
  # Removed first: the redirection below happens in the child, after the port check began.
  rm -rf "$dir/server" "$dir/server.out"
  # Room connections count against the server's connection limit; leave room for more
  # than the idle scenario's 10,000.
  "$vellum" --data "$dir/server" serve --listen 127.0.0.1:0 \
    --max-connections $((fds - 100)) --max-subscriptions $((fds - 100)) \
    >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  # Wait for the whole "listening on host:port" line (it may be read half-written).
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$dir/server.out" 2>/dev/null)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/server.err" >&2; exit 1; }
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=""; }

# One scenario against a fresh server; a failed run is still recorded (its line says
# "ok": false and report.py marks it), so later scenarios run too.
scenario() {
  start_server
  "$bench" --port "$port" --server-pid "$server_pid" "$@" | tee -a "$out" || true
  stop_server
}

if $smoke; then
  scenario --label a --rooms 10 --participants 3 --rate 5 --seconds "$seconds"
  scenario --label b --rooms 1 --participants 10 --rate 10 --seconds "$seconds"
else
  scenario --label a --rooms 100 --participants 10 --rate 10 --seconds "$seconds"
  scenario --label b --rooms 1 --participants 50 --rate 20 --seconds "$seconds"
fi
scenario --label c --mode idle --rooms "$idle_rooms" --participants "$idle" \
  --empty-rooms "$empty_rooms" --hold-seconds "$hold"

if $smoke; then
  python3 bench/rooms/report.py "$out" --check
else
  python3 bench/rooms/report.py "$out"
fi
