// SPDX-License-Identifier: Apache-2.0
// vellum-projection-bench: measures the Projections engine, each figure with
// its peer from the same run, and prints one JSON object per scenario.
//   rebuild  a trivial callback projection (counts events) rebuilt over N
//            events, against a raw Store::visit_all scan of the same events
//            (the floor: the projection can only add cost to the scan).
//   lag      an appender at R events/s (batches, durability fsync) for S
//            seconds while a kv projection runs; lag per event = the moment
//            the handler sees it - its recorded time. The peer is a raw live
//            Subscription consuming the same events in the same run.
// bench/toolkit/run.sh runs both and writes bench/toolkit/results.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "vellum/projection.h"
#include "vellum/store.h"
#include "vellum/toolkit_db.h"

#include "base/clock.h"

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Config {
  std::string scenario;
  std::string dir;
  uint64_t events = 1'000'000;
  uint32_t event_bytes = 200;
  uint32_t streams = 1000;
  uint32_t repeats = 3;
  uint32_t rate = 10'000;        // lag: events per second
  uint32_t batch = 100;          // lag: events per append
  double seconds = 10;           // lag: how long the appender runs
  uint32_t batch_events = 1000;  // events per projection batch
};

[[noreturn]] void die(const std::string& what, const vellum::Error& error) {
  std::fprintf(stderr, "vellum-projection-bench: %s: %s\n", what.c_str(), error.message.c_str());
  std::exit(1);
}

std::unique_ptr<vellum::Store> open_store(const std::string& dir, vellum::Durability durability) {
  vellum::StoreOptions options;
  options.durability = durability;
  auto store = vellum::Store::open(dir, options);
  if (!store) die("open store", store.error());
  return std::move(*store);
}

std::unique_ptr<vellum::ToolkitDb> open_db(const std::string& dir) {
  auto db = vellum::ToolkitDb::open(dir);
  if (!db) die("open toolkit db", db.error());
  return std::move(*db);
}

std::vector<vellum::EventData> make_batch(uint32_t count, uint32_t event_bytes) {
  std::vector<vellum::EventData> events(count);
  for (auto& event : events) {
    event.type = "Measured";
    event.data.assign(event_bytes, 'x');
  }
  return events;
}

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Best of `repeats` runs of `run` (which returns events handled), in events/s.
template <class Run>
double best_rate(uint32_t repeats, uint64_t expected, const Run& run) {
  double best = 0;
  for (uint32_t i = 0; i < repeats; i++) {
    auto start = SteadyClock::now();
    uint64_t handled = run();
    double seconds = seconds_since(start);
    if (handled != expected) {
      std::fprintf(stderr, "vellum-projection-bench: handled %llu of %llu events\n",
                   static_cast<unsigned long long>(handled),
                   static_cast<unsigned long long>(expected));
      std::exit(1);
    }
    best = std::max(best, static_cast<double>(handled) / seconds);
  }
  return best;
}

void rebuild(const Config& config) {
  std::filesystem::remove_all(config.dir);
  auto store = open_store(config.dir + "/store", vellum::Durability::kNone);
  for (uint64_t written = 0; written < config.events;) {
    auto count = static_cast<uint32_t>(std::min<uint64_t>(1000, config.events - written));
    std::string stream = "s-" + std::to_string((written / 1000) % config.streams);
    auto appended = store->append(stream, vellum::ExpectedRevision::any(),
                                  make_batch(count, config.event_bytes));
    if (!appended) die("append", appended.error());
    written += count;
  }
  auto db = open_db(config.dir + "/toolkit");

  auto scan = [&]() -> uint64_t {
    uint64_t seen = 0;
    std::optional<uint64_t> next = 0;
    while (next) {
      vellum::ReadAllOptions options{.from_position = *next, .max_count = 10'000};
      auto visited = store->visit_all(options, [&](const vellum::EventRef&) {
        seen++;
        return true;
      });
      if (!visited) die("visit_all", visited.error());
      next = *visited;
    }
    return seen;
  };

  std::atomic<uint64_t> counted{0};
  vellum::Projections projections(*store);
  vellum::ProjectionSpec spec{
      .name = "count",
      .sink = vellum::make_callback_sink(db.get(), "count",
                                         [&](const vellum::EventRef&) {
                                           counted.fetch_add(1, std::memory_order_relaxed);
                                           return vellum::ok_status();
                                         }),
      .batch_events = config.batch_events,
      .start = false};
  if (auto added = projections.add(std::move(spec)); !added) die("add", added.error());
  auto project = [&]() -> uint64_t {
    counted.store(0);
    if (auto rebuilt = projections.rebuild("count"); !rebuilt) die("rebuild", rebuilt.error());
    auto status = projections.wait_for("count", config.events, std::chrono::minutes(10));
    if (!status) die("wait", status.error());
    if (status->position < config.events) {
      die("rebuild", {vellum::ErrorCode::kInternal, status->error, {}});
    }
    return counted.load();
  };

  // Alternate the two so that drift of the shared machine hits both alike.
  double scan_rate = 0;
  double project_rate = 0;
  for (uint32_t i = 0; i < config.repeats; i++) {
    scan_rate = std::max(scan_rate, best_rate(1, config.events, scan));
    project_rate = std::max(project_rate, best_rate(1, config.events, project));
  }
  std::printf(
      "{\"scenario\":\"projection-rebuild\",\"events\":%llu,\"event_bytes\":%u,"
      "\"batch_events\":%u,\"repeats\":%u,\"projection_events_per_sec\":%.0f,"
      "\"scan_events_per_sec\":%.0f,\"ratio\":%.3f}\n",
      static_cast<unsigned long long>(config.events), config.event_bytes, config.batch_events,
      config.repeats, project_rate, scan_rate, project_rate / scan_rate);
}

// Collects lags (ms) from one consumer thread; read after it stopped.
struct LagRecorder {
  std::vector<double> lags_ms;
  void record(int64_t recorded_time_unix_ns) {
    int64_t lag_ns = vellum::system_clock()->now_unix_ns() - recorded_time_unix_ns;
    lags_ms.push_back(static_cast<double>(lag_ns) / 1e6);
  }
  std::string summary(const char* prefix) {
    std::sort(lags_ms.begin(), lags_ms.end());
    auto at = [&](double p) {
      if (lags_ms.empty()) return 0.0;
      return lags_ms[std::min(lags_ms.size() - 1, static_cast<size_t>(p * lags_ms.size()))];
    };
    char out[256];
    std::snprintf(out, sizeof(out),
                  "\"%s_events\":%zu,\"%s_p50_ms\":%.2f,\"%s_p99_ms\":%.2f,"
                  "\"%s_max_ms\":%.2f",
                  prefix, lags_ms.size(), prefix, at(0.50), prefix, at(0.99), prefix,
                  lags_ms.empty() ? 0.0 : lags_ms.back());
    return out;
  }
};

// Appends `rate` events/s in batches for `seconds`, paced by deadlines.
uint64_t run_appender(vellum::Store& store, const Config& config) {
  auto batch = make_batch(config.batch, config.event_bytes);
  auto interval = std::chrono::duration<double>(static_cast<double>(config.batch) / config.rate);
  auto start = SteadyClock::now();
  auto end = start + std::chrono::duration<double>(config.seconds);
  uint64_t written = 0;
  for (uint64_t i = 0;; i++) {
    auto due = start + std::chrono::duration_cast<SteadyClock::duration>(interval * i);
    if (due >= end) break;
    std::this_thread::sleep_until(due);
    std::string stream = "s-" + std::to_string(i % config.streams);
    auto appended = store.append(stream, vellum::ExpectedRevision::any(), batch);
    if (!appended) die("append", appended.error());
    written += config.batch;
  }
  return written;
}

void lag(const Config& config) {
  std::filesystem::remove_all(config.dir);
  auto store = open_store(config.dir + "/store", vellum::Durability::kFsync);
  auto db = open_db(config.dir + "/toolkit");
  LagRecorder projection_lags;
  vellum::Projections projections(*store);
  vellum::ProjectionSpec spec{
      .name = "lag",
      .sink = vellum::make_kv_sink(*db, "lag",
                                   [&](const vellum::EventRef& event, vellum::KvView& view) {
                                     projection_lags.record(event.recorded_time_unix_ns);
                                     view.put(event.stream, std::to_string(event.revision));
                                     return vellum::ok_status();
                                   }),
      .batch_events = config.batch_events};
  if (auto added = projections.add(std::move(spec)); !added) die("add", added.error());

  LagRecorder subscription_lags;
  std::atomic<bool> appending{true};
  std::thread subscriber([&] {
    auto subscription = store->subscribe(vellum::SubscriptionOptions{.from = 0});
    if (!subscription) die("subscribe", subscription.error());
    for (;;) {
      auto batch = (*subscription)->next(config.batch_events, std::chrono::milliseconds(100));
      if (!batch) die("subscription", batch.error());
      for (const auto& event : batch->events) subscription_lags.record(event.recorded_time_unix_ns);
      if (batch->events.empty() && !appending.load()) break;
    }
  });
  auto start = SteadyClock::now();
  uint64_t written = run_appender(*store, config);
  double append_seconds = seconds_since(start);
  appending.store(false);
  subscriber.join();
  auto status = projections.wait_for("lag", written, std::chrono::minutes(1));
  if (!status) die("wait", status.error());
  if (status->position < written) {
    die("wait", {vellum::ErrorCode::kInternal, "the projection did not catch up", {}});
  }
  if (auto stopped = projections.stop("lag"); !stopped) die("stop", stopped.error());
  std::printf(
      "{\"scenario\":\"projection-lag\",\"target_rate\":%u,\"batch\":%u,\"seconds\":%.2f,"
      "\"events\":%llu,\"append_rate\":%.0f,\"durability\":\"fsync\",%s,%s}\n",
      config.rate, config.batch, append_seconds, static_cast<unsigned long long>(written),
      static_cast<double>(written) / append_seconds, projection_lags.summary("projection").c_str(),
      subscription_lags.summary("subscription").c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app("vellum-projection-bench");
  app.add_option("scenario", config.scenario, "rebuild | lag")->required();
  app.add_option("--dir", config.dir, "scratch directory (deleted first)")->required();
  app.add_option("--events", config.events, "rebuild: events in the log");
  app.add_option("--event-bytes", config.event_bytes);
  app.add_option("--streams", config.streams);
  app.add_option("--repeats", config.repeats, "rebuild: runs of each side; the best counts");
  app.add_option("--rate", config.rate, "lag: events appended per second");
  app.add_option("--batch", config.batch, "lag: events per append");
  app.add_option("--seconds", config.seconds, "lag: how long to append");
  app.add_option("--batch-events", config.batch_events, "events per projection batch");
  CLI11_PARSE(app, argc, argv);
  if (config.scenario == "rebuild") {
    rebuild(config);
  } else if (config.scenario == "lag") {
    lag(config);
  } else {
    std::fprintf(stderr, "vellum-projection-bench: unknown scenario %s\n", config.scenario.c_str());
    return 1;
  }
  std::filesystem::remove_all(config.dir);
  return 0;
}
