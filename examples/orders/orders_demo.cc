// SPDX-License-Identifier: Apache-2.0
// orders_demo: seed 004's story on an embedded Vellum store, printed step by
// step. Usage: orders_demo [data directory]   (default: a fresh temporary one)
#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/core.h>

#include "vellum/projection.h"

#include "order.h"
#include "order_views.h"

namespace {

using namespace orders;  // NOLINT(google-build-using-namespace): a demo's main file

int fail(const vellum::Error& error) {
  fmt::print(stderr, "error: {}\n", error.message);
  return 1;
}

void show(OrderStore& store, const char* id) {
  auto loaded = store.load(id);
  if (!loaded) return;
  fmt::print("  {:<4} {:<17} revision {}  paid {}  refunded {}\n", id,
             status_name(loaded->state.status), loaded->revision, loaded->state.paid_cents,
             loaded->state.refunded_cents);
}

int run_demo(const std::filesystem::path& dir) {
  auto store = vellum::Store::open((dir / "data").string(), {});
  if (!store) return fail(store.error());
  auto db = vellum::ToolkitDb::open((dir / "toolkit").string());
  if (!db) return fail(db.error());
  OrderStore orders(**store, db->get());
  vellum::Projections projections(**store);
  if (auto added = projections.add(order_summary_projection(**db)); !added) {
    return fail(added.error());
  }
  if (auto added = projections.add(restaurant_dashboard_projection(**db)); !added) {
    return fail(added.error());
  }

  fmt::print("1. Order 123 goes through the kitchen; order 456 is cancelled after payment.\n");
  const std::vector<OrderItem> items = {{"pad-thai", 2, 1150}, {"spring-rolls", 1, 600}};
  auto run = [&](const char* id, const Order::Command& command) {
    auto done = orders.handle(id, command);
    if (!done) fmt::print("  {} rejected: {}\n", id, done.error().message);
    return done.has_value();
  };
  run("123", CreateOrder{"123", "alice", "thai-garden", items});
  run("123", CapturePayment{2900});
  run("123", ConfirmOrder{});
  run("123", StartPreparing{});
  auto preparing = orders.load("123");
  if (!preparing) return fail(preparing.error());
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  run("123", MarkReady{});
  run("456", CreateOrder{"456", "bob", "thai-garden", items});
  run("456", CapturePayment{2900});
  run("456", CancelOrder{"kitchen closed"});
  show(orders, "123");
  show(orders, "456");

  fmt::print("2. Invalid transitions are rejected by the aggregate:\n");
  run("123", CancelOrder{"too late"});
  run("456", ConfirmOrder{});

  fmt::print("3. Two clerks act on order 123 from the same revision:\n");
  auto clerk_a = orders.load("123");
  auto clerk_b = orders.load("123");
  if (!clerk_a || !clerk_b) return fail(vellum::Error{vellum::ErrorCode::kInternal, "load"});
  auto a = orders.execute(*clerk_a, Dispatch{});
  auto b = orders.execute(*clerk_b, Dispatch{});
  fmt::print("  clerk A: {}\n  clerk B: {}\n", a ? "dispatched" : a.error().message,
             b ? "dispatched" : b.error().message);

  fmt::print("4. What was order 123's state when the kitchen started?\n");
  auto then = orders.load_at_time("123", preparing->last_recorded_time_unix_ns);
  if (!then) return fail(then.error());
  fmt::print("  then: {} (revision {}); now: {}\n", status_name(then->state.status), then->revision,
             status_name(orders.load("123")->state.status));

  fmt::print("5. Read models from the same events:\n");
  for (const char* name : {"order-summary", "restaurant-dashboard"}) {
    auto status = projections.wait_for(name, (*store)->head_position(), std::chrono::seconds(10));
    if (!status) return fail(status.error());
  }
  for (auto [projection, key] :
       {std::pair{"order-summary", "123"}, std::pair{"restaurant-dashboard", "thai-garden"}}) {
    auto value = (*db)->kv_get(projection, key);
    if (!value) return fail(value.error());
    fmt::print("  {}/{}: {}\n", projection, key, value->value_or("(none)"));
  }

  fmt::print("6. The refund saga was not running. The audit replays the log:\n");
  auto missing = find_missing_refunds(**store);
  if (!missing) return fail(missing.error());
  for (const MissingRefund& m : *missing) {
    fmt::print("  missing refund: order {} paid {} cancelled at position {}\n", m.order_id,
               m.paid_cents, m.cancelled_at_position);
  }
  if (auto added = projections.add(refund_saga_projection(**db, orders)); !added) {
    return fail(added.error());
  }
  auto caught_up =
      projections.wait_for("refund-saga", (*store)->head_position(), std::chrono::seconds(10));
  if (!caught_up) return fail(caught_up.error());
  // The saga's refund is a new event: wait until the saga has seen it too.
  (void)projections.wait_for("refund-saga", (*store)->head_position(), std::chrono::seconds(10));
  auto after = find_missing_refunds(**store);
  if (!after) return fail(after.error());
  fmt::print("  after starting the saga: {} missing\n", after->size());
  show(orders, "456");
  return missing->size() == 1 && after->empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc > 1) return run_demo(argv[1]);
  const fs::path dir =
      fs::temp_directory_path() / ("vellum-orders-demo-" + std::to_string(::getpid()));
  const int status = run_demo(dir);
  fs::remove_all(dir);
  return status;
}
