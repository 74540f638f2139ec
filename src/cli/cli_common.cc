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

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// Seconds that fit in int64 nanoseconds (years 1677 to 2262).
constexpr int64_t kUnixSecondsMax = INT64_MAX / kNanosPerSecond - 1;
constexpr int64_t kUnixSecondsMin = INT64_MIN / kNanosPerSecond + 1;

constexpr int64_t kBarRedrawNs = 100'000'000;       // terminal: 10 redraws a second at most
constexpr int64_t kLineIntervalNs = 2'000'000'000;  // pipe or file: one line every 2 s
constexpr int kBarWidth = 30;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Durability parse_durability(const std::string& name) {
  // CLI11 has already restricted the value to these three names.
  if (name == "batch") return Durability::kBatch;
  if (name == "none") return Durability::kNone;
  return Durability::kFsync;
}

// Parses a field of RFC 3339 text left to right; any mismatch latches `ok`
// to false so the caller checks once at the end.
struct TimeCursor {
  std::string_view text;
  size_t pos = 0;
  bool ok = true;

  int digits(size_t count) {
    int value = 0;
    if (pos + count > text.size()) ok = false;
    for (size_t i = 0; ok && i < count; i++) {
      char c = text[pos + i];
      if (c < '0' || c > '9') ok = false;
      value = value * 10 + (c - '0');
    }
    pos += count;
    return ok ? value : 0;
  }
  void literal(char expected) {
    if (pos >= text.size() || (text[pos] | 0x20) != (expected | 0x20)) ok = false;
    pos++;
  }
  bool peek(char c) const { return pos < text.size() && text[pos] == c; }
};

// The ".123" fraction as nanoseconds; 0 if absent. More than 9 digits would
// silently lose precision, so they are rejected.
int64_t parse_fraction(TimeCursor& cursor) {
  if (!cursor.peek('.')) return 0;
  cursor.pos++;
  int64_t nanos = 0;
  size_t count = 0;
  while (cursor.pos < cursor.text.size() && cursor.text[cursor.pos] >= '0' &&
         cursor.text[cursor.pos] <= '9') {
    nanos = nanos * 10 + (cursor.text[cursor.pos] - '0');
    cursor.pos++;
    count++;
  }
  if (count == 0 || count > 9) cursor.ok = false;
  for (; count < 9; count++) nanos *= 10;
  return nanos;
}

// The zone suffix as seconds east of UTC.
int64_t parse_offset(TimeCursor& cursor) {
  if (cursor.peek('Z') || cursor.peek('z')) {
    cursor.pos++;
    return 0;
  }
  int sign = cursor.peek('-') ? -1 : 1;
  if (!cursor.peek('+') && !cursor.peek('-')) cursor.ok = false;
  cursor.pos++;
  int hours = cursor.digits(2);
  cursor.literal(':');
  int minutes = cursor.digits(2);
  if (hours > 23 || minutes > 59) cursor.ok = false;
  return int64_t{sign} * (int64_t{hours} * 3600 + int64_t{minutes} * 60);
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

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  std::string lower(media);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json" || lower.ends_with("+json");
}

namespace {

// Emits opaque bytes as JSON when they are JSON (the common case, and what
// lets `read` output be piped into jq), otherwise as base64 under
// `<key>_base64` so no byte is lost or mangled.
void put_bytes(nlohmann::ordered_json& out, const std::string& key, const std::string& bytes,
               bool try_json) {
  if (try_json) {
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(bytes, nullptr, false);
    if (!parsed.is_discarded()) {
      out[key] = std::move(parsed);
      return;
    }
  }
  out[key + "_base64"] = base64_encode(bytes);
}

}  // namespace

nlohmann::ordered_json event_to_json(const RecordedEvent& event) {
  nlohmann::ordered_json out;
  out["id"] = event.id.to_string();
  out["type"] = event.type;
  out["source"] = "vellum";
  if (!event.subject.empty()) out["subject"] = event.subject;
  if (event.occurrence_time_unix_ns != 0)
    out["time"] = format_rfc3339(event.occurrence_time_unix_ns);
  out["datacontenttype"] = event.content_type;
  put_bytes(out, "data", event.data, is_json_content_type(event.content_type));
  out["stream"] = event.stream;
  out["streamrevision"] = event.revision;
  out["position"] = event.position;
  out["recordedtime"] = format_rfc3339(event.recorded_time_unix_ns);
  if (!event.correlation_id.empty()) out["correlationid"] = event.correlation_id;
  if (!event.causation_id.empty()) out["causationid"] = event.causation_id;
  out["schemaversion"] = event.schema_version;
  if (!event.metadata.empty()) put_bytes(out, "metadata", event.metadata, true);
  return out;
}

void print_json_line(const nlohmann::ordered_json& value) {
  std::string line = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::string format_rfc3339(int64_t unix_ns) {
  int64_t seconds = unix_ns / kNanosPerSecond;
  int64_t nanos = unix_ns % kNanosPerSecond;
  if (nanos < 0) {  // floor, so times before 1970 print the right second
    nanos += kNanosPerSecond;
    seconds--;
  }
  time_t time = static_cast<time_t>(seconds);
  struct tm parts {};
  gmtime_r(&time, &parts);
  std::string text =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", parts.tm_year + 1900, parts.tm_mon + 1,
                  parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
  if (nanos != 0) text += fmt::format(".{:09}", nanos);
  text.push_back('Z');
  return text;
}

std::optional<int64_t> parse_rfc3339(std::string_view text) {
  TimeCursor cursor{text};
  struct tm parts {};
  parts.tm_year = cursor.digits(4) - 1900;
  cursor.literal('-');
  parts.tm_mon = cursor.digits(2) - 1;
  cursor.literal('-');
  parts.tm_mday = cursor.digits(2);
  cursor.literal('T');
  parts.tm_hour = cursor.digits(2);
  cursor.literal(':');
  parts.tm_min = cursor.digits(2);
  cursor.literal(':');
  parts.tm_sec = cursor.digits(2);
  int64_t nanos = parse_fraction(cursor);
  int64_t offset_seconds = parse_offset(cursor);
  if (!cursor.ok || cursor.pos != text.size()) return std::nullopt;
  struct tm wanted = parts;
  int64_t seconds = timegm(&parts);
  // timegm normalizes (Feb 30 -> Mar 2); a changed field means the input was
  // not a real date or time.
  if (parts.tm_year != wanted.tm_year || parts.tm_mon != wanted.tm_mon ||
      parts.tm_mday != wanted.tm_mday || parts.tm_hour != wanted.tm_hour ||
      parts.tm_min != wanted.tm_min || parts.tm_sec != wanted.tm_sec) {
    return std::nullopt;
  }
  seconds -= offset_seconds;
  if (seconds < kUnixSecondsMin || seconds > kUnixSecondsMax) return std::nullopt;
  return seconds * kNanosPerSecond + nanos;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    size_t count = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t j = 0; j < 3; j++) {
      uint8_t byte = j < count ? static_cast<uint8_t>(bytes[i + j]) : 0;
      group = (group << 8) | byte;
    }
    for (size_t j = 0; j < 4; j++) {
      out.push_back(j <= count ? kBase64Alphabet[(group >> (18 - 6 * j)) & 0x3f] : '=');
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    size_t padding = 0;
    for (size_t j = 0; j < 4; j++) {
      char c = text[i + j];
      uint32_t value = 0;
      if (c == '=') {
        // Padding only in the last two places of the last group.
        if (i + 4 != text.size() || j < 2) return std::nullopt;
        padding++;
      } else {
        size_t found = kBase64Alphabet.find(c);
        if (found == std::string_view::npos || padding > 0) return std::nullopt;
        value = static_cast<uint32_t>(found);
      }
      group = (group << 6) | value;
    }
    for (size_t j = 0; j < 3 - padding; j++) {
      out.push_back(static_cast<char>((group >> (16 - 8 * j)) & 0xff));
    }
  }
  return out;
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
  if (tty_) {
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
    for (const RecordedEvent& event : page->events) print_json_line(event_to_json(event));
    remaining -= std::min<uint64_t>(remaining, page->events.size());
    // A `next` equal to where this page started would loop for ever.
    if (!page->next || *page->next == cursor) break;
    cursor = *page->next;
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace vellum::cli
