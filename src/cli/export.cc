// SPDX-License-Identifier: Apache-2.0
// `vellum export`: writes the global log to stdout, one CloudEvents JSON
// object per line exactly as `read-all` prints it, for `vellum import`.
// The export is a snapshot: it ends where the log ended when it started
// (as_of_position), so appends made meanwhile neither stretch it forever nor
// show up half. Progress goes to stderr; stdout carries only events.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "base/limits.h"
#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

struct ExportOptions {
  uint64_t from = 0;
  EventFilter filter;
};

struct ExportCount {
  uint64_t events = 0;
};

// Pages from options.from up to `head`, printing every event.
Status export_pages(Backend& backend, const ExportOptions& options, uint64_t head,
                    ProgressReporter& progress, ExportCount& count) {
  ReadAllOptions request;
  request.from_position = options.from;
  request.max_count = limits::kReadEventsMax;
  request.filter = options.filter;
  request.as_of_position = head;
  uint64_t total = head > options.from ? head - options.from : 0;
  for (;;) {
    VL_TRY(page, backend.read_all(request));
    for (const nlohmann::ordered_json& event : page.events) print_json_line(event);
    count.events += page.events.size();
    // The bar counts log positions passed: with a filter, more than exported.
    uint64_t reached = page.next ? std::min(*page.next, head) : head;
    progress.update(reached > options.from ? reached - options.from : 0, total);
    if (!page.next || *page.next == request.from_position) return ok_status();
    request.from_position = *page.next;
  }
}

int run_export(const GlobalOptions& global, const ExportOptions& options) {
  Result<std::unique_ptr<Backend>> backend = open_backend(global, false);
  if (!backend) return report_error(backend.error());
  Result<uint64_t> head = (*backend)->head_position(options.filter);
  if (!head) return report_error(head.error());
  ProgressReporter progress("export", "events");
  ExportCount count;
  Status exported = export_pages(**backend, options, *head, progress, count);
  // A full disk or a closed pipe must not pass for a complete export.
  bool write_failed = std::fflush(stdout) != 0 || std::ferror(stdout) != 0;
  double seconds = progress.finish();
  if (!exported) return report_error(exported.error());
  if (write_failed) {
    fmt::print(stderr, "vellum: writing the export to stdout failed\n");
    return kExitOther;
  }
  fmt::print(stderr, "vellum: exported {} events in {:.2f} s\n", count.events, seconds);
  return kExitOk;
}

}  // namespace

Command register_export(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* sub = app.add_subcommand(
      "export", "Write the global log to stdout as NDJSON (read-all's form), for import");
  sub->add_option("--from", options->from, "First position (default: 0)");
  add_filter_options(*sub, options->filter);
  sub->footer(
      "Filters that select part of a stream (--type, --subject, --from) give an export that\n"
      "imports only where the stream's earlier events already are: import keeps revisions.");
  return Command{sub, [&global, options] { return run_export(global, *options); }};
}

}  // namespace vellum::cli
