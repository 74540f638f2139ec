#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of `vellum --url`: starts a real `vellum serve` on a free
# port and runs append, read, read-all, tail (-f too), stat, export and
# import through it. What the server prints must be what embedded mode
# prints for the same store (checked after the server is stopped), and the
# exit codes must be the README's. verify and reindex refuse --url.
# Usage: cli_url_test.sh <path to vellum binary>
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 <path to vellum binary>" >&2
  exit 2
fi
VELLUM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vellum-cli-url-test.XXXXXX")"
SERVER_PID=""
FOLLOW_PID=""
cleanup() {
  if [[ -n "$FOLLOW_PID" ]]; then kill "$FOLLOW_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

DATA="$WORK/served"
# wait_for FILE LINES: waits up to 10 s for FILE to hold LINES lines.
wait_for() {
  for _ in $(seq 100); do
    [[ "$(count_lines "$1")" -ge "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---- start the server ---------------------------------------------------------
"$VELLUM" --data "$DATA" --durability none serve --listen 127.0.0.1:0 \
  >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
if ! wait_for "$WORK/serve.out" 1; then
  echo "the server did not start:" >&2
  cat "$WORK/serve.err" >&2
  exit 1
fi
ADDRESS="$(sed -n 's/^listening on \(.*\)$/\1/p' "$WORK/serve.out")"
URL="http://$ADDRESS"
echo "server at $URL"

# remote ARGS...: vellum against the server.
remote() { vl --url "$URL" "$@"; }

# ---- append -----------------------------------------------------------------------
remote append order-1 --type OrderCreated --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5b \
  --data '{"total":42,"currency":"EUR"}' --subject alice --time 2026-11-23T10:47:54.5Z \
  --correlation-id c-1 --metadata '{"by":"test"}'
check "append" 0 'o=={"stream":"order-1","firstRevision":0,"lastRevision":0,"position":0,"idempotent":False}'
remote append order-1 --type OrderCreated --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5b \
  --data '{"total":42,"currency":"EUR"}' --subject alice --time 2026-11-23T10:47:54.5Z \
  --correlation-id c-1 --metadata '{"by":"test"}'
check "an append retried with its id is idempotent" 0 'o["idempotent"] is True and o["position"]==0'
printf '%s\n' '{"type":"ItemAdded","data":{"sku":"b","qty":1}}' \
  '{"type":"Note","datacontenttype":"text/plain","data":"plain text"}' >"$WORK/batch.ndjson"
remote append order-1 --expected 0 <"$WORK/batch.ndjson"
check "append NDJSON" 0 'o["firstRevision"]==1 and o["lastRevision"]==2 and o["position"]==2'
VELLUM_URL="$URL" vl append 'odd name/with+chars?' --type Odd --data '{"b":1,"a":2}'
check "VELLUM_URL, and a stream name that needs escaping" 0 'o["stream"]=="odd name/with+chars?"'
remote append order-1 --expected 0 --type X --data '{}'
check "wrong expected revision exits 4" 4
check_stderr "the conflict reads as in embedded mode" \
  "wrong expected revision for stream 'order-1': expected 0, actual revision 2"
remote append order-1 --type X --data '{}' --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5b
check "an id reused with other content exits 4" 4
remote append '$system' --type X --data '{}'
check "a reserved name is a usage error (400)" 1

# ---- reads --------------------------------------------------------------------------
remote read order-1
check "read" 0 '[e["streamrevision"] for e in ev]==[0,1,2] and o["data"]=={"total":42,"currency":"EUR"}'
check "read: every attribute" 0 'o["subject"]=="alice" and o["time"]=="2026-11-23T10:47:54.500000000Z" and o["correlationid"]=="c-1" and o["metadata"]=={"by":"test"} and ev[2]["data_base64"]=="cGxhaW4gdGV4dA=="'
remote read order-1 --backward --limit 2
check "read backward" 0 '[e["streamrevision"] for e in ev]==[2,1]'
remote read order-1 --as-of-position 1
check "read as of a position" 0 'len(ev)==1'
remote read 'odd name/with+chars?'
check "read an escaped stream name" 0 'len(ev)==1 and o["data"]=={"b":1,"a":2}'
remote read no-such-stream
check "a missing stream exits 2" 2
check_stderr "with the server's message" "not found"
remote read-all --limit 0
check "read-all" 0 '[e["position"] for e in ev]==[0,1,2,3]'
remote read-all --type ItemAdded,Odd
check "read-all --type" 0 '[e["type"] for e in ev]==["ItemAdded","Odd"]'
remote read-all --stream-prefix 'odd name/'
check "read-all --stream-prefix (escaped)" 0 'len(ev)==1'
remote read-all --backward --limit 1
check "read-all backward" 0 '[e["position"] for e in ev]==[3]'
remote read-all --limit 1 --from 2
check "read-all --from" 0 '[e["position"] for e in ev]==[2]'

# ---- tail ------------------------------------------------------------------------------
remote tail order-1 -n 2
check "tail a stream" 0 '[e["streamrevision"] for e in ev]==[1,2]'
remote tail --all -n 2 --type OrderCreated,Note
check "tail --all with types" 0 '[e["position"] for e in ev]==[0,2]'
remote tail
check "tail without stream or --all is a usage error" 1

# tail -f on a stream (long poll) and on the log (polling), ended by signals.
"$VELLUM" --url "$URL" tail order-1 -n 1 -f >"$WORK/follow.out" 2>"$WORK/follow.err" &
FOLLOW_PID=$!
"$VELLUM" --url "$URL" tail --all -n 0 -f --type Later >"$WORK/follow_all.out" \
  2>"$WORK/follow_all.err" &
FOLLOW_ALL_PID=$!
wait_for "$WORK/follow.out" 1 || true
sleep 0.5  # the --all follower prints nothing first: give it time to start
remote append order-1 --type Later --data '{"n":1}'
remote append other-1 --type Later --data '{"n":2}'
wait_for "$WORK/follow.out" 2 || true
wait_for "$WORK/follow_all.out" 2 || true
kill -TERM "$FOLLOW_PID"
kill -INT "$FOLLOW_ALL_PID"
RC=0
wait "$FOLLOW_PID" || RC=$?
FOLLOW_PID=""
cp "$WORK/follow.out" "$OUT"
cp "$WORK/follow.err" "$ERR"
check "tail -f (long poll) prints new events, exits 0 on SIGTERM" 0 \
  '[e["streamrevision"] for e in ev]==[2,3] and ev[1]["type"]=="Later"'
RC=0
wait "$FOLLOW_ALL_PID" || RC=$?
cp "$WORK/follow_all.out" "$OUT"
cp "$WORK/follow_all.err" "$ERR"
check "tail --all -f prints new events of its types, exits 0 on SIGINT" 0 \
  '[e["position"] for e in ev]==[4,5]'

# ---- export and import -------------------------------------------------------------------
remote export
cp "$OUT" "$WORK/export.ndjson"
check "export" 0 'len(ev)==6'
check_stderr "export summary" "exported 6 events in"
remote read-all --limit 0
check_same "export prints what read-all prints" "$WORK/export.ndjson" "$OUT"

# An export of another (embedded) store, imported through the server.
LOCAL="$WORK/local"
vl --data "$LOCAL" --durability none append shop-1 --type Opened --data '{"z":1,"a":{"y":2,"b":3}}' \
  --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a60
vl --data "$LOCAL" --durability none append shop-2 --type Opened --data '[3,2,1]'
vl --data "$LOCAL" --durability none append shop-1 --type Closed \
  --content-type application/octet-stream --data 'bytes'
vl --data "$LOCAL" export
cp "$OUT" "$WORK/local.ndjson"
remote import "$WORK/local.ndjson"
check "import through the server" 0 'o["written"]==3 and o["alreadyPresent"]==0'
remote stat
check "stat through the server" 0 'o["events"]==9 and o["headPosition"]==9 and o["segments"]>=1 and o["logSizeBytes"]>0 and o["url"]=="'"$URL"'"'
remote import "$WORK/local.ndjson"
check "re-running the import through the server writes nothing" 0 \
  'o["written"]==0 and o["alreadyPresent"]==3'
remote stat
check "stat: event count unchanged" 0 'o["events"]==9'
remote read-all --limit 0 --category shop
cp "$OUT" "$WORK/shop.remote"
same_events "imported events match the export but for positions and recorded times" \
  "$WORK/local.ndjson" "$WORK/shop.remote" position recordedtime
remote read shop-1
check "data bytes arrive as exported (key order kept)" 0 \
  'o["data"]=={"z":1,"a":{"y":2,"b":3}} and list(o["data"])==["z","a"]'
printf '%s\n' "$(head -n 1 "$WORK/local.ndjson")" 'not json' >"$WORK/bad.ndjson"
remote import "$WORK/bad.ndjson"
check "a malformed line exits 1 through the server too" 1
check_stderr "naming the line" "line 2: not valid JSON"
vl --data "$WORK/conflict" --durability none append shop-2 --type Other --data '{}'
vl --data "$WORK/conflict" export
cp "$OUT" "$WORK/conflict.ndjson"
remote import "$WORK/conflict.ndjson"
check "importing other events of an existing stream exits 4" 4

# ---- what needs the files ----------------------------------------------------------------
remote verify
check "verify refuses --url" 1
check_stderr "verify: clear message" "cannot go through --url"
remote reindex
check "reindex refuses --url" 1

# ---- connection errors ---------------------------------------------------------------------
vl --url ftp://127.0.0.1 read-all
check "a URL that is not http(s) is a usage error" 1
vl --url http://127.0.0.1:1 read-all
check "no server listening exits 5" 5
check_stderr "connection refused is named" "cannot connect"

# ---- the same output as embedded mode --------------------------------------------------------
remote read-all --limit 0
cp "$OUT" "$WORK/all.remote"
remote read order-1 --backward
cp "$OUT" "$WORK/read.remote"
kill -TERM "$SERVER_PID"
RC=0
wait "$SERVER_PID" || RC=$?
SERVER_PID=""
check "the server stops with 0 on SIGTERM" 0
vl --data "$DATA" read-all --limit 0
check_same "read-all prints the same through the server and embedded" "$WORK/all.remote" "$OUT"
vl --data "$DATA" read order-1 --backward
check_same "read prints the same through the server and embedded" "$WORK/read.remote" "$OUT"

finish cli_url_test
