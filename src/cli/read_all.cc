// SPDX-License-Identifier: Apache-2.0
// `vellum read-all`: prints the global log, one JSON event per line, filtered
// by type, category, subject or stream prefix. A filtered Store::read_all
// examines a bounded number of events per call and may return few or none
// with a continuation, so this command keeps paging until --limit events are
// printed or the log ends.
#include <algorithm>
#include <cstdio>

#include "base/limits.h"
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
  Result<std::unique_ptr<Store>> store = open_store(global, false);
  if (!store) return report_error(store.error());

  ReadAllOptions request;
  request.direction = options.backward ? Direction::kBackward : Direction::kForward;
  request.from_position = options.from.value_or(options.backward ? kEnd : 0);
  request.filter = options.filter;
  request.as_of_position = options.as_of.position;
  request.as_of_time_unix_ns = *as_of_time;
  uint64_t remaining = options.limit == 0 ? UINT64_MAX : options.limit;
  while (remaining > 0) {
    request.max_count =
        static_cast<uint32_t>(std::min<uint64_t>(remaining, limits::kReadEventsMax));
    Result<ReadAllResult> page = (*store)->read_all(request);
    if (!page) return report_error(page.error());
    for (const RecordedEvent& event : page->events) print_json_line(event_to_json(event));
    remaining -= std::min<uint64_t>(remaining, page->events.size());
    // A `next` equal to where this page started would loop for ever.
    if (!page->next_position || *page->next_position == request.from_position) break;
    request.from_position = *page->next_position;
  }
  std::fflush(stdout);
  return kExitOk;
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
  sub->add_option("--type", options->filter.types, "Only events of this type (repeatable)")
      ->allow_extra_args(false)
      ->delimiter(',');
  sub->add_option("--category", options->filter.category,
                  "Only streams of this category (name up to the first '-')");
  sub->add_option("--subject", options->filter.subject, "Only events about this subject");
  sub->add_option("--stream-prefix", options->filter.stream_prefix,
                  "Only streams whose name starts with this");
  add_as_of_options(*sub, options->as_of);
  return Command{sub, [&global, options] { return run_read_all(global, *options); }};
}

}  // namespace vellum::cli
