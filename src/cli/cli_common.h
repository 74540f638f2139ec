// SPDX-License-Identifier: Apache-2.0
// What every `vellum` subcommand shares: the global options and how they turn
// into StoreOptions, exit codes, error printing, the JSON form of an event,
// RFC 3339 times, base64 and progress reporting on stderr. The CLI sits
// outside the storage core, so it may use JSON (nlohmann) and the terminal.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vellum/store.h"

#include "wire/codec.h"

namespace vellum::cli {

// Process exit codes; src/cli/README.md documents them for users.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;     // bad arguments or input
inline constexpr int kExitNotFound = 2;  // no such store, stream or event
inline constexpr int kExitDataLoss = 3;  // damaged log, or verify found problems
inline constexpr int kExitConflict = 4;  // wrong expected revision, id clash
inline constexpr int kExitOther = 5;     // anything else (I/O, lock held, ...)

// Options given before (or, with fallthrough, after) the subcommand.
struct GlobalOptions {
  std::string data_dir = "./vellum-data";
  std::string durability = "fsync";          // fsync | batch | none
  const CLI::Option* data_option = nullptr;  // to tell a given --data from the default
  // A running server (http[s]://host:port) to talk to instead of data_dir;
  // empty: embedded. The token goes out as "Authorization: Bearer".
  std::string url;
  std::string token;
};

// A parsed subcommand: `run` is called after parsing when `app` was chosen,
// and returns the exit code.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// One register function per subcommand file. `global` must outlive the app.
Command register_append(CLI::App& app, const GlobalOptions& global);
Command register_read(CLI::App& app, const GlobalOptions& global);
Command register_read_all(CLI::App& app, const GlobalOptions& global);
Command register_tail(CLI::App& app, const GlobalOptions& global);
Command register_stat(CLI::App& app, const GlobalOptions& global);
Command register_reindex(CLI::App& app, const GlobalOptions& global);
Command register_verify(CLI::App& app, const GlobalOptions& global);
Command register_serve(CLI::App& app, const GlobalOptions& global);
Command register_hash_key(CLI::App& app, const GlobalOptions& global);
Command register_room_token(CLI::App& app, const GlobalOptions& global);
Command register_export(CLI::App& app, const GlobalOptions& global);
Command register_import(CLI::App& app, const GlobalOptions& global);

// For subcommands that need the files themselves (verify, reindex): a usage
// error naming `command` if --url was given, else nullopt.
std::optional<int> refuse_url(const GlobalOptions& global, std::string_view command);

// StoreOptions for the global options. `create_if_missing` is true only for
// commands that write: a typo in --data must not create an empty store that
// a read then reports as empty.
StoreOptions store_options(const GlobalOptions& global, bool create_if_missing);

// Opens the store in global.data_dir.
Result<std::unique_ptr<Store>> open_store(const GlobalOptions& global, bool create_if_missing);

// The exit code for an error code (README.md, "Exit codes").
int exit_code_for(ErrorCode code);

// Prints "vellum: <message>" to stderr and returns the matching exit code.
// A revision conflict is spelled out with the stream's actual revision.
int report_error(const Error& error);

// Prints "vellum: <message>" to stderr and returns kExitUsage.
int report_usage_error(std::string_view message);

// --type (repeatable), --category, --subject, --stream-prefix: the filter
// options shared by read-all and export.
void add_filter_options(CLI::App& app, EventFilter& filter);

// The time travel options shared by read and read-all.
struct AsOfOptions {
  std::optional<uint64_t> position;  // --as-of-position
  std::string time;                  // --as-of, RFC 3339; empty = unset
};
void add_as_of_options(CLI::App& app, AsOfOptions& as_of);
// Parses --as-of. Errors: kInvalidArgument naming the bad text.
Result<std::optional<int64_t>> as_of_time_unix_ns(const AsOfOptions& as_of);

// The wire codec (CloudEvents JSON, RFC 3339, base64) is shared with the server.
using wire::base64_decode;
using wire::base64_encode;
using wire::event_to_json;
using wire::format_rfc3339;
using wire::is_json_content_type;
using wire::parse_rfc3339;

// Writes one JSON value on one line of stdout (invalid UTF-8 is replaced,
// never fatal: event bytes come from the log, not from us).
void print_json_line(const nlohmann::ordered_json& value);

// One page of a paged read: its events, already in their printed form
// (event_to_json: that is also what the server sends), and where the next
// page starts.
struct Page {
  std::vector<nlohmann::ordered_json> events;
  std::optional<uint64_t> next;
};
// Reads a page of at most `max_count` events starting at `cursor`.
using PageReader = std::function<Result<Page>(uint32_t max_count, uint64_t cursor)>;

// Prints events as JSON lines, page by page from `cursor`, until `limit`
// events (0: all) or the end. Returns the exit code.
int print_pages(uint64_t limit, uint64_t cursor, const PageReader& read_page);

// Shows the progress of a long operation on stderr: a redrawn bar with
// percentage and rate when stderr is a terminal, otherwise a plain line every
// few seconds (log files and CI output stay readable). A total of 0 with
// something done means "unknown" (a pipe): count and rate only.
class ProgressReporter {
 public:
  // `unit` names what is counted ("events", "bytes").
  ProgressReporter(std::string label, std::string unit);
  // Called with (done, total) by the operation; cheap when nothing is shown.
  void update(uint64_t done, uint64_t total);
  // Ends the bar line (if any). Returns the seconds since construction.
  double finish();
  uint64_t done() const { return done_; }
  uint64_t total() const { return total_; }

 private:
  void draw(bool final_draw);
  double elapsed_seconds() const;

  std::string label_;
  std::string unit_;
  bool tty_ = false;
  int64_t start_ns_ = 0;
  int64_t last_draw_ns_ = 0;
  uint64_t done_ = 0;
  uint64_t total_ = 0;
  bool drawn_ = false;
};

}  // namespace vellum::cli
