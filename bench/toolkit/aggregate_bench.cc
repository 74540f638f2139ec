// SPDX-License-Identifier: Apache-2.0
// vellum-aggregate-bench: rehydrating one long-lived aggregate, with and
// without snapshots, measured in the same run (issue #4's benchmark).
//
//   vellum-aggregate-bench --dir D [--events 10000] [--tail 50] [--loads 200]
//
// Writes an aggregate of `events` + `tail` events (snapshot every 100 events
// when snapshots are on, so the newest snapshot is `tail` events behind the
// head), then times `loads` loads of it each way. Prints one JSON line per
// case and, with --markdown FILE, the table for docs/benchmarks.md.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "vellum/aggregate.h"

namespace {

using vellum::Json;
using vellum::Result;

// A typical small event: a few fields of JSON.
struct ItemAdded {
  static constexpr std::string_view kType = "ItemAdded";
  static constexpr uint32_t kSchemaVersion = 1;
  std::string sku;
  int64_t quantity = 0;
  int64_t price_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ItemAdded, sku, quantity, price_cents)

struct CartState {
  int64_t items = 0;
  int64_t total_cents = 0;
  std::string last_sku;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CartState, items, total_cents, last_sku)

struct AddItem {
  int64_t n;
};

struct Cart {
  using Codec = vellum::EventCodec<ItemAdded>;
  using State = CartState;
  using Command = AddItem;
  static constexpr std::string_view kCategory = "cart";
  static constexpr uint32_t kLogicVersion = 1;
  static State initial() { return {}; }
  static State evolve(State state, const Codec::Event& event) {
    const auto& added = std::get<ItemAdded>(event);
    state.items += added.quantity;
    state.total_cents += added.quantity * added.price_cents;
    state.last_sku = added.sku;
    return state;
  }
  static Result<std::vector<Codec::Event>> decide(const State&, const Command& command) {
    return std::vector<Codec::Event>{ItemAdded{"sku-" + std::to_string(command.n % 977),
                                               1 + command.n % 3, 100 + command.n % 5000}};
  }
};

struct Measured {
  std::string name;
  double p50_us = 0, p99_us = 0, mean_us = 0;
  uint64_t events_read = 0;
};

Measured time_loads(vellum::AggregateStore<Cart>& carts, const std::string& name, int loads) {
  std::vector<double> micros;
  uint64_t events_read = 0;
  for (int i = 0; i < loads; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto loaded = carts.load("c1");
    const auto end = std::chrono::steady_clock::now();
    if (!loaded) {
      fmt::print(stderr, "load failed: {}\n", loaded.error().message);
      std::exit(1);
    }
    events_read = loaded->events_applied;
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  double sum = 0;
  for (double m : micros) sum += m;
  return Measured{name, micros[micros.size() / 2], micros[micros.size() * 99 / 100],
                  sum / static_cast<double>(micros.size()), events_read};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rehydrate an aggregate with and without snapshots"};
  std::string dir;
  uint64_t events = 10'000;
  uint64_t tail = 50;
  int loads = 200;
  std::string markdown;
  app.add_option("--dir", dir, "scratch directory (emptied)")->required();
  app.add_option("--events", events, "events before the tail");
  app.add_option("--tail", tail, "events after the newest snapshot");
  app.add_option("--loads", loads, "loads timed per case")->check(CLI::PositiveNumber);
  app.add_option("--markdown", markdown, "write the results table here");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(dir);
  vellum::StoreOptions options;
  options.durability = vellum::Durability::kNone;  // building the history is not measured
  auto store = vellum::Store::open(dir + "/data", options);
  auto db = vellum::ToolkitDb::open(dir + "/toolkit");
  if (!store || !db) {
    fmt::print(stderr, "open failed\n");
    return 1;
  }
  vellum::AggregateOptions no_load_snapshots;
  no_load_snapshots.snapshots.load_events_over = 0;  // only every-100 snapshots
  vellum::AggregateStore<Cart> with(**store, db->get(), {}, no_load_snapshots);
  vellum::AggregateStore<Cart> without(**store, nullptr, {}, no_load_snapshots);
  // Appends in chunks through execute() so that snapshots are taken as an
  // application would take them: when an append crosses a multiple of 100.
  auto loaded = with.load("c1");
  for (uint64_t n = 0; loaded && n < events + tail; ++n) {
    auto done = with.execute(*loaded, AddItem{static_cast<int64_t>(n)});
    if (!done) {
      fmt::print(stderr, "append failed: {}\n", done.error().message);
      return 1;
    }
    loaded->state = done->state;
    loaded->revision = done->revision;
  }
  const Measured cold = time_loads(without, "without snapshots", loads);
  const Measured warm = time_loads(with, "with snapshots (every 100)", loads);
  for (const Measured& m : {cold, warm}) {
    fmt::print(R"({{"scenario":"aggregate-load","case":"{}","events":{},"events_read":{},)"
               R"("p50_us":{:.1f},"p99_us":{:.1f},"mean_us":{:.1f}}})"
               "\n",
               m.name, events + tail, m.events_read, m.p50_us, m.p99_us, m.mean_us);
  }
  if (!markdown.empty()) {
    std::ofstream out(markdown);
    out << fmt::format(
        "## Aggregate rehydration (`vellum-aggregate-bench`)\n\n"
        "One aggregate of {} events (JSON data, typed decode + evolve per event), loaded {} "
        "times each way in the same run; snapshots every 100 events, so the newest is {} "
        "events behind the head.\n\n"
        "| Case | Events read | p50 | p99 | Ratio (p50) |\n|---|---|---|---|---|\n",
        events + tail, loads, tail);
    for (const Measured& m : {cold, warm}) {
      out << fmt::format("| {} | {} | {:.0f} µs | {:.0f} µs | {:.1f}x |\n", m.name, m.events_read,
                         m.p50_us, m.p99_us, cold.p50_us / m.p50_us);
    }
  }
  return 0;
}
