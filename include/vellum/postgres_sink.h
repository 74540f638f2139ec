// SPDX-License-Identifier: Apache-2.0
// A projection sink that keeps its read model in PostgreSQL, with the
// projection's checkpoint in the same database and the same transaction as
// the read-model changes: every event takes effect exactly once, across
// crashes of the projecting process and lost connections.
//
//   PostgresSinkOptions options;
//   options.conninfo = "host=127.0.0.1 port=5432 dbname=app";
//   options.projection = "users";
//   options.setup_sql = "CREATE TABLE IF NOT EXISTS users (id text PRIMARY KEY, email text)";
//   options.handle = [](const EventRef& event, pqxx::work& work) -> Status {
//     work.exec_params("INSERT INTO users VALUES ($1, $2) ON CONFLICT (id) DO UPDATE ...",
//                      std::string(event.subject), ...);
//     return ok_status();
//   };
//   options.reset = [](pqxx::work& work) -> Status {
//     work.exec("TRUNCATE users");
//     return ok_status();
//   };
//   VL_TRY(sink, make_postgres_sink(std::move(options)));
//   projections.add({.name = "users", .source = {...}, .sink = std::move(sink)});
//
// The checkpoint lives in the table
//   vellum_projection_checkpoints(name text PRIMARY KEY, next_position bigint NOT NULL,
//                                 updated_at timestamptz NOT NULL)
// which the sink creates if it is missing. One row per projection; `next_position` is what
// load_checkpoint() returns (a log position, or a revision for stream sources).
//
// This is the one public header that includes a third-party database header
// (libpqxx 6, Debian's libpqxx-dev): handlers get the open transaction as a
// pqxx::work. Link vellum::toolkit_pg.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <pqxx/transaction>

#include "vellum/event.h"
#include "vellum/projection.h"
#include "vellum/result.h"

namespace vellum {

struct PostgresSinkOptions {
  // A libpq connection string ("host=... port=... dbname=...") or URI
  // ("postgresql://..."). Never echoed in error messages (it may hold a
  // password).
  std::string conninfo;
  // The projection's name: the key of its checkpoint row. Use the name the
  // projection has in the Projections engine. 1-128 bytes.
  std::string projection;
  // SQL run in one transaction when the sink first connects, and again after
  // reset(): creates the read model's tables. Must be idempotent
  // (CREATE TABLE IF NOT EXISTS ...). May hold several statements. Optional.
  std::string setup_sql;
  // Runs after every (re)connection, outside any transaction: the place to
  // prepare statements (conn.prepare(name, sql)), which a new connection
  // forgets. Optional.
  std::function<Status(pqxx::connection_base&)> on_connect;
  // Applies one event to the read model inside the batch's transaction.
  // Returning an error (or throwing) fails the batch: the engine aborts it,
  // nothing of it is kept and the checkpoint stays before it. Required.
  std::function<Status(const EventRef&, pqxx::work&)> handle;
  // Deletes the read model (e.g. TRUNCATE) in the transaction that also
  // deletes the checkpoint row. Optional: without it, reset() deletes only
  // the checkpoint.
  std::function<Status(pqxx::work&)> reset;
};

// Makes the sink. It does not connect yet: the first load_checkpoint() (the
// engine calls it when the projection is added or started) connects, creates
// the checkpoint table and runs setup_sql, so an unreachable server is
// reported there.
//
// The sink's methods (the ProjectionSink interface) must be called from one
// thread at a time, in the engine's order; they return, never throw:
//   kUnavailable   the connection failed or broke. The batch is lost (nothing
//                  of it was committed) except after a commit() whose answer
//                  was lost: then the checkpoint row says whether it happened,
//                  and load_checkpoint() reads it. The next begin() reconnects.
//   kAborted       the checkpoint row moved under this sink (another process
//                  runs the same projection) or PostgreSQL chose this
//                  transaction as a deadlock or serialization victim: nothing
//                  was committed; load the checkpoint again and retry.
//   kResourceExhausted  PostgreSQL ran out of something (disk, connections).
//   kInternal      an SQL error in setup_sql or a handler (the message has the
//                  SQLSTATE and the statement), or a handler threw.
//   a handler's own error, as it returned it.
// kind() is "postgres"; exactly_once() is true.
//
// Errors of make_postgres_sink: kInvalidArgument (empty conninfo, bad
// projection name, no handler).
Result<std::unique_ptr<ProjectionSink>> make_postgres_sink(PostgresSinkOptions options);

}  // namespace vellum
