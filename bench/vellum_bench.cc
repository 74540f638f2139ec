// SPDX-License-Identifier: Apache-2.0
// vellum-bench: measures the embedded engine in-process and prints one JSON
// object per scenario (scenario, events, seconds, events_per_sec, mb_per_sec,
// p50_us, p99_us, p999_us, ...). Scenarios:
//   append       W writer threads, each append = B events of E bytes
//   read-stream  read a whole stream of N events, repeatedly
//   read-all     scan the whole log
//   recover      open time of a store of N events, with and without the index
// bench/run.sh runs the standard matrix next to the peers (bench/peers/) and
// writes docs/benchmarks.md. Performance is measured here, never in tests.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "vellum/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string scenario = "append";
  std::string dir;
  uint32_t writers = 1;
  uint32_t batch = 1;
  uint32_t event_bytes = 200;
  uint32_t streams = 1000;
  bool zipf = false;
  double seconds = 5;
  uint64_t events = 0;  // read-stream: stream length; recover: store size
  std::string durability = "fsync";
  int64_t preallocate_bytes = -1;  // -1: the store's default
};

vellum::Durability parse_durability(const std::string& name) {
  if (name == "batch") return vellum::Durability::kBatch;
  if (name == "none") return vellum::Durability::kNone;
  return vellum::Durability::kFsync;
}

std::unique_ptr<vellum::Store> open_store(const Config& config, bool fresh) {
  if (fresh) std::filesystem::remove_all(config.dir);
  vellum::StoreOptions options;
  options.durability = parse_durability(config.durability);
  if (config.preallocate_bytes >= 0) {
    options.preallocate_bytes = static_cast<uint64_t>(config.preallocate_bytes);
  }
  auto store = vellum::Store::open(config.dir, options);
  if (!store) {
    std::fprintf(stderr, "vellum-bench: open %s: %s\n", config.dir.c_str(),
                 store.error().message.c_str());
    std::exit(2);
  }
  return std::move(*store);
}

double percentile_us(std::vector<double>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  size_t index = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted_us.size()))) - 1;
  return sorted_us[std::min(index, sorted_us.size() - 1)];
}

void print_result(const Config& config, const std::string& scenario, uint64_t events,
                  double seconds, std::vector<double> latencies_us, const std::string& extra) {
  std::sort(latencies_us.begin(), latencies_us.end());
  double rate = seconds > 0 ? static_cast<double>(events) / seconds : 0;
  std::printf(
      "{\"system\":\"vellum\",\"scenario\":\"%s\",\"writers\":%u,\"batch\":%u,\"streams\":%u,"
      "\"zipf\":%s,\"durability\":\"%s\",\"event_bytes\":%u,\"events\":%llu,\"seconds\":%.3f,"
      "\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f%s}\n",
      scenario.c_str(), config.writers, config.batch, config.streams,
      config.zipf ? "true" : "false", config.durability.c_str(), config.event_bytes,
      static_cast<unsigned long long>(events), seconds, rate, rate * config.event_bytes / 1e6,
      percentile_us(latencies_us, 0.50), percentile_us(latencies_us, 0.99),
      percentile_us(latencies_us, 0.999), extra.c_str());
  std::fflush(stdout);
}

// Picks stream indexes uniformly or with a Zipf(1.0) distribution.
class StreamPicker {
 public:
  StreamPicker(uint32_t streams, bool zipf, uint64_t seed) : rng_(seed), zipf_(zipf) {
    if (!zipf) return;
    double total = 0;
    for (uint32_t i = 1; i <= streams; i++) {
      total += 1.0 / i;
      cdf_.push_back(total);
    }
    for (double& c : cdf_) c /= total;
    uniform_real_ = std::uniform_real_distribution<double>(0, 1);
  }
  uint32_t pick(uint32_t streams) {
    if (!zipf_) return static_cast<uint32_t>(rng_() % streams);
    double u = uniform_real_(rng_);
    return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::mt19937_64 rng_;
  bool zipf_;
  std::vector<double> cdf_;
  std::uniform_real_distribution<double> uniform_real_;
};

std::vector<vellum::EventData> make_batch(uint32_t count, uint32_t bytes) {
  std::vector<vellum::EventData> events(count);
  std::string data = "{\"payload\":\"" + std::string(bytes > 16 ? bytes - 16 : 1, 'x') + "\"}";
  data.resize(bytes, ' ');
  for (auto& event : events) {
    event.type = "BenchEvent";
    event.data = data;
  }
  return events;
}

void run_append(const Config& config) {
  auto store = open_store(config, true);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> events{0}, conflicts{0};
  std::vector<std::vector<double>> latencies(config.writers);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (uint32_t w = 0; w < config.writers; w++) {
    threads.emplace_back([&, w] {
      StreamPicker picker(config.streams, config.zipf, 1000 + w);
      auto batch = make_batch(config.batch, config.event_bytes);
      while (!stop.load(std::memory_order_relaxed)) {
        std::string stream = "bench-" + std::to_string(picker.pick(config.streams));
        auto t0 = Clock::now();
        auto result = store->append(stream, vellum::ExpectedRevision::any(), batch);
        auto t1 = Clock::now();
        if (!result) {
          conflicts++;
          continue;
        }
        latencies[w].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        events.fetch_add(config.batch, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(config.seconds));
  stop.store(true);
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  auto stats = store->stats();
  double batch_size = stats.commit_groups ? double(stats.events_written) / stats.commit_groups : 0;
  char extra[160];
  std::snprintf(extra, sizeof(extra),
                ",\"calls\":%zu,\"errors\":%llu,\"fsyncs\":%llu,\"events_per_group\":%.1f",
                all.size(), static_cast<unsigned long long>(conflicts.load()),
                static_cast<unsigned long long>(stats.fsyncs), batch_size);
  print_result(config, "append", events.load(), seconds, std::move(all), extra);
}

// Fills a store quickly (no fsync): `target_events` events in stream
// "target-1" in appends of 100, interleaved with appends of 100 events to
// other streams until `total` events are written.
void fill(const Config& config, uint64_t total, uint64_t target_events) {
  Config fill_config = config;
  fill_config.durability = "none";
  auto store = open_store(fill_config, true);
  auto batch = make_batch(100, config.event_bytes);
  uint64_t written = 0, target_written = 0;
  for (uint64_t i = 0; written < total; i++) {
    bool target = target_written < target_events && (i % 2 == 0 || written + 100 >= total);
    uint64_t left = target ? target_events - target_written : total - written;
    auto n = static_cast<size_t>(std::min<uint64_t>(100, left));
    std::span<const vellum::EventData> events(batch.data(), n);
    std::string stream = target ? "target-1" : "other-" + std::to_string(i % 1000);
    if (!store->append(stream, vellum::ExpectedRevision::any(), events)) std::exit(3);
    written += n;
    if (target) target_written += n;
  }
}

// Reads the whole stream `times` with the zero-copy visitor API (or, with
// `copy`, with read_stream, which copies every event into a RecordedEvent).
uint64_t read_whole_stream(vellum::Store& store, bool copy, uint64_t& bytes) {
  vellum::ReadStreamOptions options;
  options.max_count = 10'000;
  uint64_t got = 0;
  for (;;) {
    std::optional<uint64_t> next;
    if (copy) {
      auto page = store.read_stream("target-1", options);
      if (!page) std::exit(4);
      for (const auto& event : page->events) bytes += event.data.size();
      got += page->events.size();
      next = page->next_revision;
    } else {
      auto visited = store.visit_stream("target-1", options, [&](const vellum::EventRef& event) {
        bytes += event.data.size();
        got++;
        return true;
      });
      if (!visited) std::exit(4);
      next = *visited;
    }
    if (!next) return got;
    options.from_revision = *next;
  }
}

void run_read_stream(const Config& config) {
  uint64_t length = config.events ? config.events : 10'000;
  fill(config, length * 2, length);
  auto store = open_store(config, false);
  for (bool copy : {false, true}) {
    uint64_t total = 0, bytes = 0;
    std::vector<double> latencies;
    auto start = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - start).count() < config.seconds) {
      auto t0 = Clock::now();
      uint64_t got = read_whole_stream(*store, copy, bytes);
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (got != length) std::exit(5);
      total += got;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::string name = "read-stream-" + std::to_string(length) + (copy ? "-copy" : "");
    print_result(config, name, total, seconds, std::move(latencies),
                 ",\"latency_of\":\"whole stream\",\"stream_events\":" + std::to_string(length));
  }
}

void run_read_all(const Config& config) {
  uint64_t count = config.events ? config.events : 1'000'000;
  fill(config, count, 0);
  auto store = open_store(config, false);
  for (bool copy : {false, true}) {
    uint64_t total = 0, bytes = 0;
    std::vector<double> latencies;
    auto start = Clock::now();
    vellum::ReadAllOptions options;
    options.max_count = 10'000;
    for (;;) {
      auto t0 = Clock::now();
      std::optional<uint64_t> next;
      if (copy) {
        auto page = store->read_all(options);
        if (!page) std::exit(4);
        total += page->events.size();
        next = page->next_position;
      } else {
        auto visited = store->visit_all(options, [&](const vellum::EventRef& event) {
          bytes += event.data.size();
          total++;
          return true;
        });
        if (!visited) std::exit(4);
        next = *visited;
      }
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!next) break;
      options.from_position = *next;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (total != count) std::exit(5);
    print_result(config, copy ? "read-all-copy" : "read-all", total, seconds, std::move(latencies),
                 ",\"latency_of\":\"page of 10000\"");
  }
}

void run_recover(const Config& config) {
  uint64_t count = config.events ? config.events : 10'000'000;
  fill(config, count, 0);
  for (bool with_index : {true, false}) {
    if (!with_index) std::filesystem::remove_all(config.dir + "/index");
    auto t0 = Clock::now();
    auto store = open_store(config, false);
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (store->head_position() != count) std::exit(5);
    print_result(config, with_index ? "recover-with-index" : "recover-without-index", count,
                 seconds, {seconds * 1e6}, ",\"latency_of\":\"open\"");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{"vellum-bench: in-process benchmarks of the Vellum engine"};
  app.add_option("scenario", config.scenario, "append | read-stream | read-all | recover")
      ->required();
  app.add_option("--dir", config.dir, "data directory (deleted and recreated)")->required();
  app.add_option("--writers", config.writers, "writer threads");
  app.add_option("--batch", config.batch, "events per append");
  app.add_option("--event-bytes", config.event_bytes, "bytes of data per event");
  app.add_option("--streams", config.streams, "number of streams");
  app.add_flag("--zipf", config.zipf, "Zipf-distributed stream choice");
  app.add_option("--seconds", config.seconds, "duration of timed scenarios");
  app.add_option("--events", config.events, "stream length / store size");
  app.add_option("--durability", config.durability, "fsync | batch | none");
  app.add_option("--preallocate-bytes", config.preallocate_bytes, "zero-fill ahead (-1: default)");
  CLI11_PARSE(app, argc, argv);
  if (config.scenario == "append") {
    run_append(config);
  } else if (config.scenario == "read-stream") {
    run_read_stream(config);
  } else if (config.scenario == "read-all") {
    run_read_all(config);
  } else if (config.scenario == "recover") {
    run_recover(config);
  } else {
    std::fprintf(stderr, "vellum-bench: unknown scenario %s\n", config.scenario.c_str());
    return 1;
  }
  std::filesystem::remove_all(config.dir);
  return 0;
}
