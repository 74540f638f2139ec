// SPDX-License-Identifier: Apache-2.0
// peer_bench: the peer comparison benchmark for Vellum. It runs the same
// event-store workloads against PostgreSQL (libpq), SQLite in WAL mode and
// Redis Streams (hiredis), so Vellum's own numbers can be put next to what
// an application would get by building an event store on one of these.
//
// Every system stores the same shape: events(position, stream, version, type,
// data, metadata) with one row per event, unique (stream, version), and an
// append that reads the stream's current version and writes version+1.. in
// one durable transaction, retrying when a concurrent writer won the race.
//
// Scenarios (one JSON object per run is printed on stdout):
//   append       W writer threads, each call one transaction of B events to a
//                stream picked uniformly (or Zipf) from S streams; latency is
//                per call.
//   read-stream  load one stream of --stream-events events, then read it
//                whole in pages, repeatedly; latency is per whole-stream read.
//   read-all     load --events events over S streams, then scan the global
//                order in pages, repeatedly; latency is per page.
// bench/peers/run.sh starts the servers and drives the scenario matrix.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iomanip>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kLoadBatch = 100;         // events per append when loading
constexpr double kZipfExponent = 0.99;  // skew of --zipf stream choice
constexpr const char* kEventType = "bench.event";
constexpr const char* kMetadata = "{\"source\":\"peer_bench\"}";
constexpr const char* kPgUniqueViolation = "23505";
constexpr const char* kRedisGlobalStream = "$all";
constexpr int kSqliteBusyTimeoutMs = 30000;

// ---------------------------------------------------------------- options --

struct Options {
  std::string system;
  std::string scenario = "append";
  int writers = 1;
  int batch = 1;
  int event_bytes = 200;
  int64_t events = 100000;
  int streams = 1000;
  bool zipf = false;
  int64_t stream_events = 10000;
  double seconds = 5.0;
  int page = 1000;
  std::string pg_conninfo = "host=127.0.0.1 port=55432 dbname=postgres user=postgres";
  std::string sqlite_path = "peer_bench.sqlite";
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
};

void print_usage() {
  std::cerr << "usage: peer_bench --system postgres|sqlite|redis\n"
               "  [--scenario append|read-stream|read-all] [--writers W] [--batch B]\n"
               "  [--event-bytes N] [--events N] [--streams S] [--zipf]\n"
               "  [--stream-events N] [--seconds T] [--page N]\n"
               "  [--pg-conninfo STR] [--sqlite-path FILE]\n"
               "  [--redis-host H] [--redis-port P]\n"
               "--events caps an append run and sizes the read-all table; --seconds\n"
               "caps an append run and sets the time spent repeating reads.\n";
}

using Setter = std::function<void(Options&, const std::string&)>;

const std::map<std::string, Setter>& value_flags() {
  static const std::map<std::string, Setter> flags = {
      {"--system", [](Options& o, const std::string& v) { o.system = v; }},
      {"--scenario", [](Options& o, const std::string& v) { o.scenario = v; }},
      {"--writers", [](Options& o, const std::string& v) { o.writers = std::stoi(v); }},
      {"--batch", [](Options& o, const std::string& v) { o.batch = std::stoi(v); }},
      {"--event-bytes", [](Options& o, const std::string& v) { o.event_bytes = std::stoi(v); }},
      {"--events", [](Options& o, const std::string& v) { o.events = std::stoll(v); }},
      {"--streams", [](Options& o, const std::string& v) { o.streams = std::stoi(v); }},
      {"--stream-events",
       [](Options& o, const std::string& v) { o.stream_events = std::stoll(v); }},
      {"--seconds", [](Options& o, const std::string& v) { o.seconds = std::stod(v); }},
      {"--page", [](Options& o, const std::string& v) { o.page = std::stoi(v); }},
      {"--pg-conninfo", [](Options& o, const std::string& v) { o.pg_conninfo = v; }},
      {"--sqlite-path", [](Options& o, const std::string& v) { o.sqlite_path = v; }},
      {"--redis-host", [](Options& o, const std::string& v) { o.redis_host = v; }},
      {"--redis-port", [](Options& o, const std::string& v) { o.redis_port = std::stoi(v); }},
  };
  return flags;
}

void validate_options(const Options& o) {
  static const std::set<std::string> systems = {"postgres", "sqlite", "redis"};
  static const std::set<std::string> scenarios = {"append", "read-stream", "read-all"};
  if (!systems.contains(o.system)) throw std::invalid_argument("bad --system");
  if (!scenarios.contains(o.scenario)) {
    throw std::invalid_argument("bad --scenario");
  }
  if (o.writers < 1 || o.batch < 1 || o.streams < 1 || o.page < 1 || o.events < 1 ||
      o.stream_events < 1 || o.event_bytes < 1) {
    throw std::invalid_argument("counts must be positive");
  }
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      print_usage();
      std::exit(0);
    }
    if (flag == "--zipf") {
      options.zipf = true;
      continue;
    }
    auto it = value_flags().find(flag);
    if (it == value_flags().end() || i + 1 >= argc) {
      throw std::invalid_argument("unknown flag or missing value: " + flag);
    }
    it->second(options, argv[++i]);
  }
  validate_options(options);
  return options;
}

// -------------------------------------------------------- session interface --

// Bytes and events a read returned; bytes count the data payloads only.
struct ReadTally {
  uint64_t events = 0;
  uint64_t bytes = 0;
};

// One connection to one system, used by one thread at a time.
class Session {
 public:
  virtual ~Session() = default;
  // Drops everything and creates an empty events store.
  virtual void reset_store() = 0;
  // Appends the payloads to `stream` as one durable transaction with the
  // versions following the stream's current one. Returns how many times it
  // had to retry because a concurrent writer took those versions first.
  virtual int append(const std::string& stream, const std::vector<std::string>& payloads) = 0;
  // Reads up to `limit` events of `stream` after `cursor` ("" = from the
  // start) in version order, advances `cursor`, returns the count.
  virtual size_t read_stream_page(const std::string& stream, std::string& cursor, int limit,
                                  ReadTally& tally) = 0;
  // The same over all events in global (position) order.
  virtual size_t read_all_page(std::string& cursor, int limit, ReadTally& tally) = 0;
  virtual std::string version() = 0;
  // The durability settings in force, as read back from the system.
  virtual std::string durability() = 0;
};

// ---------------------------------------------------------------- postgres --

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

constexpr const char* kPgSchema =
    "DROP TABLE IF EXISTS events;"
    "CREATE TABLE events ("
    "  position bigserial PRIMARY KEY,"
    "  stream text NOT NULL,"
    "  version bigint NOT NULL,"
    "  type text NOT NULL,"
    "  data jsonb NOT NULL,"
    "  metadata jsonb,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  UNIQUE (stream, version));"
    "CHECKPOINT;";

class PgSession final : public Session {
 public:
  explicit PgSession(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("postgres connect: " + message);
    }
  }
  ~PgSession() override { PQfinish(conn_); }

  void reset_store() override {
    exec_ok("SET client_min_messages = warning");
    exec_ok(kPgSchema);
    prepared_.clear();
  }

  int append(const std::string& stream, const std::vector<std::string>& payloads) override {
    prepare_append(payloads.size());
    int retries = 0;
    while (!try_append(stream, payloads)) ++retries;
    return retries;
  }

  size_t read_stream_page(const std::string& stream, std::string& cursor, int limit,
                          ReadTally& tally) override {
    prepare("read_stream",
            "SELECT version, type, data, metadata, position FROM events"
            " WHERE stream = $1 AND version > $2 ORDER BY version LIMIT $3");
    const std::string after = cursor.empty() ? "-1" : cursor;
    const std::string count = std::to_string(limit);
    auto res = run_prepared("read_stream", {stream.c_str(), after.c_str(), count.c_str()});
    return tally_rows(res.get(), 2, 0, cursor, tally);
  }

  size_t read_all_page(std::string& cursor, int limit, ReadTally& tally) override {
    prepare("read_all",
            "SELECT position, stream, version, type, data, metadata"
            " FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    const std::string after = cursor.empty() ? "0" : cursor;
    const std::string count = std::to_string(limit);
    auto res = run_prepared("read_all", {after.c_str(), count.c_str()});
    return tally_rows(res.get(), 4, 0, cursor, tally);
  }

  std::string version() override { return PQparameterStatus(conn_, "server_version"); }

  std::string durability() override {
    return "synchronous_commit=" + show("synchronous_commit") + " fsync=" + show("fsync") +
           " wal_sync_method=" + show("wal_sync_method");
  }

 private:
  PgResultPtr exec_ok(const char* sql) {
    PgResultPtr res(PQexec(conn_, sql));
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error(std::string("postgres: ") + PQresultErrorMessage(res.get()));
    }
    return res;
  }

  std::string show(const std::string& setting) {
    auto res = exec_ok(("SHOW " + setting).c_str());
    return PQgetvalue(res.get(), 0, 0);
  }

  void prepare(const std::string& name, const std::string& sql) {
    if (prepared_.contains(name)) return;
    PgResultPtr res(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error("postgres prepare " + name + ": " + PQresultErrorMessage(res.get()));
    }
    prepared_.insert(name);
  }

  // Returns the result whatever its status; callers check it.
  PgResultPtr run_prepared_raw(const std::string& name, const std::vector<const char*>& params) {
    return PgResultPtr(PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()),
                                      params.data(), nullptr, nullptr, 0));
  }

  PgResultPtr run_prepared(const std::string& name, const std::vector<const char*>& params) {
    auto res = run_prepared_raw(name, params);
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error("postgres " + name + ": " + PQresultErrorMessage(res.get()));
    }
    return res;
  }

  static std::string insert_name(size_t n) { return "insert_" + std::to_string(n); }

  // One multi-row INSERT per batch size: $1 stream, $2 type, $3 metadata,
  // then (version, data) pairs.
  void prepare_append(size_t n) {
    prepare("max_version", "SELECT coalesce(max(version), -1) FROM events WHERE stream = $1");
    if (prepared_.contains(insert_name(n))) return;
    std::ostringstream sql;
    sql << "INSERT INTO events (stream, version, type, data, metadata) VALUES ";
    for (size_t i = 0; i < n; ++i) {
      sql << (i ? "," : "") << "($1, $" << 4 + 2 * i << "::bigint, $2, $" << 5 + 2 * i
          << "::jsonb, $3::jsonb)";
    }
    prepare(insert_name(n), sql.str());
  }

  // Returns false when a concurrent writer took the versions first.
  bool try_append(const std::string& stream, const std::vector<std::string>& payloads) {
    exec_ok("BEGIN");
    auto max = run_prepared("max_version", {stream.c_str()});
    const int64_t current = std::atoll(PQgetvalue(max.get(), 0, 0));
    std::vector<std::string> versions;
    versions.reserve(payloads.size());
    std::vector<const char*> params = {stream.c_str(), kEventType, kMetadata};
    for (size_t i = 0; i < payloads.size(); ++i) {
      versions.push_back(std::to_string(current + 1 + i));
    }
    for (size_t i = 0; i < payloads.size(); ++i) {
      params.push_back(versions[i].c_str());
      params.push_back(payloads[i].c_str());
    }
    auto res = run_prepared_raw(insert_name(payloads.size()), params);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      const std::string message = PQresultErrorMessage(res.get());
      exec_ok("ROLLBACK");
      if (state && std::string(state) == kPgUniqueViolation) return false;
      throw std::runtime_error("postgres insert: " + message);
    }
    exec_ok("COMMIT");
    return true;
  }

  static size_t tally_rows(PGresult* res, int data_col, int cursor_col, std::string& cursor,
                           ReadTally& tally) {
    const int rows = PQntuples(res);
    for (int r = 0; r < rows; ++r) {
      tally.bytes += static_cast<uint64_t>(PQgetlength(res, r, data_col));
    }
    tally.events += static_cast<uint64_t>(rows);
    if (rows > 0) cursor = PQgetvalue(res, rows - 1, cursor_col);
    return static_cast<size_t>(rows);
  }

  PGconn* conn_;
  std::set<std::string> prepared_;
};

// ------------------------------------------------------------------ sqlite --

struct SqliteStmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteStmtDeleter>;

constexpr const char* kSqliteSchema =
    "CREATE TABLE IF NOT EXISTS events ("
    "  position INTEGER PRIMARY KEY,"
    "  stream TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  metadata TEXT,"
    "  created_at INTEGER NOT NULL DEFAULT (unixepoch()),"
    "  UNIQUE (stream, version));";

class SqliteSession final : public Session {
 public:
  explicit SqliteSession(const std::string& path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("sqlite open: " + message);
    }
    sqlite3_busy_timeout(db_, kSqliteBusyTimeoutMs);
    exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = FULL");
    exec(kSqliteSchema);
    prepare_statements();
  }
  ~SqliteSession() override {
    statements_.clear();
    sqlite3_close(db_);
  }

  // The driver removes the files before the first session opens them, so
  // the schema the constructor created is already empty.
  void reset_store() override {}

  int append(const std::string& stream, const std::vector<std::string>& payloads) override {
    int retries = 0;
    while (!try_append(stream, payloads)) ++retries;
    return retries;
  }

  size_t read_stream_page(const std::string& stream, std::string& cursor, int limit,
                          ReadTally& tally) override {
    sqlite3_stmt* s = statement(kReadStream);
    sqlite3_bind_text(s, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, cursor.empty() ? -1 : std::stoll(cursor));
    sqlite3_bind_int(s, 3, limit);
    return tally_rows(s, 2, 0, cursor, tally);
  }

  size_t read_all_page(std::string& cursor, int limit, ReadTally& tally) override {
    sqlite3_stmt* s = statement(kReadAll);
    sqlite3_bind_int64(s, 1, cursor.empty() ? 0 : std::stoll(cursor));
    sqlite3_bind_int(s, 2, limit);
    return tally_rows(s, 4, 0, cursor, tally);
  }

  std::string version() override { return sqlite3_libversion(); }

  std::string durability() override {
    return "journal_mode=" + pragma("journal_mode") + " synchronous=" + pragma("synchronous") +
           " (2=FULL)";
  }

 private:
  enum StatementId { kBegin, kMaxVersion, kInsert, kCommit, kRollback, kReadStream, kReadAll };

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error ? error : "unknown";
      sqlite3_free(error);
      throw std::runtime_error("sqlite " + std::string(sql) + ": " + message);
    }
  }

  std::string pragma(const std::string& name) {
    SqliteStmt s(compile("PRAGMA " + name));
    std::string value;
    if (sqlite3_step(s.get()) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
    }
    return value;
  }

  sqlite3_stmt* compile(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error("sqlite prepare: " + std::string(sqlite3_errmsg(db_)));
    }
    return s;
  }

  void prepare_statements() {
    const char* sql[] = {
        "BEGIN IMMEDIATE",
        "SELECT coalesce(max(version), -1) FROM events WHERE stream = ?1",
        "INSERT INTO events (stream, version, type, data, metadata)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
        "COMMIT",
        "ROLLBACK",
        "SELECT version, type, data, metadata, position FROM events"
        " WHERE stream = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
        "SELECT position, stream, version, type, data, metadata FROM events"
        " WHERE position > ?1 ORDER BY position LIMIT ?2",
    };
    for (const char* text : sql) statements_.emplace_back(compile(text));
  }

  sqlite3_stmt* statement(StatementId id) { return statements_[id].get(); }

  // Steps a statement that returns no rows and resets it; returns the code.
  int run(StatementId id) {
    sqlite3_stmt* s = statement(id);
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc;
  }

  void fail(const char* what) {
    throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }

  int64_t current_version(const std::string& stream) {
    sqlite3_stmt* s = statement(kMaxVersion);
    sqlite3_bind_text(s, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW) fail("max version");
    const int64_t current = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return current;
  }

  // Returns false when the write lock or the versions could not be had.
  bool try_append(const std::string& stream, const std::vector<std::string>& payloads) {
    const int begin = run(kBegin);
    if (begin == SQLITE_BUSY) return false;
    if (begin != SQLITE_DONE) fail("begin");
    const int64_t current = current_version(stream);
    sqlite3_stmt* s = statement(kInsert);
    for (size_t i = 0; i < payloads.size(); ++i) {
      sqlite3_bind_text(s, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
      sqlite3_bind_int64(s, 2, current + 1 + static_cast<int64_t>(i));
      sqlite3_bind_text(s, 3, kEventType, -1, SQLITE_STATIC);
      sqlite3_bind_text(s, 4, payloads[i].data(), static_cast<int>(payloads[i].size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(s, 5, kMetadata, -1, SQLITE_STATIC);
      const int rc = run(kInsert);
      if (rc == SQLITE_CONSTRAINT || rc == SQLITE_BUSY) {
        run(kRollback);
        return false;
      }
      if (rc != SQLITE_DONE) fail("insert");
    }
    const int commit = run(kCommit);
    if (commit == SQLITE_BUSY) {
      run(kRollback);
      return false;
    }
    if (commit != SQLITE_DONE) fail("commit");
    return true;
  }

  size_t tally_rows(sqlite3_stmt* s, int data_col, int cursor_col, std::string& cursor,
                    ReadTally& tally) {
    size_t rows = 0;
    int64_t last = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      tally.bytes += static_cast<uint64_t>(sqlite3_column_bytes(s, data_col));
      last = sqlite3_column_int64(s, cursor_col);
      ++rows;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) fail("read");
    tally.events += rows;
    if (rows > 0) cursor = std::to_string(last);
    return rows;
  }

  sqlite3* db_ = nullptr;
  std::vector<SqliteStmt> statements_;
};

void remove_sqlite_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    ::unlink((path + suffix).c_str());
  }
}

// ------------------------------------------------------------------- redis --

struct RedisReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// KEYS: stream, its version key, the global stream. ARGV: expected version,
// type, metadata, then one data payload per event. Returns the new version,
// or -2 when the stream is no longer at the expected version.
constexpr const char* kRedisAppendScript = R"lua(
local current = tonumber(redis.call('GET', KEYS[2]) or '-1')
if current ~= tonumber(ARGV[1]) then return -2 end
for i = 4, #ARGV do
  local v = current + i - 3
  redis.call('XADD', KEYS[1], '*', 'version', v, 'type', ARGV[2],
             'data', ARGV[i], 'metadata', ARGV[3])
  redis.call('XADD', KEYS[3], '*', 'stream', KEYS[1], 'version', v,
             'type', ARGV[2], 'data', ARGV[i], 'metadata', ARGV[3])
end
local last = current + #ARGV - 3
redis.call('SET', KEYS[2], last)
return last
)lua";

class RedisSession final : public Session {
 public:
  RedisSession(const std::string& host, int port) {
    context_ = redisConnectWithTimeout(host.c_str(), port, timeval{10, 0});
    if (context_ == nullptr || context_->err) {
      const std::string message = context_ ? context_->errstr : "no memory";
      redisFree(context_);
      throw std::runtime_error("redis connect: " + message);
    }
    script_sha_ = command({"SCRIPT", "LOAD", kRedisAppendScript})->str;
  }
  ~RedisSession() override { redisFree(context_); }

  void reset_store() override { command({"FLUSHALL"}); }

  int append(const std::string& stream, const std::vector<std::string>& payloads) override {
    const std::string key = "s:" + stream;
    const std::string version_key = "v:" + stream;
    int retries = 0;
    for (;;) {
      auto current = command({"GET", version_key});
      const std::string expected = current->type == REDIS_REPLY_NIL ? "-1" : current->str;
      std::vector<std::string> args = {"EVALSHA", script_sha_, "3",
                                       key,       version_key, kRedisGlobalStream,
                                       expected,  kEventType,  kMetadata};
      args.insert(args.end(), payloads.begin(), payloads.end());
      if (command(args)->integer != -2) return retries;
      ++retries;
    }
  }

  size_t read_stream_page(const std::string& stream, std::string& cursor, int limit,
                          ReadTally& tally) override {
    return read_range("s:" + stream, cursor, limit, tally);
  }

  size_t read_all_page(std::string& cursor, int limit, ReadTally& tally) override {
    return read_range(kRedisGlobalStream, cursor, limit, tally);
  }

  std::string version() override { return info_field("server", "redis_version"); }

  std::string durability() override {
    return "appendonly=" + config("appendonly") + " appendfsync=" + config("appendfsync");
  }

 private:
  RedisReplyPtr command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    RedisReplyPtr reply(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (!reply) throw std::runtime_error(std::string("redis: ") + context_->errstr);
    if (reply->type == REDIS_REPLY_ERROR) {
      throw std::runtime_error("redis " + args[0] + ": " + reply->str);
    }
    return reply;
  }

  std::string config(const std::string& name) {
    auto reply = command({"CONFIG", "GET", name});
    return reply->elements == 2 ? reply->element[1]->str : "?";
  }

  std::string info_field(const std::string& section, const std::string& key) {
    std::istringstream lines(command({"INFO", section})->str);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(key + ":", 0) == 0) {
        const std::string value = line.substr(key.size() + 1);
        return value.substr(0, value.find_last_not_of("\r") + 1);
      }
    }
    return "?";
  }

  // XRANGE one page after `cursor` (an entry id; "" = the start).
  size_t read_range(const std::string& key, std::string& cursor, int limit, ReadTally& tally) {
    const std::string start = cursor.empty() ? "-" : "(" + cursor;
    auto reply = command({"XRANGE", key, start, "+", "COUNT", std::to_string(limit)});
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* fields = reply->element[i]->element[1];
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (std::string_view(fields->element[f]->str) == "data") {
          tally.bytes += fields->element[f + 1]->len;
        }
      }
    }
    tally.events += reply->elements;
    if (reply->elements > 0) {
      cursor = reply->element[reply->elements - 1]->element[0]->str;
    }
    return reply->elements;
  }

  redisContext* context_ = nullptr;
  std::string script_sha_;
};

// ----------------------------------------------------------------- helpers --

std::unique_ptr<Session> make_session(const Options& o) {
  if (o.system == "postgres") return std::make_unique<PgSession>(o.pg_conninfo);
  if (o.system == "sqlite") return std::make_unique<SqliteSession>(o.sqlite_path);
  return std::make_unique<RedisSession>(o.redis_host, o.redis_port);
}

// Empties the store; returns a session connected to it for the caller's use.
std::unique_ptr<Session> reset_and_connect(const Options& o) {
  if (o.system == "sqlite") remove_sqlite_files(o.sqlite_path);
  auto session = make_session(o);
  session->reset_store();
  return session;
}

// A JSON object of exactly `bytes` bytes (when that is enough for the frame).
std::string make_payload(size_t bytes, uint64_t seq) {
  const std::string head = "{\"seq\":" + std::to_string(seq) + ",\"pad\":\"";
  const std::string tail = "\"}";
  const size_t frame = head.size() + tail.size();
  return head + std::string(bytes > frame ? bytes - frame : 0, 'x') + tail;
}

std::string stream_name(int index) { return "stream-" + std::to_string(index); }

// Picks stream indexes uniformly or with a Zipf skew (index 0 the hottest).
class StreamPicker {
 public:
  StreamPicker(int streams, bool zipf, uint64_t seed) : rng_(seed), uniform_(0, streams - 1) {
    if (!zipf) return;
    double sum = 0;
    for (int i = 1; i <= streams; ++i) {
      sum += 1.0 / std::pow(i, kZipfExponent);
      cdf_.push_back(sum);
    }
    for (double& c : cdf_) c /= sum;
  }

  int next() {
    if (cdf_.empty()) return uniform_(rng_);
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<int>(
        std::min<ptrdiff_t>(it - cdf_.begin(), static_cast<ptrdiff_t>(cdf_.size()) - 1));
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int> uniform_;
  std::vector<double> cdf_;
};

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ----------------------------------------------------------------- reports --

struct Report {
  std::string scenario;
  std::string latency_of;
  int64_t events = 0;
  int64_t calls = 0;
  int64_t retries = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

std::string to_json(const Options& o, Session& session, Report report) {
  std::sort(report.latencies_us.begin(), report.latencies_us.end());
  const auto& lat = report.latencies_us;
  const double secs = report.seconds > 0 ? report.seconds : 1e-9;
  std::ostringstream j;
  j << std::fixed << std::setprecision(1);
  j << "{\"system\":\"" << o.system << "\",\"scenario\":\"" << report.scenario
    << "\",\"writers\":" << o.writers << ",\"batch\":" << o.batch << ",\"events\":" << report.events
    << ",\"seconds\":" << std::setprecision(3) << report.seconds << std::setprecision(1)
    << ",\"events_per_sec\":" << report.events / secs << ",\"mb_per_sec\":" << std::setprecision(3)
    << report.bytes / secs / 1e6 << std::setprecision(1) << ",\"p50_us\":" << percentile(lat, 0.50)
    << ",\"p99_us\":" << percentile(lat, 0.99) << ",\"p999_us\":" << percentile(lat, 0.999)
    << ",\"max_us\":" << (lat.empty() ? 0 : lat.back()) << ",\"latency_of\":\"" << report.latency_of
    << "\",\"calls\":" << report.calls << ",\"retries\":" << report.retries
    << ",\"streams\":" << o.streams << ",\"zipf\":" << (o.zipf ? "true" : "false")
    << ",\"event_bytes\":" << o.event_bytes;
  if (o.scenario == "read-stream") j << ",\"stream_events\":" << o.stream_events;
  j << ",\"version\":\"" << session.version() << "\",\"durability\":\"" << session.durability()
    << "\"}";
  return j.str();
}

// ------------------------------------------------------------------ append --

struct WriterStats {
  std::vector<double> latencies_us;
  int64_t calls = 0;
  int64_t events = 0;
  int64_t retries = 0;
};

// Starts writers together, stops them at the deadline, keeps the first error.
struct RunControl {
  explicit RunControl(int writers) : ready(writers) {}
  std::latch ready;
  std::latch start{1};
  Clock::time_point deadline;
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::exception_ptr error;

  void fail(std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (!error) error = e;
    stop = true;
  }
};

void append_loop(const Options& o, int index, int64_t quota, Session& session, RunControl& control,
                 WriterStats& stats) {
  StreamPicker picker(o.streams, o.zipf, 0x5eed0000u + index);
  std::vector<std::string> payloads(o.batch);
  uint64_t seq = static_cast<uint64_t>(index) << 40;
  stats.latencies_us.reserve(static_cast<size_t>(std::min<int64_t>(quota, 1 << 16)));
  for (int64_t i = 0; i < quota && !control.stop; ++i) {
    if (Clock::now() >= control.deadline) break;
    for (auto& p : payloads) p = make_payload(o.event_bytes, seq++);
    const std::string stream = stream_name(picker.next());
    const auto started = Clock::now();
    stats.retries += session.append(stream, payloads);
    stats.latencies_us.push_back(micros_since(started));
    stats.calls += 1;
    stats.events += o.batch;
  }
}

void writer_thread(const Options& o, int index, int64_t quota, RunControl& control,
                   WriterStats& stats) {
  std::unique_ptr<Session> session;
  try {
    session = make_session(o);
  } catch (...) {
    control.fail(std::current_exception());
  }
  control.ready.count_down();
  control.start.wait();
  if (!session) return;
  try {
    append_loop(o, index, quota, *session, control, stats);
  } catch (...) {
    control.fail(std::current_exception());
  }
}

Report run_append(const Options& o) {
  reset_and_connect(o);
  const int64_t calls = (o.events + o.batch - 1) / o.batch;
  RunControl control(o.writers);
  std::vector<WriterStats> stats(o.writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < o.writers; ++w) {
    const int64_t quota = calls / o.writers + (w < calls % o.writers ? 1 : 0);
    threads.emplace_back(writer_thread, std::cref(o), w, quota, std::ref(control),
                         std::ref(stats[w]));
  }
  control.ready.wait();
  const auto started = Clock::now();
  control.deadline = started + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.seconds));
  control.start.count_down();
  for (auto& t : threads) t.join();
  Report report;
  report.scenario = "append";
  report.latency_of = "append call";
  report.seconds = seconds_since(started);
  if (control.error) std::rethrow_exception(control.error);
  for (auto& s : stats) {
    report.events += s.events;
    report.calls += s.calls;
    report.retries += s.retries;
    report.latencies_us.insert(report.latencies_us.end(), s.latencies_us.begin(),
                               s.latencies_us.end());
  }
  report.bytes = static_cast<uint64_t>(report.events) * o.event_bytes;
  return report;
}

// ------------------------------------------------------------------- reads --

// Appends `count` events in kLoadBatch transactions; `pick` names the stream.
void load_events(const Options& o, Session& session, int64_t count,
                 const std::function<std::string()>& pick) {
  uint64_t seq = 0;
  std::vector<std::string> payloads;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min<int64_t>(kLoadBatch, count - done);
    payloads.clear();
    for (int64_t i = 0; i < n; ++i) {
      payloads.push_back(make_payload(o.event_bytes, seq++));
    }
    session.append(pick(), payloads);
    done += n;
  }
}

// Repeats `read_once` (which returns the events it read) until the time
// budget is spent, at least once; each repetition must see `expected` events.
Report time_reads(const Options& o, int64_t expected, const std::string& what,
                  const std::function<uint64_t(ReadTally&, Report&)>& read_once) {
  Report report;
  report.scenario = o.scenario;
  report.latency_of = what;
  ReadTally tally;
  const auto started = Clock::now();
  do {
    const uint64_t seen = read_once(tally, report);
    if (seen != static_cast<uint64_t>(expected)) {
      throw std::runtime_error("read " + std::to_string(seen) + " events, expected " +
                               std::to_string(expected));
    }
  } while (seconds_since(started) < o.seconds);
  report.seconds = seconds_since(started);
  report.events = static_cast<int64_t>(tally.events);
  report.bytes = tally.bytes;
  return report;
}

Report run_read_stream(const Options& o, Session& session) {
  const std::string stream = "read-" + std::to_string(o.stream_events);
  load_events(o, session, o.stream_events, [&] { return stream; });
  return time_reads(o, o.stream_events, "whole stream read", [&](ReadTally& tally, Report& report) {
    const auto started = Clock::now();
    const uint64_t before = tally.events;
    std::string cursor;
    size_t got;
    do {
      got = session.read_stream_page(stream, cursor, o.page, tally);
      report.calls += 1;
    } while (got == static_cast<size_t>(o.page));
    report.latencies_us.push_back(micros_since(started));
    return tally.events - before;
  });
}

Report run_read_all(const Options& o, Session& session) {
  StreamPicker picker(o.streams, o.zipf, 0x10ad);
  load_events(o, session, o.events, [&] { return stream_name(picker.next()); });
  return time_reads(o, o.events, "page read", [&](ReadTally& tally, Report& report) {
    const uint64_t before = tally.events;
    std::string cursor;
    size_t got;
    do {
      const auto started = Clock::now();
      got = session.read_all_page(cursor, o.page, tally);
      report.latencies_us.push_back(micros_since(started));
      report.calls += 1;
    } while (got == static_cast<size_t>(o.page));
    return tally.events - before;
  });
}

int run(const Options& o) {
  Report report;
  std::unique_ptr<Session> session;
  if (o.scenario == "append") {
    report = run_append(o);
    session = make_session(o);
  } else {
    session = reset_and_connect(o);
    report = o.scenario == "read-stream" ? run_read_stream(o, *session) : run_read_all(o, *session);
  }
  std::cout << to_json(o, *session, std::move(report)) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::cerr << "peer_bench: " << e.what() << "\n";
    print_usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "peer_bench: " << e.what() << "\n";
    return 1;
  }
}
