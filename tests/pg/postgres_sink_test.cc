// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL projection sink against a real server (tests/pg/with_postgres.sh
// starts one and sets VELLUM_TEST_PG; without it every test is skipped).
//
// Most tests drive the sink directly through the ProjectionSink interface, the
// way the engine does, and look at the database through a second connection.
// The crash test runs the real Projections engine in a child process that is
// SIGKILLed at a random moment, then checks that the table matches the log
// exactly.
#include "vellum/postgres_sink.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vellum/projection.h"
#include "vellum/store.h"

namespace vellum {
namespace {

const char* test_conninfo() { return std::getenv("VELLUM_TEST_PG"); }

// One read-model row per applied event, deliberately without a unique key:
// an event applied twice shows up as two rows.
std::string setup_sql(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (position bigint NOT NULL, stream text NOT NULL, revision bigint NOT NULL,"
         " data text NOT NULL)";
}

// Appends a row; data "fail" makes the handler return an error, data "dup"
// makes it run a statement PostgreSQL rejects.
std::function<Status(const EventRef&, pqxx::work&)> insert_handler(const std::string& table) {
  return [table](const EventRef& event, pqxx::work& work) -> Status {
    if (event.data == "fail") return make_error(ErrorCode::kInvalidArgument, "handler refuses");
    if (event.data == "dup") work.exec("SELECT 1/0");
    work.exec_params("INSERT INTO " + table + " VALUES ($1, $2, $3, $4)",
                     static_cast<int64_t>(event.position), std::string(event.stream),
                     static_cast<int64_t>(event.revision), std::string(event.data));
    return ok_status();
  };
}

// Events to feed the sink by hand: EventRef views into these.
struct FakeEvent {
  Uuid id;
  std::string stream;
  uint64_t position;
  std::string data;
  EventRef ref() const {
    EventRef event{id};
    event.stream = stream;
    event.revision = position;
    event.position = position;
    event.type = "Added";
    event.content_type = "text/plain";
    event.data = data;
    return event;
  }
};

class PostgresSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test_conninfo() == nullptr) GTEST_SKIP() << "VELLUM_TEST_PG not set (with_postgres.sh)";
    conninfo_ = test_conninfo();
    // Each test has its own projection and table.
    name_ = std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    table_ = name_ + "_rows";
    admin_ = std::make_unique<pqxx::connection>(conninfo_);
    pqxx::work work(*admin_);
    work.exec("DROP TABLE IF EXISTS " + table_);
    work.exec(
        "CREATE TABLE IF NOT EXISTS vellum_projection_checkpoints (name text PRIMARY KEY,"
        " next_position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())");
    work.exec_params("DELETE FROM vellum_projection_checkpoints WHERE name = $1", name_);
    work.commit();
  }

  PostgresSinkOptions options() const {
    PostgresSinkOptions options;
    options.conninfo = conninfo_;
    options.projection = name_;
    options.setup_sql = setup_sql(table_);
    options.handle = insert_handler(table_);
    std::string table = table_;
    options.reset = [table](pqxx::work& work) -> Status {
      work.exec("TRUNCATE " + table);
      return ok_status();
    };
    return options;
  }

  std::unique_ptr<ProjectionSink> make_sink() {
    auto sink = make_postgres_sink(options());
    EXPECT_TRUE(sink.has_value()) << sink.error().message;
    return std::move(sink).value();
  }

  int64_t row_count() {
    pqxx::read_transaction read(*admin_);
    return read.exec1("SELECT count(*) FROM " + table_)[0].as<int64_t>();
  }

  // -1 when the projection has no checkpoint row.
  int64_t stored_checkpoint() {
    pqxx::read_transaction read(*admin_);
    pqxx::result rows = read.exec_params(
        "SELECT next_position FROM vellum_projection_checkpoints WHERE name = $1", name_);
    return rows.empty() ? -1 : rows[0][0].as<int64_t>();
  }

  // Applies events [first, first + count) as one batch and commits.
  void apply_batch(ProjectionSink& sink, uint64_t first, uint64_t count) {
    ASSERT_TRUE(sink.begin().has_value());
    for (uint64_t position = first; position < first + count; position++) {
      FakeEvent event{Uuid{}, "s-1", position, "e" + std::to_string(position)};
      auto applied = sink.apply(event.ref());
      ASSERT_TRUE(applied.has_value()) << applied.error().message;
    }
    auto committed = sink.commit(first + count);
    ASSERT_TRUE(committed.has_value()) << committed.error().message;
  }

  std::string conninfo_;
  std::string name_;
  std::string table_;
  std::unique_ptr<pqxx::connection> admin_;
};

TEST_F(PostgresSinkTest, BatchAndCheckpointBecomeVisibleTogether) {
  auto sink = make_sink();
  EXPECT_EQ(sink->kind(), "postgres");
  EXPECT_TRUE(sink->exactly_once());
  auto checkpoint = sink->load_checkpoint();
  ASSERT_TRUE(checkpoint.has_value()) << checkpoint.error().message;
  EXPECT_EQ(*checkpoint, 0u);

  ASSERT_TRUE(sink->begin().has_value());
  for (uint64_t position = 0; position < 3; position++) {
    FakeEvent event{Uuid{}, "s-1", position, "e"};
    ASSERT_TRUE(sink->apply(event.ref()).has_value());
  }
  // Nothing is visible to others before commit: neither rows nor checkpoint.
  EXPECT_EQ(row_count(), 0);
  EXPECT_EQ(stored_checkpoint(), -1);
  ASSERT_TRUE(sink->commit(3).has_value());
  EXPECT_EQ(row_count(), 3);
  EXPECT_EQ(stored_checkpoint(), 3);

  apply_batch(*sink, 3, 2);
  EXPECT_EQ(row_count(), 5);
  EXPECT_EQ(stored_checkpoint(), 5);

  // A new sink (a restarted process) resumes from the stored checkpoint.
  auto restarted = make_sink();
  EXPECT_EQ(restarted->load_checkpoint().value(), 5u);
}

TEST_F(PostgresSinkTest, HandlerErrorMidBatchLeavesNoRowsAndTheCheckpoint) {
  auto sink = make_sink();
  ASSERT_TRUE(sink->load_checkpoint().has_value());
  apply_batch(*sink, 0, 2);

  ASSERT_TRUE(sink->begin().has_value());
  FakeEvent good{Uuid{}, "s-1", 2, "e2"};
  FakeEvent bad{Uuid{}, "s-1", 3, "fail"};
  ASSERT_TRUE(sink->apply(good.ref()).has_value());
  auto failed = sink->apply(bad.ref());
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kInvalidArgument);  // the handler's own error
  sink->abort();
  EXPECT_EQ(row_count(), 2);
  EXPECT_EQ(stored_checkpoint(), 2);

  // An SQL error inside the handler is an Error too, never an exception.
  ASSERT_TRUE(sink->begin().has_value());
  FakeEvent sql_error{Uuid{}, "s-1", 2, "dup"};
  auto rejected = sink->apply(sql_error.ref());
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, ErrorCode::kInternal);
  EXPECT_NE(rejected.error().message.find("SQLSTATE 22012"), std::string::npos)
      << rejected.error().message;
  EXPECT_NE(rejected.error().message.find("position 2"), std::string::npos);
  sink->abort();
  EXPECT_EQ(row_count(), 2);
  EXPECT_EQ(stored_checkpoint(), 2);

  // The sink goes on from the checkpoint after an aborted batch.
  apply_batch(*sink, 2, 3);
  EXPECT_EQ(row_count(), 5);
  EXPECT_EQ(stored_checkpoint(), 5);
}

TEST_F(PostgresSinkTest, ResetDeletesTheReadModelAndTheCheckpoint) {
  auto sink = make_sink();
  ASSERT_TRUE(sink->load_checkpoint().has_value());
  apply_batch(*sink, 0, 4);
  ASSERT_EQ(row_count(), 4);

  auto reset = sink->reset();
  ASSERT_TRUE(reset.has_value()) << reset.error().message;
  EXPECT_EQ(row_count(), 0);
  EXPECT_EQ(stored_checkpoint(), -1);
  EXPECT_EQ(sink->load_checkpoint().value(), 0u);

  // Rebuilding from the start works after a reset.
  apply_batch(*sink, 0, 2);
  EXPECT_EQ(row_count(), 2);
  EXPECT_EQ(stored_checkpoint(), 2);
}

TEST_F(PostgresSinkTest, ResetWhoseHandlerFailsChangesNothing) {
  PostgresSinkOptions failing = options();
  failing.reset = [](pqxx::work& work) -> Status {
    work.exec("SELECT 1");
    return make_error(ErrorCode::kFailedPrecondition, "not now");
  };
  auto sink = make_postgres_sink(std::move(failing)).value();
  ASSERT_TRUE(sink->load_checkpoint().has_value());
  apply_batch(*sink, 0, 3);
  auto reset = sink->reset();
  ASSERT_FALSE(reset.has_value());
  EXPECT_EQ(reset.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(row_count(), 3);
  EXPECT_EQ(stored_checkpoint(), 3);
}

// Kills the sink's server session the way an operator or a failover would.
void terminate_sink_sessions(pqxx::connection& admin, const std::string& projection) {
  pqxx::work work(admin);
  pqxx::result killed = work.exec_params(
      // PostgreSQL keeps the first 63 bytes of an application_name.
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
      " WHERE application_name = left($1, 63)",
      "vellum-projection:" + projection);
  work.commit();
  ASSERT_EQ(killed.size(), 1u) << "expected one session of the sink";
  ASSERT_TRUE(killed[0][0].as<bool>());
}

TEST_F(PostgresSinkTest, ReconnectsAtTheNextBeginAfterTheConnectionIsKilled) {
  auto sink = make_sink();
  ASSERT_TRUE(sink->load_checkpoint().has_value());
  apply_batch(*sink, 0, 2);

  // Killed between batches: the next begin() notices and reconnects.
  terminate_sink_sessions(*admin_, name_);
  apply_batch(*sink, 2, 2);
  EXPECT_EQ(row_count(), 4);
  EXPECT_EQ(stored_checkpoint(), 4);

  // Killed inside a batch: the batch fails with kUnavailable and is lost
  // entirely; the next batch runs on a new connection.
  ASSERT_TRUE(sink->begin().has_value());
  FakeEvent first{Uuid{}, "s-1", 4, "e4"};
  ASSERT_TRUE(sink->apply(first.ref()).has_value());
  terminate_sink_sessions(*admin_, name_);
  FakeEvent second{Uuid{}, "s-1", 5, "e5"};
  Status status = sink->apply(second.ref());
  if (status) status = sink->commit(6);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable) << status.error().message;
  sink->abort();
  EXPECT_EQ(row_count(), 4);
  EXPECT_EQ(stored_checkpoint(), 4);

  apply_batch(*sink, 4, 2);
  EXPECT_EQ(row_count(), 6);
  EXPECT_EQ(stored_checkpoint(), 6);
}

// Two processes running the same projection must not both apply a batch:
// the checkpoint write is guarded by the value each sink last saw.
TEST_F(PostgresSinkTest, SecondRunnerOfTheSameProjectionIsRolledBack) {
  auto first = make_sink();
  auto second = make_sink();
  ASSERT_EQ(first->load_checkpoint().value(), 0u);
  ASSERT_EQ(second->load_checkpoint().value(), 0u);
  apply_batch(*first, 0, 2);

  ASSERT_TRUE(second->begin().has_value());
  FakeEvent event{Uuid{}, "s-1", 0, "e0"};
  ASSERT_TRUE(second->apply(event.ref()).has_value());
  auto committed = second->commit(1);
  ASSERT_FALSE(committed.has_value());
  EXPECT_EQ(committed.error().code, ErrorCode::kAborted) << committed.error().message;
  EXPECT_EQ(row_count(), 2);
  EXPECT_EQ(stored_checkpoint(), 2);

  // It refuses further batches until it has read the checkpoint again.
  EXPECT_EQ(second->begin().error().code, ErrorCode::kAborted);
  EXPECT_EQ(second->load_checkpoint().value(), 2u);
  apply_batch(*second, 2, 1);
  EXPECT_EQ(row_count(), 3);
}

TEST_F(PostgresSinkTest, BadOptionsAndUnreachableServersAreErrors) {
  PostgresSinkOptions no_conninfo = options();
  no_conninfo.conninfo.clear();
  EXPECT_EQ(make_postgres_sink(no_conninfo).error().code, ErrorCode::kInvalidArgument);
  PostgresSinkOptions bad_name = options();
  bad_name.projection = "users; DROP TABLE users";
  EXPECT_EQ(make_postgres_sink(bad_name).error().code, ErrorCode::kInvalidArgument);
  PostgresSinkOptions no_handler = options();
  no_handler.handle = nullptr;
  EXPECT_EQ(make_postgres_sink(no_handler).error().code, ErrorCode::kInvalidArgument);

  // Port 1 on loopback: nothing listens there.
  PostgresSinkOptions unreachable = options();
  unreachable.conninfo = "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=5";
  auto sink = make_postgres_sink(unreachable).value();
  auto checkpoint = sink->load_checkpoint();
  ASSERT_FALSE(checkpoint.has_value());
  EXPECT_EQ(checkpoint.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(checkpoint.error().message.find("cannot connect"), std::string::npos)
      << checkpoint.error().message;

  PostgresSinkOptions bad_setup = options();
  bad_setup.setup_sql = "CREATE TABLE oops (";
  auto broken = make_postgres_sink(bad_setup).value();
  auto loaded = broken->load_checkpoint();
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::kInternal);
  EXPECT_NE(loaded.error().message.find("setup SQL"), std::string::npos) << loaded.error().message;
}

// ---------------------------------------------------------------------------
// Crash test: a child process appends events and runs the Projections engine
// with this sink; the parent SIGKILLs it at a random moment, then restarts the
// projection itself and checks that the table holds every event of the log
// exactly once. VL_PG_KILLS rounds (default 5); VL_SEED=N replays one run.

constexpr uint32_t kCrashBatchEvents = 40;

ProjectionSpec crash_spec(std::unique_ptr<ProjectionSink> sink, const std::string& name) {
  ProjectionSpec spec;
  spec.name = name;
  spec.source.filter.category = "item";
  spec.sink = std::move(sink);
  spec.batch_events = kCrashBatchEvents;
  return spec;
}

StoreOptions crash_store_options() {
  StoreOptions options;
  // A process crash keeps what reached the OS: fsync adds nothing here.
  options.durability = Durability::kNone;
  return options;
}

// The child: never returns. Tells the parent through `ready_fd` once the
// projection is running, then appends until killed.
[[noreturn]] void run_crash_child(const std::string& data_dir, PostgresSinkOptions options,
                                  int ready_fd, uint64_t seed) {
  auto store = Store::open(data_dir, crash_store_options());
  if (!store) _exit(10);
  auto sink = make_postgres_sink(options);
  if (!sink) _exit(11);
  {
    Projections projections(**store);
    if (!projections.add(crash_spec(std::move(*sink), options.projection))) _exit(12);
    char ready = 'r';
    if (write(ready_fd, &ready, 1) != 1) _exit(13);
    std::mt19937_64 prng(seed);
    for (uint64_t append_index = 0;; append_index++) {
      std::vector<EventData> events(1 + prng() % 4);
      for (EventData& event : events) {
        event.type = "Added";
        event.data = "a" + std::to_string(append_index);
      }
      std::string stream = "item-" + std::to_string(prng() % 16);
      if (!(*store)->append(stream, ExpectedRevision::any(), events)) _exit(14);
      // Now and then a stream the projection ignores (filter: category item).
      if (append_index % 7 == 0) {
        if (!(*store)->append("other-1", ExpectedRevision::any(), events)) _exit(15);
      }
      // About 5,000 appends a second: the projection keeps up, so kills land
      // inside its batches rather than long after it fell behind.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

class PostgresSinkCrashTest : public PostgresSinkTest {};

TEST_F(PostgresSinkCrashTest, KilledProjectionMatchesTheLogAfterRestart) {
  const char* kills_env = std::getenv("VL_PG_KILLS");
  const int kills = kills_env != nullptr ? std::atoi(kills_env) : 5;
  const char* seed_env = std::getenv("VL_SEED");
  const uint64_t seed =
      seed_env != nullptr ? std::strtoull(seed_env, nullptr, 10) : std::random_device{}();
  std::printf("seed=%llu kills=%d\n", static_cast<unsigned long long>(seed), kills);
  std::mt19937_64 prng(seed);

  auto dir =
      std::filesystem::temp_directory_path() / ("vellum-pg-crash-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const std::string data_dir = dir.string();

  for (int round = 0; round < kills; round++) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      run_crash_child(data_dir, options(), pipe_fds[1], prng());
    }
    close(pipe_fds[1]);
    char ready = 0;
    ssize_t got = read(pipe_fds[0], &ready, 1);
    close(pipe_fds[0]);
    const auto delay = std::chrono::milliseconds(20 + prng() % 600);
    if (got == 1) std::this_thread::sleep_for(delay);
    kill(child, SIGKILL);
    int wait_status = 0;
    ASSERT_EQ(waitpid(child, &wait_status, 0), child);
    // The child must have been running (killed), not have failed on its own.
    ASSERT_TRUE(WIFSIGNALED(wait_status))
        << "child exited with " << WEXITSTATUS(wait_status) << " in round " << round;
    // What the killed process left committed: rows and checkpoint must agree.
    const int64_t checkpoint_at_kill = stored_checkpoint();
    const int64_t rows_at_kill = row_count();

    // Restart: a new engine and sink catch up from the stored checkpoint.
    auto store = Store::open(data_dir, crash_store_options());
    ASSERT_TRUE(store.has_value()) << store.error().message;
    const uint64_t head = (*store)->head_position();
    {
      Projections projections(**store);
      ASSERT_TRUE(projections.add(crash_spec(make_sink(), name_)).has_value());
      auto status = projections.wait_for(name_, head, std::chrono::seconds(60));
      ASSERT_TRUE(status.has_value());
      ASSERT_EQ(status->state, ProjectionState::kRunning) << status->error;
      ASSERT_GE(status->position, head);
    }

    // The table must be the log's item-* events, each exactly once.
    std::vector<std::string> expected;
    int64_t expected_rows_at_kill = 0;
    ReadAllOptions read;
    read.filter.category = "item";
    read.max_count = 10'000;
    for (;;) {
      auto page = (*store)->read_all(read);
      ASSERT_TRUE(page.has_value());
      for (const RecordedEvent& event : page->events) {
        if (static_cast<int64_t>(event.position) < checkpoint_at_kill) expected_rows_at_kill++;
        expected.push_back(std::to_string(event.position) + " " + event.stream + " " +
                           std::to_string(event.revision) + " " + event.data);
      }
      if (!page->next_position) break;
      read.from_position = *page->next_position;
    }
    std::vector<std::string> actual;
    {
      pqxx::read_transaction tx(*admin_);
      for (const auto& row :
           tx.exec("SELECT position, stream, revision, data FROM " + table_ + " ORDER BY 1, 2")) {
        actual.push_back(row[0].as<std::string>() + " " + row[1].as<std::string>() + " " +
                         row[2].as<std::string>() + " " + row[3].as<std::string>());
      }
    }
    std::printf(
        "round %d: killed after %lld ms; log head %llu, %zu item events; "
        "at the kill: checkpoint %lld, %lld rows\n",
        round, static_cast<long long>(delay.count()), static_cast<unsigned long long>(head),
        expected.size(), static_cast<long long>(checkpoint_at_kill),
        static_cast<long long>(rows_at_kill));
    ASSERT_EQ(rows_at_kill, expected_rows_at_kill) << "round " << round;
    ASSERT_EQ(actual.size(), expected.size()) << "round " << round;
    ASSERT_EQ(actual, expected) << "round " << round;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vellum
