// SPDX-License-Identifier: Apache-2.0
// `vellum read-all`: prints the global log, one JSON event per line, filtered
// by type, category, subject or stream prefix. A filtered Store::read_all
// examines a bounded number of events per call and may return few or none
// with a continuation, so this command keeps paging until --limit events are
// printed or the log ends.
#include <algorithm>
#include <cstdio>

#include "base/limits.h"
#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

struct ReadAllCommandOptions {
  std::optional<uint64_t> from;  // default: 0, or with --backward the newest
  uint64_t limit = 100;          // 0 = no limit
  bool backward = false;
  EventFilter filter;
  AsOfOptions as_of;
};

int run_read_all(const GlobalOptions& global, const ReadAllCommandOptions& options) {
  Result<std::optional<int64_t>> as_of_time = as_of_time_unix_ns(options.as_of);
  if (!as_of_time) return report_error(as_of_time.error());
  Result<std::unique_ptr<Backend>> backend = open_backend(global, false);
  if (!backend) return report_error(backend.error());

  ReadAllOptions request;
  request.direction = options.backward ? Direction::kBackward : Direction::kForward;
  request.from_position = options.from.value_or(options.backward ? kEnd : 0);
  request.filter = options.filter;
  request.as_of_position = options.as_of.position;
  request.as_of_time_unix_ns = *as_of_time;
  return print_pages(options.limit, request.from_position,
                     [&](uint32_t max_count, uint64_t cursor) -> Result<Page> {
                       request.max_count = max_count;
                       request.from_position = cursor;
                       return (*backend)->read_all(request);
                     });
}

}  // namespace

Command register_read_all(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ReadAllCommandOptions>();
  CLI::App* sub = app.add_subcommand("read-all", "Print the global log as JSON lines, filtered");
  sub->add_option("--from", options->from,
                  "First position (default: 0, or the newest with --backward)");
  sub->add_option("--limit", options->limit, "Events to print at most (0: all)")
      ->capture_default_str();
  sub->add_flag("--backward", options->backward, "Newest first");
  add_filter_options(*sub, options->filter);
  add_as_of_options(*sub, options->as_of);
  return Command{sub, [&global, options] { return run_read_all(global, *options); }};
}

}  // namespace vellum::cli
