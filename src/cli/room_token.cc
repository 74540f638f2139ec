// SPDX-License-Identifier: Apache-2.0
// `vellum room-token`: prints a signed room token (docs/api/rooms.md, "Authorization"), what an
// app's backend hands a participant before it joins a room. For backends without a library of
// their own, for scripts and tests. Works offline: it needs the app secret, not a server.
// The secret is best passed by environment variable (--secret-env): a --secret on the command
// line is visible to every user of the machine in the process list.
#include "rooms/room_token.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "base/clock.h"
#include "cli/cli_common.h"

namespace vellum::cli {
namespace {

// Tokens are short-lived by design: a leaked one is useful until it expires.
constexpr int64_t kTokenTtlSecondsMax = 30 * 24 * 3600;

struct RoomTokenOptions {
  std::string app;
  std::string room;
  std::string participant;
  std::string rights = "read,write";
  int64_t ttl_seconds = 3600;
  std::string secret_env;
  std::string secret;
};

int run_room_token(const RoomTokenOptions& options) {
  std::string secret = options.secret;
  if (!options.secret_env.empty()) {
    const char* value = std::getenv(options.secret_env.c_str());
    if (value == nullptr) {
      return report_usage_error(
          fmt::format("the environment variable {} is not set", options.secret_env));
    }
    secret = value;
  }
  if (Status checked = rooms::check_room_secret(secret); !checked) {
    return report_usage_error(checked.error().message);
  }
  int64_t now_unix_seconds = system_clock()->now_unix_ns() / 1'000'000'000;
  rooms::RoomClaims claims;
  claims.app = options.app;
  claims.room = options.room;
  claims.participant = options.participant;
  claims.rights =
      options.rights == "read" ? rooms::RoomRights::kRead : rooms::RoomRights::kReadWrite;
  claims.issued_unix_seconds = now_unix_seconds;
  claims.expires_unix_seconds = now_unix_seconds + options.ttl_seconds;
  if (Status checked = rooms::check_room_claims(claims); !checked) {
    return report_usage_error(checked.error().message);
  }
  fmt::print("{}\n", rooms::sign_room_token(claims, secret));
  return kExitOk;
}

}  // namespace

Command register_room_token(CLI::App& app, const GlobalOptions&) {
  // Owned by the subcommand's callback, which lives as long as the app.
  auto options = std::make_shared<RoomTokenOptions>();
  CLI::App* sub = app.add_subcommand(
      "room-token", "Print a signed room token for a participant (HMAC-SHA256, app secret)");
  sub->add_option("--app", options->app, "The app: [a-z0-9_-]{1,64}")->required();
  sub->add_option("--room", options->room, "The room: [A-Za-z0-9_.-]{1,128}, or * for any room")
      ->required();
  sub->add_option("--participant", options->participant,
                  "The participant: 1-256 printable ASCII characters, no spaces")
      ->required();
  sub->add_option("--rights", options->rights, "What the participant may do")
      ->check(CLI::IsMember({"read", "read,write"}))
      ->capture_default_str();
  sub->add_option("--ttl", options->ttl_seconds, "Seconds until the token expires")
      ->check(CLI::Range(int64_t{1}, kTokenTtlSecondsMax))
      ->capture_default_str();
  CLI::Option* secret_env = sub->add_option("--secret-env", options->secret_env,
                                            "Read the app secret from this environment variable");
  CLI::Option* secret =
      sub->add_option("--secret", options->secret,
                      "The app secret itself (visible in the process list: prefer --secret-env)");
  secret_env->excludes(secret);
  secret->excludes(secret_env);
  return Command{sub, [options] {
                   if (options->secret_env.empty() && options->secret.empty()) {
                     return report_usage_error("give --secret-env VAR or --secret S");
                   }
                   return run_room_token(*options);
                 }};
}

}  // namespace vellum::cli
