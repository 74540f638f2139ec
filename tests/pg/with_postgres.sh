#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a command against a real, throwaway PostgreSQL server.
#
#   tests/pg/with_postgres.sh COMMAND [ARG...]   run COMMAND, then stop the server
#   tests/pg/with_postgres.sh                    an interactive shell ($SHELL) instead
#
# The server lives in a fresh temporary directory (initdb), listens only on
# 127.0.0.1 on a free port (no Unix socket outside that directory), trusts
# loopback connections and is tuned for tests (fsync off: it is thrown away).
# The command sees
#   VELLUM_TEST_PG   a libpq conninfo string: "host=127.0.0.1 port=N user=postgres dbname=postgres"
#   PGHOST PGPORT PGUSER PGDATABASE   the same, so that plain `psql` connects
# The server is stopped and the directory removed however the command ends
# (trap), and the command's exit status is this script's exit status.
#
# Needs the Debian package `postgresql` (./vellum.sh deps installs it). initdb
# refuses to run as root, so as root the server runs as the `postgres` OS user
# (runuser); the command itself runs as the caller.
# Environment: PG_BINDIR (default: the newest /usr/lib/postgresql/*/bin),
# VELLUM_PG_KEEP=1 keeps the directory (and its server.log) for debugging.
set -uo pipefail

log() { printf 'with_postgres: %s\n' "$*" >&2; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    echo "$PG_BINDIR"
    return
  fi
  # Debian installs the server binaries outside PATH, one directory per major version.
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -n 1)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
    echo "$newest"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/initdb" ] || [ ! -x "$BINDIR/pg_ctl" ]; then
  log "no PostgreSQL server binaries found (install the Debian package 'postgresql'," \
    "or set PG_BINDIR)"
  exit 127
fi

# As root, everything that touches the cluster runs as `postgres`.
AS_OWNER=()
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    log "running as root needs the 'postgres' OS user (created by the 'postgresql' package)"
    exit 127
  fi
  AS_OWNER=(runuser -u postgres --)
fi

# The server's user must be able to reach the directory: a TMPDIR under /root would not do.
TMP_BASE="${TMPDIR:-/tmp}"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$TMP_BASE" 2>/dev/null; then
  TMP_BASE=/tmp
fi
PG_DIR=$(mktemp -d "$TMP_BASE/vellum-pg.XXXXXXXX") || {
  log "cannot create a temporary directory in $TMP_BASE"
  exit 1
}
DATA_DIR="$PG_DIR/data"
SERVER_LOG="$PG_DIR/server.log"
SERVER_STARTED=0

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ "$SERVER_STARTED" = 1 ]; then
    # Immediate: nothing in this cluster is worth a clean shutdown checkpoint.
    "${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >/dev/null 2>&1 ||
      log "pg_ctl stop failed; see $SERVER_LOG"
  fi
  if [ "${VELLUM_PG_KEEP:-0}" = 1 ]; then
    log "kept $PG_DIR"
  else
    rm -rf "$PG_DIR"
  fi
  exit "$status"
}
# The command runs in the background so that a signal to this script is
# handled at once: it is passed on to the command (as TERM: background commands
# ignore INT), then the EXIT trap stops the server. SIGKILL cannot be trapped:
# after one, the server and PG_DIR are left behind.
COMMAND_PID=""
on_signal() {
  if [ -n "$COMMAND_PID" ]; then
    kill -TERM "$COMMAND_PID" 2>/dev/null
    wait "$COMMAND_PID" 2>/dev/null
  fi
  exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

if [ ${#AS_OWNER[@]} -gt 0 ]; then
  chown postgres: "$PG_DIR"
fi

if ! "${AS_OWNER[@]}" "$BINDIR/initdb" -D "$DATA_DIR" -U postgres --auth=trust -E UTF8 \
  --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
  log "initdb failed:"
  cat "$PG_DIR/initdb.log" >&2
  exit 1
fi

# A port nobody listens on now. Another process can take it before the server
# binds it, so a failed start is retried with a new port.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

PORT=""
for attempt in 1 2 3 4 5; do
  PORT=$(free_port) || {
    log "cannot find a free port (python3 missing?)"
    exit 1
  }
  # listen_addresses: loopback only. unix_socket_directories: inside PG_DIR,
  # so nothing is written to /var/run/postgresql. fsync and friends off: the
  # cluster is thrown away, and the tests crash clients, not the server.
  if "${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$SERVER_LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories='$PG_DIR'" \
    -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    -o "-c max_connections=50 -c shared_buffers=32MB" \
    start >/dev/null 2>&1; then
    SERVER_STARTED=1
    break
  fi
  log "server did not start on port $PORT (attempt $attempt)"
  # A half-started server must not survive into the next attempt.
  "${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
done
if [ "$SERVER_STARTED" != 1 ]; then
  log "giving up; the server log says:"
  tail -n 30 "$SERVER_LOG" >&2 2>/dev/null
  exit 1
fi

export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
export VELLUM_TEST_PG="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
log "PostgreSQL $("$BINDIR/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$PORT" \
  "(VELLUM_TEST_PG=\"$VELLUM_TEST_PG\")"

if [ $# -eq 0 ]; then
  set -- "${SHELL:-/bin/bash}"
fi
# Not exec: the trap must run after the command to stop the server. `<&0`
# keeps the caller's stdin (background commands would get /dev/null).
"$@" <&0 &
COMMAND_PID=$!
wait "$COMMAND_PID"
exit $?
