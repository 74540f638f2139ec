#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The audit example end to end: drives the `audit` CLI on a fresh store and
# checks the PostgreSQL users table with psql. Needs a server:
#
#   tests/pg/with_postgres.sh examples/audit/audit_e2e_test.sh build/debug/examples/audit/audit
#
# (CTest runs exactly that: test audit_e2e_test, label integration.)
set -euo pipefail

AUDIT_BIN=${1:?usage: audit_e2e_test.sh AUDIT_BINARY}
: "${VELLUM_TEST_PG:?run under tests/pg/with_postgres.sh}"
DATA=$(mktemp -d "${TMPDIR:-/tmp}/audit-e2e.XXXXXX")
trap 'rm -rf "$DATA"' EXIT

audit() { "$AUDIT_BIN" --data "$DATA" "$@"; }
sql() { psql "$VELLUM_TEST_PG" -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 -c "$1"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

# expect_output NEEDLE COMMAND...: runs COMMAND (must succeed), output must contain NEEDLE.
expect_output() {
  local needle=$1 output
  shift
  output=$("$@" 2>&1) || fail "'$*' failed: $output"
  echo "$output"
  [[ $output == *"$needle"* ]] || fail "'$*' printed no '$needle'"
}

# expect_exit CODE NEEDLE COMMAND...: COMMAND must exit with CODE and print NEEDLE.
expect_exit() {
  local code=$1 needle=$2 output status=0
  shift 2
  output=$("$@" 2>&1) || status=$?
  echo "$output (exit $status)"
  [ "$status" = "$code" ] || fail "'$*' exited $status, expected $code"
  [[ $output == *"$needle"* ]] || fail "'$*' printed no '$needle'"
}

expect_users() {
  local expected=$1 actual
  actual=$(sql "SELECT id, email, role, last_position FROM users ORDER BY id")
  [ "$actual" = "$expected" ] || fail "users table is
$actual
expected
$expected"
}

step "commands"
expect_output "appended 1 event(s) to user-alice at revision 0, position 0" \
  audit register alice --email alice@example.com --role member --by admin --correlation req-1
expect_output "position 1" audit register bob --email bob@example.com --by admin
expect_exit 4 "not registered" audit change-email carol --email carol@example.com
expect_exit 4 "already registered" audit register bob --email bob@example.com
expect_exit 1 "not an email" audit change-email alice --email nope
before_change=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.05
expect_output "position 2" audit change-email alice --email alice@new.example \
  --reason "user request" --by alice --correlation req-2 --causation support-ticket-7
expect_output "email unchanged" audit change-email alice --email alice@new.example
expect_output "position 3" audit change-role alice --role admin --by owner-1 --command-id cmd-9
expect_output "command already applied" audit change-role alice --role admin --command-id cmd-9

step "projection into PostgreSQL"
expect_output "caught up at position 4" audit project --pg "$VELLUM_TEST_PG"
expect_users "alice alice@new.example admin 3
bob bob@example.com member 1"
[ "$(sql "SELECT next_position FROM vellum_projection_checkpoints WHERE name = 'users'")" = 4 ] ||
  fail "checkpoint row is not 4"
# updated_at is the time the event was recorded in the log (to the microsecond).
bob_time=$(audit events bob | awk 'NR == 2 {print substr($2, 1, 26)}')
bob_row=$(sql "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')
               FROM users WHERE id = 'bob'")
[ "$bob_row" = "$bob_time" ] || fail "bob's updated_at $bob_row is not the event's time $bob_time"

step "projecting again applies nothing; new events are applied incrementally"
expect_output "0 event(s) applied" audit project --pg "$VELLUM_TEST_PG"
expect_output "position 4" audit register carol --email carol@example.com --role viewer
expect_output "position 5" audit change-role bob --role admin
expect_output "2 event(s) applied" audit project --pg "$VELLUM_TEST_PG"
expect_users "alice alice@new.example admin 3
bob bob@example.com admin 5
carol carol@example.com viewer 4"

step "a table that disagrees with the log stops the projection; it skips nothing"
sql "DELETE FROM users WHERE id = 'carol'"
expect_output "position 6" audit change-email carol --email carol@new.example
expect_exit 4 "users table has no row 'carol' for UserEmailChanged at position 6" \
  audit project --pg "$VELLUM_TEST_PG"
[ "$(sql "SELECT next_position FROM vellum_projection_checkpoints WHERE name = 'users'")" = 6 ] ||
  fail "the checkpoint moved past the failing event"
expect_output "7 event(s) applied" audit project --pg "$VELLUM_TEST_PG" --rebuild
expect_users "alice alice@new.example admin 3
bob bob@example.com admin 5
carol carol@new.example viewer 6"

step "GDPR access: every event about alice"
expect_output "3 event(s) about alice" audit events alice
audit events alice | grep -q "UserEmailChanged  correlation=req-2 causation=support-ticket-7" ||
  fail "the email change does not carry its correlation and causation ids"
audit events alice | grep -q '"reason":"user request"' || fail "the reason is not in the event"

step "state of alice then and now"
expect_output "email alice@example.com, role member (revision 0" \
  audit state alice --at "$before_change"
expect_output "email alice@new.example, role admin (revision 2" audit state alice
expect_output "email alice@new.example, role admin" audit state alice --at "$(date -u +%F)"
expect_exit 2 "was not registered at 2000-01-01T23:59:59" audit state alice --at 2000-01-01
expect_exit 1 "neither RFC 3339" audit state alice --at yesterday

step "an unreachable server is an error, not a crash"
expect_exit 5 "cannot connect" audit project --pg "host=127.0.0.1 port=1 connect_timeout=5"

echo "audit e2e: all checks passed"
