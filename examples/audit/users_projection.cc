// SPDX-License-Identifier: Apache-2.0
#include "users_projection.h"

#include <string_view>
#include <thread>
#include <utility>

#include "user.h"

namespace audit {

using vellum::ErrorCode;
using vellum::make_error;
using vellum::Status;

namespace {

// How often project_users() restarts a projection that lost its connection.
constexpr int kConnectionRetriesMax = 3;
constexpr std::chrono::milliseconds kConnectionRetryDelay{500};
// Events per PostgreSQL transaction: large enough that the commit (and its
// round trip) is paid rarely, small enough that a failed batch is cheap.
constexpr uint32_t kBatchEvents = 500;

constexpr const char* kSetupSql =
    "CREATE TABLE IF NOT EXISTS users ("
    " id text PRIMARY KEY,"
    " email text NOT NULL,"
    " role text NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " last_position bigint NOT NULL)";

// Prepared once per connection (PostgresSinkOptions::on_connect). $4 is the
// recorded time in microseconds since the epoch: exact in a double.
constexpr const char* kRegisterSql =
    "INSERT INTO users (id, email, role, updated_at, last_position)"
    " VALUES ($1, $2, $3, to_timestamp($4::double precision / 1e6), $5)"
    " ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, role = EXCLUDED.role,"
    " updated_at = EXCLUDED.updated_at, last_position = EXCLUDED.last_position";
constexpr const char* kEmailSql =
    "UPDATE users SET email = $2, updated_at = to_timestamp($3::double precision / 1e6),"
    " last_position = $4 WHERE id = $1";
constexpr const char* kRoleSql =
    "UPDATE users SET role = $2, updated_at = to_timestamp($3::double precision / 1e6),"
    " last_position = $4 WHERE id = $1";

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};

// Applies one event of a user stream to the users table.
Status apply_user_event(const User::Codec& codec, const vellum::EventRef& ref, pqxx::work& work) {
  vellum::Result<User::Event> decoded = codec.decode(ref);
  if (!decoded) {
    // Types this program does not know (written by newer code) are not
    // about the users table; anything else undecodable stops the projection.
    if (decoded.error().code == ErrorCode::kNotFound) return vellum::ok_status();
    return tl::unexpected(decoded.error());
  }
  // Streams are "user-<id>": the id comes from the stream, which the store
  // guarantees, rather than from data a client wrote.
  const std::string id(ref.stream.substr(User::kCategory.size() + 1));
  const int64_t time_us = ref.recorded_time_unix_ns / 1000;
  const auto position = static_cast<int64_t>(ref.position);
  pqxx::result written = std::visit(
      Overloaded{
          [&](const UserRegistered& e) {
            return work.exec_prepared("users_register", id, e.email, e.role, time_us, position);
          },
          [&](const UserEmailChanged& e) {
            return work.exec_prepared("users_email", id, e.new_email, time_us, position);
          },
          [&](const UserRoleChanged& e) {
            return work.exec_prepared("users_role", id, e.new_role, time_us, position);
          },
      },
      *decoded);
  if (written.affected_rows() != 1) {
    // A change to a user the table does not have: the table and the log
    // disagree (someone edited the table?). Stop rather than guess.
    return make_error(ErrorCode::kFailedPrecondition, "users table has no row '" + id + "' for " +
                                                          std::string(ref.type) + " at position " +
                                                          std::to_string(ref.position));
  }
  return vellum::ok_status();
}

}  // namespace

vellum::PostgresSinkOptions users_sink_options(std::string conninfo) {
  vellum::PostgresSinkOptions options;
  options.conninfo = std::move(conninfo);
  options.projection = kUsersProjection;
  options.setup_sql = kSetupSql;
  options.on_connect = [](pqxx::connection_base& connection) -> Status {
    connection.prepare("users_register", kRegisterSql);
    connection.prepare("users_email", kEmailSql);
    connection.prepare("users_role", kRoleSql);
    return vellum::ok_status();
  };
  options.handle = [codec = User::Codec()](const vellum::EventRef& event, pqxx::work& work) {
    return apply_user_event(codec, event, work);
  };
  options.reset = [](pqxx::work& work) -> Status {
    work.exec0("TRUNCATE users");
    return vellum::ok_status();
  };
  return options;
}

vellum::ProjectionSource users_source() {
  vellum::ProjectionSource source;
  source.filter.category = std::string(User::kCategory);
  return source;
}

vellum::Result<ProjectProgress> project_users(
    vellum::Store& store, const std::string& conninfo, bool rebuild,
    const std::function<void(const ProjectProgress&)>& progress,
    std::chrono::milliseconds progress_interval, std::chrono::milliseconds stall_timeout) {
  VL_TRY(sink, vellum::make_postgres_sink(users_sink_options(conninfo)));
  vellum::Projections projections(store);
  vellum::ProjectionSpec spec;
  spec.name = kUsersProjection;
  spec.source = users_source();
  spec.sink = std::move(sink);
  spec.batch_events = kBatchEvents;
  spec.start = !rebuild;
  VL_RETURN_IF_ERROR(projections.add(std::move(spec)));
  if (rebuild) VL_RETURN_IF_ERROR(projections.rebuild(kUsersProjection));

  ProjectProgress now{0, store.head_position(), 0};
  int retries = 0;
  auto last_move = std::chrono::steady_clock::now();
  for (;;) {
    VL_TRY(status, projections.wait_for(kUsersProjection, now.target, progress_interval));
    if (status.position != now.position) last_move = std::chrono::steady_clock::now();
    now.position = status.position;
    now.events_processed = status.events_processed;
    progress(now);
    if (status.state == vellum::ProjectionState::kFailed) {
      const std::string_view error = status.error;
      const bool lost_connection = error.starts_with("unavailable") || error.starts_with("aborted");
      if (lost_connection && retries < kConnectionRetriesMax) {
        retries++;
        std::this_thread::sleep_for(kConnectionRetryDelay);
        VL_RETURN_IF_ERROR(projections.start(kUsersProjection));  // from the checkpoint
        continue;
      }
      std::string where = status.failed_position ? " (at the event at position " +
                                                       std::to_string(*status.failed_position) + ")"
                                                 : "";
      return make_error(lost_connection ? ErrorCode::kUnavailable : ErrorCode::kFailedPrecondition,
                        "users projection stopped at position " + std::to_string(status.position) +
                            where + ": " + status.error);
    }
    if (status.position >= now.target) return now;
    if (std::chrono::steady_clock::now() - last_move > stall_timeout) {
      return make_error(ErrorCode::kDeadlineExceeded, "users projection made no progress for " +
                                                          std::to_string(stall_timeout.count()) +
                                                          " ms at position " +
                                                          std::to_string(status.position));
    }
  }
}

}  // namespace audit
