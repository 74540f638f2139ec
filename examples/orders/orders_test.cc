// SPDX-License-Identifier: Apache-2.0
// The order system of seed 004 end to end on a real store: the lifecycle and
// its rules, concurrent confirm vs cancel, two read models from the same
// events, the state at a past time, and the refund saga with the audit that
// replays the log to find a missing refund (seed 003's case study).
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "vellum/projection.h"

#include "order.h"
#include "order_views.h"

namespace orders {
namespace {

using vellum::Json;

const std::vector<OrderItem> kItems = {{"pad-thai", 2, 1150}, {"spring-rolls", 1, 600}};

class OrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vellum-orders-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    open();
  }
  void TearDown() override {
    close();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    vellum::StoreOptions options;
    options.durability = vellum::Durability::kNone;  // a test, not a power cut
    auto store = vellum::Store::open((dir_ / "data").string(), options);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    auto db = vellum::ToolkitDb::open((dir_ / "toolkit").string());
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    orders_ = std::make_unique<OrderStore>(*store_, db_.get());
    projections_ = std::make_unique<vellum::Projections>(*store_);
  }
  void close() {
    projections_.reset();
    orders_.reset();
    db_.reset();
    store_.reset();
  }

  void run(const std::string& id, const Order::Command& command) {
    auto done = orders_->handle(id, command);
    ASSERT_TRUE(done) << id << ": " << done.error().message;
  }
  void create_paid(const std::string& id, const std::string& restaurant = "thai-garden") {
    run(id, CreateOrder{id, "customer-" + id, restaurant, kItems});
    run(id, CapturePayment{2900});
  }
  Json state_of(const std::string& projection, const std::string& key) {
    auto value = db_->kv_get(projection, key);
    EXPECT_TRUE(value) << value.error().message;
    if (!value || !*value) return Json();
    return Json::parse(**value);
  }
  // Until the projection has examined the whole log -- including events it
  // caused itself (the saga's refunds), hence the loop.
  void wait_caught_up(const std::string& projection) {
    for (int round = 0; round < 10; ++round) {
      const uint64_t head = store_->head_position();
      auto status = projections_->wait_for(projection, head, std::chrono::seconds(20));
      ASSERT_TRUE(status) << status.error().message;
      ASSERT_EQ(status->state, vellum::ProjectionState::kRunning) << status->error;
      ASSERT_GE(status->position, head);
      if (store_->head_position() == head) return;
    }
    FAIL() << projection << " keeps appending";
  }

  std::filesystem::path dir_;
  std::unique_ptr<vellum::Store> store_;
  std::unique_ptr<vellum::ToolkitDb> db_;
  std::unique_ptr<OrderStore> orders_;
  std::unique_ptr<vellum::Projections> projections_;
};

TEST_F(OrdersTest, RunsTheWholeLifecycle) {
  create_paid("o1");
  for (const Order::Command& command : std::vector<Order::Command>{
           ConfirmOrder{}, StartPreparing{}, MarkReady{}, Dispatch{}, Deliver{}}) {
    run("o1", command);
  }
  auto loaded = orders_->load("o1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.status, Status::kDelivered);
  EXPECT_EQ(loaded->state.total_cents, 2900);
  EXPECT_EQ(loaded->revision, 6);
}

// Every command from every status: allowed exactly where the lifecycle
// diagram of seed 004 has an arrow, rejected with kFailedPrecondition
// elsewhere and nothing written.
TEST_F(OrdersTest, RejectsEveryTransitionTheLifecycleDoesNotHave) {
  const std::vector<std::pair<std::string, Order::Command>> commands = {
      {"confirm", ConfirmOrder{}}, {"prepare", StartPreparing{}}, {"ready", MarkReady{}},
      {"dispatch", Dispatch{}},    {"deliver", Deliver{}},        {"cancel", CancelOrder{"x"}}};
  const std::map<Status, std::set<std::string>> allowed = {
      {Status::kCreated, {"confirm", "cancel"}},
      {Status::kConfirmed, {"prepare", "cancel"}},
      {Status::kPreparing, {"ready", "cancel"}},
      {Status::kReady, {"dispatch"}},
      {Status::kOutForDelivery, {"deliver"}},
      {Status::kDelivered, {}},
      {Status::kCancelled, {}}};
  for (const auto& [status, names] : allowed) {
    OrderState state;
    state.status = status;
    for (const auto& [name, command] : commands) {
      auto decided = Order::decide(state, command);
      EXPECT_EQ(decided.has_value(), names.count(name) == 1)
          << name << " from " << status_name(status);
      if (!decided) {
        EXPECT_EQ(decided.error().code, vellum::ErrorCode::kFailedPrecondition);
      }
    }
  }
  // Through the store: a rejected command appends nothing.
  create_paid("o2");
  const uint64_t head = store_->head_position();
  auto rejected = orders_->handle("o2", Deliver{});
  ASSERT_FALSE(rejected);
  EXPECT_NE(rejected.error().message.find("order is created"), std::string::npos);
  EXPECT_EQ(store_->head_position(), head);
}

TEST_F(OrdersTest, RejectsMalformedOrdersAndPayments) {
  auto empty = orders_->handle("o3", CreateOrder{"o3", "c", "r", {}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, vellum::ErrorCode::kInvalidArgument);
  run("o3", CreateOrder{"o3", "c", "r", kItems});
  auto wrong_amount = orders_->handle("o3", CapturePayment{100});
  ASSERT_FALSE(wrong_amount);
  EXPECT_EQ(wrong_amount.error().code, vellum::ErrorCode::kInvalidArgument);
  run("o3", CapturePayment{2900});
  auto twice = orders_->handle("o3", CapturePayment{2900});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, vellum::ErrorCode::kFailedPrecondition);
}

// Seed 004: the restaurant confirms while the customer cancels, both from the
// same revision. One append wins; the other reloads and decides again.
TEST_F(OrdersTest, ConcurrentConfirmAndCancelAreResolvedByExpectedRevision) {
  create_paid("o4");
  auto restaurant = orders_->load("o4");
  auto customer = orders_->load("o4");
  ASSERT_TRUE(restaurant && customer);
  ASSERT_TRUE(orders_->execute(*restaurant, ConfirmOrder{}));
  auto conflict = orders_->execute(*customer, CancelOrder{"changed my mind"});
  ASSERT_FALSE(conflict);
  ASSERT_TRUE(conflict.error().conflict.has_value());
  // A confirmed order may still be cancelled: the retry succeeds.
  auto retried = orders_->handle("o4", CancelOrder{"changed my mind"});
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_EQ(retried->state.status, Status::kCancelled);

  // Later in the lifecycle the retry is rejected by the business rule.
  create_paid("o5");
  run("o5", ConfirmOrder{});
  run("o5", StartPreparing{});
  auto kitchen = orders_->load("o5");
  auto late_customer = orders_->load("o5");
  ASSERT_TRUE(kitchen && late_customer);
  ASSERT_TRUE(orders_->execute(*kitchen, MarkReady{}));
  ASSERT_FALSE(orders_->execute(*late_customer, CancelOrder{"too slow"}));
  auto rejected = orders_->handle("o5", CancelOrder{"too slow"});
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code, vellum::ErrorCode::kFailedPrecondition);
}

// Two threads race confirm against cancel on many orders: every order ends
// in exactly one of the two outcomes, never both, never neither.
TEST_F(OrdersTest, RacingConfirmAndCancelNeverBothWin) {
  constexpr int kOrders = 40;
  for (int i = 0; i < kOrders; ++i) create_paid("race-" + std::to_string(i));
  std::atomic<int> confirmed{0}, cancelled{0};
  auto racer = [&](const Order::Command& command, std::atomic<int>& wins) {
    for (int i = 0; i < kOrders; ++i) {
      if (orders_->handle("race-" + std::to_string(i), command)) ++wins;
    }
  };
  std::thread a(racer, Order::Command(ConfirmOrder{}), std::ref(confirmed));
  std::thread b(racer, Order::Command(CancelOrder{"race"}), std::ref(cancelled));
  a.join();
  b.join();
  int ended_cancelled = 0;
  for (int i = 0; i < kOrders; ++i) {
    auto loaded = orders_->load("race-" + std::to_string(i));
    ASSERT_TRUE(loaded);
    // Cancel after confirm is legal, confirm after cancel is not.
    EXPECT_TRUE(loaded->state.status == Status::kCancelled ||
                loaded->state.status == Status::kConfirmed);
    if (loaded->state.status == Status::kCancelled) ++ended_cancelled;
  }
  EXPECT_EQ(cancelled.load(), kOrders);  // cancel is allowed from both states
  EXPECT_EQ(ended_cancelled, kOrders);
  EXPECT_LE(confirmed.load(), kOrders);
}

// Seed 004: "what was the order's state at 14:12?"
TEST_F(OrdersTest, AnswersWhatTheStateWasAtAPastTime) {
  create_paid("o6");
  run("o6", ConfirmOrder{});
  run("o6", StartPreparing{});
  // The moment the kitchen started: the recorded time of that event.
  auto preparing = orders_->load("o6");
  ASSERT_TRUE(preparing);
  const int64_t at_preparing = preparing->last_recorded_time_unix_ns;
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  run("o6", MarkReady{});
  auto then = orders_->load_at_time("o6", at_preparing);
  ASSERT_TRUE(then) << then.error().message;
  EXPECT_EQ(then->state.status, Status::kPreparing);
  auto now = orders_->load("o6");
  ASSERT_TRUE(now);
  EXPECT_EQ(now->state.status, Status::kReady);
  auto at_revision = orders_->load_at_revision("o6", 1);
  ASSERT_TRUE(at_revision);
  EXPECT_EQ(at_revision->state.status, Status::kCreated);
  EXPECT_EQ(at_revision->state.paid_cents, 2900);
}

// Both read models from the same events, checked against the aggregates
// after a random workload, then rebuilt from scratch to the same documents.
TEST_F(OrdersTest, TwoReadModelsFromTheSameEventsAgreeWithTheAggregates) {
  ASSERT_TRUE(projections_->add(order_summary_projection(*db_)));
  ASSERT_TRUE(projections_->add(restaurant_dashboard_projection(*db_)));
  std::mt19937 random(7);
  const std::vector<std::string> restaurants = {"thai-garden", "pizza-nova", "sushi-go"};
  std::map<std::string, std::string> restaurant_of;
  for (int i = 0; i < 60; ++i) {
    const std::string id = "m" + std::to_string(i);
    restaurant_of[id] = restaurants[random() % restaurants.size()];
    create_paid(id, restaurant_of[id]);
    const int steps = static_cast<int>(random() % 7);
    const std::vector<Order::Command> path = {ConfirmOrder{}, StartPreparing{}, MarkReady{},
                                              Dispatch{}, Deliver{}};
    for (int s = 0; s < steps && s < 5; ++s) run(id, path[s]);
    if (steps == 6 || (steps < 3 && random() % 2 == 0)) {
      (void)orders_->handle(id, CancelOrder{"random"});
    }
  }
  wait_caught_up("order-summary");
  wait_caught_up("restaurant-dashboard");

  std::map<std::string, Json> expected_boards;
  for (const auto& [id, restaurant] : restaurant_of) {
    auto loaded = orders_->load(id);
    ASSERT_TRUE(loaded);
    Json summary = state_of("order-summary", id);
    EXPECT_EQ(summary.at("status").get<Status>(), loaded->state.status) << id;
    EXPECT_EQ(summary.at("paidCents"), loaded->state.paid_cents);
    Json& board = expected_boards[restaurant];
    for (const char* field : {"active", "delivered", "cancelled", "revenueCents"}) {
      if (!board.contains(field)) board[field] = 0;
    }
    const Status status = loaded->state.status;
    const char* bucket = status == Status::kDelivered   ? "delivered"
                         : status == Status::kCancelled ? "cancelled"
                                                        : "active";
    board[bucket] = board[bucket].get<int64_t>() + 1;
    if (status == Status::kDelivered) {
      board["revenueCents"] = board["revenueCents"].get<int64_t>() + loaded->state.total_cents;
    }
  }
  for (const auto& [restaurant, board] : expected_boards) {
    EXPECT_EQ(state_of("restaurant-dashboard", restaurant), board) << restaurant;
  }
  // A rebuild from the beginning gives the same documents.
  const Json before = state_of("restaurant-dashboard", "pizza-nova");
  ASSERT_TRUE(projections_->rebuild("restaurant-dashboard"));
  wait_caught_up("restaurant-dashboard");
  EXPECT_EQ(state_of("restaurant-dashboard", "pizza-nova"), before);
}

// Seed 003's case study: cancellations happened while the refund saga was
// not running. The audit replays the log and finds the missing refunds; the
// saga, started, catches up and refunds each exactly once -- also when it is
// rebuilt from the beginning later.
TEST_F(OrdersTest, TheAuditFindsAMissingRefundAndTheSagaIssuesItOnce) {
  vellum::ProjectionSpec saga = refund_saga_projection(*db_, *orders_);
  saga.start = false;
  ASSERT_TRUE(projections_->add(std::move(saga)));
  create_paid("p1");
  run("p1", CancelOrder{"kitchen closed"});
  create_paid("p2");
  run("p2", ConfirmOrder{});
  run("p3", CreateOrder{"p3", "c", "thai-garden", kItems});
  run("p3", CancelOrder{"no payment yet"});  // nothing paid: nothing to refund

  auto missing = find_missing_refunds(*store_);
  ASSERT_TRUE(missing) << missing.error().message;
  ASSERT_EQ(missing->size(), 1u);
  EXPECT_EQ((*missing)[0].order_id, "p1");
  EXPECT_EQ((*missing)[0].paid_cents, 2900);

  ASSERT_TRUE(projections_->start("refund-saga"));
  wait_caught_up("refund-saga");
  // p2 is cancelled while the saga runs live.
  run("p2", CancelOrder{"customer"});
  for (int i = 0; i < 100 && orders_->load("p2")->state.refunded_cents == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  wait_caught_up("refund-saga");
  auto none = find_missing_refunds(*store_);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  for (const char* id : {"p1", "p2"}) {
    auto loaded = orders_->load(id);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->state.refunded_cents, 2900) << id;
  }

  // Replaying the saga from the start issues no second refund.
  const uint64_t head = store_->head_position();
  ASSERT_TRUE(projections_->rebuild("refund-saga"));
  wait_caught_up("refund-saga");
  EXPECT_EQ(store_->head_position(), head);
  vellum::ReadAllOptions refunds;
  refunds.filter.types = {"RefundIssued"};
  auto issued = store_->read_all(refunds);
  ASSERT_TRUE(issued);
  ASSERT_EQ(issued->events.size(), 2u);
  // The refund names what caused it.
  EXPECT_FALSE(issued->events[0].causation_id.empty());
  EXPECT_NE(issued->events[0].metadata.find("refund-p1"), std::string::npos);
}

TEST_F(OrdersTest, ReadModelsContinueAfterARestartWithoutDoubleCounting) {
  ASSERT_TRUE(projections_->add(restaurant_dashboard_projection(*db_)));
  for (int i = 0; i < 10; ++i) create_paid("r" + std::to_string(i));
  wait_caught_up("restaurant-dashboard");
  close();
  open();
  ASSERT_TRUE(projections_->add(restaurant_dashboard_projection(*db_)));
  for (int i = 10; i < 15; ++i) create_paid("r" + std::to_string(i));
  wait_caught_up("restaurant-dashboard");
  EXPECT_EQ(state_of("restaurant-dashboard", "thai-garden").at("active"), 15);
}

}  // namespace
}  // namespace orders
