// SPDX-License-Identifier: Apache-2.0
// Tests of the Projections engine and its built-in sinks over a real Store and
// ToolkitDb in a temporary directory. The central property: every projection
// sees each event of its source exactly once (kv) or at least once (callback),
// in order, across catch-up, the switch to live, failures, restarts and
// crashes; its read model always equals what the log implies up to its
// checkpoint.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vellum/projection.h"

#include "base/assert.h"
#include "base/clock.h"
#include "base/prng.h"

namespace vellum {
namespace {

using namespace std::chrono_literals;
using KvModel = std::map<std::string, std::string>;

constexpr auto kWaitTimeout = 60s;  // generous: TSan and a busy 2-core machine

EventData make_event(std::string type, std::string data = "{}") {
  EventData event;
  event.type = std::move(type);
  event.data = std::move(data);
  return event;
}

// The kv handler most tests use: counts events per stream and in total, and
// remembers the last position. Any lost or repeated event changes a count.
Status count_events(const EventRef& event, KvView& view) {
  for (std::string key : {"n/" + std::string(event.stream), std::string("total")}) {
    VL_TRY(current, view.get(key));
    uint64_t count = current ? std::stoull(*current) : 0;
    view.put(key, std::to_string(count + 1));
  }
  view.put("last", std::to_string(event.position));
  return ok_status();
}

// What count_events builds from `events`.
KvModel expected_counts(const std::vector<RecordedEvent>& events) {
  KvModel model;
  for (const RecordedEvent& event : events) {
    for (std::string key : {"n/" + event.stream, std::string("total")}) {
      uint64_t count = model.count(key) ? std::stoull(model[key]) : 0;
      model[key] = std::to_string(count + 1);
    }
    model["last"] = std::to_string(event.position);
  }
  return model;
}

std::string make_temp_dir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "vellum_projections_test.XXXXXX").string();
  VL_ASSERT(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

// Owns a Store, a ToolkitDb and a Projections engine over a directory.
struct Harness {
  explicit Harness(std::string dir_in, Durability durability = Durability::kNone)
      : dir(std::move(dir_in)) {
    StoreOptions options;
    options.durability = durability;
    auto opened = Store::open(dir + "/store", options);
    VL_ASSERT(opened.has_value());
    store = std::move(*opened);
    auto db_opened = ToolkitDb::open(dir + "/toolkit");
    VL_ASSERT(db_opened.has_value());
    db = std::move(*db_opened);
    projections = std::make_unique<Projections>(*store);
  }
  ~Harness() {
    projections.reset();  // stops the threads before the store goes
    db.reset();
    store.reset();
  }

  void append(const std::string& stream, std::vector<EventData> events) {
    auto result = store->append(stream, ExpectedRevision::any(), events);
    ASSERT_TRUE(result.has_value()) << result.error().message;
  }
  void append_n(const std::string& stream, int count, const std::string& type = "Tick") {
    std::vector<EventData> events;
    for (int i = 0; i < count; i++) events.push_back(make_event(type));
    append(stream, std::move(events));
  }

  void add_kv(const std::string& name, ProjectionSource source = {}, uint32_t batch_events = 1000) {
    ProjectionSpec spec;
    spec.name = name;
    spec.source = std::move(source);
    spec.sink = make_kv_sink(*db, name, count_events);
    spec.batch_events = batch_events;
    auto added = projections->add(std::move(spec));
    ASSERT_TRUE(added.has_value()) << added.error().message;
  }

  ProjectionStatus wait(const std::string& name, uint64_t position) {
    auto status = projections->wait_for(name, position, kWaitTimeout);
    VL_ASSERT(status.has_value());
    return *status;
  }
  ProjectionStatus wait_head(const std::string& name) { return wait(name, store->head_position()); }

  KvModel model(const std::string& name) {
    KvModel out;
    auto status = db->kv_scan(name, "", "", UINT32_MAX, [&](auto key, auto value) {
      out.emplace(std::string(key), std::string(value));
      return true;
    });
    VL_ASSERT(status.has_value());
    return out;
  }

  // The events of the log (filtered) or of one stream, below `end`.
  std::vector<RecordedEvent> log(const ProjectionSource& source = {}, uint64_t end = kEnd) {
    std::vector<RecordedEvent> events;
    auto keep = [&](const EventRef& event) {
      uint64_t key = source.stream.empty() ? event.position : event.revision;
      if (key >= end) return false;
      events.push_back(event.to_recorded());
      return true;
    };
    std::optional<uint64_t> next = 0;
    while (next) {
      Result<std::optional<uint64_t>> visited;
      if (source.stream.empty()) {
        visited = store->visit_all(
            ReadAllOptions{.from_position = *next, .max_count = 10'000, .filter = source.filter},
            keep);
      } else {
        visited = store->visit_stream(
            source.stream, ReadStreamOptions{.from_revision = *next, .max_count = 10'000}, keep);
        if (!visited && visited.error().code == ErrorCode::kNotFound) break;
      }
      VL_ASSERT(visited.has_value());
      if (!events.empty()) {
        uint64_t last = source.stream.empty() ? events.back().position : events.back().revision;
        if (last + 1 >= end) break;
      }
      next = *visited;
    }
    return events;
  }

  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<ToolkitDb> db;
  std::unique_ptr<Projections> projections;
};

class ProjectionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    h_ = std::make_unique<Harness>(dir_);
  }
  void TearDown() override {
    h_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    h_.reset();
    h_ = std::make_unique<Harness>(dir_);
  }

  // Appends `batches` x `per_batch` events to streams s-0..s-4 on another thread.
  std::thread append_concurrently(int batches, int per_batch) {
    return std::thread([this, batches, per_batch] {
      for (int i = 0; i < batches; i++) h_->append_n("s-" + std::to_string(i % 5), per_batch);
    });
  }

  std::string dir_;
  std::unique_ptr<Harness> h_;
};

// Records the positions a callback projection is handed, thread-safely.
struct Recorder {
  std::mutex mutex;
  std::vector<uint64_t> positions;
  std::function<Status(const EventRef&)> handler() {
    return [this](const EventRef& event) {
      std::lock_guard lock(mutex);
      positions.push_back(event.position);
      return ok_status();
    };
  }
  std::vector<uint64_t> take() {
    std::lock_guard lock(mutex);
    return positions;
  }
};

std::vector<uint64_t> iota(uint64_t count) {
  std::vector<uint64_t> out(count);
  for (uint64_t i = 0; i < count; i++) out[i] = i;
  return out;
}

TEST_F(ProjectionsTest, CallbackCatchesUpThenFollowsLiveWithoutGapOrDuplicate) {
  for (int i = 0; i < 5; i++) h_->append_n("s-" + std::to_string(i), 300);
  Recorder recorder;
  ProjectionSpec spec{.name = "cb",
                      .sink = make_callback_sink(h_->db.get(), "cb", recorder.handler()),
                      .batch_events = 64};
  ASSERT_TRUE(h_->projections->add(std::move(spec)).has_value());
  std::thread appender = append_concurrently(200, 7);
  appender.join();
  ProjectionStatus status = h_->wait_head("cb");
  EXPECT_EQ(status.state, ProjectionState::kRunning);
  EXPECT_EQ(status.position, 1500u + 1400u);
  EXPECT_EQ(status.events_processed, 2900u);
  EXPECT_EQ(status.lag_events, 0u);
  EXPECT_EQ(status.lag_ms, 0);
  EXPECT_EQ(status.kind, "callback");
  EXPECT_EQ(recorder.take(), iota(2900));
  // The checkpoint trails the applied events by at most the batch in hand.
  ASSERT_TRUE(h_->projections->stop("cb").has_value());
  EXPECT_EQ(*h_->db->checkpoint("cb"), 2900u);
}

TEST_F(ProjectionsTest, KvProjectionCatchesUpAndFollowsConcurrentAppendsExactly) {
  h_->append_n("s-0", 1000);
  h_->add_kv("counts", {}, 100);
  std::thread appender = append_concurrently(300, 5);
  appender.join();
  ProjectionStatus status = h_->wait_head("counts");
  EXPECT_EQ(status.position, 2500u);
  EXPECT_EQ(status.state, ProjectionState::kRunning);
  EXPECT_EQ(h_->model("counts"), expected_counts(h_->log()));
  EXPECT_EQ(h_->model("counts")["total"], "2500");
  EXPECT_EQ(*h_->db->checkpoint("counts"), 2500u);
  auto kind = h_->projections->kind("counts");
  ASSERT_TRUE(kind.has_value());
  EXPECT_EQ(*kind, "kv");
}

TEST_F(ProjectionsTest, FilteredSourceSeesOnlyMatchesAndCheckpointsPastTheRest) {
  for (int i = 0; i < 40; i++) {
    h_->append("order-" + std::to_string(i % 3), {make_event("Placed"), make_event("Paid")});
    h_->append("user-" + std::to_string(i % 2), {make_event("Placed")});
  }
  ProjectionSource paid{.filter = {.types = {"Paid"}}};
  ProjectionSource orders{.filter = {.category = "order"}};
  h_->add_kv("paid", paid);
  h_->add_kv("orders", orders, 7);
  h_->append_n("user-9", 50, "Paid");  // live, and matching only "paid"
  for (const char* name : {"paid", "orders"}) {
    ProjectionStatus status = h_->wait_head(name);
    EXPECT_EQ(status.position, 170u) << name;  // past the non-matching tail too
    EXPECT_EQ(status.lag_events, 0u) << name;
  }
  EXPECT_EQ(h_->model("paid"), expected_counts(h_->log(paid)));
  EXPECT_EQ(h_->model("paid")["total"], "90");
  EXPECT_EQ(h_->model("orders"), expected_counts(h_->log(orders)));
  EXPECT_EQ(h_->model("orders")["total"], "80");
}

TEST_F(ProjectionsTest, StreamSourceCountsRevisions) {
  for (int i = 0; i < 30; i++) {
    h_->append_n("order-1", 2);
    h_->append_n("order-2", 3);
  }
  ProjectionSource source{.stream = "order-1"};
  h_->add_kv("one", source, 5);
  ProjectionSource later{.stream = "order-3"};  // does not exist yet: waits for it
  h_->add_kv("three", later);
  h_->append_n("order-1", 4);
  h_->append_n("order-3", 2);
  EXPECT_EQ(h_->wait("one", 64).position, 64u);
  EXPECT_EQ(h_->wait("three", 2).position, 2u);
  EXPECT_EQ(h_->model("one"), expected_counts(h_->log(source)));
  EXPECT_EQ(h_->model("one")["total"], "64");
  EXPECT_EQ(h_->model("three")["total"], "2");
  auto status = h_->projections->status("one");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->lag_events, 0u);
}

TEST_F(ProjectionsTest, SeveralProjectionsOverTheSameEventsAgree) {
  h_->append_n("s-1", 500);
  for (const char* name : {"a", "b", "c"}) h_->add_kv(name, {}, name[0] == 'a' ? 1 : 333);
  std::thread appender = append_concurrently(100, 3);
  appender.join();
  KvModel expected = expected_counts(h_->log());
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(h_->wait_head(name).position, 800u);
    EXPECT_EQ(h_->model(name), expected) << name;
  }
  EXPECT_EQ(h_->projections->list().size(), 3u);
}

TEST_F(ProjectionsTest, FailingHandlerStopsAtTheEventAndResumesAfterTheFix) {
  h_->append_n("s-1", 250);
  h_->append("s-1", {make_event("Poison")});  // position 250
  h_->append_n("s-2", 100);
  std::atomic<bool> fixed{false};
  std::atomic<uint64_t> calls{0};
  auto handler = [&](const EventRef& event, KvView& view) -> Status {
    calls++;
    if (event.type == "Poison" && !fixed.load()) {
      return make_error(ErrorCode::kInvalidArgument, "cannot digest poison");
    }
    return count_events(event, view);
  };
  ProjectionSpec spec{
      .name = "p", .sink = make_kv_sink(*h_->db, "p", handler), .batch_events = 100};
  ASSERT_TRUE(h_->projections->add(std::move(spec)).has_value());
  ProjectionStatus status = h_->wait_head("p");
  EXPECT_EQ(status.state, ProjectionState::kFailed);
  ASSERT_TRUE(status.failed_position.has_value());
  EXPECT_EQ(*status.failed_position, 250u);
  EXPECT_NE(status.error.find("cannot digest poison"), std::string::npos) << status.error;
  // The failing batch (positions 200..250) was rolled back: the model and the
  // checkpoint stop at the last committed batch, nothing after it.
  EXPECT_EQ(status.position, 200u);
  EXPECT_EQ(*h_->db->checkpoint("p"), 200u);
  EXPECT_EQ(h_->model("p"), expected_counts(h_->log({}, 200)));
  EXPECT_EQ(status.lag_events, 151u);

  fixed = true;
  ASSERT_TRUE(h_->projections->start("p").has_value());
  status = h_->wait_head("p");
  EXPECT_EQ(status.state, ProjectionState::kRunning);
  EXPECT_TRUE(status.error.empty());
  EXPECT_FALSE(status.failed_position.has_value());
  EXPECT_EQ(h_->model("p"), expected_counts(h_->log()));
  EXPECT_EQ(calls.load(), 251u + 151u);  // the rolled-back 51 were applied twice
}

TEST_F(ProjectionsTest, FailingCallbackSkipsNothingAndRedeliversTheBatch) {
  h_->append_n("s-1", 30);
  std::atomic<bool> fixed{false};
  Recorder recorder;
  auto record = recorder.handler();
  auto handler = [&](const EventRef& event) -> Status {
    if (event.position == 17 && !fixed.load()) return make_error(ErrorCode::kInternal, "boom");
    return record(event);
  };
  ProjectionSpec spec{
      .name = "cb", .sink = make_callback_sink(nullptr, "cb", handler), .batch_events = 10};
  ASSERT_TRUE(h_->projections->add(std::move(spec)).has_value());
  ProjectionStatus status = h_->wait_head("cb");
  EXPECT_EQ(status.state, ProjectionState::kFailed);
  EXPECT_EQ(status.failed_position, 17u);
  EXPECT_EQ(status.position, 10u);
  fixed = true;
  ASSERT_TRUE(h_->projections->start("cb").has_value());
  EXPECT_EQ(h_->wait_head("cb").position, 30u);
  // At-least-once: 10..16 twice, then everything once, in order.
  std::vector<uint64_t> expected = iota(17);
  for (uint64_t p = 10; p < 30; p++) expected.push_back(p);
  EXPECT_EQ(recorder.take(), expected);
}

TEST_F(ProjectionsTest, ResetAndRebuildGiveIdenticalReadModels) {
  for (int i = 0; i < 20; i++) h_->append_n("s-" + std::to_string(i % 4), 25);
  h_->add_kv("m", {}, 77);
  h_->wait_head("m");
  KvModel before = h_->model("m");
  EXPECT_EQ(before["total"], "500");

  ASSERT_TRUE(h_->projections->reset("m").has_value());
  auto status = h_->projections->status("m");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state, ProjectionState::kStopped);
  EXPECT_EQ(status->position, 0u);
  EXPECT_EQ(status->lag_events, 500u);
  EXPECT_GT(status->lag_ms, -1);
  EXPECT_TRUE(h_->model("m").empty());
  EXPECT_EQ(*h_->db->checkpoint("m"), std::nullopt);

  ASSERT_TRUE(h_->projections->start("m").has_value());
  h_->wait_head("m");
  EXPECT_EQ(h_->model("m"), before);
  ASSERT_TRUE(h_->projections->rebuild("m").has_value());
  EXPECT_EQ(h_->wait_head("m").events_processed, 500u);
  EXPECT_EQ(h_->model("m"), before);
}

TEST_F(ProjectionsTest, StopIsPromptAndStartResumesFromTheCheckpoint) {
  h_->add_kv("m");
  h_->append_n("s-1", 10);
  h_->wait_head("m");
  int64_t started_ns = system_clock()->monotonic_ns();
  ASSERT_TRUE(h_->projections->stop("m").has_value());
  EXPECT_LT(system_clock()->monotonic_ns() - started_ns, 2'000'000'000);
  EXPECT_EQ(h_->projections->status("m")->state, ProjectionState::kStopped);
  h_->append_n("s-1", 10);
  EXPECT_EQ(h_->projections->status("m")->lag_events, 10u);
  ASSERT_TRUE(h_->projections->start("m").has_value());
  ASSERT_TRUE(h_->projections->start("m").has_value());  // already running: no-op
  EXPECT_EQ(h_->wait_head("m").position, 20u);
  EXPECT_EQ(h_->model("m")["total"], "20");
}

TEST_F(ProjectionsTest, RefusesBadSpecsAndUnknownNames) {
  auto add = [&](std::string name, ProjectionSource source, uint32_t batch_events) {
    ProjectionSpec spec{.name = name,
                        .source = std::move(source),
                        .sink = make_kv_sink(*h_->db, "x", count_events),
                        .batch_events = batch_events};
    auto added = h_->projections->add(std::move(spec));
    return added ? ErrorCode{} : added.error().code;
  };
  EXPECT_EQ(add("bad name", {}, 10), ErrorCode::kInvalidArgument);
  EXPECT_EQ(add("", {}, 10), ErrorCode::kInvalidArgument);
  EXPECT_EQ(add(std::string(129, 'a'), {}, 10), ErrorCode::kInvalidArgument);
  EXPECT_EQ(add("ok", {}, 0), ErrorCode::kInvalidArgument);
  EXPECT_EQ(add("ok", {.stream = "s", .filter = {.types = {"T"}}}, 10),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(add("ok", {}, 10), ErrorCode{});
  EXPECT_EQ(add("ok", {}, 10), ErrorCode::kAlreadyExists);
  EXPECT_EQ(h_->projections->start("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h_->projections->status("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h_->projections->wait_for("nope", 1, 1ms).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h_->projections->kind("nope").error().code, ErrorCode::kNotFound);
  EXPECT_STREQ(projection_state_name(ProjectionState::kFailed), "failed");
}

// The log lost its tail after the read model saw it (durability batch or
// none, then a power loss): resuming would skip the positions written again.
TEST_F(ProjectionsTest, RefusesToStartFromACheckpointAheadOfTheLog) {
  h_->append_n("s-1", 5);
  ASSERT_TRUE(h_->db->commit_kv("ahead", KvBatch{}, 1000));
  ProjectionSpec spec{.name = "ahead", .sink = make_kv_sink(*h_->db, "ahead", count_events)};
  ASSERT_TRUE(h_->projections->add(std::move(spec)).has_value());
  auto status = h_->projections->status("ahead");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state, ProjectionState::kFailed);
  EXPECT_NE(status->error.find("ahead of the log"), std::string::npos) << status->error;
  ASSERT_TRUE(h_->projections->rebuild("ahead").has_value());
  EXPECT_EQ(h_->wait_head("ahead").position, 5u);
}

TEST_F(ProjectionsTest, CheckpointSurvivesReopenWithoutReapplying) {
  h_->append_n("s-1", 300);
  h_->add_kv("m", {}, 64);
  h_->wait_head("m");
  reopen();
  h_->append_n("s-2", 120);
  std::atomic<uint64_t> applied{0};
  auto handler = [&](const EventRef& event, KvView& view) {
    applied++;
    return count_events(event, view);
  };
  ProjectionSpec spec{.name = "m", .sink = make_kv_sink(*h_->db, "m", handler)};
  ASSERT_TRUE(h_->projections->add(std::move(spec)).has_value());
  EXPECT_EQ(h_->wait_head("m").position, 420u);
  EXPECT_EQ(applied.load(), 120u);
  EXPECT_EQ(h_->model("m"), expected_counts(h_->log()));
}

// The child side of the crash test: runs a kv projection while appending,
// until the parent kills it. Selected by the parent through --gtest_filter and
// VL_PROJECTION_CRASH_DIR; skipped in a normal run.
TEST(ProjectionsCrashChild, RunsUntilKilled) {
  const char* dir = ::getenv("VL_PROJECTION_CRASH_DIR");
  if (dir == nullptr) GTEST_SKIP() << "only run by ProjectionsCrash";
  Harness h(dir);
  h.add_kv("m", {}, 50);
  for (uint64_t i = 0;; i++) h.append_n("s-" + std::to_string(i % 7), 1 + static_cast<int>(i % 9));
}

// Kills a process running a kv projection at random moments and checks after
// each kill that the read model is exactly what the log implies up to the
// checkpoint: no event lost, none applied twice (exactly-once effect).
TEST(ProjectionsCrash, KvModelMatchesTheLogUpToItsCheckpointAfterSigkill) {
  uint64_t seed = static_cast<uint64_t>(system_clock()->now_unix_ns());
  if (const char* given = ::getenv("VL_SEED")) seed = std::stoull(given);
  std::printf("seed=%llu\n", static_cast<unsigned long long>(seed));
  Prng prng(seed);
  std::string dir = make_temp_dir();
  uint64_t checkpoint_before = 0;
  for (int round = 0; round < 4; round++) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::setenv("VL_PROJECTION_CRASH_DIR", dir.c_str(), 1);
      // Under TSan, RocksDB (not built with TSan) can make TSan report a race
      // inside it whose frames are unsymbolized, so tools/tsan.supp cannot
      // match it; with halt_on_error the child would then exit before the
      // kill. The child is killed anyway and the parent checks its work; races
      // in our code are caught by the in-process tests.
      const char* tsan_options = ::getenv("TSAN_OPTIONS");
      std::string options = tsan_options ? std::string(tsan_options) + ":" : "";
      ::setenv("TSAN_OPTIONS", (options + "halt_on_error=0").c_str(), 1);
      ::execl("/proc/self/exe", "projections_test",
              "--gtest_filter=ProjectionsCrashChild.RunsUntilKilled", nullptr);
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + prng.uniform(900)));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int wait_status = 0;
    ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wait_status)) << "the child ended on its own: " << wait_status;

    Harness h(dir);
    auto checkpoint = h.db->checkpoint("m");
    ASSERT_TRUE(checkpoint.has_value());
    uint64_t at = checkpoint->value_or(0);
    std::printf("round %d: head %llu, checkpoint %llu\n", round,
                static_cast<unsigned long long>(h.store->head_position()),
                static_cast<unsigned long long>(at));
    EXPECT_GE(at, checkpoint_before);
    EXPECT_LE(at, h.store->head_position());
    EXPECT_EQ(h.model("m"), expected_counts(h.log({}, at))) << "round " << round;
    checkpoint_before = at;
  }
  EXPECT_GT(checkpoint_before, 0u) << "the projection never committed: the test proved nothing";
  std::filesystem::remove_all(dir);
}

// A randomized model-based test: random appends interleaved with random
// start/stop/reset/rebuild of three projections (whole log, filtered, one
// stream); whenever all are caught up, each read model must equal the model
// computed from the log. Replay a failure with VL_SEED=<seed>.
TEST_F(ProjectionsTest, RandomizedOperationsKeepEveryModelEqualToTheLog) {
  uint64_t seed = static_cast<uint64_t>(system_clock()->now_unix_ns());
  if (const char* given = ::getenv("VL_SEED")) seed = std::stoull(given);
  std::printf("seed=%llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Prng prng(seed);
  const std::vector<std::pair<std::string, ProjectionSource>> projections = {
      {"all", {}},
      {"typed", {.filter = {.types = {"B"}}}},
      {"stream", {.stream = "s-1"}},
  };
  for (const auto& [name, source] : projections) {
    h_->add_kv(name, source, 1 + static_cast<uint32_t>(prng.uniform(50)));
  }
  const char* types[] = {"A", "B", "C"};
  for (int step = 0; step < 300; step++) {
    const auto& [name, source] = projections[prng.uniform(projections.size())];
    uint64_t op = prng.uniform(100);
    if (op < 70) {
      std::vector<EventData> events;
      for (uint64_t i = 0, n = 1 + prng.uniform(8); i < n; i++) {
        events.push_back(make_event(types[prng.uniform(3)]));
      }
      h_->append("s-" + std::to_string(prng.uniform(3)), std::move(events));
    } else if (op < 80) {
      ASSERT_TRUE(h_->projections->stop(name).has_value());
    } else if (op < 88) {
      ASSERT_TRUE(h_->projections->start(name).has_value());
    } else if (op < 93) {
      ASSERT_TRUE(h_->projections->reset(name).has_value());
    } else if (op < 97) {
      ASSERT_TRUE(h_->projections->rebuild(name).has_value());
    } else {
      for (const auto& [each, each_source] : projections) {
        ASSERT_TRUE(h_->projections->start(each).has_value());
        uint64_t end =
            each_source.stream.empty() ? h_->store->head_position() : h_->log(each_source).size();
        ProjectionStatus status = h_->wait(each, end);
        ASSERT_EQ(status.state, ProjectionState::kRunning) << each << ": " << status.error;
        ASSERT_EQ(status.position, end) << each;
        ASSERT_EQ(h_->model(each), expected_counts(h_->log(each_source))) << each;
      }
    }
  }
}

}  // namespace
}  // namespace vellum
