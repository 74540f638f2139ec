// SPDX-License-Identifier: Apache-2.0
// `vellum read <stream>`: prints a stream's events, one JSON object per line,
// forward or backward, optionally as the store was at an earlier position or
// time. Pages through Store::read_stream so --limit may exceed what one read
// call returns (kReadEventsMax).
#include <algorithm>
#include <cstdio>

#include "base/limits.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

struct ReadOptions {
  std::string stream;
  std::optional<uint64_t> from;  // default: the first, or with --backward the last
  uint64_t limit = 100;          // 0 = no limit
  bool backward = false;
  AsOfOptions as_of;
};

int run_read(const GlobalOptions& global, const ReadOptions& options) {
  Result<std::optional<int64_t>> as_of_time = as_of_time_unix_ns(options.as_of);
  if (!as_of_time) return report_error(as_of_time.error());
  Result<std::unique_ptr<Store>> store = open_store(global, false);
  if (!store) return report_error(store.error());

  ReadStreamOptions request;
  request.direction = options.backward ? Direction::kBackward : Direction::kForward;
  request.from_revision = options.from.value_or(options.backward ? kEnd : 0);
  request.as_of_position = options.as_of.position;
  request.as_of_time_unix_ns = *as_of_time;
  uint64_t remaining = options.limit == 0 ? UINT64_MAX : options.limit;
  while (remaining > 0) {
    request.max_count =
        static_cast<uint32_t>(std::min<uint64_t>(remaining, limits::kReadEventsMax));
    Result<ReadStreamResult> page = (*store)->read_stream(options.stream, request);
    if (!page) return report_error(page.error());
    for (const RecordedEvent& event : page->events) print_json_line(event_to_json(event));
    remaining -= std::min<uint64_t>(remaining, page->events.size());
    // A `next` equal to where this page started would loop for ever.
    if (!page->next_revision || *page->next_revision == request.from_revision) break;
    request.from_revision = *page->next_revision;
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

Command register_read(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ReadOptions>();
  CLI::App* sub = app.add_subcommand("read", "Print a stream's events as JSON lines");
  sub->add_option("stream", options->stream, "Stream name")->required();
  sub->add_option("--from", options->from,
                  "First revision (default: 0, or the last with --backward)");
  sub->add_option("--limit", options->limit, "Events to print at most (0: all)")
      ->capture_default_str();
  sub->add_flag("--backward", options->backward, "Newest first");
  add_as_of_options(*sub, options->as_of);
  return Command{sub, [&global, options] { return run_read(global, *options); }};
}

}  // namespace vellum::cli
