// SPDX-License-Identifier: Apache-2.0
// Configuration of `vellum serve`: every option with its default, read from
// flags, then VELLUM_* environment variables, then an optional TOML file, in
// that order of precedence (docs/api/server.md lists them all).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "vellum/result.h"

#include "base/sha256.h"
#include "server/declared_projections.h"

namespace vellum::server {

enum class Role : uint8_t { kReader, kWriter, kAdmin };
const char* role_name(Role role);

// An API key, as configured: only the SHA-256 of the token is kept.
struct ApiKey {
  std::string name;
  Digest token_sha256{};
  Role role = Role::kReader;
  // Stream name prefixes the key may touch; "*" grants every stream.
  std::vector<std::string> stream_prefixes;
};

// An app whose rooms are served (docs/api/rooms.md, "Authorization"): its
// secret signs room tokens; with a signing key, events must carry signatures.
struct RoomApp {
  std::string app;
  std::string secret;
  std::string signing_key;
};

// The [rooms] limits (rooms/room_service.h, RoomsConfig), as flags.
struct RoomsOptions {
  uint32_t max_participants = 100;
  uint32_t max_events_per_submit = 100;
  uint32_t max_payload_bytes = 64 * 1024;
  uint32_t submits_per_second = 50;
  uint32_t submit_burst = 100;
  uint32_t presence_timeout_ms = 15'000;
  uint32_t snapshot_every_events = 100;
  uint32_t snapshot_idle_ms = 5'000;
  uint32_t catch_up_events_max = 1'000;
  uint32_t max_queued_frames = 10'000;
  uint32_t threads = 1;
};

struct ServerConfig {
  std::string data_dir = "./vellum-data";
  std::string listen = "127.0.0.1:2113";
  uint32_t threads = 0;  // 0 = one per core
  std::string durability = "fsync";
  std::string tls_cert;  // PEM files; both or neither
  std::string tls_key;
  bool insecure = false;  // allow a non-loopback listener without API keys
  std::string config_file;
  // Static files served at /demo/ (demo_files.h); empty = none.
  std::string demo_dir;

  // Limits (each answered with a clear error; docs/api/http.md, "Limits").
  uint64_t max_body_bytes = uint64_t{32} << 20;
  uint32_t max_events_per_append = 10'000;
  uint32_t max_header_bytes = 16 << 10;
  uint32_t max_connections = 10'000;
  uint32_t max_subscriptions = 10'000;
  uint32_t max_ws_message_bytes = 64 << 10;
  uint32_t idle_timeout_seconds = 60;
  uint32_t max_wait_ms = 60'000;  // long-poll waitMs ceiling
  uint64_t subscriber_queue_bytes = uint64_t{4} << 20;
  uint32_t shutdown_grace_seconds = 30;

  std::vector<ApiKey> api_keys;  // from the config file only
  // [[projections]] of the config file only: key-value read models the
  // server keeps and serves (declared_projections.h).
  std::vector<DeclaredProjection> projections;
  RoomsOptions rooms;
  // [[room_apps]] of the config file only.
  std::vector<RoomApp> room_apps;
};

// Registers every serve option on `app` (the `serve` subcommand), writing
// into `config`. The data directory comes from the global --data option.
class ServeOptions {
 public:
  ServeOptions(CLI::App& app, ServerConfig& config);
  ~ServeOptions();
  // After parsing: fills what flags and environment left unset from the TOML
  // file (--config / VELLUM_CONFIG), and checks the result.
  // `data_dir_given`: whether --data / VELLUM_DATA was given.
  Status finish(bool data_dir_given);

 private:
  struct Entry;
  template <class T>
  void add(const char* name, T& target, const char* help);

  ServerConfig& config_;
  CLI::App* app_for_add_ = nullptr;  // only during the constructor
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Parses "host:port" (IPv6 as "[::1]:2113"). Errors: kInvalidArgument.
Status split_host_port(const std::string& text, std::string& host, uint16_t& port);

}  // namespace vellum::server
