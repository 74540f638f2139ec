// SPDX-License-Identifier: Apache-2.0
// Entry point of the `vellum` command-line tool: parses the global options
// and the subcommand with CLI11, then runs the chosen subcommand on the
// embedded store, or with --url on a running server (backend.h). Each
// subcommand lives in its own file (append.cc, ...); exit codes are listed
// in src/cli/README.md.
#include <exception>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli_common.h"

namespace {

int run(int argc, char** argv) {
  using namespace vellum::cli;
  GlobalOptions global;
  CLI::App app{"vellum: command-line tool for the Vellum event store", "vellum"};
  // Global options may also follow the subcommand ("vellum read s --data d").
  app.fallthrough();
  app.require_subcommand(1);
  global.data_option = app.add_option("--data", global.data_dir, "Data directory of the store")
                           ->envname("VELLUM_DATA")
                           ->capture_default_str();
  app.add_option("--durability", global.durability, "When appends are acknowledged")
      ->check(CLI::IsMember({"fsync", "batch", "none"}))
      ->capture_default_str();
  app.add_option("--url", global.url,
                 "Talk to a running server (http://host:port) instead of opening --data")
      ->envname("VELLUM_URL");
  app.add_option("--token", global.token, "API token for --url (Authorization: Bearer)")
      ->envname("VELLUM_TOKEN");

  std::vector<Command> commands = {
      register_append(app, global),   register_read(app, global),
      register_read_all(app, global), register_tail(app, global),
      register_stat(app, global),     register_export(app, global),
      register_import(app, global),   register_reindex(app, global),
      register_verify(app, global),   register_serve(app, global),
      register_hash_key(app, global), register_room_token(app, global),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 prints help or the error; its own codes (105, 106, ...) collapse
    // into our single usage code so scripts see what the README promises.
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return report_usage_error("no subcommand given (see --help)");
}

}  // namespace

int main(int argc, char** argv) {
  // The engine reports failures as values; an exception reaching here is a
  // bug or out-of-memory, and the user gets one line, not a core dump.
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    fmt::print(stderr, "vellum: internal error: {}\n", error.what());
    return vellum::cli::kExitOther;
  }
}
