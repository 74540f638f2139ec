// SPDX-License-Identifier: Apache-2.0
// Subscriptions under concurrent writers. A subscriber that starts at
// position 0 while 4 threads append 20,000 events must receive every event
// exactly once, in position order, across the switch from catch-up to live,
// and must report caught_up once it reaches the head. Stream and category
// subscriptions likewise see exactly their events in order; a live-only
// subscription sees only what was committed after it started; cancel()
// wakes a blocked next(). The store runs on an in-memory file system so the
// test measures the subscription machinery, not the disk.
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "vellum/store.h"

#include "base/prng.h"
#include "io/mem_file_system.h"

namespace vellum {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kWriters = 4;
constexpr uint64_t kEventsTotal = 20'000;
constexpr auto kDeadline = std::chrono::seconds(45);  // normally done in ~1 s

class SubscriptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.file_system = &fs_;
    options_.index_in_memory = true;
    options_.durability = Durability::kFsync;
    auto store = Store::open("/db", options_);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
  }
  void TearDown() override { store_.reset(); }

  // Appends kEventsTotal events from kWriters threads, in batches of 1-5,
  // to streams chosen by `stream_of(writer, batch)`.
  template <class StreamOf>
  void write_concurrently(StreamOf stream_of) {
    std::vector<std::thread> writers;
    writers.reserve(kWriters);
    for (int w = 0; w < kWriters; w++) {
      writers.emplace_back([this, w, stream_of] { write_share(w, stream_of); });
    }
    for (auto& writer : writers) writer.join();
  }

  // One writer's share: kEventsTotal / kWriters events in batches of 1-5.
  template <class StreamOf>
  void write_share(int w, StreamOf stream_of) {
    Prng prng(static_cast<uint64_t>(w) + 1);
    uint64_t written = 0;
    for (uint64_t batch = 0; written < kEventsTotal / kWriters; batch++) {
      const uint64_t size =
          std::min<uint64_t>(1 + prng.uniform(5), kEventsTotal / kWriters - written);
      std::vector<EventData> events(size);
      for (uint64_t i = 0; i < size; i++) {
        events[i].type = "Tick";
        events[i].data = "w=" + std::to_string(w) + " n=" + std::to_string(written + i);
      }
      auto result = store_->append(stream_of(w, batch), ExpectedRevision::any(), events);
      ASSERT_TRUE(result.has_value()) << result.error().message;
      written += size;
    }
  }

  // Pulls from `subscription` until `expected` events arrived and a batch
  // said caught_up, or the deadline passes.
  std::vector<RecordedEvent> drain(Subscription& subscription, uint64_t expected, bool* caught_up) {
    std::vector<RecordedEvent> events;
    *caught_up = false;
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline && (events.size() < expected || !*caught_up)) {
      auto batch = subscription.next(500, milliseconds(200));
      if (!batch.has_value()) {
        ADD_FAILURE() << "next() failed: " << batch.error().message;
        break;
      }
      EXPECT_LE(batch->events.size(), 500u);
      for (auto& e : batch->events) events.push_back(std::move(e));
      *caught_up = batch->caught_up;
      if (events.size() > expected) break;  // a duplicate or a foreign event
    }
    return events;
  }

  io::MemFileSystem fs_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

// Every event once, in strictly increasing position order, each exactly
// what the log holds at that position.
void expect_exact_log_prefix(Store& store, const std::vector<RecordedEvent>& got) {
  std::set<std::pair<std::string, uint64_t>> seen;
  for (size_t i = 0; i < got.size(); i++) {
    ASSERT_TRUE(seen.emplace(got[i].stream, got[i].revision).second)
        << "duplicate " << got[i].stream << "@" << got[i].revision;
    if (i > 0) {
      ASSERT_GT(got[i].position, got[i - 1].position) << "out of order at " << i;
    }
  }
  ReadAllOptions options;
  options.max_count = 10'000;
  std::vector<RecordedEvent> log;
  while (true) {
    auto read = store.read_all(options);
    ASSERT_TRUE(read.has_value());
    log.insert(log.end(), read->events.begin(), read->events.end());
    if (!read->next_position) break;
    options.from_position = *read->next_position;
  }
  ASSERT_EQ(got.size(), log.size());
  for (size_t i = 0; i < got.size(); i++) ASSERT_EQ(got[i], log[i]) << "at " << i;
}

TEST_F(SubscriptionTest, AllSubscriberGetsEveryEventOnceInOrder) {
  SubscriptionOptions options;
  options.from = 0;
  auto subscription = store_->subscribe(options);
  ASSERT_TRUE(subscription.has_value()) << subscription.error().message;
  std::vector<RecordedEvent> got;
  bool caught_up = false;
  std::thread reader([&] { got = drain(**subscription, kEventsTotal, &caught_up); });
  write_concurrently(
      [](int w, uint64_t batch) { return "all-" + std::to_string((w + batch) % 7); });
  reader.join();
  EXPECT_EQ(got.size(), kEventsTotal);
  EXPECT_TRUE(caught_up) << "the last batch must report caught_up";
  expect_exact_log_prefix(*store_, got);
  subscription->reset();
}

TEST_F(SubscriptionTest, StreamSubscriberGetsItsStreamInRevisionOrder) {
  SubscriptionOptions options;
  options.stream = "target-1";
  options.from = 0;
  auto subscription = store_->subscribe(options);
  ASSERT_TRUE(subscription.has_value()) << subscription.error().message;
  std::atomic<uint64_t> target_events{UINT64_MAX};  // known once the writers are done
  std::vector<RecordedEvent> got;
  std::atomic<bool> writers_done{false};
  bool caught_up = false;
  std::thread reader([&] {
    const auto deadline = Clock::now() + kDeadline;
    while (Clock::now() < deadline && (!writers_done || got.size() < target_events || !caught_up)) {
      auto batch = (*subscription)->next(100, milliseconds(100));
      ASSERT_TRUE(batch.has_value()) << batch.error().message;
      for (auto& e : batch->events) got.push_back(std::move(e));
      caught_up = batch->caught_up;
    }
  });
  write_concurrently([](int w, uint64_t batch) {
    return (w + batch) % 3 == 0 ? std::string("target-1") : "other-" + std::to_string(w);
  });
  auto info = store_->stream_info("target-1");
  ASSERT_TRUE(info.has_value());
  target_events = static_cast<uint64_t>(info->last_revision + 1);
  writers_done = true;
  reader.join();
  ASSERT_EQ(got.size(), target_events.load());
  for (uint64_t r = 0; r < got.size(); r++) {
    ASSERT_EQ(got[r].stream, "target-1");
    ASSERT_EQ(got[r].revision, r) << "gap or duplicate";
  }
  EXPECT_TRUE(caught_up);
  subscription->reset();
}

TEST_F(SubscriptionTest, CategorySubscriberGetsOnlyItsCategoryInOrder) {
  SubscriptionOptions options;
  options.filter.category = "alpha";
  options.from = 0;
  auto subscription = store_->subscribe(options);
  ASSERT_TRUE(subscription.has_value()) << subscription.error().message;
  std::vector<RecordedEvent> got;
  std::atomic<bool> writers_done{false};
  std::atomic<uint64_t> expected{UINT64_MAX};
  std::thread reader([&] {
    const auto deadline = Clock::now() + kDeadline;
    bool caught_up = false;
    while (Clock::now() < deadline && (!writers_done || got.size() < expected || !caught_up)) {
      auto batch = (*subscription)->next(300, milliseconds(100));
      ASSERT_TRUE(batch.has_value()) << batch.error().message;
      for (auto& e : batch->events) got.push_back(std::move(e));
      caught_up = batch->caught_up;
    }
  });
  write_concurrently([](int w, uint64_t batch) {
    const char* categories[] = {"alpha-", "beta-", "alphabet-"};
    return categories[(w + batch) % 3] + std::to_string(w % 2);
  });
  uint64_t alpha = 0;
  for (const char* name : {"alpha-0", "alpha-1"}) {
    auto info = store_->stream_info(name);
    if (info.has_value()) alpha += static_cast<uint64_t>(info->last_revision + 1);
  }
  expected = alpha;
  writers_done = true;
  reader.join();
  ASSERT_EQ(got.size(), alpha);
  std::map<std::string, uint64_t> next_revision;
  for (size_t i = 0; i < got.size(); i++) {
    ASSERT_TRUE(got[i].stream.starts_with("alpha-"))
        << got[i].stream << " is not in category alpha";
    ASSERT_EQ(got[i].revision, next_revision[got[i].stream]++);
    if (i > 0) {
      ASSERT_GT(got[i].position, got[i - 1].position);
    }
  }
  subscription->reset();
}

TEST_F(SubscriptionTest, LiveOnlySubscriberSkipsEarlierEvents) {
  std::vector<EventData> events(1);
  events[0].type = "Before";
  for (int i = 0; i < 100; i++) {
    ASSERT_TRUE(store_->append("live-1", ExpectedRevision::any(), events).has_value());
  }
  const uint64_t head = store_->head_position();
  auto subscription = store_->subscribe(SubscriptionOptions{});
  ASSERT_TRUE(subscription.has_value()) << subscription.error().message;
  events[0].type = "After";
  for (int i = 0; i < 50; i++) {
    ASSERT_TRUE(store_->append("live-1", ExpectedRevision::any(), events).has_value());
  }
  bool caught_up = false;
  std::vector<RecordedEvent> got = drain(**subscription, 50, &caught_up);
  ASSERT_EQ(got.size(), 50u);
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(got[i].type, "After");
    EXPECT_EQ(got[i].revision, 100 + i);
    EXPECT_GE(got[i].position, head);
  }
  EXPECT_TRUE(caught_up);
  subscription->reset();
}

TEST_F(SubscriptionTest, CancelWakesABlockedNext) {
  auto subscription = store_->subscribe(SubscriptionOptions{});
  ASSERT_TRUE(subscription.has_value()) << subscription.error().message;
  Subscription* raw = subscription->get();
  std::atomic<bool> returned{false};
  Result<SubscriptionBatch> result = make_error(ErrorCode::kInternal, "not run");
  const auto started = Clock::now();
  std::thread waiter([&] {
    result = raw->next(10, milliseconds(30'000));
    returned = true;
  });
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(returned) << "next() must block while there is nothing to deliver";
  raw->cancel();
  waiter.join();
  const auto waited = Clock::now() - started;
  EXPECT_LT(waited, std::chrono::seconds(5)) << "cancel() did not wake next()";
  if (result.has_value()) {
    EXPECT_TRUE(result->events.empty());
  } else {
    EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
  }
  auto later = raw->next(10, milliseconds(10));
  ASSERT_FALSE(later.has_value());
  EXPECT_EQ(later.error().code, ErrorCode::kCancelled);
  subscription->reset();
}

}  // namespace
}  // namespace vellum
