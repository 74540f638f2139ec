// SPDX-License-Identifier: Apache-2.0
// Unit tests of the store through its public API, on an in-memory file
// system and a simulated clock (so time travel and max-age are exact).
#include "vellum/store.h"

#include <condition_variable>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/limits.h"
#include "io/mem_file_system.h"

namespace vellum {
namespace {

EventData make_event(std::string type, std::string data, std::string subject = "") {
  EventData event;
  event.type = std::move(type);
  event.data = std::move(data);
  event.subject = std::move(subject);
  return event;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    store_.reset();
    StoreOptions options;
    options.file_system = &fs_;
    options.clock = &clock_;
    options.index_in_memory = in_memory_index_;
    options.segment_size_bytes = segment_size_;
    auto store = Store::open("/db", options);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
  }

  AppendResult append(const std::string& stream, std::vector<EventData> events,
                      ExpectedRevision expected = ExpectedRevision::any()) {
    auto result = store_->append(stream, expected, events);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.value_or(AppendResult{});
  }

  std::vector<RecordedEvent> read(const std::string& stream, ReadStreamOptions options = {}) {
    auto result = store_->read_stream(stream, options);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result ? result->events : std::vector<RecordedEvent>{};
  }

  std::vector<RecordedEvent> read_all(ReadAllOptions options = {}) {
    auto result = store_->read_all(options);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result ? result->events : std::vector<RecordedEvent>{};
  }

  io::MemFileSystem fs_;
  SimClock clock_;
  bool in_memory_index_ = false;
  uint64_t segment_size_ = uint64_t{256} << 20;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, AppendsAndReadsBackEveryField) {
  EventData event = make_event("OrderCreated", R"({"total":42})", "user-7");
  event.metadata = R"({"ip":"1.2.3.4"})";
  event.correlation_id = "corr";
  event.causation_id = "cause";
  event.occurrence_time_unix_ns = 123;
  event.schema_version = 3;
  event.id = *Uuid::parse("0190b5a4-5d7c-7c3a-8f00-000000000001");
  AppendResult result = append("order-1", {event}, ExpectedRevision::no_stream());
  EXPECT_EQ(result.first_revision, 0u);
  EXPECT_EQ(result.first_position, 0u);
  auto events = read("order-1");
  ASSERT_EQ(events.size(), 1u);
  const RecordedEvent& e = events[0];
  EXPECT_EQ(e.id, event.id);
  EXPECT_EQ(e.stream, "order-1");
  EXPECT_EQ(e.type, "OrderCreated");
  EXPECT_EQ(e.data, event.data);
  EXPECT_EQ(e.metadata, event.metadata);
  EXPECT_EQ(e.subject, "user-7");
  EXPECT_EQ(e.correlation_id, "corr");
  EXPECT_EQ(e.causation_id, "cause");
  EXPECT_EQ(e.occurrence_time_unix_ns, 123);
  EXPECT_EQ(e.schema_version, 3u);
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.recorded_time_unix_ns, clock_.now_unix_ns());
}

TEST_F(StoreTest, GeneratesVersion7IdsWhenAbsent) {
  append("s-1", {make_event("A", "1"), make_event("A", "2")});
  auto events = read("s-1");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].id.is_nil());
  EXPECT_EQ(events[0].id.bytes[6] >> 4, 7);
  EXPECT_LT(events[0].id, events[1].id);
}

TEST_F(StoreTest, ExpectedRevisionRules) {
  auto expect_conflict = [&](ExpectedRevision expected, int64_t actual) {
    auto result = store_->append("s-1", expected, std::vector{make_event("A", "x")});
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kFailedPrecondition);
    ASSERT_TRUE(result.error().conflict.has_value());
    EXPECT_EQ(result.error().conflict->actual_revision, actual);
    EXPECT_EQ(result.error().conflict->stream, "s-1");
  };
  expect_conflict(ExpectedRevision::stream_exists(), -1);
  expect_conflict(ExpectedRevision::exact(0), -1);
  append("s-1", {make_event("A", "x")}, ExpectedRevision::no_stream());
  expect_conflict(ExpectedRevision::no_stream(), 0);
  expect_conflict(ExpectedRevision::exact(5), 0);
  append("s-1", {make_event("A", "y")}, ExpectedRevision::exact(0));
  append("s-1", {make_event("A", "z")}, ExpectedRevision::stream_exists());
  EXPECT_EQ(read("s-1").size(), 3u);  // the conflicts wrote nothing
}

TEST_F(StoreTest, RetriedAppendWithSameIdsIsIdempotent) {
  EventData a = make_event("A", "1");
  EventData b = make_event("B", "2");
  a.id = *Uuid::parse("00000000-0000-4000-8000-00000000000a");
  b.id = *Uuid::parse("00000000-0000-4000-8000-00000000000b");
  append("other-1", {make_event("X", "x")});
  AppendResult first = append("s-1", {a, b}, ExpectedRevision::no_stream());
  AppendResult again = append("s-1", {a, b}, ExpectedRevision::no_stream());
  EXPECT_TRUE(again.idempotent_replay);
  EXPECT_EQ(again.first_position, first.first_position);
  EXPECT_EQ(again.last_revision, first.last_revision);
  EXPECT_EQ(read("s-1").size(), 2u);
  // Same id, different content: refused.
  EventData changed = a;
  changed.data = "other";
  auto result = store_->append("s-1", ExpectedRevision::any(), std::vector{changed});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kAlreadyExists);
  // Same id in another stream: refused.
  result = store_->append("s-2", ExpectedRevision::any(), std::vector{a});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kAlreadyExists);
  // After a reopen the ids are found through the persistent index.
  reopen();
  again = append("s-1", {a, b}, ExpectedRevision::no_stream());
  EXPECT_TRUE(again.idempotent_replay);
  EXPECT_EQ(again.first_position, first.first_position);
}

TEST_F(StoreTest, MultiStreamAppendIsAllOrNothing) {
  append("a-1", {make_event("A", "1")});
  std::vector<StreamAppend> appends = {
      {"a-1", ExpectedRevision::exact(0), {make_event("A", "2")}},
      {"b-1", ExpectedRevision::exact(3), {make_event("B", "1")}},  // wrong
  };
  auto result = store_->append_multi(appends);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().conflict->stream, "b-1");
  EXPECT_EQ(read("a-1").size(), 1u);
  appends[1].expected = ExpectedRevision::no_stream();
  result = store_->append_multi(appends);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->size(), 2u);
  EXPECT_EQ((*result)[0].first_position, 1u);
  EXPECT_EQ((*result)[1].first_position, 2u);
  EXPECT_EQ(read_all().size(), 3u);
}

// append_async: many appends in flight from one thread; every callback runs
// once, results are what append() would return, and input errors come back
// through the callback without anything being written.
TEST_F(StoreTest, AsyncAppendsCompleteOnceWithSynchronousSemantics) {
  constexpr int kAppends = 500;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Result<std::vector<AppendResult>>> outcomes;
  auto record = [&](Result<std::vector<AppendResult>> outcome) {
    std::lock_guard lock(mutex);
    outcomes.push_back(std::move(outcome));
    cv.notify_one();
  };
  for (int i = 0; i < kAppends; i++) {
    std::vector<StreamAppend> appends = {{"s-" + std::to_string(i % 7),
                                          ExpectedRevision::any(),
                                          {make_event("A", std::to_string(i))}}};
    store_->append_async(appends, record);
  }
  std::vector<StreamAppend> conflict = {
      {"s-0", ExpectedRevision::exact(1000000), {make_event("A", "never")}}};
  store_->append_async(conflict, record);
  std::vector<StreamAppend> invalid = {
      {"s-0", ExpectedRevision::any(), {make_event("", "no type")}}};
  store_->append_async(invalid, record);
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return outcomes.size() == kAppends + 2; });
  }
  std::set<uint64_t> positions;
  int failures = 0;
  for (const auto& outcome : outcomes) {
    if (!outcome) {
      failures++;
      EXPECT_TRUE(outcome.error().code == ErrorCode::kFailedPrecondition ||
                  outcome.error().code == ErrorCode::kInvalidArgument)
          << outcome.error().message;
      continue;
    }
    ASSERT_EQ(outcome->size(), 1u);
    positions.insert((*outcome)[0].first_position);
  }
  EXPECT_EQ(failures, 2);
  ASSERT_EQ(positions.size(), static_cast<size_t>(kAppends));
  EXPECT_EQ(*positions.begin(), 0u);
  EXPECT_EQ(*positions.rbegin(), static_cast<uint64_t>(kAppends - 1));  // dense
  EXPECT_EQ(read_all(ReadAllOptions{.max_count = 1000}).size(), static_cast<size_t>(kAppends));
}

TEST_F(StoreTest, ReadsForwardBackwardAndPages) {
  for (int i = 0; i < 25; i++) append("s-1", {make_event("A", std::to_string(i))});
  ReadStreamOptions options;
  options.max_count = 10;
  auto page = store_->read_stream("s-1", options);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->events.size(), 10u);
  EXPECT_EQ(page->next_revision, 10u);
  options.from_revision = 20;
  page = store_->read_stream("s-1", options);
  EXPECT_EQ(page->events.size(), 5u);
  EXPECT_FALSE(page->next_revision.has_value());
  options.direction = Direction::kBackward;
  options.from_revision = kEnd;
  page = store_->read_stream("s-1", options);
  ASSERT_EQ(page->events.size(), 10u);
  EXPECT_EQ(page->events[0].revision, 24u);
  EXPECT_EQ(page->next_revision, 14u);
  auto missing = store_->read_stream("nope", ReadStreamOptions{});
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTest, ReadAllFiltersByTypeCategorySubjectAndPrefix) {
  append("order-1", {make_event("Created", "1", "alice"), make_event("Paid", "2")});
  append("user-1", {make_event("Registered", "3", "alice")});
  append("order-2", {make_event("Created", "4", "bob")});
  ReadAllOptions options;
  options.filter.types = {"Created"};
  EXPECT_EQ(read_all(options).size(), 2u);
  options.filter = {};
  options.filter.category = "order";
  EXPECT_EQ(read_all(options).size(), 3u);
  options.filter = {};
  options.filter.subject = "alice";
  auto alice = read_all(options);
  ASSERT_EQ(alice.size(), 2u);
  EXPECT_EQ(alice[1].stream, "user-1");
  options.filter = {};
  options.filter.stream_prefix = "order-2";
  EXPECT_EQ(read_all(options).size(), 1u);
  options.filter = {};
  options.filter.types = {"Paid", "Registered"};
  auto two = read_all(options);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_LT(two[0].position, two[1].position);
  options.filter = {};
  options.direction = Direction::kBackward;
  options.from_position = kEnd;
  auto backward = read_all(options);
  ASSERT_EQ(backward.size(), 4u);
  EXPECT_EQ(backward[0].position, 3u);
}

TEST_F(StoreTest, ReadsEventById) {
  EventData event = make_event("A", "payload");
  event.id = *Uuid::parse("11111111-2222-4333-8444-555555555555");
  append("s-1", {event});
  auto found = store_->read_event(event.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->data, "payload");
  auto missing = store_->read_event(*Uuid::parse("11111111-2222-4333-8444-000000000000"));
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTest, TimeTravelByPositionAndTime) {
  append("s-1", {make_event("A", "0")});
  int64_t t1 = clock_.now_unix_ns();
  clock_.advance_ns(1'000'000'000);
  append("s-1", {make_event("A", "1")});
  clock_.advance_ns(1'000'000'000);
  append("s-1", {make_event("A", "2")});
  EXPECT_EQ(*store_->position_at(t1), 1u);
  ReadStreamOptions options;
  options.as_of_time_unix_ns = t1;
  EXPECT_EQ(read("s-1", options).size(), 1u);
  options.as_of_time_unix_ns.reset();
  options.as_of_position = 2;
  EXPECT_EQ(read("s-1", options).size(), 2u);
  ReadAllOptions all;
  all.as_of_time_unix_ns = t1 + 1'000'000'000;
  EXPECT_EQ(read_all(all).size(), 2u);
}

TEST_F(StoreTest, MetadataHidesEvents) {
  for (int i = 0; i < 10; i++) append("s-1", {make_event("A", std::to_string(i))});
  StreamMetadata metadata;
  metadata.max_count = 3;
  ASSERT_TRUE(store_->set_stream_metadata("s-1", metadata).has_value());
  auto events = read("s-1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].revision, 7u);
  EXPECT_EQ(read_all().size(), 3u);
  metadata = {};
  metadata.truncate_before = 8;
  ASSERT_TRUE(store_->set_stream_metadata("s-1", metadata).has_value());
  EXPECT_EQ(read("s-1").size(), 2u);
  metadata = {};
  metadata.max_age_seconds = 10;
  ASSERT_TRUE(store_->set_stream_metadata("s-1", metadata).has_value());
  EXPECT_EQ(read("s-1").size(), 10u);
  clock_.advance_ns(11'000'000'000);
  auto aged = store_->read_stream("s-1", ReadStreamOptions{});
  ASSERT_TRUE(aged.has_value());
  EXPECT_EQ(aged->events.size(), 0u);
  reopen();  // metadata survives, through the index and through replay
  EXPECT_EQ(store_->stream_info("s-1")->metadata, metadata);
}

TEST_F(StoreTest, SoftDeleteThenRecreateContinuesRevisions) {
  append("s-1", {make_event("A", "0"), make_event("A", "1")});
  ASSERT_TRUE(store_->delete_stream("s-1", ExpectedRevision::exact(1), false).has_value());
  EXPECT_EQ(store_->read_stream("s-1", {}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(read_all().size(), 0u);
  AppendResult result = append("s-1", {make_event("A", "2")}, ExpectedRevision::no_stream());
  EXPECT_EQ(result.first_revision, 2u);
  auto events = read("s-1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].revision, 2u);
}

TEST_F(StoreTest, TombstoneIsPermanent) {
  append("s-1", {make_event("A", "0")});
  ASSERT_TRUE(store_->delete_stream("s-1", ExpectedRevision::any(), true).has_value());
  auto appended = store_->append("s-1", ExpectedRevision::any(), std::vector{make_event("A", "1")});
  EXPECT_EQ(appended.error().code, ErrorCode::kStreamDeleted);
  EXPECT_EQ(store_->read_stream("s-1", {}).error().code, ErrorCode::kStreamDeleted);
  reopen();
  appended = store_->append("s-1", ExpectedRevision::any(), std::vector{make_event("A", "1")});
  EXPECT_EQ(appended.error().code, ErrorCode::kStreamDeleted);
}

TEST_F(StoreTest, RejectsBadInputAndWritesNothing) {
  auto expect_invalid = [&](const std::string& stream, std::vector<EventData> events) {
    auto result = store_->append(stream, ExpectedRevision::any(), events);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << result.error().message;
  };
  expect_invalid("", {make_event("A", "x")});
  expect_invalid("$system", {make_event("A", "x")});
  expect_invalid(std::string(limits::kStreamNameBytesMax + 1, 's'), {make_event("A", "x")});
  expect_invalid("bad\xff", {make_event("A", "x")});
  expect_invalid("s-1", {});
  expect_invalid("s-1", {make_event("", "x")});
  expect_invalid("s-1", {make_event("A", std::string(limits::kEventBytesMax + 1, 'x'))});
  EventData dup = make_event("A", "x");
  dup.id = *Uuid::parse("11111111-2222-4333-8444-555555555555");
  expect_invalid("s-1", {dup, dup});
  EXPECT_EQ(store_->head_position(), 0u);
}

TEST_F(StoreTest, ReopenKeepsEverythingAndRollsSegments) {
  segment_size_ = 8192;
  reopen();
  for (int i = 0; i < 200; i++) append("s-" + std::to_string(i % 7), {make_event("A", "x")});
  EXPECT_GT(store_->stats().segments, 3u);
  reopen();
  EXPECT_EQ(store_->head_position(), 200u);
  EXPECT_EQ(read_all(ReadAllOptions{.max_count = 1000}).size(), 200u);
  EXPECT_EQ(read("s-3", ReadStreamOptions{.max_count = 1000}).size(), 29u);
  // An index kept only in memory is rebuilt from the log on open.
  in_memory_index_ = true;
  reopen();
  EXPECT_EQ(read("s-3", ReadStreamOptions{.max_count = 1000}).size(), 29u);
  append("s-3", {make_event("A", "y")}, ExpectedRevision::exact(28));
}

TEST_F(StoreTest, SubscriptionCatchesUpThenGoesLive) {
  append("s-1", {make_event("A", "0"), make_event("A", "1")});
  auto subscription = store_->subscribe(SubscriptionOptions{.from = 0});
  ASSERT_TRUE(subscription.has_value());
  auto batch = (*subscription)->next(100, std::chrono::milliseconds(0));
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->events.size(), 2u);
  EXPECT_TRUE(batch->caught_up);
  std::thread writer([&] { append("s-2", {make_event("B", "2")}); });
  batch = (*subscription)->next(100, std::chrono::seconds(10));
  writer.join();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].position, 2u);
}

TEST_F(StoreTest, VisitorsSeeWhatCopyingReadsSee) {
  for (int i = 0; i < 30; i++) {
    append("s-" + std::to_string(i % 3), {make_event(i % 2 ? "A" : "B", std::to_string(i))});
  }
  std::vector<RecordedEvent> visited;
  auto next = store_->visit_all(ReadAllOptions{.max_count = 1000}, [&](const EventRef& event) {
    visited.push_back(event.to_recorded());
    return true;
  });
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(visited, read_all(ReadAllOptions{.max_count = 1000}));
  // Stopping early reports where to continue.
  int seen = 0;
  next =
      store_->visit_stream("s-1", ReadStreamOptions{}, [&](const EventRef&) { return ++seen < 4; });
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(seen, 4);
  EXPECT_EQ(**next, 4u);
  std::vector<RecordedEvent> stream_visited;
  next = store_->visit_stream("s-1", ReadStreamOptions{}, [&](const EventRef& event) {
    stream_visited.push_back(event.to_recorded());
    return true;
  });
  EXPECT_EQ(stream_visited, read("s-1"));
}

}  // namespace
}  // namespace vellum
