// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL projection sink (include/vellum/postgres_sink.h): one
// connection, one transaction per batch holding the handler's changes and the
// checkpoint row. libpqxx reports failures by throwing; every call here
// catches them and turns them into Errors, so nothing escapes into the engine.
#include "vellum/postgres_sink.h"

#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include "base/assert.h"

namespace vellum {
namespace {

// The engine's rule for projection names ([A-Za-z0-9_.-]{1,128}), checked
// here too because the name is the checkpoint row's key.
constexpr size_t kProjectionNameBytesMax = 128;
// Statements quoted in error messages are cut to this many bytes: a batch
// insert can be megabytes long.
constexpr size_t kQueryInErrorBytesMax = 240;
// pg_advisory_xact_lock key held while creating tables: two sinks starting at
// once would otherwise race in CREATE TABLE IF NOT EXISTS (a unique-violation
// on pg_type). The bytes spell "vellum".
constexpr int64_t kSetupLockKey = 0x76656c6c756d;

constexpr const char* kCreateCheckpointTable =
    "CREATE TABLE IF NOT EXISTS vellum_projection_checkpoints ("
    " name text PRIMARY KEY,"
    " next_position bigint NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now())";
constexpr const char* kSelectCheckpoint =
    "SELECT next_position FROM vellum_projection_checkpoints WHERE name = $1";
// The checkpoint write is guarded by the value this sink last saw: if another
// process running the same projection moved it meanwhile, no row matches and
// the batch is rolled back instead of being applied twice.
constexpr const char* kUpdateCheckpoint =
    "UPDATE vellum_projection_checkpoints SET next_position = $2, updated_at = now()"
    " WHERE name = $1 AND next_position = $3";
constexpr const char* kInsertCheckpoint =
    "INSERT INTO vellum_projection_checkpoints (name, next_position, updated_at)"
    " VALUES ($1, $2, now()) ON CONFLICT (name) DO NOTHING";
constexpr const char* kDeleteCheckpoint =
    "DELETE FROM vellum_projection_checkpoints WHERE name = $1";

bool valid_projection_name(std::string_view name) {
  if (name.empty() || name.size() > kProjectionNameBytesMax) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// libpq's messages end with a newline and sometimes hold several lines
// (indented with tabs): one line, single spaces.
std::string one_line(std::string_view text) {
  std::string line;
  for (char c : text) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (!space) {
      line += c;
    } else if (!line.empty() && line.back() != ' ') {
      line += ' ';
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// Class 08 is "connection exception"; 57P01-57P03 are the server shutting the
// session down (pg_terminate_backend, a crash, a restart). Either way the
// connection is gone.
bool sqlstate_ends_connection(std::string_view sqlstate) {
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

ErrorCode code_for_sqlstate(std::string_view sqlstate) {
  if (sqlstate_ends_connection(sqlstate)) return ErrorCode::kUnavailable;
  if (sqlstate == "40001" || sqlstate == "40P01") return ErrorCode::kAborted;  // retry the batch
  if (sqlstate.starts_with("53")) return ErrorCode::kResourceExhausted;
  if (sqlstate == "57014") return ErrorCode::kCancelled;  // statement timeout, pg_cancel_backend
  return ErrorCode::kInternal;
}

class PostgresSink final : public ProjectionSink {
 public:
  explicit PostgresSink(PostgresSinkOptions options) : options_(std::move(options)) {}
  ~PostgresSink() override {
    abort();
    drop_connection();
  }
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  std::string_view kind() const override { return "postgres"; }
  bool exactly_once() const override { return true; }

  Result<uint64_t> load_checkpoint() override;
  Status begin() override;
  Status apply(const EventRef& event) override;
  Status commit(uint64_t next) override;
  void abort() override;
  Status reset() override;

 private:
  Status connect();
  Status run_setup();
  // Runs `operation` on the connection, (re)connecting first if needed. A
  // connection the server closed while it sat idle is only noticed when used,
  // so after a broken connection `operation` runs once more on a new one.
  // Only for idempotent operations.
  template <class T, class Operation>
  Result<T> with_connection(std::string_view doing, Operation operation);
  // Translates the exception being handled into an Error, and forgets the
  // connection if it is broken. Call only inside a catch block.
  Error error_from_current_exception(std::string_view doing);
  void drop_connection();
  std::string prefix() const { return "postgres sink '" + options_.projection + "': "; }

  PostgresSinkOptions options_;
  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<pqxx::work> work_;  // the open batch, between begin() and commit()/abort()
  bool setup_done_ = false;           // tables created on this server
  // The checkpoint row as this sink last saw it (nullopt: no row). Unknown
  // after a commit whose outcome was lost; load_checkpoint() learns it again.
  bool checkpoint_known_ = false;
  std::optional<uint64_t> stored_checkpoint_;
};

void PostgresSink::drop_connection() {
  // The transaction refers to the connection: it goes first.
  work_.reset();
  connection_.reset();
}

Error PostgresSink::error_from_current_exception(std::string_view doing) {
  std::string message = prefix() + "cannot " + std::string(doing) + ": ";
  ErrorCode code = ErrorCode::kInternal;
  bool broken = false;
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    code = ErrorCode::kUnavailable;
    broken = true;
    message += one_line(e.what()) + " (the commit may or may not have happened)";
  } catch (const pqxx::broken_connection& e) {
    code = ErrorCode::kUnavailable;
    broken = true;
    // Failing to connect at all is not "lost"; the message says what libpq saw.
    if (doing != "connect") message += "connection lost: ";
    message += one_line(e.what());
  } catch (const pqxx::sql_error& e) {
    code = code_for_sqlstate(e.sqlstate());
    broken = sqlstate_ends_connection(e.sqlstate());
    message += one_line(e.what()) + " [SQLSTATE " + e.sqlstate() + "]";
    if (!e.query().empty()) {
      std::string query = one_line(e.query());
      if (query.size() > kQueryInErrorBytesMax)
        query = query.substr(0, kQueryInErrorBytesMax) + "...";
      message += " in: " + query;
    }
  } catch (const std::exception& e) {
    message += one_line(e.what());
  } catch (...) {
    message += "unknown exception";
  }
  if (broken || (connection_ != nullptr && !connection_->is_open())) drop_connection();
  return Error{code, std::move(message), std::nullopt};
}

Status PostgresSink::connect() {
  VL_ASSERT(work_ == nullptr);
  drop_connection();
  try {
    auto connection = std::make_unique<pqxx::connection>(options_.conninfo);
    // Name the session for pg_stat_activity, unless the conninfo named it.
    pqxx::nontransaction session(*connection);
    pqxx::row current = session.exec1("SELECT current_setting('application_name')");
    if (current[0].as<std::string>().empty()) {
      session.exec0("SET application_name TO " +
                    session.quote("vellum-projection:" + options_.projection));
    }
    session.commit();
    connection_ = std::move(connection);
  } catch (...) {
    return make_error(error_from_current_exception("connect"));
  }
  if (options_.on_connect) {
    Status prepared = make_error(ErrorCode::kInternal, "not run");
    try {
      prepared = options_.on_connect(*connection_);
    } catch (...) {
      prepared = make_error(error_from_current_exception("prepare the connection (on_connect)"));
    }
    if (!prepared) {
      drop_connection();
      return prepared;
    }
  }
  if (!setup_done_) return run_setup();
  return ok_status();
}

Status PostgresSink::run_setup() {
  VL_ASSERT(connection_ != nullptr);
  VL_ASSERT(work_ == nullptr);
  try {
    pqxx::work setup(*connection_, "vellum-setup");
    setup.exec_params1("SELECT pg_advisory_xact_lock($1)", kSetupLockKey);
    setup.exec0(kCreateCheckpointTable);
    if (!options_.setup_sql.empty()) setup.exec(options_.setup_sql);
    setup.commit();
  } catch (...) {
    return make_error(error_from_current_exception("run the setup SQL"));
  }
  setup_done_ = true;
  return ok_status();
}

template <class T, class Operation>
Result<T> PostgresSink::with_connection(std::string_view doing, Operation operation) {
  for (int attempt = 1;; ++attempt) {
    if (connection_ == nullptr || !connection_->is_open()) VL_RETURN_IF_ERROR(connect());
    try {
      return operation(*connection_);
    } catch (...) {
      Error error = error_from_current_exception(doing);
      // A live connection means the failure was not the connection's.
      if (connection_ != nullptr || attempt == 2) return make_error(std::move(error));
    }
  }
}

Result<uint64_t> PostgresSink::load_checkpoint() {
  VL_ASSERT(work_ == nullptr);
  using Stored = std::optional<int64_t>;
  VL_TRY(stored, with_connection<Stored>("read the checkpoint", [&](pqxx::connection& c) {
           pqxx::read_transaction read(c, "vellum-checkpoint");
           pqxx::result rows = read.exec_params(kSelectCheckpoint, options_.projection);
           read.commit();
           return rows.empty() ? Stored{} : Stored{rows[0][0].as<int64_t>()};
         }));
  if (stored.has_value() && *stored < 0) {
    return make_error(ErrorCode::kFailedPrecondition,
                      prefix() + "the checkpoint row holds a negative position (" +
                          std::to_string(*stored) + "): not written by Vellum");
  }
  checkpoint_known_ = true;
  stored_checkpoint_.reset();
  if (stored.has_value()) stored_checkpoint_ = static_cast<uint64_t>(*stored);
  return stored_checkpoint_.value_or(0);
}

Status PostgresSink::begin() {
  // REQUIRES: the previous batch was committed or aborted.
  VL_ASSERT(work_ == nullptr);
  if (!checkpoint_known_) {
    return make_error(ErrorCode::kAborted,
                      prefix() +
                          "the outcome of the last commit is unknown (or the checkpoint "
                          "was never loaded): load_checkpoint() first");
  }
  return with_connection<void>("begin a transaction", [&](pqxx::connection& c) -> Status {
    work_ = std::make_unique<pqxx::work>(c, "vellum-batch");
    return ok_status();
  });
}

Status PostgresSink::apply(const EventRef& event) {
  VL_ASSERT(work_ != nullptr);
  try {
    return options_.handle(event, *work_);
  } catch (...) {
    return make_error(error_from_current_exception(
        "apply the event at position " + std::to_string(event.position) + " (" +
        std::string(event.type) + " in " + std::string(event.stream) + ")"));
  }
}

Status PostgresSink::commit(uint64_t next) {
  VL_ASSERT(work_ != nullptr);
  VL_ASSERT(checkpoint_known_);
  VL_ASSERT(next <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  const auto next_signed = static_cast<int64_t>(next);
  try {
    pqxx::result written =
        stored_checkpoint_.has_value()
            ? work_->exec_params(kUpdateCheckpoint, options_.projection, next_signed,
                                 static_cast<int64_t>(*stored_checkpoint_))
            : work_->exec_params(kInsertCheckpoint, options_.projection, next_signed);
    if (written.affected_rows() != 1) {
      abort();
      checkpoint_known_ = false;
      return make_error(ErrorCode::kAborted,
                        prefix() +
                            "the checkpoint row changed under this sink (is another "
                            "process running the same projection?); batch rolled back");
    }
  } catch (...) {
    Error error = error_from_current_exception("write the checkpoint");
    abort();
    return make_error(std::move(error));
  }
  try {
    work_->commit();
  } catch (...) {
    // Whether COMMIT happened is known only from the checkpoint row now.
    checkpoint_known_ = false;
    Error error = error_from_current_exception("commit the batch");
    work_.reset();
    return make_error(std::move(error));
  }
  work_.reset();
  stored_checkpoint_ = next;
  return ok_status();
}

void PostgresSink::abort() {
  if (work_ == nullptr) return;
  try {
    work_->abort();
  } catch (...) {
    // The connection is gone, and the server rolls the transaction back itself.
    (void)error_from_current_exception("roll back");
  }
  work_.reset();
}

Status PostgresSink::reset() {
  VL_ASSERT(work_ == nullptr);
  // The read model, the checkpoint and the recreated tables change in one
  // transaction: a reset that fails halfway leaves the projection as it was.
  Status done = with_connection<void>("reset", [&](pqxx::connection& c) -> Status {
    pqxx::work reset(c, "vellum-reset");
    if (options_.reset) VL_RETURN_IF_ERROR(options_.reset(reset));
    reset.exec_params0(kDeleteCheckpoint, options_.projection);
    if (!options_.setup_sql.empty()) reset.exec(options_.setup_sql);
    reset.commit();
    return ok_status();
  });
  if (!done) return done;
  checkpoint_known_ = true;
  stored_checkpoint_.reset();
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<ProjectionSink>> make_postgres_sink(PostgresSinkOptions options) {
  if (options.conninfo.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "postgres sink: conninfo is empty");
  }
  if (!valid_projection_name(options.projection)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "postgres sink: projection name '" + options.projection +
                          "' is not 1-128 characters of [A-Za-z0-9_.-]");
  }
  if (!options.handle) {
    return make_error(ErrorCode::kInvalidArgument,
                      "postgres sink '" + options.projection + "': no handle function");
  }
  return std::unique_ptr<ProjectionSink>(std::make_unique<PostgresSink>(std::move(options)));
}

}  // namespace vellum
