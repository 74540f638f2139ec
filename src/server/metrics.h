// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics of the server (text exposition format 0.0.4). Counters
// and histograms are lock-free atomics updated on the request path; gauges
// that the store already tracks are read from StoreStats at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "vellum/projection.h"
#include "vellum/store.h"

namespace vellum::server {

// A histogram with fixed upper bounds (Prometheus "le" buckets).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket, _sum and _count lines of `name` with `labels`
  // ("" or `route="x"` without braces).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};  // sum in millionths, to stay atomic
};

class Metrics {
 public:
  Metrics();

  // One finished HTTP request; `route` is the route pattern, never the raw
  // path (a label per stream name would grow without bound).
  void request_done(const std::string& route, unsigned status, double seconds);
  void append_done(double seconds, uint64_t events);
  void read_done(double seconds);

  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> open_subscriptions{0};
  std::atomic<int64_t> long_polls_waiting{0};
  std::atomic<uint64_t> subscriber_lag_events{0};  // set by the hub: the worst lag
  std::atomic<uint64_t> subscribers_switched{0};   // slow clients moved to catch-up
  std::atomic<uint64_t> subscription_events_sent{0};
  std::atomic<uint64_t> rejected_connections{0};

  // The whole exposition, with the store's own counters and the status of
  // every projection (labelled by name: there are few, and names are chosen
  // by the operator, not by clients).
  std::string render(const StoreStats& stats,
                     const std::vector<ProjectionStatus>& projections = {}) const;

 private:
  Histogram append_seconds_;
  Histogram read_seconds_;
  Histogram append_events_;
  mutable std::mutex requests_mutex_;
  std::map<std::pair<std::string, unsigned>, uint64_t> requests_;
};

}  // namespace vellum::server
