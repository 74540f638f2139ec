// SPDX-License-Identifier: Apache-2.0
// `vellum import <file | ->`: appends the events of a `vellum export` file
// in file order, keeping their ids, streams and revisions.
//
// Each append expects the stream to end just before the event's exported
// revision (no_stream for revision 0). That makes three cases come out right:
// an empty target gets the same revisions (and, for a whole-log export, the
// same positions); a re-run finds every id already written and the store's
// idempotency answers with the original result, writing nothing (replay is
// checked before the expected revision); and a target whose stream holds
// other events fails with a revision conflict instead of interleaving them.
//
// Consecutive lines go in one atomic commit (Store::append_multi, or POST
// /transactions): one part per stream, each a run of consecutive revisions,
// in file order, so the global order is kept. A line that cannot be parsed
// or appended stops the import: every event before it is imported, nothing
// from it on. Fix the line and run again: the imported part replays.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>
#include <sys/stat.h>

#include "base/limits.h"
#include "cli/backend.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr uint32_t kBatchEventsDefault = 1000;
// Bytes of events per append: well below the engine's kAppendBytesMax and,
// as base64 in a request, below the server's default max-body-bytes.
constexpr uint64_t kBatchBytesMax = uint64_t{4} << 20;
// Beyond this, serializing the data again would recurse deeply; the server
// refuses such bodies too.
constexpr int kJsonDepthMax = 64;

struct ImportOptions {
  std::string file;
  uint32_t batch_events = kBatchEventsDefault;
};

// One line of the file, parsed.
struct ImportEvent {
  size_t line = 0;
  std::string stream;
  uint64_t revision = 0;
  EventData event;
};

tl::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

bool nested_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kJsonDepthMax) return true;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return false;
}

Result<ImportEvent> parse_event(std::string_view line, size_t number) {
  if (nested_too_deep(line)) {
    return invalid(fmt::format("nests deeper than {} levels", kJsonDepthMax));
  }
  // Parsed keeping key order: data and metadata are stored as export
  // printed them (wire::Json is an ordered_json).
  OrderedJson ordered = OrderedJson::parse(line, nullptr, false);
  if (ordered.is_discarded()) return invalid("not valid JSON");
  if (!ordered.is_object()) {
    return invalid("not a JSON object (import reads one event per line, as export writes them)");
  }
  // Required, unlike for an append: import puts every event where export found it.
  if (!ordered.contains("stream") || !ordered["stream"].is_string()) {
    return invalid(ordered.contains("stream")
                       ? "\"stream\" must be a string"
                       : "\"stream\" is missing (import needs every event's stream, as export "
                         "writes it)");
  }
  if (!ordered.contains("streamrevision") || !ordered["streamrevision"].is_number_unsigned()) {
    return invalid(ordered.contains("streamrevision")
                       ? "\"streamrevision\" must be a non-negative integer"
                       : "\"streamrevision\" is missing (import keeps every event's revision, "
                         "as export writes it)");
  }
  VL_TRY(event, wire::event_from_json(ordered, "event", {.ignore_recorded_attributes = true}));
  return ImportEvent{number, ordered["stream"].get<std::string>(),
                     ordered["streamrevision"].get<uint64_t>(), std::move(event)};
}

// "line 7: <what is wrong>".
Result<ImportEvent> parse_line(std::string_view line, size_t number) {
  Result<ImportEvent> event = parse_event(line, number);
  if (!event) {
    Error error = event.error();
    error.message = fmt::format("line {}: {}", number, error.message);
    return make_error(std::move(error));
  }
  return event;
}

uint64_t event_bytes(const EventData& event) {
  return event.data.size() + event.metadata.size() + event.type.size() + event.subject.size() +
         event.content_type.size() + event.correlation_id.size() + event.causation_id.size() + 64;
}

// The stream must end just before `revision`.
ExpectedRevision expected_before(uint64_t revision) {
  return revision == 0 ? ExpectedRevision::no_stream() : ExpectedRevision::exact(revision - 1);
}

// One stream's part of a transaction: consecutive revisions from `first`.
struct Run {
  StreamAppend append;
  uint64_t first_revision = 0;
  std::vector<size_t> lines;
};

// Collects the events of consecutive lines into one atomic commit of runs
// (one run per stream, in file order, so positions keep the file's order)
// and appends it. Interleaved streams, the common shape of a log, would
// otherwise cost one commit (one fsync) per event.
class Importer {
 public:
  Importer(Backend& backend, uint32_t batch_events)
      : backend_(backend), batch_events_(batch_events) {}

  // Adds one event; appends what is pending first if it cannot join.
  Status add(ImportEvent event) {
    uint64_t bytes = event_bytes(event.event);
    bool extends = !runs_.empty() && runs_.back().append.stream == event.stream &&
                   event.revision == runs_.back().first_revision + runs_.back().lines.size();
    // A stream appears at most once per commit; a gap starts a new run.
    bool full = events_ >= batch_events_ || bytes_ + bytes > kBatchBytesMax ||
                (!extends &&
                 (runs_.size() >= limits::kAppendStreamsMax || streams_.contains(event.stream)));
    if (full) {
      VL_RETURN_IF_ERROR(flush());
      extends = false;
    }
    if (!extends) {
      streams_.insert(event.stream);
      Run run;
      run.append.stream = std::move(event.stream);
      run.append.expected = expected_before(event.revision);
      run.first_revision = event.revision;
      runs_.push_back(std::move(run));
    }
    runs_.back().append.events.push_back(std::move(event.event));
    runs_.back().lines.push_back(event.line);
    events_++;
    bytes_ += bytes;
    return ok_status();
  }

  // Appends what is pending, if anything.
  Status flush() {
    if (runs_.empty()) return ok_status();
    Status appended = events_ == 1 ? append_one_by_one() : append_runs();
    runs_.clear();
    streams_.clear();
    events_ = 0;
    bytes_ = 0;
    return appended;
  }

  uint64_t events() const { return written_ + present_; }
  uint64_t present() const { return present_; }
  // Where a failed add() or flush() stopped.
  size_t failed_line() const { return failed_line_; }
  const std::string& failed_stream() const { return failed_stream_; }
  uint64_t failed_revision() const { return failed_revision_; }

 private:
  Status append_runs() {
    std::vector<StreamAppend> appends;
    appends.reserve(runs_.size());
    for (const Run& run : runs_) appends.push_back(run.append);
    Result<std::vector<AppendResult>> results =
        appends.size() == 1 ? single(appends[0]) : backend_.append_multi(appends);
    // Which line failed, or part of the commit is there already (an earlier
    // run stopped inside it): one event at a time imports everything before
    // the first failing event and names its line.
    if (!results) return append_one_by_one();
    for (size_t i = 0; i < runs_.size(); i++) {
      VL_RETURN_IF_ERROR(check_landed((*results)[i], i, 0));
      count((*results)[i], runs_[i].lines.size());
    }
    return ok_status();
  }

  Result<std::vector<AppendResult>> single(const StreamAppend& append) {
    VL_TRY(result, backend_.append(append.stream, append.expected, append.events));
    return std::vector<AppendResult>{std::move(result)};
  }

  Status append_one_by_one() {
    for (size_t i = 0; i < runs_.size(); i++) {
      const Run& run = runs_[i];
      for (size_t k = 0; k < run.lines.size(); k++) {
        Result<AppendResult> result =
            backend_.append(run.append.stream, expected_before(run.first_revision + k),
                            std::span(&run.append.events[k], 1));
        if (!result) return stop_at(i, k, result.error());
        VL_RETURN_IF_ERROR(check_landed(*result, i, k));
        count(*result, 1);
      }
    }
    return ok_status();
  }

  // A replayed append returns where the events were first written, and a
  // soft-deleted target stream continues its old revisions: either way the
  // revisions must be the exported ones.
  Status check_landed(const AppendResult& result, size_t run, size_t index) {
    uint64_t wanted = runs_[run].first_revision + index;
    if (result.first_revision == wanted) return ok_status();
    return stop_at(run, index,
                   Error{ErrorCode::kAlreadyExists,
                         fmt::format("stream '{}' got revision {} where the export has {} (is "
                                     "the stream soft-deleted in the target, or are these "
                                     "event ids there at other revisions?)",
                                     runs_[run].append.stream, result.first_revision, wanted),
                         std::nullopt});
  }

  tl::unexpected<Error> stop_at(size_t run, size_t index, Error error) {
    failed_line_ = runs_[run].lines[index];
    failed_stream_ = runs_[run].append.stream;
    failed_revision_ = runs_[run].first_revision + index;
    return make_error(std::move(error));
  }

  void count(const AppendResult& result, uint64_t events) {
    (result.idempotent_replay ? present_ : written_) += events;
  }

  Backend& backend_;
  uint32_t batch_events_;
  // The pending commit.
  std::vector<Run> runs_;
  std::unordered_set<std::string> streams_;
  uint64_t events_ = 0;
  uint64_t bytes_ = 0;
  // What was done, and where it stopped.
  uint64_t written_ = 0;
  uint64_t present_ = 0;
  size_t failed_line_ = 0;
  std::string failed_stream_;
  uint64_t failed_revision_ = 0;
};

// Where an import stopped, for the message.
struct Stop {
  size_t line = 0;
  Error error;
  std::string stream;  // empty: the line itself was bad
  uint64_t revision = 0;
};

Stop stop_in_append(const Importer& importer, Error error) {
  return Stop{importer.failed_line(), std::move(error), importer.failed_stream(),
              importer.failed_revision()};
}

// Reads `input` line by line into the importer. Returns where it stopped,
// or nullopt when every line was imported.
std::optional<Stop> import_lines(std::FILE* input, const std::string& name, Importer& importer,
                                 ProgressReporter& progress) {
  uint64_t total = 0;
  struct stat info {};
  if (fstat(fileno(input), &info) == 0 && S_ISREG(info.st_mode)) {
    total = static_cast<uint64_t>(info.st_size);
  }
  char* buffer = nullptr;
  size_t capacity = 0;
  size_t number = 0;
  uint64_t bytes = 0;
  std::optional<Stop> stop;
  for (ssize_t length; !stop && (length = ::getline(&buffer, &capacity, input)) >= 0;) {
    number++;
    bytes += static_cast<uint64_t>(length);
    std::string_view line(buffer, static_cast<size_t>(length));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    Result<ImportEvent> event = parse_line(line, number);
    if (!event) {
      // Everything before the bad line goes in, so a re-run resumes.
      Status flushed = importer.flush();
      stop =
          flushed ? Stop{number, event.error(), "", 0} : stop_in_append(importer, flushed.error());
    } else if (Status added = importer.add(std::move(*event)); !added) {
      stop = stop_in_append(importer, added.error());
    }
    progress.update(bytes, total);
  }
  bool read_failed = std::ferror(input) != 0;
  std::free(buffer);
  if (stop) return stop;
  if (read_failed) {
    Error error{ErrorCode::kIoError, fmt::format("reading {} failed", name), std::nullopt};
    Status flushed = importer.flush();
    if (!flushed) return stop_in_append(importer, flushed.error());
    return Stop{number + 1, std::move(error), "", 0};
  }
  if (Status flushed = importer.flush(); !flushed) {
    return stop_in_append(importer, flushed.error());
  }
  return std::nullopt;
}

int report_stop(const Stop& stop, const Importer& importer) {
  int code = report_error(stop.error);
  std::string what = stop.stream.empty() ? std::string()
                                         : fmt::format(" (stream '{}', streamrevision {})",
                                                       stop.stream, stop.revision);
  fmt::print(stderr,
             "vellum: import stopped at line {}{}: {} events before it are imported ({} were "
             "already present), nothing from that line on\n",
             stop.line, what, importer.events(), importer.present());
  if (stop.error.conflict) {
    fmt::print(stderr,
               "vellum: import keeps revisions: the target's stream must hold exactly the "
               "exported events before this one (or not exist, for revision 0)\n");
  }
  return code;
}

int run_import(const GlobalOptions& global, const ImportOptions& options) {
  if (options.batch_events == 0 || options.batch_events > limits::kAppendEventsMax) {
    return report_usage_error(fmt::format("--batch must be 1..{}", limits::kAppendEventsMax));
  }
  bool from_stdin = options.file == "-";
  std::FILE* input = from_stdin ? stdin : std::fopen(options.file.c_str(), "rb");
  if (input == nullptr) {
    return report_usage_error(
        fmt::format("cannot open {}: {}", options.file, std::strerror(errno)));
  }
  Result<std::unique_ptr<Backend>> backend = open_backend(global, true);
  if (!backend) {
    if (!from_stdin) std::fclose(input);
    return report_error(backend.error());
  }
  ProgressReporter progress("import", "bytes");
  Importer importer(**backend, options.batch_events);
  std::optional<Stop> stop =
      import_lines(input, from_stdin ? "stdin" : options.file, importer, progress);
  if (!from_stdin) std::fclose(input);
  double seconds = progress.finish();
  if (stop) return report_stop(*stop, importer);
  fmt::print(stderr, "vellum: imported {} events ({} already present) in {:.2f} s\n",
             importer.events(), importer.present(), seconds);
  OrderedJson out;
  out["events"] = importer.events();
  out["written"] = importer.events() - importer.present();
  out["alreadyPresent"] = importer.present();
  out["seconds"] = seconds;
  print_json_line(out);
  return kExitOk;
}

}  // namespace

Command register_import(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ImportOptions>();
  CLI::App* sub = app.add_subcommand(
      "import", "Append the events of an export file in order, keeping ids and revisions");
  sub->add_option("file", options->file, "NDJSON file written by export, or - for stdin")
      ->required();
  sub->add_option("--batch", options->batch_events,
                  "Events per commit at most (a server's max-events-per-append may need less)")
      ->capture_default_str();
  sub->footer(
      "Idempotent: running it again writes nothing new. A stream that already holds other\n"
      "events in the target is a conflict (exit 4). A bad line stops the import: the lines\n"
      "before it are imported, none from it on; fix it and run again.");
  return Command{sub, [&global, options] { return run_import(global, *options); }};
}

}  // namespace vellum::cli
