// SPDX-License-Identifier: Apache-2.0
// `vellum read <stream>`: prints a stream's events, one JSON object per line,
// forward or backward, optionally as the store was at an earlier position or
// time. Pages through the store's (or the server's) stream reads so --limit
// may exceed what one read call returns (kReadEventsMax).
#include <algorithm>
#include <cstdio>

#include "base/limits.h"
#include "cli/backend.h"
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
  Result<std::unique_ptr<Backend>> backend = open_backend(global, false);
  if (!backend) return report_error(backend.error());

  ReadStreamOptions request;
  request.direction = options.backward ? Direction::kBackward : Direction::kForward;
  request.from_revision = options.from.value_or(options.backward ? kEnd : 0);
  request.as_of_position = options.as_of.position;
  request.as_of_time_unix_ns = *as_of_time;
  return print_pages(options.limit, request.from_revision,
                     [&](uint32_t max_count, uint64_t cursor) -> Result<Page> {
                       request.max_count = max_count;
                       request.from_revision = cursor;
                       return (*backend)->read_stream(options.stream, request);
                     });
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
