// SPDX-License-Identifier: Apache-2.0
// Aggregates: loading, commands under concurrency, idempotent commands,
// snapshots and temporal loads, against a real Store and ToolkitDb.
#include "vellum/aggregate.h"

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/prng.h"
#include "io/mem_file_system.h"

namespace vellum {
namespace {

struct Opened {
  static constexpr std::string_view kType = "AccountOpened";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string owner;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, owner)
struct Deposited {
  static constexpr std::string_view kType = "Deposited";
  static constexpr uint32_t kSchemaVersion = 1;
  int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)
struct Withdrawn {
  static constexpr std::string_view kType = "Withdrawn";
  static constexpr uint32_t kSchemaVersion = 1;
  int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, amount)

struct AccountState {
  bool open = false;
  std::string owner;
  int64_t balance = 0;
  uint64_t changes = 0;
  friend bool operator==(const AccountState&, const AccountState&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountState, open, owner, balance, changes)

struct Open {
  std::string owner;
};
struct Deposit {
  int64_t amount;
};
struct Withdraw {
  int64_t amount;
};

// Lets a test act between decide() and the append (another writer racing).
std::function<void()> g_before_append;

struct Account {
  using Codec = EventCodec<Opened, Deposited, Withdrawn>;
  using Event = Codec::Event;
  using State = AccountState;
  using Command = std::variant<Open, Deposit, Withdraw>;
  static constexpr std::string_view kCategory = "account";
  static constexpr uint32_t kLogicVersion = 1;

  static State initial() { return {}; }
  static State evolve(State state, const Event& event) {
    if (auto* opened = std::get_if<Opened>(&event)) {
      state.open = true;
      state.owner = opened->owner;
    } else if (auto* deposited = std::get_if<Deposited>(&event)) {
      state.balance += deposited->amount;
    } else if (auto* withdrawn = std::get_if<Withdrawn>(&event)) {
      state.balance -= withdrawn->amount;
    }
    ++state.changes;
    return state;
  }
  static Result<std::vector<Event>> decide(const State& state, const Command& command) {
    if (g_before_append) g_before_append();
    if (auto* open = std::get_if<Open>(&command)) {
      if (state.open) return make_error(ErrorCode::kFailedPrecondition, "already open");
      return std::vector<Event>{Opened{open->owner}};
    }
    if (!state.open) return make_error(ErrorCode::kFailedPrecondition, "account not open");
    if (auto* deposit = std::get_if<Deposit>(&command)) {
      if (deposit->amount <= 0) return make_error(ErrorCode::kInvalidArgument, "bad amount");
      return std::vector<Event>{Deposited{deposit->amount}};
    }
    const auto& withdraw = std::get<Withdraw>(command);
    if (withdraw.amount > state.balance) {
      return make_error(ErrorCode::kFailedPrecondition, "insufficient funds");
    }
    return std::vector<Event>{Withdrawn{withdraw.amount}};
  }
};

// The same aggregate after a change to evolve(): its snapshots are not the
// old logic's. Here it counts changes twice, so a misapplied snapshot shows.
struct AccountV2 : Account {
  static constexpr uint32_t kLogicVersion = 2;
  static State evolve(State state, const Event& event) {
    state = Account::evolve(std::move(state), event);
    ++state.changes;
    return state;
  }
};

class AggregateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_before_append = nullptr;
    StoreOptions options;
    options.file_system = &fs_;
    options.clock = &clock_;
    auto store = Store::open("/db", options);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    dir_ = std::filesystem::temp_directory_path() /
           ("vellum-aggregate-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto db = ToolkitDb::open(dir_.string());
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
  }
  void TearDown() override {
    g_before_append = nullptr;
    db_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  template <class A = Account>
  AggregateStore<A> accounts(AggregateOptions options = {}, bool snapshots = true) {
    return AggregateStore<A>(*store_, snapshots ? db_.get() : nullptr, {}, options);
  }

  io::MemFileSystem fs_;
  SimClock clock_;
  std::unique_ptr<Store> store_;
  std::filesystem::path dir_;
  std::unique_ptr<ToolkitDb> db_;
};

TEST_F(AggregateTest, ANewAggregateLoadsAsTheInitialState) {
  auto store = accounts();
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->state, AccountState{});
  EXPECT_EQ(loaded->revision, kNoRevision);
  EXPECT_EQ(loaded->stream, "account-a1");
}

TEST_F(AggregateTest, HandlesCommandsAndRejectsBusinessRuleViolations) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  ASSERT_TRUE(store.handle("a1", Deposit{100}));
  auto overdraft = store.handle("a1", Withdraw{101});
  ASSERT_FALSE(overdraft);
  EXPECT_EQ(overdraft.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(overdraft.error().message, "insufficient funds");
  auto done = store.handle("a1", Withdraw{60});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->state.balance, 40);
  EXPECT_EQ(done->revision, 2);
  EXPECT_EQ(store_->head_position(), 3u);  // the rejected command wrote nothing
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state, done->state);
}

// Seed 004: processes A and B both load the order at the same revision; A's
// append wins, B's fails with a conflict, B reloads and the business rule
// decides again on the new state.
TEST_F(AggregateTest, TwoWritersAtTheSameRevisionOneWinsTheOtherRedecides) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store.handle("a1", Deposit{10}));
  auto process_a = store.load("a1");
  auto process_b = store.load("a1");
  ASSERT_TRUE(process_a && process_b);
  ASSERT_EQ(process_a->revision, 5);
  ASSERT_TRUE(store.execute(*process_a, Withdraw{50}));
  auto lost = store.execute(*process_b, Withdraw{30});
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(lost.error().conflict.has_value());
  EXPECT_EQ(lost.error().conflict->actual_revision, 6);
  // handle() reloads: the balance is now 0, so the rule rejects it.
  auto rejected = store.handle("a1", Withdraw{30});
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().message, "insufficient funds");
  EXPECT_EQ(store_->head_position(), 7u);
}

TEST_F(AggregateTest, RetriesAfterAConflictAndCountsAttempts) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  int races = 2;
  g_before_append = [&] {
    if (races-- > 0) {
      EventData racing = Account::Codec::encode(Deposited{1});
      ASSERT_TRUE(store_->append("account-a1", ExpectedRevision::any(), {&racing, 1}));
    }
  };
  auto done = store.handle("a1", Deposit{100});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->attempts, 3u);
  EXPECT_EQ(done->state.balance, 102);
  EXPECT_EQ(store.stats().conflicts, 2u);
}

TEST_F(AggregateTest, GivesUpAfterMaxAttempts) {
  AggregateOptions options;
  options.max_attempts = 3;
  auto store = accounts(options);
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  g_before_append = [&] {
    EventData racing = Account::Codec::encode(Deposited{1});
    ASSERT_TRUE(store_->append("account-a1", ExpectedRevision::any(), {&racing, 1}));
  };
  auto done = store.handle("a1", Deposit{100});
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kAborted);
  g_before_append = nullptr;
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.balance, 3);  // only the racing writer's deposits
}

TEST_F(AggregateTest, ConcurrentCommandsLoseNoUpdate) {
  AggregateOptions options;
  options.max_attempts = 1000;
  auto store = accounts(options);
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  constexpr int kThreads = 4;
  constexpr int kDeposits = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kDeposits; ++i) {
        auto done = store.handle("a1", Deposit{1});
        EXPECT_TRUE(done) << done.error().message;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.balance, kThreads * kDeposits);
  EXPECT_EQ(loaded->revision, kThreads * kDeposits);
}

TEST_F(AggregateTest, ACommandIdAppendsOnceAndStampsContext) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  CommandContext context;
  context.command_id = "cmd-42";
  context.correlation_id = "corr-1";
  context.causation_id = "cause-1";
  context.subject = "user-ada";
  context.metadata = {{"ip", "10.0.0.1"}};
  auto first = store.handle("a1", Deposit{25}, context);
  ASSERT_TRUE(first) << first->state.balance;
  EXPECT_FALSE(first->replayed);
  // The retry (say, after a lost acknowledgement) finds the command applied.
  auto retry = store.handle("a1", Deposit{25}, context);
  ASSERT_TRUE(retry) << retry.error().message;
  EXPECT_TRUE(retry->replayed);
  EXPECT_TRUE(retry->events.empty());
  ASSERT_TRUE(retry->append.has_value());
  EXPECT_EQ(retry->append->first_revision, first->append->first_revision);
  EXPECT_EQ(retry->state.balance, 25);
  EXPECT_EQ(store_->head_position(), 2u);
  EXPECT_EQ(store.stats().commands_replayed, 1u);

  auto event = store_->read_event(detail::command_event_id("account-a1", "cmd-42", 0));
  ASSERT_TRUE(event) << event.error().message;
  EXPECT_EQ(event->correlation_id, "corr-1");
  EXPECT_EQ(event->causation_id, "cause-1");
  EXPECT_EQ(event->subject, "user-ada");
  EXPECT_EQ(Json::parse(event->metadata), (Json{{"commandId", "cmd-42"}, {"ip", "10.0.0.1"}}));
  EXPECT_EQ(event->id.bytes[6] >> 4, 8);  // UUIDv8
}

TEST_F(AggregateTest, ADifferentCommandIdIsANewCommand) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  CommandContext one, two;
  one.command_id = "cmd-1";
  two.command_id = "cmd-2";
  ASSERT_TRUE(store.handle("a1", Deposit{5}, one));
  ASSERT_TRUE(store.handle("a1", Deposit{5}, two));
  // The same id on another account is another command too.
  ASSERT_TRUE(store.handle("a2", Open{"bob"}, one));
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.balance, 10);
}

TEST_F(AggregateTest, SnapshotsEveryNEventsAndLoadsFromTheNewest) {
  AggregateOptions options;
  options.snapshots.every_events = 100;
  options.snapshots.load_events_over = 0;
  auto store = accounts(options);
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  for (int i = 0; i < 249; ++i) ASSERT_TRUE(store.handle("a1", Deposit{1}));
  EXPECT_EQ(store.stats().snapshots_written, 2u);  // at revisions 99 and 199
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->snapshot_revision, std::optional<uint64_t>(199));
  EXPECT_EQ(loaded->events_applied, 50u);
  EXPECT_EQ(loaded->state.balance, 249);
  EXPECT_EQ(loaded->state.changes, 250u);
  auto without = accounts(options, /*snapshots=*/false).load("a1");
  ASSERT_TRUE(without);
  EXPECT_EQ(without->events_applied, 250u);
  EXPECT_EQ(without->state, loaded->state);
}

TEST_F(AggregateTest, SnapshotsALoadThatReadTooManyEvents) {
  AggregateOptions options;
  options.snapshots.every_events = 0;
  options.snapshots.load_events_over = 100;
  auto store = accounts(options);
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(store.handle("a1", Deposit{2}));
  // handle() loads before each command: the load that applied 101 events
  // wrote a snapshot, and every later load started from it.
  EXPECT_EQ(store.stats().snapshots_written, 1u);
  auto first = store.load("a1");
  ASSERT_TRUE(first);
  EXPECT_LT(first->events_applied, 100u);
  EXPECT_TRUE(first->snapshot_revision.has_value());
  EXPECT_EQ(first->state.balance, 300);
}

TEST_F(AggregateTest, ASnapshotOfAnotherLogicVersionIsIgnored) {
  AggregateOptions options;
  options.snapshots.every_events = 10;
  auto v1 = accounts(options);
  ASSERT_TRUE(v1.handle("a1", Open{"ada"}));
  for (int i = 0; i < 24; ++i) ASSERT_TRUE(v1.handle("a1", Deposit{1}));
  auto v2 = accounts<AccountV2>(options);
  auto loaded = v2.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->snapshot_revision.has_value());
  EXPECT_EQ(loaded->events_applied, 25u);
  EXPECT_EQ(loaded->state.changes, 50u);  // v2 logic over every event
}

TEST_F(AggregateTest, AnUndecodableSnapshotIsIgnored) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  ASSERT_TRUE(store.handle("a1", Deposit{7}));
  ASSERT_TRUE(db_->put_snapshot("account", "account-a1", Snapshot{1, 0, 1, 0, "{garbage"}));
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->snapshot_revision.has_value());
  EXPECT_EQ(loaded->state.balance, 7);
  EXPECT_EQ(store.stats().snapshot_errors, 1u);
}

// A snapshot beyond the stream's end (the log lost its tail after the
// snapshot was written) would bring back events that no longer exist.
TEST_F(AggregateTest, ASnapshotAheadOfTheStreamIsIgnored) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  ASSERT_TRUE(store.handle("a1", Deposit{5}));
  AccountState future{true, "ada", 999, 51};
  ASSERT_TRUE(
      db_->put_snapshot("account", "account-a1", Snapshot{50, 0, 1, 0, Json(future).dump()}));
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(loaded->snapshot_revision.has_value());
  EXPECT_EQ(loaded->state.balance, 5);
  EXPECT_EQ(loaded->revision, 1);
}

TEST_F(AggregateTest, ASoftDeletedStreamRestartsWithoutItsOldSnapshots) {
  AggregateOptions options;
  options.snapshots.every_events = 5;
  auto store = accounts(options);
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(store.handle("a1", Deposit{1}));
  ASSERT_TRUE(store_->delete_stream("account-a1", ExpectedRevision::any(), false));
  auto deleted = store.load("a1");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->state, AccountState{});
  EXPECT_EQ(deleted->revision, kNoRevision);
  ASSERT_TRUE(store.handle("a1", Open{"bob"}));  // expects no_stream: recreates it
  ASSERT_TRUE(store.handle("a1", Deposit{3}));
  auto loaded = store.load("a1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.owner, "bob");
  EXPECT_EQ(loaded->state.balance, 3);
  EXPECT_EQ(loaded->revision, 11);
}

TEST_F(AggregateTest, ATombstonedStreamIsAnError) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  ASSERT_TRUE(store_->delete_stream("account-a1", ExpectedRevision::any(), true));
  auto loaded = store.load("a1");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kStreamDeleted);
}

TEST_F(AggregateTest, LoadsAsOfARevisionAndATime) {
  AggregateOptions options;
  options.snapshots.every_events = 4;
  auto store = accounts(options);
  const int64_t start = clock_.now_unix_ns();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  for (int i = 1; i <= 9; ++i) {
    clock_.advance_ns(60'000'000'000);  // a minute between events
    ASSERT_TRUE(store.handle("a1", Deposit{i}));
  }
  auto at_six = store.load_at_revision("a1", 6);
  ASSERT_TRUE(at_six) << at_six.error().message;
  EXPECT_EQ(at_six->state.balance, 1 + 2 + 3 + 4 + 5 + 6);
  EXPECT_EQ(at_six->snapshot_revision, std::optional<uint64_t>(3));  // at or before 6
  EXPECT_EQ(at_six->events_applied, 3u);
  // Between the 4th and 5th deposit.
  auto at_time = store.load_at_time("a1", start + 4 * 60'000'000'000 + 30'000'000'000);
  ASSERT_TRUE(at_time) << at_time.error().message;
  EXPECT_EQ(at_time->revision, 4);
  EXPECT_EQ(at_time->state.balance, 1 + 2 + 3 + 4);
  auto before = store.load_at_time("a1", start - 1);
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code, ErrorCode::kNotFound);
  auto beyond = store.load_at_revision("a1", 10);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, ErrorCode::kNotFound);
}

TEST_F(AggregateTest, AnUnknownEventTypeFailsTheLoadUnlessSkipped) {
  auto store = accounts();
  ASSERT_TRUE(store.handle("a1", Open{"ada"}));
  EventData future;
  future.type = "InterestPaid";
  future.data = "{}";
  ASSERT_TRUE(store_->append("account-a1", ExpectedRevision::any(), {&future, 1}));
  auto loaded = store.load("a1");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
  EXPECT_NE(loaded.error().message.find("account-a1' revision 1"), std::string::npos);
  AggregateOptions options;
  options.skip_unknown_event_types = true;
  auto skipping = accounts(options).load("a1");
  ASSERT_TRUE(skipping);
  EXPECT_EQ(skipping->revision, 1);
  EXPECT_TRUE(skipping->state.open);
}

// Model-based: random commands on a few accounts, random snapshot policies;
// every load (current and at a random revision) equals the model's fold.
TEST_F(AggregateTest, RandomizedLoadsMatchTheModel) {
  const uint64_t seed = ::testing::UnitTest::GetInstance()->random_seed() + 20261123;
  SCOPED_TRACE("seed " + std::to_string(seed));
  Prng prng(seed);
  AggregateOptions options;
  options.snapshots.every_events = 1 + prng.uniform(20);
  options.snapshots.load_events_over = prng.uniform(30);
  auto store = accounts(options);
  std::map<std::string, std::vector<AccountState>> model;  // state after each revision
  for (int step = 0; step < 600; ++step) {
    const std::string id = "r" + std::to_string(prng.uniform(4));
    auto& history = model[id];
    const AccountState current = history.empty() ? AccountState{} : history.back();
    Account::Command command = Open{"o"};
    switch (prng.uniform(3)) {
      case 0:
        command = Open{"owner-" + id};
        break;
      case 1:
        command = Deposit{static_cast<int64_t>(1 + prng.uniform(50))};
        break;
      default:
        command = Withdraw{static_cast<int64_t>(1 + prng.uniform(60))};
        break;
    }
    auto expected = Account::decide(current, command);
    auto done = store.handle(id, command);
    ASSERT_EQ(done.has_value(), expected.has_value()) << "step " << step;
    if (!done) continue;
    history.push_back(Account::evolve(current, expected->front()));
    if (prng.uniform(5) == 0) {
      const uint64_t revision = prng.uniform(history.size());
      auto past = store.load_at_revision(id, revision);
      ASSERT_TRUE(past) << past.error().message;
      EXPECT_EQ(past->state, history[revision]) << "step " << step;
    }
  }
  for (const auto& [id, history] : model) {
    auto loaded = store.load(id);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->state, history.empty() ? AccountState{} : history.back());
  }
}

}  // namespace
}  // namespace vellum
