#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of `vellum export` and `vellum import` on real data
# directories: an export imported into an empty store reproduces every event
# (positions included), a re-run writes nothing, a bad line stops the import
# at that line with everything before it imported, a re-run after the fix
# resumes, and a target whose stream holds other events is a conflict.
# Usage: cli_export_import_test.sh <path to vellum binary>
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 <path to vellum binary>" >&2
  exit 2
fi
VELLUM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vellum-cli-export-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

SRC="$WORK/src"
# on DIR ARGS...: vellum on the store in DIR (nothing is fsynced: a test).
on() {
  local dir="$1"
  shift
  vl --data "$dir" --durability none "$@"
}

# ---- a source store with every kind of event ------------------------------
# Data keys out of order (import must not sort them), text and binary data,
# every optional attribute, interleaved streams, a name that needs escaping.
on "$SRC" append order-1 --type OrderCreated --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5b \
  --data '{"total":42,"currency":"EUR","lines":[{"sku":"b","qty":1},{"sku":"a","qty":2}]}' \
  --subject alice --time 2026-11-23T10:47:54.123456789Z --correlation-id c-1 --causation-id k-9 \
  --metadata '{"by":"test"}'
printf '%s\n' '{"n":1}' '{"n":2}' >"$WORK/raw.ndjson"
on "$SRC" append cart-7 --type Counted <"$WORK/raw.ndjson"
printf '%s\n' '{"type":"ItemAdded","data":{"sku":"z","at":1}}' \
  '{"type":"Note","datacontenttype":"text/plain","data":"plain text"}' \
  '{"type":"Blob","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}' \
  '{"type":"Versioned","schemaversion":3,"data":{"v":2}}' >"$WORK/batch.ndjson"
on "$SRC" append order-1 <"$WORK/batch.ndjson"
on "$SRC" append pay-1 --type Paid --data '{"amount":5}' --id 0190f3b2-1c2d-7e4f-8a9b-0c1d2e3f4a5c
on "$SRC" append cart-7 --type Counted --data '{"n":3}'
on "$SRC" append 'odd name/with+chars?' --type Odd --data '{"b":1,"a":2}'
on "$SRC" append order-2 --type OrderCreated --data '{"total":7}'
EVENTS=11
on "$SRC" read-all --limit 0
cp "$OUT" "$WORK/src.all"
check "source store holds $EVENTS events" 0 "len(ev)==$EVENTS"

# ---- export -----------------------------------------------------------------
on "$SRC" export
cp "$OUT" "$WORK/export.ndjson"
check "export" 0 "len(ev)==$EVENTS"
check_stderr "export summary on stderr" "exported $EVENTS events in"
check_same "export prints exactly what read-all prints" "$WORK/export.ndjson" "$WORK/src.all"
on "$SRC" export --category cart
check "export --category" 0 'len(ev)==3 and all(e["stream"]=="cart-7" for e in ev)'
cp "$OUT" "$WORK/carts.ndjson"
on "$SRC" export --from 9
check "export --from" 0 '[e["position"] for e in ev]==[9,10]'

# ---- import into an empty store ---------------------------------------------
DST="$WORK/dst"
on "$DST" import "$WORK/export.ndjson"
check "import into an empty store" 0 "o==dict(events=$EVENTS, written=$EVENTS, alreadyPresent=0, seconds=o['seconds'])"
check_stderr "import summary on stderr" "imported $EVENTS events (0 already present) in"
on "$DST" read-all --limit 0
cp "$OUT" "$WORK/dst.all"
same_events "import reproduces ids, streams, revisions, positions, data" \
  "$WORK/src.all" "$WORK/dst.all" recordedtime
sed 's/"recordedtime":"[^"]*",//' "$WORK/src.all" >"$WORK/src.norec"
sed 's/"recordedtime":"[^"]*",//' "$WORK/dst.all" >"$WORK/dst.norec"
check_same "imported events print byte for byte the same (data key order kept)" \
  "$WORK/src.norec" "$WORK/dst.norec"
on "$DST" read 'odd name/with+chars?'
check "read an imported stream" 0 'len(ev)==1 and o["data"]=={"b":1,"a":2}'
on "$DST" stat
check "stat after import" 0 "o['events']==$EVENTS"

# ---- a re-run writes nothing --------------------------------------------------
on "$DST" import "$WORK/export.ndjson"
check "re-running the import succeeds and writes nothing" 0 \
  "o['events']==$EVENTS and o['written']==0 and o['alreadyPresent']==$EVENTS"
check_stderr "re-run summary" "imported $EVENTS events ($EVENTS already present)"
on "$DST" stat
check "stat: event count unchanged by the re-run" 0 "o['events']==$EVENTS"
on "$DST" import --batch 1 "$WORK/export.ndjson"
check "re-run with other batching writes nothing either" 0 "o['written']==0"

# ---- stdin, batching ------------------------------------------------------------
on "$WORK/stdin" import - <"$WORK/export.ndjson"
check "import from stdin" 0 "o['written']==$EVENTS"
on "$WORK/batch1" import --batch 1 "$WORK/export.ndjson"
check "import one event per commit" 0 "o['written']==$EVENTS"
on "$WORK/batch1" read-all --limit 0
same_events "--batch 1 gives the same store" "$WORK/src.all" "$OUT" recordedtime
on "$WORK/batch0" import --batch 0 "$WORK/export.ndjson"
check "--batch 0 is a usage error" 1
on "$WORK/carts" import "$WORK/carts.ndjson"
check "a category export imports on its own" 0 "o['written']==3"
on "$WORK/nofile" import "$WORK/no-such-file.ndjson"
check "a missing file is a usage error" 1

# ---- a bad line stops the import at that line --------------------------------------
{
  head -n 3 "$WORK/export.ndjson"
  echo '{"type":"Broken",'
  tail -n +4 "$WORK/export.ndjson"
} >"$WORK/bad.ndjson"
PART="$WORK/part"
on "$PART" import "$WORK/bad.ndjson"
check "a malformed line exits 1" 1
check_stderr "the error names the line" "line 4"
check_stderr "the error says what stopped" "import stopped at line 4"
on "$PART" stat
check "everything before the bad line is imported, nothing after" 0 "o['events']==3"
on "$PART" import "$WORK/export.ndjson"
check "after the fix, a re-run resumes" 0 \
  "o['events']==$EVENTS and o['written']==$EVENTS-3 and o['alreadyPresent']==3"
on "$PART" read-all --limit 0
same_events "the resumed import gives the same store" "$WORK/src.all" "$OUT" recordedtime

grep -v '"stream":"pay-1"' "$WORK/export.ndjson" >"$WORK/nostream.ndjson" || true
sed -n '/"stream":"pay-1"/s/"stream":"pay-1",//p' "$WORK/export.ndjson" >>"$WORK/nostream.ndjson"
on "$WORK/nostream" import "$WORK/nostream.ndjson"
check "a line without a stream exits 1" 1
check_stderr "missing stream: line and attribute named" "line $EVENTS: \"stream\" is missing"
echo '{"type":"X","stream":"s","streamrevision":0,"color":"red"}' >"$WORK/unknown.ndjson"
on "$WORK/unknown" import "$WORK/unknown.ndjson"
check "an unknown attribute exits 1" 1
check_stderr "unknown attribute named" 'unknown attribute "color"'

# ---- a target whose stream holds other events -----------------------------------------
OTHER="$WORK/other"
on "$OTHER" append order-1 --type Unrelated --data '{}'
on "$OTHER" import "$WORK/export.ndjson"
check "a stream with other events in the target is a conflict (exit 4)" 4
check_stderr "the conflict is spelled out" "wrong expected revision for stream 'order-1'"
check_stderr "the conflict names the line" "import stopped at line 1"
on "$OTHER" stat
check "nothing was interleaved" 0 "o['events']==1"
on "$WORK/gap" import <(grep '"streamrevision":[1-9]' "$WORK/export.ndjson" | head -n 1)
check "a stream's later events alone do not import (revisions kept)" 4

finish cli_export_import_test
