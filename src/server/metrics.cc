// SPDX-License-Identifier: Apache-2.0
#include "server/metrics.h"

#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <unistd.h>

namespace vellum::server {

namespace {

std::vector<double> latency_bounds() {
  return {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

// Resident set size from /proc/self/statm (pages), 0 if unreadable.
uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, const char* name, const char* type, const char* help, double value) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, value);
}

std::string bound_text(double bound) { return fmt::format("{}", bound); }

// A Prometheus label value: backslash, quote and newline escaped.
std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

double state_value(ProjectionState state) {
  switch (state) {
    case ProjectionState::kStopped:
      return 0;
    case ProjectionState::kRunning:
      return 1;
    case ProjectionState::kFailed:
      return 2;
  }
  return 0;
}

// One gauge or counter with a sample per projection.
void per_projection(std::string& out, const char* name, const char* type, const char* help,
                    const std::vector<ProjectionStatus>& projections,
                    double (*value_of)(const ProjectionStatus&)) {
  header(out, name, type, help);
  for (const ProjectionStatus& status : projections) {
    out += fmt::format("{}{{projection=\"{}\"}} {}\n", name, label_value(status.name),
                       value_of(status));
  }
}

void render_projections(std::string& out, const std::vector<ProjectionStatus>& projections) {
  per_projection(out, "vellum_projection_lag_events", "gauge",
                 "Events of the projection's source not yet examined.", projections,
                 [](const ProjectionStatus& s) { return static_cast<double>(s.lag_events); });
  per_projection(out, "vellum_projection_lag_seconds", "gauge",
                 "Age of the oldest event the projection has not examined (0 when caught up).",
                 projections,
                 [](const ProjectionStatus& s) { return static_cast<double>(s.lag_ms) / 1000.0; });
  per_projection(out, "vellum_projection_position", "gauge",
                 "The projection's checkpoint: the next position (revision for stream sources) "
                 "to examine.",
                 projections,
                 [](const ProjectionStatus& s) { return static_cast<double>(s.position); });
  per_projection(out, "vellum_projection_events_processed_total", "counter",
                 "Events the projection has handled since this server started it.", projections,
                 [](const ProjectionStatus& s) { return static_cast<double>(s.events_processed); });
  per_projection(out, "vellum_projection_state", "gauge",
                 "0 stopped, 1 running, 2 failed (stopped on an error; see GET /projections).",
                 projections, [](const ProjectionStatus& s) { return state_value(s.state); });
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) bucket++;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e6)),
                        std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); i++) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, prefix, bound_text(bounds_[i]),
                       cumulative);
  }
  cumulative += counts_[bounds_.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, prefix, cumulative);
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces,
                     static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, braces, count_.load(std::memory_order_relaxed));
}

Metrics::Metrics()
    : append_seconds_(latency_bounds()),
      read_seconds_(latency_bounds()),
      append_events_({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000}) {}

void Metrics::request_done(const std::string& route, unsigned status, double seconds) {
  (void)seconds;
  std::lock_guard lock(requests_mutex_);
  requests_[{route, status}]++;
}

void Metrics::append_done(double seconds, uint64_t events) {
  append_seconds_.observe(seconds);
  append_events_.observe(static_cast<double>(events));
}

void Metrics::read_done(double seconds) { read_seconds_.observe(seconds); }

std::string Metrics::render(const StoreStats& stats,
                            const std::vector<ProjectionStatus>& projections) const {
  std::string out;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  sample(out, "vellum_appends_total", "counter", "Successful appends (incl. idempotent replays).",
         d(stats.appends));
  sample(out, "vellum_events_written_total", "counter", "Events written to the log.",
         d(stats.events_written));
  sample(out, "vellum_log_bytes_written_total", "counter", "Log bytes written, framing included.",
         d(stats.bytes_written));
  sample(out, "vellum_fsyncs_total", "counter", "fdatasync calls on the log.", d(stats.fsyncs));
  sample(out, "vellum_commit_groups_total", "counter", "Group commits.", d(stats.commit_groups));
  header(out, "vellum_commit_group_events", "histogram",
         "Events per group commit (group commit batch size).");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < stats.commit_group_events_buckets.size(); i++) {
    cumulative += stats.commit_group_events_buckets[i];
    bool last = i + 1 == stats.commit_group_events_buckets.size();
    std::string le = last ? "+Inf" : fmt::format("{}", uint64_t{1} << (2 * i));
    out += fmt::format("vellum_commit_group_events_bucket{{le=\"{}\"}} {}\n", le, cumulative);
  }
  out += fmt::format("vellum_commit_group_events_sum {}\n", stats.events_written);
  out += fmt::format("vellum_commit_group_events_count {}\n", stats.commit_groups);
  sample(out, "vellum_head_position", "gauge", "Next log position to be assigned.",
         d(stats.head_position));
  sample(out, "vellum_index_lag_events", "gauge",
         "Events written but not yet visible to readers (indexing lag).",
         d(stats.head_position - std::min(stats.head_position, stats.indexed_position)));
  sample(out, "vellum_log_size_bytes", "gauge", "Size of the log on disk.",
         d(stats.log_size_bytes));
  sample(out, "vellum_log_segments", "gauge", "Log segment files.", d(stats.segments));
  sample(out, "vellum_process_resident_memory_bytes", "gauge", "Resident set size.",
         d(resident_bytes()));
  sample(out, "vellum_http_open_connections", "gauge", "Open HTTP and WebSocket connections.",
         static_cast<double>(open_connections.load()));
  sample(out, "vellum_http_rejected_connections_total", "counter",
         "Connections refused because max-connections was reached.",
         d(rejected_connections.load()));
  sample(out, "vellum_subscriptions_open", "gauge", "Open WebSocket subscriptions.",
         static_cast<double>(open_subscriptions.load()));
  sample(out, "vellum_long_polls_waiting", "gauge", "Long-poll requests waiting for events.",
         static_cast<double>(long_polls_waiting.load()));
  sample(out, "vellum_subscriber_lag_events", "gauge",
         "Events the furthest-behind live subscriber has yet to be sent.",
         d(subscriber_lag_events.load()));
  sample(out, "vellum_subscription_events_sent_total", "counter",
         "Events sent to WebSocket subscribers.", d(subscription_events_sent.load()));
  sample(out, "vellum_subscribers_switched_to_catchup_total", "counter",
         "Times a slow subscriber's queue filled and it was switched to catch-up reads.",
         d(subscribers_switched.load()));
  header(out, "vellum_append_duration_seconds", "histogram",
         "HTTP append latency, request parsed to durable acknowledgement.");
  append_seconds_.render(out, "vellum_append_duration_seconds", "");
  header(out, "vellum_append_events", "histogram", "Events per HTTP append request.");
  append_events_.render(out, "vellum_append_events", "");
  header(out, "vellum_read_duration_seconds", "histogram", "HTTP read latency.");
  read_seconds_.render(out, "vellum_read_duration_seconds", "");
  render_projections(out, projections);
  header(out, "vellum_http_requests_total", "counter", "HTTP requests by route and status.");
  std::lock_guard lock(requests_mutex_);
  for (const auto& [key, count] : requests_) {
    out += fmt::format("vellum_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, count);
  }
  return out;
}

}  // namespace vellum::server
