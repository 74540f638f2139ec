// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the `vellum` tool (see cli_common.h): opening the store,
// exit codes and error messages, the JSON form of events, RFC 3339 times,
// base64 and the stderr progress display.
#include "cli/cli_common.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/limits.h"

namespace vellum::cli {

namespace {

constexpr int64_t kBarRedrawNs = 100'000'000;       // terminal: 10 redraws a second at most
constexpr int64_t kLineIntervalNs = 2'000'000'000;  // pipe or file: one line every 2 s
constexpr int kBarWidth = 30;

Durability parse_durability(const std::string& name) {
  // CLI11 has already restricted the value to these three names.
  if (name == "batch") return Durability::kBatch;
  if (name == "none") return Durability::kNone;
  return Durability::kFsync;
}

}  // namespace

StoreOptions store_options(const GlobalOptions& global, bool create_if_missing) {
  StoreOptions options;
  options.durability = parse_durability(global.durability);
  options.create_if_missing = create_if_missing;
  return options;
}

Result<std::unique_ptr<Store>> open_store(const GlobalOptions& global, bool create_if_missing) {
  return Store::open(global.data_dir, store_options(global, create_if_missing));
}

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kNotFound:
    case ErrorCode::kStreamDeleted:
      return kExitNotFound;
    case ErrorCode::kDataLoss:
      return kExitDataLoss;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAlreadyExists:
      return kExitConflict;
    default:
      return kExitOther;
  }
}

int report_error(const Error& error) {
  if (error.conflict) {
    const RevisionConflict& conflict = *error.conflict;
    std::string actual = conflict.actual_revision < 0
                             ? std::string("the stream does not exist")
                             : fmt::format("actual revision {}", conflict.actual_revision);
    fmt::print(stderr, "vellum: wrong expected revision for stream '{}': expected {}, {}\n",
               conflict.stream, conflict.expected, actual);
    return kExitConflict;
  }
  fmt::print(stderr, "vellum: {}\n", error.message);
  // kFailedPrecondition without a conflict is not a revision clash (a newer
  // format, or the store's lock held by another process).
  if (error.code == ErrorCode::kFailedPrecondition) return kExitOther;
  return exit_code_for(error.code);
}

int report_usage_error(std::string_view message) {
  fmt::print(stderr, "vellum: {}\n", message);
  return kExitUsage;
}

std::optional<int> refuse_url(const GlobalOptions& global, std::string_view command) {
  if (global.url.empty()) return std::nullopt;
  return report_usage_error(
      fmt::format("{} works on the data files and cannot go through --url; run it on the "
                  "server's machine with --data (and without --url / VELLUM_URL)",
                  command));
}

void add_filter_options(CLI::App& app, EventFilter& filter) {
  app.add_option("--type", filter.types, "Only events of this type (repeatable)")
      ->allow_extra_args(false)
      ->delimiter(',');
  app.add_option("--category", filter.category,
                 "Only streams of this category (name up to the first '-')");
  app.add_option("--subject", filter.subject, "Only events about this subject");
  app.add_option("--stream-prefix", filter.stream_prefix,
                 "Only streams whose name starts with this");
}

void add_as_of_options(CLI::App& app, AsOfOptions& as_of) {
  app.add_option("--as-of-position", as_of.position,
                 "Read as the log was before this position (exclusive)");
  app.add_option("--as-of", as_of.time,
                 "Read as the log was at this RFC 3339 time, e.g. 2026-11-23T10:47:54Z");
}

Result<std::optional<int64_t>> as_of_time_unix_ns(const AsOfOptions& as_of) {
  if (as_of.time.empty()) return std::optional<int64_t>();
  std::optional<int64_t> time = parse_rfc3339(as_of.time);
  if (!time) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--as-of: '{}' is not an RFC 3339 time", as_of.time));
  }
  return time;
}

void print_json_line(const nlohmann::ordered_json& value) {
  std::string line = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
}

ProgressReporter::ProgressReporter(std::string label, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      tty_(isatty(STDERR_FILENO) == 1),
      start_ns_(system_clock()->monotonic_ns()),
      last_draw_ns_(start_ns_) {}

void ProgressReporter::update(uint64_t done, uint64_t total) {
  done_ = done;
  total_ = total;
  int64_t now = system_clock()->monotonic_ns();
  if (now - last_draw_ns_ < (tty_ ? kBarRedrawNs : kLineIntervalNs)) return;
  last_draw_ns_ = now;
  draw(false);
}

double ProgressReporter::finish() {
  if (tty_ && drawn_) {
    draw(true);
    std::fputc('\n', stderr);
  }
  return elapsed_seconds();
}

double ProgressReporter::elapsed_seconds() const {
  return static_cast<double>(system_clock()->monotonic_ns() - start_ns_) / 1e9;
}

void ProgressReporter::draw(bool final_draw) {
  double seconds = elapsed_seconds();
  double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
  double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 0;
  if (final_draw && total_ == 0) fraction = 1;
  fraction = std::min(fraction, 1.0);
  if (total_ == 0 && done_ > 0) {
    if (tty_) {
      fmt::print(stderr, "\r{} {} {} {:.0f} {}/s", label_, done_, unit_, rate, unit_);
    } else {
      fmt::print(stderr, "vellum: {}: {} {}, {:.0f} {}/s\n", label_, done_, unit_, rate, unit_);
    }
  } else if (tty_) {
    int filled = static_cast<int>(fraction * kBarWidth);
    fmt::print(stderr, "\r{} [{:#<{}}{:.<{}}] {:5.1f}% {}/{} {} {:.0f} {}/s", label_, "", filled,
               "", kBarWidth - filled, fraction * 100, done_, total_, unit_, rate, unit_);
  } else {
    fmt::print(stderr, "vellum: {}: {}/{} {} ({:.1f}%), {:.0f} {}/s\n", label_, done_, total_,
               unit_, fraction * 100, rate, unit_);
  }
  std::fflush(stderr);
  drawn_ = true;
}

int print_pages(uint64_t limit, uint64_t cursor, const PageReader& read_page) {
  uint64_t remaining = limit == 0 ? UINT64_MAX : limit;
  while (remaining > 0) {
    auto max_count = static_cast<uint32_t>(std::min<uint64_t>(remaining, limits::kReadEventsMax));
    Result<Page> page = read_page(max_count, cursor);
    if (!page) return report_error(page.error());
    for (const nlohmann::ordered_json& event : page->events) print_json_line(event);
    remaining -= std::min<uint64_t>(remaining, page->events.size());
    // A `next` equal to where this page started would loop for ever.
    if (!page->next || *page->next == cursor) break;
    cursor = *page->next;
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace vellum::cli
