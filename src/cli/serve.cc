// SPDX-License-Identifier: Apache-2.0
// `vellum serve`: runs the HTTP/WebSocket server (src/server) on the data
// directory; `vellum hash-key`: the SHA-256 of an API token, for the config
// file (only digests are stored).
#include <iostream>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "base/sha256.h"
#include "cli/cli_common.h"
#include "server/config.h"
#include "server/server.h"

namespace vellum::cli {

namespace {

struct ServeState {
  server::ServerConfig config;
  std::unique_ptr<server::ServeOptions> options;
};

int run_serve(const GlobalOptions& global, ServeState& state) {
  bool data_given = global.data_option != nullptr && global.data_option->count() > 0;
  state.config.data_dir = global.data_dir;
  state.config.durability = global.durability;
  Status finished = state.options->finish(data_given);
  if (!finished) return report_usage_error(finished.error().message);
  // Logs go to stderr; stdout carries only the "listening on" line.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("vellum"));
  server::Server server(state.config);
  Status started = server.start();
  if (!started) return report_error(started.error());
  spdlog::info("serving {} (durability {}, {} API keys, {} declared projections)",
               state.config.data_dir, state.config.durability, state.config.api_keys.size(),
               state.config.projections.size());
  Status ran = server.run();
  if (!ran) return report_error(ran.error());
  return kExitOk;
}

}  // namespace

Command register_serve(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub = app.add_subcommand("serve", "Run the HTTP/JSON + WebSocket server");
  auto state = std::make_shared<ServeState>();
  state->options = std::make_unique<server::ServeOptions>(*sub, state->config);
  sub->footer(
      "Precedence: flags, then VELLUM_* environment variables (VELLUM_LISTEN, ...), then the\n"
      "--config TOML file (same names as the flags, plus data, [[api_keys]] and [[projections]]:\n"
      "key-value read models kept in <data>/toolkit, docs/api/http.md \"Projections\").\n"
      "The server prints \"listening on <host:port>\" once it accepts connections.");
  return {sub, [&global, state] { return run_serve(global, *state); }};
}

Command register_hash_key(CLI::App& app, const GlobalOptions&) {
  CLI::App* sub = app.add_subcommand(
      "hash-key", "Print the SHA-256 of an API token (read from stdin) for the config file");
  return {sub, [] {
            std::string token;
            std::getline(std::cin, token);
            if (token.empty()) return report_usage_error("give the token on stdin");
            Sha256 hash;
            hash.update(token);
            fmt::print("{}\n", digest_hex(hash.finish()));
            return kExitOk;
          }};
}

}  // namespace vellum::cli
