#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of the `vellum` command-line tool on a real data directory:
# every subcommand, the exit codes promised in src/cli/README.md, and that
# verify catches a flipped byte. JSON is checked with python3 (no jq needed).
# Usage: cli_test.sh <path to vellum binary>
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 <path to vellum binary>" >&2
  exit 2
fi
VELLUM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vellum-cli-test.XXXXXX")"
TAIL_PID=""
cleanup() {
  if [[ -n "$TAIL_PID" ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DATA="$WORK/data"
# pass/fail, json_ok, check, check_stderr (and OUT, ERR, counters).
# shellcheck source=tests/integration/cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

# run CMD...: runs vellum on the test store; stdout -> $OUT, stderr -> $ERR,
# exit code -> $RC. Never aborts the script.
run() {
  RC=0
  "$VELLUM" --data "$DATA" --durability none "$@" >"$OUT" 2>"$ERR" || RC=$?
}

# ---- append -------------------------------------------------------------
run append order-1 --type OrderCreated --data '{"total":42}' --subject alice \
  --time 2026-11-23T10:47:54.123456789Z --correlation-id c-1 --metadata '{"by":"test"}'
check "append single" 0 'o["stream"]=="order-1" and o["firstRevision"]==0 and o["lastRevision"]==0 and o["position"]==0 and o["idempotent"] is False'

printf '%s\n' '{"type":"ItemAdded","data":{"sku":"a"}}' '' \
  '{"type":"ItemAdded","data":{"sku":"b"},"subject":"bob"}' \
  '{"type":"Note","datacontenttype":"text/plain","data":"plain text"}' >"$WORK/batch.ndjson"
run append order-1 --expected 0 --data - <"$WORK/batch.ndjson"
check "append NDJSON batch" 0 'o["firstRevision"]==1 and o["lastRevision"]==3 and o["position"]==3'

printf '%s\n' '{"n":1}' '{"n":2}' >"$WORK/raw.ndjson"
run append cart-7 --type Counted --expected no_stream <"$WORK/raw.ndjson"
check "append raw NDJSON with --type" 0 'o["firstRevision"]==0 and o["lastRevision"]==1 and o["position"]==5'

# A bad line anywhere means nothing of the batch is written.
printf '%s\n' '{"type":"ItemAdded","data":{}}' '{"data":{}}' >"$WORK/bad.ndjson"
run append order-1 <"$WORK/bad.ndjson"
check "NDJSON line without type is a usage error" 1
check_stderr "usage error names the line" "line 2"
run read order-1 --limit 0
check "failed batch wrote nothing" 0 'len(ev)==4'

# ---- read ---------------------------------------------------------------
run read order-1
check "read stream" 0 '[e["streamrevision"] for e in ev]==[0,1,2,3] and [e["position"] for e in ev]==[0,1,2,3]'
cp "$OUT" "$WORK/first_event"
check "read: CloudEvents-like fields" 0 'o["type"]=="OrderCreated" and o["source"]=="vellum" and o["data"]=={"total":42} and o["subject"]=="alice" and o["time"]=="2026-11-23T10:47:54.123456789Z" and o["correlationid"]=="c-1" and o["metadata"]=={"by":"test"} and o["datacontenttype"]=="application/json" and o["schemaversion"]==1 and o["recordedtime"].endswith("Z")'
check "read: non-JSON data as base64" 0 'ev[3]["data_base64"]=="cGxhaW4gdGV4dA==" and "data" not in ev[3]'
run read order-1 --backward --limit 2
check "read backward with limit" 0 '[e["streamrevision"] for e in ev]==[3,2]'
run read order-1 --from 2
check "read from revision" 0 '[e["streamrevision"] for e in ev]==[2,3]'
run read order-1 --as-of-position 2
check "read as of position" 0 '[e["streamrevision"] for e in ev]==[0,1]'
FIRST_TIME="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["recordedtime"])' "$WORK/first_event")"
run read order-1 --as-of "$FIRST_TIME"
check "read as of the first event's recorded time" 0 '[e["streamrevision"] for e in ev]==[0]'
run read order-1 --as-of 2000-01-01T00:00:00Z
check "read as of a time before the store is empty" 0 'ev==[]'
run read order-1 --as-of yesterday
check "bad --as-of is a usage error" 1
run read no-such-stream
check "read missing stream exits 2" 2
check_stderr "missing stream message" "not found"

# ---- conflicts and idempotency -------------------------------------------
run append order-1 --expected 1 --type ItemAdded --data '{}'
check "wrong expected revision exits 4" 4
check_stderr "conflict names the actual revision" "actual revision 3"
run append order-1 --expected no_stream --type ItemAdded --data '{}'
check "no_stream on existing stream exits 4" 4
run append order-1 --expected banana --type ItemAdded --data '{}'
check "bad --expected is a usage error" 1

ID=0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5b
run append pay-1 --type Paid --data '{"amount":5}' --id "$ID"
check "append with --id" 0 'o["idempotent"] is False and o["position"]==6'
run append pay-1 --type Paid --data '{"amount":5}' --id "$ID"
check "retry with the same --id is idempotent" 0 'o["idempotent"] is True and o["position"]==6 and o["lastRevision"]==0'
run read pay-1
check "idempotent retry wrote once" 0 'len(ev)==1 and o["id"]=="'"$ID"'"'
run append pay-1 --type Paid --data '{"amount":6}' --id "$ID"
check "same --id, other content exits 4" 4

# ---- reserved names and usage errors -------------------------------------
run append '$system' --type X --data '{}'
if [[ "$RC" -eq 1 || "$RC" -eq 5 ]]; then pass "reserved stream rejected ($RC)"; else fail "reserved stream rejected (exit $RC)"; fi
check_stderr "reserved stream message" "reserved"
run append order-1 --data '{}'
check "--data without --type is a usage error" 1
run append order-1 --type X --data '{not json'
check "invalid JSON data is a usage error" 1
run frobnicate
check "unknown subcommand is a usage error" 1

# ---- read-all -----------------------------------------------------------
run read-all --limit 0
check "read-all everything" 0 '[e["position"] for e in ev]==list(range(7))'
run read-all --type ItemAdded --type Paid
check "read-all --type (repeated)" 0 '[e["type"] for e in ev]==["ItemAdded","ItemAdded","Paid"]'
run read-all --category cart
check "read-all --category" 0 'len(ev)==2 and all(e["stream"]=="cart-7" for e in ev)'
run read-all --subject bob
check "read-all --subject" 0 'len(ev)==1 and o["data"]=={"sku":"b"}'
run read-all --stream-prefix pay
check "read-all --stream-prefix" 0 'len(ev)==1 and o["stream"]=="pay-1"'
run read-all --backward --limit 2
check "read-all backward with limit" 0 '[e["position"] for e in ev]==[6,5]'
run read-all --from 5
check "read-all from position" 0 '[e["position"] for e in ev]==[5,6]'
run read-all --as-of-position 3
check "read-all as of position" 0 '[e["position"] for e in ev]==[0,1,2]'

# ---- tail and stat --------------------------------------------------------
run tail order-1 -n 2
check "tail stream" 0 '[e["streamrevision"] for e in ev]==[2,3]'
run tail --all -n 3 --type ItemAdded,Note
check "tail --all with types" 0 '[e["position"] for e in ev]==[1,2,3]'
run tail
check "tail without stream or --all is a usage error" 1
run stat
check "stat" 0 'o["events"]==7 and o["segments"]>=1 and o["logSizeBytes"]>0 and "commitGroups" in o'

# tail -f until SIGTERM: prints the last event, then exits 0 on the signal.
"$VELLUM" --data "$DATA" tail pay-1 -f >"$WORK/follow.out" 2>"$WORK/follow.err" &
TAIL_PID=$!
for _ in $(seq 50); do [[ -s "$WORK/follow.out" ]] && break; sleep 0.1; done
kill -TERM "$TAIL_PID"
RC=0
wait "$TAIL_PID" || RC=$?
TAIL_PID=""
cp "$WORK/follow.out" "$OUT"
cp "$WORK/follow.err" "$ERR"
check "tail -f ends with 0 on SIGTERM" 0 'len(ev)==1 and o["stream"]=="pay-1"'

# ---- reindex -------------------------------------------------------------
run read-all --limit 0
cp "$OUT" "$WORK/before_all"
run read order-1
cp "$OUT" "$WORK/before_stream"
run reindex
check "reindex" 0 'o["events"]==7'
run read-all --limit 0
if cmp -s "$OUT" "$WORK/before_all"; then pass "read-all unchanged by reindex"; else fail "read-all unchanged by reindex"; fi
run read order-1
if cmp -s "$OUT" "$WORK/before_stream"; then pass "read unchanged by reindex"; else fail "read unchanged by reindex"; fi

# ---- verify ---------------------------------------------------------------
run verify
check "verify clean store" 0 'o["events"]==7 and o["problems"]==[] and len(o["lastHash"])==64'

SEGMENT="$(ls "$DATA"/log/segment-* | sort | tail -n 1)"
python3 -c '
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[len(data) // 2] ^= 0x5a
open(path, "wb").write(data)' "$SEGMENT"
run verify
check "verify after a flipped byte exits 3" 3 'len(o["problems"])>=1'
check_stderr "verify names the damaged file" "$(basename "$SEGMENT")"

echo "cli_test: $PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
