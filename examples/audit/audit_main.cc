// SPDX-License-Identifier: Apache-2.0
// `audit`: the seed 003 user registry on an embedded Vellum store (--data).
//
//   audit --data DIR register USER --email E [--role R]
//   audit --data DIR change-email USER --email E [--reason TEXT]
//   audit --data DIR change-role USER --role R
//   audit --data DIR events USER            every event about USER (GDPR access)
//   audit --data DIR state USER [--at TIME] USER now, or as of TIME / the end of a date
//   audit --data DIR project --pg CONNINFO [--rebuild]  bring the PostgreSQL users table up
//                                           to date (--rebuild: from scratch)
//
// Commands take --by (the acting user), --correlation, --causation and
// --command-id (a retry with the same id appends nothing new).
// Exit codes: 0 ok, 1 bad arguments or input, 2 not found, 4 a business rule
// refused the command (or a concurrency conflict persisted), 5 anything else.
#include <array>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "vellum/store.h"

#include "audit.h"
#include "users_projection.h"

namespace audit {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitNotFound = 2;
constexpr int kExitRefused = 4;
constexpr int kExitOther = 5;

int exit_code_for(vellum::ErrorCode code) {
  switch (code) {
    case vellum::ErrorCode::kInvalidArgument:
      return kExitUsage;
    case vellum::ErrorCode::kNotFound:
      return kExitNotFound;
    case vellum::ErrorCode::kFailedPrecondition:
    case vellum::ErrorCode::kAborted:
      return kExitRefused;
    default:
      return kExitOther;
  }
}

int fail(const vellum::Error& error) {
  fmt::print(stderr, "audit: {}\n", error.message);
  return exit_code_for(error.code);
}

// A request id when the caller gives none: 128 random bits as a UUID-shaped
// string (version 4), so logs and traces can carry it.
std::string new_request_id() {
  std::random_device device;
  std::array<uint32_t, 4> words{device(), device(), device(), device()};
  words[1] = (words[1] & 0xffff0fffu) | 0x00004000u;
  words[2] = (words[2] & 0x3fffffffu) | 0x80000000u;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:04x}{:08x}", words[0], words[1] >> 16,
                     words[1] & 0xffffu, words[2] >> 16, words[2] & 0xffffu, words[3]);
}

struct Options {
  std::string data_dir;
  std::string user;
  std::string email;
  std::string role = "member";
  std::string reason;
  std::string at;
  std::string pg;
  bool rebuild = false;
  Request request;
};

vellum::Result<std::unique_ptr<vellum::Store>> open_store(const Options& options) {
  vellum::StoreOptions store_options;
  store_options.create_if_missing = true;
  return vellum::Store::open(options.data_dir, store_options);
}

// Prints what a command did: the events appended, or that nothing changed.
void print_outcome(const std::string& user, const vellum::CommandResult<User>& result,
                   const std::string& unchanged) {
  if (result.replayed) {
    fmt::print("{}: command already applied (revision {}); nothing appended\n", user,
               result.revision);
  } else if (!result.append) {
    fmt::print("{}: {}\n", user, unchanged);
  } else {
    fmt::print("{}: appended {} event(s) to {} at revision {}, position {}\n", user,
               result.events.size(), result.append->stream, result.append->last_revision,
               result.append->last_position);
  }
}

int run_command_on_store(const Options& options, const User::Command& command,
                         const std::string& unchanged) {
  auto opened = open_store(options);
  if (!opened) return fail(opened.error());
  vellum::Store& store = **opened;
  UserStore users(store, nullptr);
  Request request = options.request;
  if (request.command_id.empty()) request.command_id = new_request_id();
  auto result = run_command(users, options.user, command, request);
  if (!result) return fail(result.error());
  print_outcome(options.user, *result, unchanged);
  const UserState& state = result->state;
  fmt::print("{}: email {}, role {}\n", options.user, state.email, state.role);
  return kExitOk;
}

int run_events(const Options& options) {
  auto opened = open_store(options);
  if (!opened) return fail(opened.error());
  vellum::Store& store = **opened;
  auto events = events_about(store, options.user);
  if (!events) return fail(events.error());
  fmt::print("{} event(s) about {}\n", events->size(), options.user);
  for (const vellum::RecordedEvent& event : *events) {
    fmt::print("{:>6}  {}  {}@{}  {}  correlation={} causation={}  {}\n", event.position,
               format_time(event.recorded_time_unix_ns), event.stream, event.revision, event.type,
               event.correlation_id, event.causation_id, event.data);
  }
  return kExitOk;
}

int run_state(const Options& options) {
  std::optional<int64_t> at;
  if (!options.at.empty()) {
    at = parse_time(options.at);
    if (!at) {
      fmt::print(stderr, "audit: --at '{}' is neither RFC 3339 nor YYYY-MM-DD\n", options.at);
      return kExitUsage;
    }
  }
  auto opened = open_store(options);
  if (!opened) return fail(opened.error());
  vellum::Store& store = **opened;
  UserStore users(store, nullptr);
  auto loaded = user_as_of(users, options.user, at);
  if (!loaded) {
    if (loaded.error().code == vellum::ErrorCode::kNotFound && at) {
      fmt::print(stderr, "audit: user '{}' was not registered at {}\n", options.user,
                 format_time(*at));
      return kExitNotFound;
    }
    return fail(loaded.error());
  }
  const std::string when = at ? "as of " + format_time(*at) : "now";
  fmt::print("{} {}: email {}, role {} (revision {}, last change {})\n", options.user, when,
             loaded->state.email, loaded->state.role, loaded->revision,
             format_time(loaded->last_recorded_time_unix_ns));
  return kExitOk;
}

int run_project(const Options& options) {
  auto opened = open_store(options);
  if (!opened) return fail(opened.error());
  vellum::Store& store = **opened;
  auto done =
      project_users(store, options.pg, options.rebuild, [](const ProjectProgress& progress) {
        fmt::print("users: position {}/{}, {} event(s) applied\n", progress.position,
                   progress.target, progress.events_processed);
        std::fflush(stdout);
      });
  if (!done) return fail(done.error());
  fmt::print("users: caught up at position {}\n", done->position);
  return kExitOk;
}

void add_request_options(CLI::App* command, Options& options) {
  command->add_option("--by", options.request.by, "The acting user (recorded in the event)")
      ->capture_default_str();
  command->add_option("--correlation", options.request.correlation_id,
                      "Correlation id (the end-to-end request); default: the command id");
  command->add_option("--causation", options.request.causation_id,
                      "Causation id (what caused this command); default: the command id");
  command->add_option("--command-id", options.request.command_id,
                      "Idempotency key: a retry with the same id appends nothing; default: new");
}

int run(int argc, char** argv) {
  Options options;
  options.request.by = "cli";
  CLI::App app{"audit: seed 003's audit-first user registry on Vellum", "audit"};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--data", options.data_dir, "Data directory of the store")
      ->envname("AUDIT_DATA")
      ->required();

  CLI::App* reg = app.add_subcommand("register", "Register a user");
  reg->add_option("user", options.user, "User id")->required();
  reg->add_option("--email", options.email, "Email address")->required();
  reg->add_option("--role", options.role, "viewer, member, admin or owner")->capture_default_str();
  add_request_options(reg, options);

  CLI::App* email = app.add_subcommand("change-email", "Change a user's email");
  email->add_option("user", options.user, "User id")->required();
  email->add_option("--email", options.email, "The new email address")->required();
  email->add_option("--reason", options.reason, "Why (recorded in the event)");
  add_request_options(email, options);

  CLI::App* role = app.add_subcommand("change-role", "Change a user's role");
  role->add_option("user", options.user, "User id")->required();
  role->add_option("--role", options.role, "viewer, member, admin or owner")->required();
  add_request_options(role, options);

  CLI::App* events = app.add_subcommand("events", "Every event about a user (GDPR access)");
  events->add_option("user", options.user, "User id")->required();

  CLI::App* state = app.add_subcommand("state", "A user's state, now or at a past time");
  state->add_option("user", options.user, "User id")->required();
  state->add_option("--at", options.at, "RFC 3339 time, or YYYY-MM-DD (the end of that day, UTC)");

  CLI::App* project = app.add_subcommand("project", "Bring the PostgreSQL users table up to date");
  project->add_option("--pg", options.pg, "libpq connection string")
      ->envname("VELLUM_TEST_PG")
      ->required();
  project->add_flag("--rebuild", options.rebuild,
                    "Empty the table and the checkpoint first, then apply every event again");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  if (reg->parsed()) {
    return run_command_on_store(
        options, RegisterUser{options.user, options.email, options.role, options.request.by},
        "already registered");
  }
  if (email->parsed()) {
    return run_command_on_store(options,
                                ChangeEmail{options.email, options.reason, options.request.by},
                                "email unchanged (it is already " + options.email + ")");
  }
  if (role->parsed()) {
    return run_command_on_store(options, ChangeRole{options.role, options.request.by},
                                "role unchanged (it is already " + options.role + ")");
  }
  if (events->parsed()) return run_events(options);
  if (state->parsed()) return run_state(options);
  if (project->parsed()) return run_project(options);
  return kExitUsage;
}

}  // namespace
}  // namespace audit

int main(int argc, char** argv) {
  try {
    return audit::run(argc, argv);
  } catch (const std::exception& error) {
    fmt::print(stderr, "audit: internal error: {}\n", error.what());
    return 5;
  }
}
