#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GET /rooms/{app}/{room}/state latency for a 10,000-event room with snapshots
# (issue #5: p95 < 5 ms), and the time-travel read ?at=<seq> beside it, with wrk
# on loopback against a release `vellum serve`. Writes bench/rooms/state_results.md.
#
#   bench/rooms/state_bench.sh [--smoke]
set -euo pipefail
cd "$(dirname "$0")/../.."
events=10000; seconds=5
if [ "${1:-}" = --smoke ]; then events=300; seconds=1; fi
vellum=${VL_BENCH_BUILD:-build/release}/src/vellum
[ -x "$vellum" ] || { echo "missing $vellum: build the release preset first" >&2; exit 1; }
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$vellum" --data "$dir/data" serve --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$dir/out")
base="http://127.0.0.1:$port"
/usr/bin/python3 - "$base" "$events" <<'PY'
import json, sys, urllib.request, uuid
base, events = sys.argv[1], int(sys.argv[2])
def call(method, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)
call("PUT", "/apps/bench/schema", {
    "policies": {"/cells/*": "lww", "/tags": "set", "/count": "counter"},
    "actions": {"paint": [{"op": "set", "path": "/cells/{payload.cell}", "value": "$payload.color"},
                          {"op": "increment", "path": "/count", "value": 1}],
                "tag": [{"op": "add", "path": "/tags", "value": "$payload.tag"}]}})
for start in range(0, events, 100):
    batch = [{"id": str(uuid.uuid4()), "action": "paint" if i % 10 else "tag",
              "payload": {"cell": f"c{i % 500}", "color": f"#{i:06x}", "tag": f"t{i % 50}"},
              "lamport": i} for i in range(start, min(events, start + 100))]
    result = call("POST", "/rooms/bench/big/events", {"participant": "loader", "events": batch})
    assert all("seq" in r for r in result["results"]), result
PY
cat >"$dir/percentiles.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("%.2f %.2f %.2f %.0f\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
LUA
run_wrk() {  # path -> "p50 p95 p99 (ms) requests/s"
  wrk -t1 -c4 -d"${seconds}s" -s "$dir/percentiles.lua" "$base$1" | tail -n 1
}
read -r c50 c95 c99 crps <<<"$(run_wrk /rooms/bench/big/state)"
read -r t50 t95 t99 trps <<<"$(run_wrk "/rooms/bench/big/state?at=$((events / 2 + 37))")"
snapshots=$(curl -s "$base/metrics" | awk '/^vellum_room_snapshots_written_total/ {print $2}')
size=$(curl -s "$base/rooms/bench/big/state" | wc -c)
if [ "${1:-}" = --smoke ]; then
  [ -n "$c99" ] && [ -n "$t99" ] || { echo "state_bench: no figures" >&2; exit 1; }
  echo "state_bench smoke: current p99 $c99, at p99 $t99"
  exit 0
fi
cat >bench/rooms/state_results.md <<MD
## Room state reads (\`bench/rooms/state_bench.sh\`)

One room of $events events (500 lww cells, a set, a counter; snapshot every 100 events:
$snapshots written), a ${size}-byte state document; wrk with 1 thread and 4 connections for
${seconds} s per case, on the same 2 cores as the server. Goal (issue #5): p95 < 5 ms with
snapshots, for the current state.

| Read | p50 ms | p95 ms | p99 ms | Requests/s |
|---|---|---|---|---|
| current state (\`/state\`, from memory) | $c50 | $c95 | $c99 | $crps |
| time travel (\`/state?at=$((events / 2 + 37))\`: snapshot at or before + replay) | $t50 | $t95 | $t99 | $trps |
MD
cat bench/rooms/state_results.md
