// SPDX-License-Identifier: Apache-2.0
// `vellum reindex`: deletes the store's index and rebuilds it from the log
// (Store::reindex), with progress on stderr and a JSON summary on stdout.
// The log is the source of truth; this is the repair for a damaged or
// suspect index, and it needs the store to be closed by everyone else.
#include <fmt/format.h>

#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

int run_reindex(const GlobalOptions& global) {
  if (std::optional<int> refused = refuse_url(global, "reindex")) return *refused;
  ProgressReporter progress("reindex", "events");
  Status status =
      Store::reindex(global.data_dir, store_options(global, false),
                     [&progress](uint64_t done, uint64_t total) { progress.update(done, total); });
  double seconds = progress.finish();
  if (!status) return report_error(status.error());
  double rate = seconds > 0 ? static_cast<double>(progress.done()) / seconds : 0;
  fmt::print(stderr, "vellum: reindexed {} events in {:.2f} s ({:.0f} events/s)\n", progress.done(),
             seconds, rate);
  nlohmann::ordered_json out;
  out["events"] = progress.done();
  out["seconds"] = seconds;
  out["eventsPerSecond"] = rate;
  print_json_line(out);
  return kExitOk;
}

}  // namespace

Command register_reindex(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub = app.add_subcommand("reindex", "Rebuild the index from the log");
  return Command{sub, [&global] { return run_reindex(global); }};
}

}  // namespace vellum::cli
