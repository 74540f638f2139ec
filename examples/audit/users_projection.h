// SPDX-License-Identifier: Apache-2.0
// The `users` read model of seed 003 in a real PostgreSQL database:
//
//   users(id text PRIMARY KEY, email text, role text, updated_at timestamptz,
//         last_position bigint)
//
// maintained by a projection of the `user` category through the PostgreSQL
// sink (include/vellum/postgres_sink.h): each batch of events and the
// projection's checkpoint row commit in one transaction, so the table never
// holds an event twice or misses one, whatever crashes. `updated_at` is the
// time the event was recorded in the log (not the time it was projected), and
// `last_position` the log position of the last event applied to the row.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "vellum/postgres_sink.h"
#include "vellum/projection.h"
#include "vellum/store.h"

namespace audit {

inline constexpr const char* kUsersProjection = "users";

// The sink options for the users table on `conninfo`.
vellum::PostgresSinkOptions users_sink_options(std::string conninfo);
// What the projection reads: the `user` category of the log.
vellum::ProjectionSource users_source();

struct ProjectProgress {
  uint64_t position = 0;          // the checkpoint: next log position to examine
  uint64_t target = 0;            // the log's head when the run started
  uint64_t events_processed = 0;  // applied by this run
};

// Runs the users projection on `store` until it has examined every event
// committed when it was called, calling `progress` now and then (every
// `progress_interval`) and once at the end. A lost connection is retried a
// few times (the sink reconnects); any other failure stops the run.
// With `rebuild`, the table and the checkpoint are emptied first (in one
// transaction) and every user event is applied again.
// Errors: the projection's (its message names the failing position), or
// kDeadlineExceeded when it makes no progress for `stall_timeout`.
vellum::Result<ProjectProgress> project_users(
    vellum::Store& store, const std::string& conninfo, bool rebuild,
    const std::function<void(const ProjectProgress&)>& progress,
    std::chrono::milliseconds progress_interval = std::chrono::milliseconds(500),
    std::chrono::milliseconds stall_timeout = std::chrono::seconds(60));

}  // namespace audit
