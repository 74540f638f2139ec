// SPDX-License-Identifier: Apache-2.0
// `vellum stat`: prints the store's size and counters as one JSON object.
// The number of streams is left out on purpose: the index has no cheap count
// of them, and a full scan would make a monitoring command slow.
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

int run_stat(const GlobalOptions& global) {
  Result<std::unique_ptr<Store>> store = open_store(global, false);
  if (!store) return report_error(store.error());
  StoreStats stats = (*store)->stats();
  nlohmann::ordered_json out;
  out["dataDir"] = global.data_dir;
  out["events"] = (*store)->head_position();
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

}  // namespace

Command register_stat(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub = app.add_subcommand("stat", "Print the store's size and counters as JSON");
  return Command{sub, [&global] { return run_stat(global); }};
}

}  // namespace vellum::cli
