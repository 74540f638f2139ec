// SPDX-License-Identifier: Apache-2.0
// `vellum stat`: prints the store's size and counters as one JSON object.
// The number of streams is left out on purpose: the index has no cheap count
// of them, and a full scan would make a monitoring command slow. With --url
// the same facts come from the server's GET /metrics (an admin key when the
// server has API keys); the counters are then the server's since it started.
#include <algorithm>
#include <cmath>

#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

int stat_embedded(const GlobalOptions& global, Store& store) {
  StoreStats stats = store.stats();
  nlohmann::ordered_json out;
  out["dataDir"] = global.data_dir;
  out["events"] = store.head_position();
  out["logSizeBytes"] = stats.log_size_bytes;
  out["segments"] = stats.segments;
  out["headPosition"] = stats.head_position;
  out["indexedPosition"] = stats.indexed_position;
  out["streamsCached"] = stats.streams_cached;
  // Counters since this process opened the store: zero unless opening it
  // had to replay the log into the index.
  out["appends"] = stats.appends;
  out["eventsWritten"] = stats.events_written;
  out["bytesWritten"] = stats.bytes_written;
  out["fsyncs"] = stats.fsyncs;
  out["commitGroups"] = stats.commit_groups;
  print_json_line(out);
  return kExitOk;
}

// The same keys, in the same order, from the metrics the server exports;
// streamsCached has no metric and is left out.
int stat_remote(RemoteBackend& remote) {
  Result<std::map<std::string, double>> metrics = remote.metrics();
  if (!metrics) return report_error(metrics.error());
  auto sample = [&](const char* name) -> uint64_t {
    auto it = metrics->find(name);
    if (it == metrics->end() || !(it->second >= 0)) return 0;
    return static_cast<uint64_t>(std::llround(it->second));
  };
  uint64_t head = sample("vellum_head_position");
  uint64_t lag = std::min(head, sample("vellum_index_lag_events"));
  nlohmann::ordered_json out;
  out["url"] = remote.http().url();
  out["events"] = head;
  out["logSizeBytes"] = sample("vellum_log_size_bytes");
  out["segments"] = sample("vellum_log_segments");
  out["headPosition"] = head;
  out["indexedPosition"] = head - lag;
  out["appends"] = sample("vellum_appends_total");
  out["eventsWritten"] = sample("vellum_events_written_total");
  out["bytesWritten"] = sample("vellum_log_bytes_written_total");
  out["fsyncs"] = sample("vellum_fsyncs_total");
  out["commitGroups"] = sample("vellum_commit_groups_total");
  print_json_line(out);
  return kExitOk;
}

int run_stat(const GlobalOptions& global) {
  Result<std::unique_ptr<Backend>> backend = open_backend(global, false);
  if (!backend) return report_error(backend.error());
  if (RemoteBackend* remote = (*backend)->remote()) return stat_remote(*remote);
  return stat_embedded(global, *(*backend)->store());
}

}  // namespace

Command register_stat(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub = app.add_subcommand("stat", "Print the store's size and counters as JSON");
  return Command{sub, [&global] { return run_stat(global); }};
}

}  // namespace vellum::cli
