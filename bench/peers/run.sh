#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Peer comparison benchmark driver (see README.md beside this file).
# Installs what is missing, builds peer_bench, measures the disk with fio,
# starts a throwaway PostgreSQL and Redis on 127.0.0.1 in a temporary
# directory, runs the same scenarios against PostgreSQL, SQLite (WAL) and
# Redis Streams, and writes one JSON object per line to the results file.
# Servers are stopped and temporary files removed on any exit.
#
#   bench/peers/run.sh [--quick] [--out FILE]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/results.jsonl"
QUICK=0
PACKAGES=(postgresql redis-server sqlite3 fio libpq-dev libsqlite3-dev
          libhiredis-dev g++ cmake python3)

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file"; OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  WRITERS="1 8"; SQLITE_WRITERS="1 8"; BATCHES="1 100"; ZIPF_WRITERS=""
  APPEND_SECONDS=0.5; APPEND_CAP=5000; READ_SECONDS=0.3; READ_ALL_EVENTS=5000
  FIO_SYNC_SIZE=8m; FIO_SEQ_SIZE=64m; FIO_RUNTIME=3
else
  WRITERS="1 8 32"; SQLITE_WRITERS="1 8"; BATCHES="1 100"; ZIPF_WRITERS=32
  APPEND_SECONDS=5; APPEND_CAP=20000000; READ_SECONDS=3; READ_ALL_EVENTS=200000
  FIO_SYNC_SIZE=64m; FIO_SEQ_SIZE=1g; FIO_RUNTIME=20
fi

pg_bin_dir() {
  local dir
  local candidates
  candidates="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -rV)"
  for dir in /usr/lib/postgresql/15/bin $candidates; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
}

ensure_packages() {
  local missing=0 cmd header
  for cmd in redis-server redis-cli sqlite3 fio g++ python3 ss; do
    command -v "$cmd" >/dev/null || missing=1
  done
  for header in /usr/include/postgresql/libpq-fe.h /usr/include/sqlite3.h \
                /usr/include/hiredis/hiredis.h; do
    [ -f "$header" ] || missing=1
  done
  [ -n "$(pg_bin_dir)" ] || missing=1
  [ "$missing" = 1 ] || return 0
  [ "$(id -u)" = 0 ] || die "missing packages; as root: apt-get install ${PACKAGES[*]}"
  echo "== installing ${PACKAGES[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}" iproute2
}

build() {
  mkdir -p "$HERE/build"
  BIN="$HERE/build/peer_bench"
  g++ -O2 -std=c++20 -Wall -Wextra -I/usr/include/postgresql \
      "$HERE/peer_bench.cc" -o "$BIN" -lpq -lsqlite3 -lhiredis -lpthread
}

# A scratch directory on the same file system as the repository, so fio and
# the databases measure the disk /work lives on.
make_work_dir() {
  local parent="${TMPDIR:-/tmp}"
  if [ "$(stat -c %d "$parent")" != "$(stat -c %d "$REPO")" ]; then
    parent="$HERE"
  fi
  WORK="$(mktemp -d "$parent/.vellum-peers.XXXXXX")"
  chmod 755 "$WORK"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port="$1"
  while ss -Hltn "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "${PG_STARTED:-}" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1
  fi
  if [ -n "${REDIS_PID:-}" ]; then
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
  exit "$rc"
}

start_postgres() {
  PG_BIN="$(pg_bin_dir)"
  PG_PORT="$(free_port 55432)"
  mkdir -p "$WORK/pg"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$WORK/pg"; fi
  as_postgres "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust \
      -E UTF8 --locale=C >"$WORK/pg/initdb.log" 2>&1 \
      || { cat "$WORK/pg/initdb.log" >&2; die "initdb failed"; }
  cat >>"$WORK/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
max_connections = 100
EOF
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" \
      -w -t 60 start >/dev/null || { cat "$WORK/pg/server.log" >&2; die "postgres did not start"; }
  PG_STARTED=1
}

start_redis() {
  REDIS_PORT="$(free_port 56379)"
  mkdir -p "$WORK/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" \
      --appendonly yes --appendfsync always --save "" \
      --auto-aof-rewrite-percentage 0 --daemonize no \
      --logfile "$WORK/redis/server.log" &
  REDIS_PID=$!
  local tries
  for tries in $(seq 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  cat "$WORK/redis/server.log" >&2
  echo "redis: no PONG after $tries tries" >&2
  die "redis did not start"
}

emit() { echo "$1" | tee -a "$OUT"; }

# bench SYSTEM ARGS...: one peer_bench run; a failure is counted, not fatal.
bench() {
  local system="$1" line
  shift
  local conn=()
  case "$system" in
    postgres)
      conn=(--pg-conninfo "host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres") ;;
    sqlite) conn=(--sqlite-path "$WORK/sqlite/events.db") ;;
    redis) conn=(--redis-host 127.0.0.1 --redis-port "$REDIS_PORT") ;;
  esac
  if line="$("$BIN" --system "$system" "${conn[@]}" "$@" 2>"$WORK/last.err")"; then
    emit "$line"
  else
    FAILURES=$((FAILURES + 1))
    echo "FAILED: $system $*: $(tail -n 3 "$WORK/last.err")" >&2
  fi
}

# fio_line FILE SCENARIO: normalizes one fio JSON report to a result line.
fio_line() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
scenario = sys.argv[2]
job = report["jobs"][0]
write = job["write"]
seconds = job["job_runtime"] / 1000.0
if scenario == "fdatasync":
    lat = job["sync"]["lat_ns"]
    events, what = lat["N"], "fdatasync after 4 KiB write"
else:
    lat, events, what = write["clat_ns"], write["total_ios"], "1 MiB O_DIRECT write"
pct = lat.get("percentile", {})
us = lambda key: round(pct.get(key, 0) / 1000.0, 1)
print(json.dumps({
    "system": "fio", "scenario": scenario, "writers": 1, "batch": 1,
    "events": events, "seconds": round(seconds, 3),
    "events_per_sec": round(events / seconds, 1) if seconds else 0,
    "mb_per_sec": round(write["bw_bytes"] / 1e6, 3),
    "p50_us": us("50.000000"), "p99_us": us("99.000000"),
    "p999_us": us("99.900000"), "max_us": round(lat.get("max", 0) / 1000.0, 1),
    "latency_of": what, "version": report.get("fio version", "?"),
}, separators=(",", ":")))
EOF
}

run_fio() {
  local dir="$WORK/fio"
  mkdir -p "$dir"
  fio --name=fsync --rw=write --bs=4k --size="$FIO_SYNC_SIZE" --fdatasync=1 \
      --runtime="$FIO_RUNTIME" --directory="$dir" --output-format=json \
      --output="$dir/fsync.json" >/dev/null
  emit "$(fio_line "$dir/fsync.json" fdatasync)"
  rm -f "$dir"/fsync.*
  fio --name=seqwrite --rw=write --bs=1m --size="$FIO_SEQ_SIZE" --direct=1 \
      --end_fsync=1 --runtime="$FIO_RUNTIME" --directory="$dir" \
      --output-format=json --output="$dir/seq.json" >/dev/null
  emit "$(fio_line "$dir/seq.json" seqwrite)"
  rm -rf "$dir"
}

# run_system SYSTEM WRITER_COUNTS ZIPF_WRITER_COUNTS
run_system() {
  local system="$1" writers="$2" zipf_writers="$3" w b n
  for w in $writers; do
    for b in $BATCHES; do
      bench "$system" --scenario append --writers "$w" --batch "$b" \
          --events "$APPEND_CAP" --seconds "$APPEND_SECONDS"
    done
  done
  for w in $zipf_writers; do
    bench "$system" --scenario append --writers "$w" --batch 1 --zipf \
        --events "$APPEND_CAP" --seconds "$APPEND_SECONDS"
  done
  for n in 1000 10000; do
    bench "$system" --scenario read-stream --stream-events "$n" --seconds "$READ_SECONDS"
  done
  bench "$system" --scenario read-all --events "$READ_ALL_EVENTS" --seconds "$READ_SECONDS"
}

main() {
  local started=$SECONDS
  FAILURES=0
  ensure_packages
  build
  make_work_dir
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$(dirname "$OUT")" "$WORK/sqlite"
  : >"$OUT"
  echo "== $(uname -sr), $(nproc) cpus, scratch $WORK" \
       "on $(df --output=source "$WORK" | tail -1)" >&2
  run_fio
  start_postgres
  start_redis
  run_system postgres "$WRITERS" "$ZIPF_WRITERS"
  run_system sqlite "$SQLITE_WRITERS" "${ZIPF_WRITERS:+8}"
  run_system redis "$WRITERS" "$ZIPF_WRITERS"
  echo "== $(wc -l <"$OUT") results in $OUT, $FAILURES failed, $((SECONDS - started)) s" >&2
  [ "$FAILURES" = 0 ]
}

main
